"""Stack outputs owned by the module that creates what they describe."""

from __future__ import annotations

from collections.abc import Mapping

import jsii
from cdktf import Aspects, IAspect, TerraformStack
from constructs import Construct, IConstruct

_EXPORTS = "_roi_tf_exports"  # attribute of the stack (its Python object) collecting its outputs


@jsii.implements(IAspect)
class _WriteExports:
    """Writes a stack's collected outputs as one override of its ``output`` block (applied at synth)."""

    def __init__(self, stack: TerraformStack, outputs: dict[str, dict[str, object]]) -> None:
        self._stack, self._outputs = stack, outputs

    def visit(self, _marker: IConstruct) -> None:
        self._stack.add_override("output", self._outputs)


def export(scope: Construct, described: Mapping[str, tuple[object, str]]) -> None:
    """One described output per entry (name -> (value, description)), named exactly ``name`` in the stack.

    The outputs are the stack's interface, so they are named after the output, not the module's construct path.
    They are collected on the stack and written at synthesis as one override of its ``output`` block (an aspect on
    an empty marker construct, as in regional.py): a few jsii calls per stack instead of one per output (~170 for
    all stacks; synthesis speed, docs/FAST_SYNTH.md). Output names are unique per stack: a second one is refused.
    """
    stack = TerraformStack.of(scope)
    outputs: dict[str, dict[str, object]] | None = stack.__dict__.get(_EXPORTS)
    if outputs is None:
        outputs = stack.__dict__[_EXPORTS] = {}
        Aspects.of(Construct(stack, "Exports")).add(_WriteExports(stack, outputs))
    for name, (value, description) in described.items():
        if name in outputs:
            raise ValueError(f"output {name!r} is exported twice in {stack.node.id}")
        outputs[name] = {"value": value, "description": description}

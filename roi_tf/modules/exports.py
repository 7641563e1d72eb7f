"""Stack outputs owned by the module that creates what they describe."""

from __future__ import annotations

from collections.abc import Mapping

from cdktf import TerraformOutput, TerraformStack
from constructs import Construct


def export(scope: Construct, described: Mapping[str, tuple[object, str]]) -> None:
    """One described output per entry (name -> (value, description)), named exactly ``name`` in the stack.

    The outputs are the stack's interface, so they are named after the output, not the module's construct path:
    created directly on the stack, where a construct's logical ID is its id (one call to the jsii kernel per
    output instead of two with ``override_logical_id``; synthesis speed, see docs/FAST_SYNTH.md). Output names are
    unique per stack, as Terraform requires; constructs refuses a second one with the same id.
    """
    stack = TerraformStack.of(scope)
    for name, (value, description) in described.items():
        TerraformOutput(stack, name, value=value, description=description)

"""Place every resource of a construct subtree in another region, through that region's provider."""

from __future__ import annotations

import jsii
from cdktf import Aspects, IAspect, TerraformDataSource, TerraformProvider, TerraformResource
from constructs import Construct, IConstruct


@jsii.implements(IAspect)
class _UseProvider:
    """Gives resources and data sources under ``scope`` without an explicit provider this one (applied at synth)."""

    def __init__(self, scope: Construct, provider: TerraformProvider) -> None:
        self._scope, self._provider = scope, provider

    def visit(self, _marker: IConstruct) -> None:
        for node in self._scope.node.find_all():
            if isinstance(node, (TerraformResource, TerraformDataSource)) and node.provider is None:
                node.provider = self._provider


def use_provider(scope: Construct, provider: TerraformProvider) -> None:
    """Every resource created under ``scope`` that names no provider uses ``provider`` (e.g. the DR region's)."""
    # On an empty marker construct, the aspect is called once at synthesis and sweeps the scope itself (resources
    # added later included), instead of node calling back into Python for every construct (see protection.py).
    Aspects.of(Construct(scope, "UseProvider")).add(_UseProvider(scope, provider))

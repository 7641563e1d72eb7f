"""Place every resource of a construct subtree in another region, through that region's provider."""

from __future__ import annotations

import jsii
from cdktf import Aspects, IAspect, TerraformDataSource, TerraformProvider, TerraformResource
from constructs import Construct, IConstruct


@jsii.implements(IAspect)
class _UseProvider:
    """Gives resources and data sources without an explicit provider this one (applied at synth)."""

    def __init__(self, provider: TerraformProvider) -> None:
        self._provider = provider

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, (TerraformResource, TerraformDataSource)) and node.provider is None:
            node.provider = self._provider


def use_provider(scope: Construct, provider: TerraformProvider) -> None:
    """Every resource created under ``scope`` that names no provider uses ``provider`` (e.g. the DR region's)."""
    Aspects.of(scope).add(_UseProvider(provider))

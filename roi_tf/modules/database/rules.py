"""Security-group rules between two groups: the only way the database module opens a port."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct


def allow(scope: Construct, id: str, *, source: str, destination: str, port: int, description: str) -> None:
    """TCP ``port`` from group ``source`` to group ``destination``: ingress on one, the matching egress on the other."""
    VpcSecurityGroupIngressRule(
        scope,
        f"{id}_in",
        security_group_id=destination,
        referenced_security_group_id=source,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description=description,
    )
    VpcSecurityGroupEgressRule(
        scope,
        f"{id}_out",
        security_group_id=source,
        referenced_security_group_id=destination,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description=description,
    )

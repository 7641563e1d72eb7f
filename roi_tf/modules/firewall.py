"""Security groups and their rules: the only ways a module opens a port.

``allow`` opens one TCP port from a group to a group (both halves: the egress and the matching ingress);
``https_out_group`` is a group that admits nothing and may only call HTTPS endpoints (AWS APIs, registries);
``admitting_group`` is a data store's group that admits one port from one group (the application's).
Rules are separate resources (never inline), so tests/test_flows.py can hold every one against its allow-list.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

ANYWHERE = "0.0.0.0/0"
HTTPS = 443


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


def https_out_group(
    scope: Construct, prefix: str, *, name: str, description: str, vpc_id: str, egress_description: str
) -> SecurityGroup:
    """Group ``name`` (construct ``<prefix>security_group``): no ingress; egress HTTPS to anywhere only (through
    the NAT gateway or the VPC endpoints). Callers open further flows with ``allow``."""
    group = SecurityGroup(
        scope, f"{prefix}security_group", name=name, description=description, vpc_id=vpc_id, tags={"Name": name}
    )
    VpcSecurityGroupEgressRule(
        scope,
        f"{prefix}https_out",
        security_group_id=group.id,
        description=egress_description,
        ip_protocol="tcp",
        from_port=HTTPS,
        to_port=HTTPS,
        cidr_ipv4=ANYWHERE,
    )
    return group


def admitting_group(
    scope: Construct,
    prefix: str,
    *,
    name: str,
    description: str,
    vpc_id: str,
    source: str,
    port: int,
    rule: str,
    rule_description: str,
) -> SecurityGroup:
    """Group ``name`` (construct ``<prefix>security_group``) admitting TCP ``port`` from group ``source`` only (rule
    ``rule``, with its matching egress on ``source``); it opens nothing else and calls nothing."""
    group = SecurityGroup(
        scope, f"{prefix}security_group", name=name, description=description, vpc_id=vpc_id, tags={"Name": name}
    )
    allow(scope, rule, source=source, destination=group.id, port=port, description=rule_description)
    return group

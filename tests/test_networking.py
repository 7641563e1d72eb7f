"""Networking module: assertions on every environment's synthesized VPC."""

from __future__ import annotations

import ipaddress
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest

from conftest import Stack
from roi_tf.config import EnvironmentConfig, NetworkingConfig

EXPECTED_NAT = {"dev": 1, "staging": 2, "prod": 2}


@pytest.fixture
def stack(stacks: dict[str, Stack], env: str) -> Stack:
    """The primary region's network; the standby VPC in the DR region is covered by tests/test_dr.py."""
    return stacks[env].excluding("dr_networking")


def subnets_by_tier(stack: Stack) -> dict[str, list[dict]]:
    tiers: dict[str, list[dict]] = {"public": [], "private": [], "isolated": []}
    for body in stack.resources("aws_subnet").values():
        tiers[body["tags"]["Tier"]].append(body)
    return tiers


def subnet_refs(stack: Stack, tier: str) -> list[str]:
    """References to the subnets of one tier, sorted."""
    return sorted(
        Stack.ref("aws_subnet", n) for n, s in stack.resources("aws_subnet").items() if s["tags"]["Tier"] == tier
    )


def vpc_name(stack: Stack) -> str:
    (name,) = stack.resources("aws_vpc")
    return name


def test_vpc_has_dns_support_and_the_configured_cidr(stack: Stack, config: EnvironmentConfig) -> None:
    (vpc,) = stack.resources("aws_vpc").values()
    assert vpc["cidr_block"] == str(config.networking.vpc_cidr)
    assert vpc["enable_dns_support"] is True
    assert vpc["enable_dns_hostnames"] is True
    assert vpc["tags"]["Name"] == f"roi-systems-{config.name}"


def test_three_tiers_one_subnet_per_az_in_pinned_zones(stack: Stack, config: EnvironmentConfig) -> None:
    tiers = subnets_by_tier(stack)
    zones = list(config.networking.availability_zone_ids)
    for tier, subnets in tiers.items():
        assert len(subnets) == config.networking.az_count, tier
        assert sorted(s["availability_zone_id"] for s in subnets) == sorted(zones), tier
        for subnet in subnets:
            assert subnet["vpc_id"] == Stack.ref("aws_vpc", vpc_name(stack))
            assert "availability_zone" not in subnet, "zone names differ per account; IDs are pinned"


def test_no_subnet_maps_public_ips_on_launch(stack: Stack) -> None:
    for name, subnet in stack.resources("aws_subnet").items():
        assert subnet["map_public_ip_on_launch"] is False, name


def test_subnet_cidrs_are_computed_inside_the_vpc_and_disjoint(stack: Stack, config: EnvironmentConfig) -> None:
    vpc = config.networking.vpc_cidr
    cidrs = [ipaddress.ip_network(s["cidr_block"]) for s in stack.resources("aws_subnet").values()]
    assert all(c.subnet_of(vpc) for c in cidrs)
    for i, a in enumerate(cidrs):
        for b in cidrs[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    plan = config.networking.subnet_plan
    assert sorted(map(str, cidrs)) == sorted(
        str(c) for tier in (plan.public, plan.private, plan.isolated) for c in tier
    )


@pytest.mark.parametrize(("env", "expected"), EXPECTED_NAT.items(), indirect=["env"])
def test_nat_gateway_count_contrasts_between_environments(stack: Stack, expected: int) -> None:
    """Design document: dev is single-NAT; staging and prod have one NAT gateway per AZ."""
    assert stack.count("aws_nat_gateway") == expected
    assert stack.count("aws_eip") == expected
    public_ids = set(subnet_refs(stack, "public"))
    nat_subnets = {nat["subnet_id"] for nat in stack.resources("aws_nat_gateway").values()}
    assert nat_subnets <= public_ids
    assert len(nat_subnets) == expected, "each NAT gateway in its own AZ"


def test_private_subnets_route_to_the_internet_only_through_nat(stack: Stack, config: EnvironmentConfig) -> None:
    nat_refs = {Stack.ref("aws_nat_gateway", n) for n in stack.resources("aws_nat_gateway")}
    default_routes = [r for r in stack.resources("aws_route").values() if r["destination_cidr_block"] == "0.0.0.0/0"]
    via_nat = [r for r in default_routes if "nat_gateway_id" in r]
    via_igw = [r for r in default_routes if "gateway_id" in r]
    assert len(via_igw) == 1, "one public route table routes to the internet gateway"
    assert len(via_nat) == config.networking.az_count, "one private route table per AZ"
    assert {r["nat_gateway_id"] for r in via_nat} == nat_refs


def test_isolated_subnets_have_no_route_out_of_the_vpc(stack: Stack) -> None:
    isolated_subnets = set(subnet_refs(stack, "isolated"))
    tables = {
        a["route_table_id"]
        for a in stack.resources("aws_route_table_association").values()
        if a["subnet_id"] in isolated_subnets
    }
    assert len(tables) == 1
    assert not [r for r in stack.resources("aws_route").values() if r["route_table_id"] in tables]
    for table in stack.resources("aws_route_table").values():
        assert "route" not in table, "routes are separate aws_route resources, so none hides inline"


def test_every_subnet_is_associated_with_exactly_one_route_table(stack: Stack) -> None:
    associated = [a["subnet_id"] for a in stack.resources("aws_route_table_association").values()]
    assert sorted(associated) == sorted(Stack.ref("aws_subnet", n) for n in stack.resources("aws_subnet"))


def test_default_security_group_and_network_acl_are_locked_down(stack: Stack) -> None:
    (sg,) = stack.resources("aws_default_security_group").values()
    assert sg["ingress"] == [] and sg["egress"] == []
    (acl,) = stack.resources("aws_default_network_acl").values()
    assert acl["ingress"] == [] and acl["egress"] == []
    assert "subnet_ids" not in acl
    (rt,) = stack.resources("aws_default_route_table").values()
    assert rt["route"] == []


def test_every_subnet_uses_a_dedicated_network_acl(stack: Stack) -> None:
    acl_subnets = [s for acl in stack.resources("aws_network_acl").values() for s in acl["subnet_ids"]]
    assert sorted(acl_subnets) == sorted(Stack.ref("aws_subnet", n) for n in stack.resources("aws_subnet"))


def test_network_acls_open_all_ports_only_inside_the_vpc(stack: Stack, config: EnvironmentConfig) -> None:
    """The reason behind the CKV_AWS_352 skip: all-port rules never reach outside the VPC."""
    vpc = str(config.networking.vpc_cidr)
    for name, rule in stack.resources("aws_network_acl_rule").items():
        if rule["egress"]:
            continue
        if rule["protocol"] == "-1":
            assert rule["cidr_block"] == vpc, name
        else:
            ports = (rule["from_port"], rule["to_port"])
            assert ports in {(80, 80), (443, 443), (1024, 65535)}, (name, ports)
            assert rule["rule_action"] == "allow"


def test_isolated_network_acl_admits_and_emits_only_vpc_traffic(stack: Stack, config: EnvironmentConfig) -> None:
    name, _ = stack.one("aws_network_acl", tags={"Name": f"roi-systems-{config.name}-isolated"})
    rules = [
        r
        for r in stack.resources("aws_network_acl_rule").values()
        if r["network_acl_id"] == Stack.ref("aws_network_acl", name)
    ]
    assert rules
    assert {r["cidr_block"] for r in rules} == {str(config.networking.vpc_cidr)}


def test_flow_logs_capture_all_traffic_into_an_encrypted_log_group(stack: Stack, config: EnvironmentConfig) -> None:
    (flow,) = stack.resources("aws_flow_log").values()
    assert flow["traffic_type"] == "ALL"
    assert flow["vpc_id"] == Stack.ref("aws_vpc", vpc_name(stack))
    assert flow["max_aggregation_interval"] == config.networking.flow_log_aggregation_seconds
    group_name, group = stack.one("aws_cloudwatch_log_group", name=f"/roi-systems/{config.name}/vpc-flow-logs")
    assert flow["log_destination"] == Stack.ref("aws_cloudwatch_log_group", group_name, "arn")
    assert group["retention_in_days"] == config.networking.flow_log_retention_days
    key_name, key = stack.kms_key(f"alias/roi-systems-{config.name}-logs")
    assert group["kms_key_id"] == Stack.ref("aws_kms_key", key_name, "arn")
    assert key["enable_key_rotation"] is True


def test_flow_log_role_is_least_privilege(stack: Stack) -> None:
    (flow,) = stack.resources("aws_flow_log").values()
    role_name = flow["iam_role_arn"].split(".")[1]
    role = stack.resources("aws_iam_role")[role_name]
    trust = stack.data("aws_iam_policy_document")[role["assume_role_policy"].split(".")[2]]
    (statement,) = trust["statement"]
    assert statement["principals"] == [{"type": "Service", "identifiers": ["vpc-flow-logs.amazonaws.com"]}]
    assert statement["condition"][0]["variable"] == "aws:SourceAccount"
    (policy,) = (p for p in stack.resources("aws_iam_role_policy").values() if role_name in p["role"])
    permissions = stack.data("aws_iam_policy_document")[policy["policy"].split(".")[2]]
    (grant,) = permissions["statement"]
    group_arn = flow["log_destination"]
    assert grant["resources"] == [group_arn, group_arn.replace("}", "}:*")]
    assert all(action.startswith("logs:") and "*" not in action for action in grant["actions"])


def test_gateway_endpoints_for_s3_and_dynamodb_serve_private_and_isolated_tables(stack: Stack) -> None:
    private_and_isolated = {
        Stack.ref("aws_route_table", n)
        for n, t in stack.resources("aws_route_table").items()
        if not t["tags"]["Name"].endswith("-public")
    }
    for service in ("s3", "dynamodb"):
        _, endpoint = stack.one("aws_vpc_endpoint", service_name=f"com.amazonaws.us-east-1.{service}")
        assert endpoint["vpc_endpoint_type"] == "Gateway"
        assert set(endpoint["route_table_ids"]) == private_and_isolated


def test_interface_endpoints_follow_config(stack: Stack, config: EnvironmentConfig) -> None:
    interface = {
        e["service_name"].removeprefix("com.amazonaws.us-east-1."): e
        for e in stack.resources("aws_vpc_endpoint").values()
        if e["vpc_endpoint_type"] == "Interface"
    }
    assert set(interface) == set(config.networking.interface_endpoints)
    private = subnet_refs(stack, "private")
    for endpoint in interface.values():
        assert endpoint["private_dns_enabled"] is True
        assert sorted(endpoint["subnet_ids"]) == private
    if interface:
        (sg_name, _) = stack.one("aws_security_group", name=f"roi-systems-{config.name}-vpc-endpoints")
        sg_ref = Stack.ref("aws_security_group", sg_name)
        (_, rule) = stack.one("aws_vpc_security_group_ingress_rule", security_group_id=sg_ref)
        assert (rule["from_port"], rule["to_port"], rule["cidr_ipv4"]) == (
            443,
            443,
            str(config.networking.vpc_cidr),
        )
        assert not stack.find("aws_vpc_security_group_egress_rule", security_group_id=sg_ref)


@pytest.mark.parametrize(
    ("env", "has_endpoints"), [("dev", False), ("staging", True), ("prod", True)], indirect=["env"]
)
def test_dev_saves_the_interface_endpoint_cost(stack: Stack, has_endpoints: bool) -> None:
    types = {e["vpc_endpoint_type"] for e in stack.resources("aws_vpc_endpoint").values()}
    assert ("Interface" in types) is has_endpoints


def test_database_and_cache_subnet_groups_use_the_isolated_subnets(stack: Stack, config: EnvironmentConfig) -> None:
    isolated = subnet_refs(stack, "isolated")
    _, db = stack.one("aws_db_subnet_group", name=f"roi-systems-{config.name}-database")
    _, cache = stack.one("aws_elasticache_subnet_group", name=f"roi-systems-{config.name}-elasticache")
    assert sorted(db["subnet_ids"]) == isolated
    assert sorted(cache["subnet_ids"]) == isolated


# Where each kind of resource that names subnets belongs: anything else naming a subnet fails until it is placed here.
# Resources that take "all subnets of the tier" in their region; NAT gateways, route table associations and network
# ACLs are per subnet or per tier, checked by the tests above and below.
PLACEMENT: dict[tuple[str, Any], str] = {
    ("aws_lb", False): "public",  # the internet-facing load balancer: the only thing besides NAT that faces out
    ("aws_lb", True): "private",
    ("aws_ecs_service", None): "private",
    ("aws_lambda_function", None): "private",
    ("aws_autoscaling_group", None): "private",
    ("aws_vpc_endpoint", None): "private",
    ("aws_db_proxy", None): "isolated",
    ("aws_db_subnet_group", None): "isolated",
    ("aws_elasticache_subnet_group", None): "isolated",
    ("aws_iam_policy_document", None): "private",  # the event processor's ec2:Subnet condition
}
PER_SUBNET = {"aws_nat_gateway": {"public"}, "aws_route_table_association": {"public", "private", "isolated"},
              "aws_network_acl": {"public", "private", "isolated"}}  # fmt: skip


def test_every_resource_naming_subnets_names_all_subnets_of_its_tier_in_its_region(stacks: dict[str, Stack]) -> None:
    """Guards a task, function, instance or endpoint placed in the public (or isolated) subnets, a load balancer in
    the wrong tier, or a subnet list that leaves a zone out, over every stack and both regions."""
    for env, stack in stacks.items():
        if env.startswith("state-"):
            continue
        subnets = stack.resources("aws_subnet")
        by_region_tier: dict[tuple[str, str], list[str]] = defaultdict(list)
        for name, body in subnets.items():
            by_region_tier[(stack.region_of(body), body["tags"]["Tier"])].append(Stack.ref("aws_subnet", name))
        placed = 0
        for kind, items in (*stack.json.get("resource", {}).items(), *stack.json.get("data", {}).items()):
            for name, body in items.items():
                named = sorted(
                    {Stack.ref("aws_subnet", s) for s in re.findall(r"aws_subnet\.(\w+)\.id", json.dumps(body))}
                )
                if not named:
                    continue
                tiers = {subnets[ref.split(".")[1]]["tags"]["Tier"] for ref in named}
                if kind in PER_SUBNET:
                    assert len(tiers) == 1 and tiers <= PER_SUBNET[kind], (env, kind, name, tiers)
                    continue
                key = (kind, body.get("internal")) if kind == "aws_lb" else (kind, None)
                assert key in PLACEMENT, f"{env}: {kind}.{name} names subnets but has no place in PLACEMENT"
                expected = sorted(by_region_tier[(stack.region_of(body), PLACEMENT[key])])
                assert named == expected, (env, kind, name, tiers)
                placed += 1
        assert placed >= 7, env  # load balancers, services, function, database and cache groups, proxy


def test_outputs_are_named_like_terraform_aws_modules(stack: Stack) -> None:
    outputs = stack.json["output"]
    for name in (
        "vpc_id",
        "vpc_cidr_block",
        "public_subnet_ids",
        "private_subnet_ids",
        "database_subnet_ids",
        "database_subnet_group_name",
        "elasticache_subnet_group_name",
        "nat_gateway_ids",
        "nat_public_ips",
    ):
        assert name in outputs, name
        assert outputs[name]["description"]
    assert outputs["vpc_id"]["value"] == Stack.ref("aws_vpc", vpc_name(stack))


# --- per-AZ layout, routing and network ACLs of every VPC (the primary and, in prod, the DR standby) --------------

TIERS = ("public", "private", "isolated")
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class Network:
    """One VPC of a stack: the view of its construct, its configuration and its name prefix."""

    label: str  # "primary" or "dr"
    view: Stack
    config: NetworkingConfig
    name: str  # "roi-systems-<env>" or "roi-systems-<env>-dr"

    @property
    def vpc_ref(self) -> str:
        (vpc,) = [n for n, v in self.view.resources("aws_vpc").items() if v["tags"]["Name"] == self.name]
        return Stack.ref("aws_vpc", vpc)

    def one(self, rtype: str, **props: Any) -> tuple[str, dict[str, Any]]:
        return self.view.one(rtype, **props)

    def subnet(self, tier: str, i: int) -> tuple[str, dict[str, Any]]:
        return self.one("aws_subnet", tags={"Name": f"{self.name}-{tier}-{i}"})


@pytest.fixture
def networks(stacks: dict[str, Stack], configs: dict[str, EnvironmentConfig], env: str) -> list[Network]:
    config = configs[env]
    found = [Network("primary", stacks[env].excluding("dr_networking"), config.networking, f"roi-systems-{env}")]
    if config.dr_networking is not None:
        found.append(Network("dr", stacks[env].under("dr_networking"), config.dr_networking, f"roi-systems-{env}-dr"))
    return found


def test_subnet_i_of_every_tier_is_in_zone_i_with_planned_cidr_i(networks: list[Network]) -> None:
    """Guards against a shifted zone (availability_zone_ids[i - 1]) or CIDR, which per-tier sets cannot see."""
    for net in networks:
        zones, plan = net.config.availability_zone_ids, net.config.subnet_plan
        for tier in TIERS:
            cidrs = getattr(plan, tier)
            assert len(zones) == len(cidrs) == net.config.az_count, (net.label, tier)
            in_tier = [s for s in net.view.resources("aws_subnet").values() if s["tags"]["Tier"] == tier]
            assert len(in_tier) == net.config.az_count, (net.label, tier)
            for i, (zone, cidr) in enumerate(zip(zones, cidrs, strict=True)):
                name, subnet = net.subnet(tier, i)
                where = (net.label, tier, i, name)
                assert subnet["tags"]["Tier"] == tier, where
                assert subnet["vpc_id"] == net.vpc_ref, where
                assert subnet["availability_zone_id"] == zone, where
                assert subnet["cidr_block"] == str(cidr), where


def test_private_route_table_i_egresses_through_the_nat_of_zone_i(networks: list[Network]) -> None:
    """Guards against a private table routed through another AZ's NAT (nat_gateways[(i + 1) % n]) or none."""
    for net in networks:
        nat_count, zones = net.config.nat_gateway_count, net.config.availability_zone_ids
        nats = net.view.resources("aws_nat_gateway")
        assert len(nats) == nat_count, net.label
        for i in range(net.config.az_count):
            table, _ = net.one("aws_route_table", tags={"Name": f"{net.name}-private-{i}"})
            routes = [
                r
                for r in net.view.resources("aws_route").values()
                if r["route_table_id"] == Stack.ref("aws_route_table", table)
            ]
            if nat_count == 0:
                assert routes == [], f"{net.label}: private table {i} has no NAT to route through"
                continue
            (route,) = routes
            assert route["destination_cidr_block"] == ANYWHERE and "gateway_id" not in route, (net.label, i)
            nat_name = route["nat_gateway_id"].split(".")[1]
            nat = nats[nat_name]
            (nat_subnet,) = [
                s for n, s in net.view.resources("aws_subnet").items() if Stack.ref("aws_subnet", n) == nat["subnet_id"]
            ]
            assert nat_subnet["tags"]["Tier"] == "public" and nat_subnet["vpc_id"] == net.vpc_ref, (net.label, i)
            if nat_count == net.config.az_count:
                _, private = net.subnet("private", i)
                assert private["availability_zone_id"] == zones[i]
                assert nat_subnet["availability_zone_id"] == private["availability_zone_id"], (net.label, i)
            else:
                assert nat["tags"]["Name"] == f"{net.name}-nat-{i % nat_count}", (net.label, i)


def test_nat_gateway_i_sits_in_public_subnet_i(networks: list[Network]) -> None:
    """Guards against NAT gateways stacked in one AZ, or numbered out of step with their zones."""
    for net in networks:
        for i in range(net.config.nat_gateway_count):
            _, nat = net.one("aws_nat_gateway", tags={"Name": f"{net.name}-nat-{i}"})
            public, _ = net.subnet("public", i)
            assert nat["subnet_id"] == Stack.ref("aws_subnet", public), (net.label, i)


def test_subnet_i_is_associated_with_its_tier_route_table_and_private_i_with_table_i(networks: list[Network]) -> None:
    """Guards against a private subnet associated with another AZ's route table (and so another AZ's NAT)."""
    for net in networks:
        associations = net.view.resources("aws_route_table_association").values()
        for tier in TIERS:
            for i in range(net.config.az_count):
                subnet, _ = net.subnet(tier, i)
                table_name = f"{net.name}-private-{i}" if tier == "private" else f"{net.name}-{tier}"
                table, _ = net.one("aws_route_table", tags={"Name": table_name})
                tables = [
                    a["route_table_id"] for a in associations if a["subnet_id"] == Stack.ref("aws_subnet", subnet)
                ]
                assert tables == [Stack.ref("aws_route_table", table)], (net.label, tier, i)


def test_nat_eips_and_gateways_wait_for_the_internet_gateway(networks: list[Network]) -> None:
    """Guards against an EIP (or NAT) created before the VPC's internet gateway, which AWS can refuse."""
    for net in networks:
        igw, _ = net.one("aws_internet_gateway", vpc_id=net.vpc_ref)
        eips = net.view.resources("aws_eip")
        assert len(eips) == net.config.nat_gateway_count, net.label
        for name, nat in net.view.resources("aws_nat_gateway").items():
            eip = nat["allocation_id"].split(".")[1]
            assert nat["allocation_id"] == Stack.ref("aws_eip", eip) and eip in eips, name
            for resource, body in ((eip, eips[eip]), (name, nat)):
                assert f"aws_internet_gateway.{igw}" in body.get("depends_on", []), (net.label, resource)


def intended_acl_rules(vpc_cidr: str) -> dict[tuple[str, str], list[tuple[str, int, int, str, str]]]:
    """Per (tier, direction), the rules in rule-number order: (protocol, from port, to port, CIDR, action)."""
    return {
        ("public", "ingress"): [
            ("tcp", 443, 443, ANYWHERE, "allow"),
            ("tcp", 80, 80, ANYWHERE, "allow"),
            ("tcp", 1024, 65535, ANYWHERE, "allow"),  # return traffic of connections the tier opened
            ("udp", 1024, 65535, ANYWHERE, "allow"),
            ("-1", 0, 0, vpc_cidr, "allow"),
        ],
        ("public", "egress"): [("-1", 0, 0, ANYWHERE, "allow")],
        ("private", "ingress"): [
            ("tcp", 1024, 65535, ANYWHERE, "allow"),  # responses through NAT
            ("udp", 1024, 65535, ANYWHERE, "allow"),
            ("-1", 0, 0, vpc_cidr, "allow"),
        ],
        ("private", "egress"): [("-1", 0, 0, ANYWHERE, "allow")],
        ("isolated", "ingress"): [("-1", 0, 0, vpc_cidr, "allow")],
        ("isolated", "egress"): [("-1", 0, 0, vpc_cidr, "allow")],
    }


def actual_acl_rules(stack: Stack) -> dict[tuple[str, str, str], list[tuple[str, int, int, str, str]]]:
    """Every NACL rule of the whole stack, grouped by (VPC, tier, direction) of its NACL, in rule-number order."""
    acls = {Stack.ref("aws_network_acl", n): acl for n, acl in stack.resources("aws_network_acl").items()}
    numbered: dict[tuple[str, str, str], list[tuple[int, tuple[str, int, int, str, str]]]] = defaultdict(list)
    for name, rule in stack.resources("aws_network_acl_rule").items():
        acl = acls[rule["network_acl_id"]]  # a rule on an unknown (default) NACL raises here
        tier = acl["tags"]["Name"].rsplit("-", 1)[1]  # "roi-systems-<env>[-dr]-<tier>"
        direction = "egress" if rule["egress"] else "ingress"
        assert "ipv6_cidr_block" not in rule and "icmp_type" not in rule, name
        shape = (rule["protocol"], rule["from_port"], rule["to_port"], rule["cidr_block"], rule["rule_action"])
        numbered[acl["vpc_id"], tier, direction].append((rule["rule_number"], shape))
    result = {}
    for key, rules in numbered.items():
        numbers = [n for n, _ in rules]
        assert len(set(numbers)) == len(numbers), f"{key}: two rules share a number (one would be rejected)"
        result[key] = [shape for _, shape in sorted(rules)]
    return result


def test_network_acl_rules_are_exactly_the_allow_list_per_tier_and_direction(
    stacks: dict[str, Stack], env: str, networks: list[Network]
) -> None:
    """Guards against a NACL rule dropped (the private tier's TCP return traffic), widened, reordered or added."""
    stack = stacks[env]  # the whole stack: every rule must belong to one of its VPCs' tiers
    actual = actual_acl_rules(stack)
    expected = {
        (net.vpc_ref, tier, direction): rules
        for net in networks
        for (tier, direction), rules in intended_acl_rules(str(net.config.vpc_cidr)).items()
    }
    assert set(actual) == set(expected), f"{stack.name}: NACL rules of VPCs, tiers or directions nobody intended"
    for key, rules in expected.items():
        assert actual[key] == rules, f"{stack.name}: {key}"


def test_each_tier_has_its_own_network_acl_holding_exactly_its_subnets(networks: list[Network]) -> None:
    """Guards against a subnet under another tier's NACL (isolated behind the public rules) or inline NACL rules."""
    for net in networks:
        acls = net.view.resources("aws_network_acl")
        assert len(acls) == len(TIERS), net.label
        for tier in TIERS:
            name, acl = net.one("aws_network_acl", tags={"Name": f"{net.name}-{tier}"})
            assert acl["vpc_id"] == net.vpc_ref, (net.label, tier)
            assert "ingress" not in acl and "egress" not in acl, f"{name}: inline rules bypass the allow-list"
            subnets = [Stack.ref("aws_subnet", net.subnet(tier, i)[0]) for i in range(net.config.az_count)]
            assert sorted(acl["subnet_ids"]) == sorted(subnets), (net.label, tier)

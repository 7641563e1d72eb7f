"""Every security-group rule in every stack is an intended flow, in both directions; nothing else is open.

The allow-list below is the network design in one place: who talks to whom, on which port. A rule that is not
on it (a widened egress, an extra port, a CIDR where a group was meant) fails, and so does an intended flow
that went missing. Rules are compared as (group, direction, protocol, ports, peer) with peers named by group
name or CIDR, counted, so a duplicated rule fails too.
"""

from __future__ import annotations

from collections import Counter

from conftest import Stack
from roi_tf.config import EnvironmentConfig

ANYWHERE = ("cidr", "0.0.0.0/0")
PG, REDIS, HTTPS, HTTP = 5432, 6379, 443, 80
CLOUDFRONT = "com.amazonaws.global.cloudfront.origin-facing"  # the managed prefix list, by name

Flow = tuple[str, str, str, int | None, int | None, tuple[str, str]]


def connect(source: str, destination: str, port: int) -> list[Flow]:
    """TCP ``port`` from one group to another: egress on the source, ingress on the destination."""
    return [
        (source, "egress", "tcp", port, port, ("group", destination)),
        (destination, "ingress", "tcp", port, port, ("group", source)),
    ]


def intended_flows(config: EnvironmentConfig) -> Counter[Flow]:
    name = f"roi-systems-{config.name}"
    app, proxy, db, cache = f"{name}-app", f"{name}-postgres-proxy", f"{name}-postgres", f"{name}-redis"
    flows: list[Flow] = [
        # The tasks reach AWS APIs and registries over HTTPS (through NAT or the interface endpoints).
        (app, "egress", "tcp", HTTPS, HTTPS, ANYWHERE),
        *connect(app, proxy, PG),
        *connect(proxy, db, PG),
        *connect(app, db, PG),  # migrations, and sessions the proxy would pin anyway
        *connect(app, cache, REDIS),
    ]
    flows += compute_flows(config, name, app)
    if config.compute.gpu_training.enabled:
        flows.append((f"{name}-gpu", "egress", "tcp", HTTPS, HTTPS, ANYWHERE))  # ECS agent, registries
    if config.networking.interface_endpoints:
        flows.append(
            (f"{name}-vpc-endpoints", "ingress", "tcp", HTTPS, HTTPS, ("cidr", str(config.networking.vpc_cidr)))
        )
    if config.dr_networking is not None:
        flows.append((f"{name}-dr-app", "egress", "tcp", HTTPS, HTTPS, ANYWHERE))
        if config.database.cross_region_replica:
            flows += connect(f"{name}-dr-app", f"{name}-postgres-dr", PG)
        if config.dr.cache_replica:  # the Global Datastore's secondary, in the standby VPC
            flows += connect(f"{name}-dr-app", f"{name}-redis-dr", REDIS)
        if config.dr.enabled:  # the same compute module, in the standby VPC
            if config.dr.standby_compute or config.dr.active:
                flows += compute_flows(config, f"{name}-dr", f"{name}-dr-app")
            else:  # without its load balancers yet: only the event processor's group, which its role names
                flows.append((f"{name}-dr-events", "egress", "tcp", HTTPS, HTTPS, ANYWHERE))
    return Counter(flows)


def compute_flows(config: EnvironmentConfig, name: str, app: str) -> list[Flow]:
    """Internet (or CloudFront) -> public load balancer -> API tasks -> internal load balancer -> ML tasks."""
    lb = config.compute.load_balancer
    listener = HTTPS if lb.https else HTTP
    api_lb, ml_lb, ml_tasks = f"{name}-api-lb", f"{name}-ml-lb", f"{name}-ml-tasks"
    clients = ("prefix-list", CLOUDFRONT) if lb.ingress == "cloudfront" else ANYWHERE
    flows = [(api_lb, "ingress", "tcp", port, port, clients) for port in ((HTTPS, HTTP) if lb.https else (HTTP,))]
    flows += connect(api_lb, app, config.compute.api.container_port)
    flows += connect(app, ml_lb, listener)
    flows += connect(ml_lb, ml_tasks, config.compute.ml.container_port)
    flows.append((ml_tasks, "egress", "tcp", HTTPS, HTTPS, ANYWHERE))  # AWS APIs, registries, S3
    flows.append((f"{name}-events", "egress", "tcp", HTTPS, HTTPS, ANYWHERE))  # the event processor
    return flows


def actual_flows(stack: Stack) -> Counter[Flow]:
    groups = {Stack.ref("aws_security_group", n): g["name"] for n, g in stack.resources("aws_security_group").items()}
    assert len(set(groups.values())) == len(groups), "security group names are unique in a stack"
    prefix_lists = {
        Stack.data_ref("aws_ec2_managed_prefix_list", n, "id"): d["name"]
        for n, d in stack.data("aws_ec2_managed_prefix_list").items()
    }
    flows: list[Flow] = []
    for direction in ("ingress", "egress"):
        for rule_name, rule in stack.resources(f"aws_vpc_security_group_{direction}_rule").items():
            assert rule.get("description"), f"{rule_name}: every rule says why it exists"
            peers = [
                ("group", groups[rule["referenced_security_group_id"]])
                if "referenced_security_group_id" in rule
                else None,
                ("cidr", rule["cidr_ipv4"]) if "cidr_ipv4" in rule else None,
                ("cidr6", rule["cidr_ipv6"]) if "cidr_ipv6" in rule else None,
                ("prefix-list", prefix_lists[rule["prefix_list_id"]]) if "prefix_list_id" in rule else None,
            ]
            (peer,) = [p for p in peers if p is not None]
            flows.append(
                (
                    groups[rule["security_group_id"]],
                    direction,
                    rule["ip_protocol"],
                    rule.get("from_port"),
                    rule.get("to_port"),
                    peer,
                )
            )
    return Counter(flows)


def test_every_security_group_rule_is_an_intended_flow_and_every_intended_flow_exists(stack: Stack, config) -> None:
    """Guards against a widened rule (any port, any address), an extra rule, or a missing half of a flow."""
    actual, intended = actual_flows(stack), intended_flows(config)
    assert actual - intended == Counter(), f"{stack.name}: rules nobody intended"
    assert intended - actual == Counter(), f"{stack.name}: intended flows that are missing"


def test_a_load_balancer_open_only_to_cloudfront_admits_nothing_else(canary) -> None:
    """The canary's public load balancer admits CloudFront's origin-facing prefix list, never the internet."""
    config, stacks = canary
    assert config.compute.load_balancer.ingress == "cloudfront"
    actual, intended = actual_flows(stacks[config.name]), intended_flows(config)
    assert actual == intended
    # One per region (the pilot light's load balancer admits the same list there).
    lists = stacks[config.name].data("aws_ec2_managed_prefix_list").values()
    assert [p["name"] for p in lists] == [CLOUDFRONT] * 2 and {p.get("provider") for p in lists} == {None, "aws.dr"}
    assert not [flow for flow in actual if flow[1] == "ingress" and flow[5] == ANYWHERE], "nothing open to 0.0.0.0/0"


def test_no_rule_hides_where_the_allow_list_cannot_see_it(stacks: dict[str, Stack]) -> None:
    """Inline rules, legacy rule resources or an open default group would bypass the allow-list."""
    for stack in stacks.values():
        for name, group in stack.resources("aws_security_group").items():
            assert "ingress" not in group and "egress" not in group, f"{stack.name}: {name} has inline rules"
        assert stack.resources("aws_security_group_rule") == {}, stack.name
        for name, group in stack.resources("aws_default_security_group").items():
            assert group["ingress"] == [] and group["egress"] == [], f"{stack.name}: {name}"


def test_the_allow_list_notices_a_widened_egress(stack: Stack, config) -> None:
    """Control: the application group's HTTPS egress widened to every port would be reported."""
    name = f"roi-systems-{config.name}-app"
    widened = actual_flows(stack)
    widened[(name, "egress", "tcp", HTTPS, HTTPS, ANYWHERE)] -= 1
    widened[(name, "egress", "-1", None, None, ANYWHERE)] += 1
    assert +(widened - intended_flows(config)) == Counter({(name, "egress", "-1", None, None, ANYWHERE): 1})

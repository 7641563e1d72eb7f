"""Architecture diagram of an environment, drawn from its synthesized stack (``python -m roi_tf diagram ENV``).

A Mermaid flowchart: the internet, CloudFront with its web ACL, the public load balancer, the ECS services (task
size and count), the internal load balancer, the event processor (queue, dead-letter queue, Lambda), the data
stores (RDS primary, its proxy and replicas, Redis, DynamoDB, the S3 buckets by role), GPU capacity, the DR region,
and where alerts go. Every node is a resource of the stack (``Node.resource``; the internet alone is not), every
edge a link the stack makes (a reference ``${aws_x.name.attr}``, a DNS name of a record the stack creates, or a
security-group rule admitting the internet). Nodes and edges are sorted: the output is deterministic.
The primary VPC is the frame of everything in the primary region and is not drawn; a VPC in another region is.

``--update-docs FILE`` rewrites the blocks between ``<!-- diagram:ENV:begin -->`` and ``<!-- diagram:ENV:end -->``
(``make docs``; a test fails when docs/ARCHITECTURE.md is stale).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roi_tf.config import DEFAULT_ENVIRONMENTS_DIR, ENVIRONMENTS

Ref = tuple[str, str]  # (resource type, logical name)

INTERNET = "internet"
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
_REFERENCE = re.compile(r"(?<![\w.])(aws_[a-z0-9_]+)\.(\w+)\.\w+")
_HASH = re.compile(r"_[0-9A-F]{8}$")
_HOST = re.compile(r"^(?:https?://)?([a-z0-9.-]+\.[a-z]{2,})(?:[:/].*)?$")
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Words Mermaid reads as syntax, never usable as a node id.
_RESERVED = frozenset({"end", "graph", "flowchart", "subgraph", "direction", "click", "style", "class", "classDef"})
SHAPES = {"box": '["{}"]', "store": '[("{}")]', "circle": '(("{}"))', "hexagon": '{{{{"{}"}}}}', "stadium": '(["{}"])'}


@dataclass(frozen=True, order=True)
class Node:
    id: str
    label: str
    shape: str
    resource: Ref | None  # None only for the internet
    group: str  # "" (top level: the internet, global edge services), a region subgraph, or a cluster subgraph


@dataclass(frozen=True, order=True)
class Edge:
    source: str
    target: str
    label: str = ""
    dotted: bool = False


@dataclass(frozen=True)
class Group:
    id: str
    label: str
    parent: str  # "" at top level
    resource: Ref | None = None  # the ECS cluster a cluster subgraph is; None for a region


@dataclass
class Diagram:
    environment: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[Edge] = field(default_factory=set)
    groups: dict[str, Group] = field(default_factory=dict)

    def node_of(self, ref: Ref) -> Node | None:
        return next((n for n in self.nodes.values() if n.resource == ref), None)


def references(value: Any) -> Iterator[Ref]:
    """Every ``${aws_x.name.attr}`` inside a JSON value (JSON documents embedded as strings included)."""
    for text in _strings(value, embedded=False):  # an embedded document's references are in its string already
        for inner in _INTERPOLATION.findall(text):
            yield from ((m.group(1), m.group(2)) for m in _REFERENCE.finditer(inner))


def _strings(value: Any, *, embedded: bool = True) -> Iterator[str]:
    """Every string inside a JSON value; with ``embedded``, also those of JSON documents held in strings."""
    if isinstance(value, str):
        yield value
        if embedded and value.startswith(("[", "{")):
            with contextlib.suppress(ValueError):
                yield from _strings(json.loads(value))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item, embedded=embedded)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, embedded=embedded)


class _Builder:
    def __init__(self, stack: Mapping[str, Any]) -> None:
        self.resources: Mapping[str, Mapping[str, Mapping[str, Any]]] = stack.get("resource", {})
        paths = [b["//"]["metadata"]["path"] for items in self.resources.values() for b in items.values()]
        self.env = paths[0].split("/", 1)[0] if paths else "?"
        self.regions = {p.get("alias"): p["region"] for p in stack.get("provider", {}).get("aws", [])}
        self.diagram = Diagram(self.env)
        self.ids: dict[Ref, str] = {}
        # DNS names the stack creates -> what they point at.
        self.names: dict[str, set[Ref]] = {}
        for record in self.of("aws_route53_record").values():
            targets = set(references(record.get("alias", {}))) | set(references(record.get("records", [])))
            self.names.setdefault(record.get("name", ""), set()).update(targets)

    # --- helpers ---------------------------------------------------------------------------------------------

    def of(self, rtype: str) -> Mapping[str, Mapping[str, Any]]:
        return self.resources.get(rtype, {})

    def body(self, ref: Ref) -> Mapping[str, Any]:
        return self.resources[ref[0]][ref[1]]

    def refs(self, value: Any, rtype: str | None = None) -> list[Ref]:
        """The references in ``value`` to resources of the stack (of one type), sorted, without repeats."""
        found = {r for r in references(value) if r[1] in self.of(r[0]) and (rtype is None or r[0] == rtype)}
        return sorted(found)

    def hosts(self, value: Any) -> list[Ref]:
        """Resources behind the DNS names (of records this stack creates) that ``value`` mentions."""
        found: set[Ref] = set()
        for text in _strings(value):
            match = _HOST.match(text)
            if match and match.group(1) in self.names:
                found |= self.names[match.group(1)]
        return sorted(found)

    def group_of(self, body: Mapping[str, Any]) -> str:
        alias = (body.get("provider") or "aws").removeprefix("aws").removeprefix(".") or None
        if alias is not None and alias != "dr":
            return ""  # global services' provider (CloudFront and its web ACL: us-east-1)
        region = self.regions[alias]
        group = "region_" + region.replace("-", "_")
        if group not in self.diagram.groups:
            role = "primary" if alias is None else "DR"
            self.diagram.groups[group] = Group(group, f"{region} ({role})", "")
        return group

    def add(self, ref: Ref, label: str, shape: str = "box", group: str | None = None) -> str:
        node_id = _HASH.sub("", ref[1])
        if not _ID.match(node_id) or node_id in _RESERVED or node_id in self.diagram.nodes or node_id == INTERNET:
            raise ValueError(f"{ref}: {node_id!r} is not a usable Mermaid node id")
        body = self.body(ref)
        self.diagram.nodes[node_id] = Node(node_id, label, shape, ref, self.group_of(body) if group is None else group)
        self.ids[ref] = node_id
        return node_id

    def edge(self, source: Ref | str, target: Ref | str, label: str = "", dotted: bool = False) -> None:
        src = source if isinstance(source, str) else self.ids.get(source)
        dst = target if isinstance(target, str) else self.ids.get(target)
        if src and dst and src != dst:
            self.diagram.edges.add(Edge(src, dst, label, dotted))

    def short(self, name: str) -> str:
        return name.removeprefix(f"roi-systems-{self.env}-")

    # --- nodes -------------------------------------------------------------------------------------------------

    def nodes(self) -> None:
        d = self.diagram
        d.nodes[INTERNET] = Node(INTERNET, "Internet", "circle", None, "")
        for name, cdn in sorted(self.of("aws_cloudfront_distribution").items()):
            aliases = ", ".join(cdn.get("aliases") or ["*.cloudfront.net"])
            self.add(("aws_cloudfront_distribution", name), f"CloudFront<br/>{aliases}")
        for name, acl in sorted(self.of("aws_wafv2_web_acl").items()):
            rules = len(acl.get("rule") or [])
            self.add(
                ("aws_wafv2_web_acl", name), f"WAF {acl['scope']} web ACL<br/>{acl['name']}, {rules} rules", "hexagon"
            )
        for name, lb in sorted(self.of("aws_lb").items()):
            kind = "internal" if lb.get("internal") else "public"
            self.add(("aws_lb", name), f"{kind} ALB<br/>{lb['name']}")
        for name, cluster in sorted(self.of("aws_ecs_cluster").items()):
            group = _HASH.sub("", name)
            d.groups[group] = Group(
                group, f"ECS cluster {cluster['name']}", self.group_of(cluster), ("aws_ecs_cluster", name)
            )
            for sname, service in sorted(self.of("aws_ecs_service").items()):
                if ("aws_ecs_cluster", name) not in self.refs(service.get("cluster")):
                    continue
                (task_ref,) = self.refs(service["task_definition"], "aws_ecs_task_definition")
                task = self.body(task_ref)
                vcpu, gb = int(task["cpu"]) / 1024, int(task["memory"]) / 1024
                label = f"ECS service {self.short(service['name'])}<br/>{vcpu:g} vCPU / {gb:g} GB x "
                self.add(("aws_ecs_service", sname), label + str(service.get("desired_count", 0)), group=group)
            for attachment in self.of("aws_ecs_cluster_capacity_providers").values():
                if ("aws_ecs_cluster", name) in self.refs(attachment.get("cluster_name")):
                    for ref in self.refs(attachment.get("capacity_providers"), "aws_ecs_capacity_provider"):
                        self.add(ref, self.capacity_label(self.body(ref)), group=group)
        for name, function in sorted(self.of("aws_lambda_function").items()):
            label = f"Lambda {self.short(function['function_name'])}<br/>{function.get('memory_size', 128)} MB"
            if "reserved_concurrent_executions" in function:
                label += f", reserved concurrency {function['reserved_concurrent_executions']}"
            self.add(("aws_lambda_function", name), label)
        dead_letters = {r for q in self.of("aws_sqs_queue").values() for r in self.refs(q.get("redrive_policy"))}
        for name, queue in sorted(self.of("aws_sqs_queue").items()):
            kind = "dead-letter queue" if ("aws_sqs_queue", name) in dead_letters else "queue"
            self.add(("aws_sqs_queue", name), f"SQS {kind}<br/>{queue['name']}")
        for name, db in sorted(self.of("aws_db_instance").items()):
            if db.get("replicate_source_db"):
                source = self.source_db(db["replicate_source_db"])
                cross = source is not None and self.regions_differ(self.body(source), db)
                label = f"{'cross-region' if cross else 'read'} replica<br/>{db['instance_class']}"
            else:
                az = "Multi-AZ" if db.get("multi_az") else "single-AZ"
                label = f"RDS PostgreSQL {db.get('engine_version', '')} primary<br/>{db['instance_class']}, {az}"
            self.add(("aws_db_instance", name), label, "store")
        for name, proxy in sorted(self.of("aws_db_proxy").items()):
            self.add(("aws_db_proxy", name), f"RDS Proxy<br/>{proxy['name']}")
        for name, group in sorted(self.of("aws_elasticache_replication_group").items()):
            nodes = group.get("num_cache_clusters") or group["num_node_groups"] * (group["replicas_per_node_group"] + 1)
            self.add(
                ("aws_elasticache_replication_group", name),
                f"ElastiCache Redis<br/>{group['node_type']} x {nodes}",
                "store",
            )
        for name, table in sorted(self.of("aws_dynamodb_table").items()):
            self.add(("aws_dynamodb_table", name), f"DynamoDB<br/>{table['name']}", "store")
        for name, bucket in sorted(self.of("aws_s3_bucket").items()):
            role = self.short(bucket["bucket"].split("-${", 1)[0])
            self.add(("aws_s3_bucket", name), f"S3 {role}", "store")
        for name, vpc in sorted(self.of("aws_vpc").items()):
            if vpc.get("provider"):  # the primary region's VPC frames everything and is not drawn
                self.add(("aws_vpc", name), f"standby VPC<br/>{vpc['cidr_block']}")
        for name, topic in sorted(self.of("aws_sns_topic").items()):
            ref = ("aws_sns_topic", name)
            alarms = sum(
                ref in self.refs([a.get("alarm_actions"), a.get("ok_actions")])
                for a in self.of("aws_cloudwatch_metric_alarm").values()
            )
            rules = sum(ref in self.refs(t.get("arn")) for t in self.of("aws_cloudwatch_event_target").values())
            routed = any(
                ref in self.refs(s.get("topic_arn") if t == "aws_sns_topic_subscription" else s.get("sns_topic_arns"))
                for t in ("aws_sns_topic_subscription", "aws_chatbot_slack_channel_configuration")
                for s in self.of(t).values()
            )
            label = f"SNS {self.short(topic['name'])} alerts<br/>{_count(alarms, 'alarm')}"
            label += f", {_count(rules, 'event rule')}" if rules else ""
            self.add(ref, label + ("" if routed else "<br/>delivered nowhere"))
        for name, sub in sorted(self.of("aws_sns_topic_subscription").items()):
            endpoint = sub.get("endpoint", "")
            if "pagerduty" in endpoint.lower():
                label = "PagerDuty"
            elif sub.get("protocol") == "email":
                label = f"e-mail {endpoint}"
            else:
                label = f"{sub.get('protocol')} {endpoint}"
            self.add(("aws_sns_topic_subscription", name), label, "stadium")
        for name, chat in sorted(self.of("aws_chatbot_slack_channel_configuration").items()):
            self.add(
                ("aws_chatbot_slack_channel_configuration", name),
                f"Slack channel {chat['slack_channel_id']}",
                "stadium",
            )

    def capacity_label(self, provider: Mapping[str, Any]) -> str:
        label = f"capacity provider {self.short(provider['name'])}"
        for asg_ref in self.refs(provider.get("auto_scaling_group_provider"), "aws_autoscaling_group"):
            asg = self.body(asg_ref)
            types = [self.body(t).get("instance_type", "?") for t in self.refs(asg, "aws_launch_template")]
            spread = asg.get("mixed_instances_policy", {}).get("instances_distribution", {})
            spot = spread.get("on_demand_percentage_above_base_capacity") == 0
            label += f"<br/>{', '.join(types)} x {asg['min_size']}-{asg['max_size']}{' (Spot)' if spot else ''}"
        return label

    def source_db(self, source: str) -> Ref | None:
        found = self.refs(source, "aws_db_instance")
        if found:
            return found[0]
        named = [n for n, db in self.of("aws_db_instance").items() if db.get("identifier") == source]
        return ("aws_db_instance", named[0]) if named else None

    def regions_differ(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        return a.get("provider") != b.get("provider")

    # --- edges -------------------------------------------------------------------------------------------------

    def edges(self) -> None:
        for name, cdn in self.of("aws_cloudfront_distribution").items():
            ref = ("aws_cloudfront_distribution", name)
            self.edge(INTERNET, ref)
            for acl in self.refs(cdn.get("web_acl_id"), "aws_wafv2_web_acl"):
                self.edge(acl, ref, "filters", dotted=True)
            for origin in cdn.get("origin", []):
                for target in self.refs(origin["domain_name"]) + self.hosts(origin["domain_name"]):
                    self.edge(ref, target, origin.get("origin_id", ""))
        for association in self.of("aws_wafv2_web_acl_association").values():
            for acl in self.refs(association["web_acl_arn"], "aws_wafv2_web_acl"):
                for target in self.refs(association["resource_arn"]):
                    self.edge(acl, target, "filters", dotted=True)
        for name, lb in self.of("aws_lb").items():
            groups = self.refs(lb.get("security_groups"), "aws_security_group")
            for rule in self.of("aws_vpc_security_group_ingress_rule").values():
                open_to_all = rule.get("cidr_ipv4") == "0.0.0.0/0" or rule.get("cidr_ipv6") == "::/0"
                if open_to_all and set(self.refs(rule["security_group_id"])) & set(groups):
                    self.edge(INTERNET, ("aws_lb", name))
        for listener in self.of("aws_lb_listener").values():
            (lb,) = self.refs(listener["load_balancer_arn"], "aws_lb")
            for target_group in self.refs(listener.get("default_action"), "aws_lb_target_group"):
                for sname, service in self.of("aws_ecs_service").items():
                    if target_group in self.refs(service.get("load_balancer")):
                        self.edge(
                            lb, ("aws_ecs_service", sname), f"{listener.get('protocol', 'HTTP')} :{listener['port']}"
                        )
        for sname, service in self.of("aws_ecs_service").items():
            for task in self.refs(service["task_definition"], "aws_ecs_task_definition"):
                definitions = self.body(task).get("container_definitions")
                for target in self.refs(definitions) + self.hosts(definitions):
                    self.edge(("aws_ecs_service", sname), target)
        for name, function in self.of("aws_lambda_function").items():
            for target in self.refs(function.get("environment")) + self.hosts(function.get("environment")):
                self.edge(("aws_lambda_function", name), target)
        for mapping in self.of("aws_lambda_event_source_mapping").values():
            for source in self.refs(mapping.get("event_source_arn")):
                for function in self.refs(mapping["function_name"], "aws_lambda_function"):
                    self.edge(source, function, f"batches of {mapping.get('batch_size', 10)}")
        for name, queue in self.of("aws_sqs_queue").items():
            for dlq in self.refs(queue.get("redrive_policy"), "aws_sqs_queue"):
                self.edge(("aws_sqs_queue", name), dlq, "dead letters", dotted=True)
        for target in self.of("aws_db_proxy_target").values():
            for proxy in self.refs(target["db_proxy_name"], "aws_db_proxy"):
                for db in self.refs(target.get("db_instance_identifier"), "aws_db_instance"):
                    self.edge(proxy, db)
        for name, db in self.of("aws_db_instance").items():
            source = self.source_db(db.get("replicate_source_db") or "")
            if source:
                self.edge(source, ("aws_db_instance", name), "replicates", dotted=True)
            for subnet_group in self.refs(db.get("db_subnet_group_name"), "aws_db_subnet_group"):
                subnets = self.refs(self.body(subnet_group).get("subnet_ids"), "aws_subnet")
                for vpc in sorted({v for s in subnets for v in self.refs(self.body(s)["vpc_id"], "aws_vpc")}):
                    self.edge(("aws_db_instance", name), vpc, "in", dotted=True)
        for replication in self.of("aws_s3_bucket_replication_configuration").values():
            for source in self.refs(replication["bucket"], "aws_s3_bucket"):
                for rule in replication.get("rule", []):
                    for target in self.refs(rule["destination"]["bucket"], "aws_s3_bucket"):
                        self.edge(source, target, "replicates", dotted=True)
        for name, sub in self.of("aws_sns_topic_subscription").items():
            for topic in self.refs(sub["topic_arn"], "aws_sns_topic"):
                self.edge(topic, ("aws_sns_topic_subscription", name))
        for name, chat in self.of("aws_chatbot_slack_channel_configuration").items():
            for topic in self.refs(chat.get("sns_topic_arns"), "aws_sns_topic"):
                self.edge(topic, ("aws_chatbot_slack_channel_configuration", name))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def build(stack: Mapping[str, Any]) -> Diagram:
    """The diagram of one synthesized environment stack."""
    builder = _Builder(stack)
    builder.nodes()
    builder.edges()
    return builder.diagram


def _quote(label: str) -> str:
    return label.replace('"', "#quot;")


def render(diagram: Diagram) -> str:
    """Mermaid text: top-level nodes, then each subgraph (nested), then the edges; everything sorted."""
    out = ["flowchart LR"]

    def node_line(node: Node, indent: str) -> str:
        return indent + node.id + SHAPES[node.shape].format(_quote(node.label))

    def emit(parent: str, indent: str) -> None:
        for node in sorted(n for n in diagram.nodes.values() if n.group == parent):
            out.append(node_line(node, indent))
        for group in sorted((g for g in diagram.groups.values() if g.parent == parent), key=lambda g: g.id):
            out.append(f'{indent}subgraph {group.id}["{_quote(group.label)}"]')
            emit(group.id, indent + "  ")
            out.append(f"{indent}end")

    emit("", "  ")
    for edge in sorted(diagram.edges):
        arrow = "-.->" if edge.dotted else "-->"
        label = f'|"{_quote(edge.label)}"|' if edge.label else ""
        out.append(f"  {edge.source} {arrow}{label} {edge.target}")
    return "\n".join(out) + "\n"


def mermaid(stack: Mapping[str, Any]) -> str:
    return render(build(stack))


# --- docs ----------------------------------------------------------------------------------------------------


def begin_marker(env: str) -> str:
    return f"<!-- diagram:{env}:begin -->"


def end_marker(env: str) -> str:
    return f"<!-- diagram:{env}:end -->"


def update_document(text: str, diagrams: Mapping[str, str]) -> str:
    """``text`` with each environment's block between its markers replaced by a fenced mermaid block."""
    for env, chart in diagrams.items():
        pattern = re.compile(re.escape(begin_marker(env)) + r"\n.*?" + re.escape(end_marker(env)), re.DOTALL)
        if len(pattern.findall(text)) != 1:
            raise ValueError(f"expected one {begin_marker(env)} ... {end_marker(env)} block")
        block = f"{begin_marker(env)}\n```mermaid\n{chart}```\n{end_marker(env)}"
        text = pattern.sub(lambda _, block=block: block, text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m roi_tf diagram", description=__doc__.splitlines()[0])
    parser.add_argument("environment", nargs="?", metavar="ENV", help=f"one of {', '.join(ENVIRONMENTS)}")
    parser.add_argument(
        "--update-docs",
        type=Path,
        metavar="FILE",
        help="rewrite the diagram blocks of FILE (every environment's, or ENV's)",
    )
    parser.add_argument("--outdir", type=Path, default=Path("cdktf.out"), help="where the synthesized stacks live")
    parser.add_argument("--environments-dir", type=Path, default=DEFAULT_ENVIRONMENTS_DIR)
    args = parser.parse_args(argv)
    if args.environment is None and args.update_docs is None:
        print("error: name an environment (or --update-docs FILE)", file=sys.stderr)
        return 2
    if args.environment is not None and args.environment not in ENVIRONMENTS:
        print(f"error: unknown environment {args.environment}: choose from {', '.join(ENVIRONMENTS)}", file=sys.stderr)
        return 2
    envs = [args.environment] if args.environment else list(ENVIRONMENTS)
    from roi_tf.tools import synthesized

    loaded = synthesized.load_for_command(envs, outdir=args.outdir, environments_dir=args.environments_dir)
    if loaded is None:
        return 2
    _, stacks = loaded
    if args.update_docs is None:
        print(mermaid(stacks[envs[0]]), end="")
        return 0
    try:
        text = update_document(args.update_docs.read_text(), {env: mermaid(stacks[env]) for env in envs})
    except (OSError, ValueError) as error:
        print(f"error: {args.update_docs}: {error}", file=sys.stderr)
        return 2
    args.update_docs.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The architecture diagram (roi_tf/tools/diagram.py, ``python -m roi_tf diagram``): what each environment's
diagram draws and leaves out, every node a resource of its stack, valid and deterministic Mermaid, the generated
blocks of docs/ARCHITECTURE.md, and the command line."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, Stack, run_tool
from roi_tf.config import ENVIRONMENTS
from roi_tf.tools import diagram
from roi_tf.tools.diagram import INTERNET, Diagram

DOC = REPO / "docs" / "ARCHITECTURE.md"


@pytest.fixture(scope="module")
def diagrams(stacks: dict[str, Stack]) -> dict[str, Diagram]:
    return {env: diagram.build(stacks[env].json) for env in ENVIRONMENTS}


def node(d: Diagram, stack: Stack, rtype: str, **props: Any) -> diagram.Node:
    """The node drawn for the one resource of ``stack`` matching ``props``."""
    name, _ = stack.one(rtype, **props)
    found = d.node_of((rtype, name))
    assert found is not None, f"{stack.name}: no node for {rtype}.{name}"
    return found


def bucket(d: Diagram, stack: Stack, role: str) -> diagram.Node:
    found = d.node_of(("aws_s3_bucket", stack.bucket_named(role)))
    assert found is not None, role
    return found


def arrows(d: Diagram) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in d.edges}


# --- What prod draws -----------------------------------------------------------------------------------------


def test_prod_draws_the_request_path(diagrams, stacks) -> None:
    d, s = diagrams["prod"], stacks["prod"]
    cdn = node(d, s, "aws_cloudfront_distribution")
    edge_acl = node(d, s, "aws_wafv2_web_acl", scope="CLOUDFRONT")
    regional_acl = node(d, s, "aws_wafv2_web_acl", scope="REGIONAL")
    public, internal = node(d, s, "aws_lb", internal=False), node(d, s, "aws_lb", internal=True)
    api = node(d, s, "aws_ecs_service", name="roi-systems-prod-api")
    ml = node(d, s, "aws_ecs_service", name="roi-systems-prod-ml")
    assert cdn.label == "CloudFront<br/>app.roisystems.com" and cdn.group == ""
    assert {
        (INTERNET, cdn.id),
        (edge_acl.id, cdn.id),
        (cdn.id, public.id),  # the api origin: api.roisystems.com, a record aliasing the public load balancer
        (cdn.id, bucket(d, s, "assets").id),
        (regional_acl.id, public.id),
        (public.id, api.id),
        (api.id, internal.id),  # ML_SERVICE_URL: ml.api.roisystems.com, a record naming the internal one
        (internal.id, ml.id),
    } <= arrows(d)
    assert (INTERNET, public.id) not in arrows(d)  # prod's load balancer admits CloudFront only
    assert api.label == "ECS service api<br/>4 vCPU / 8 GB x 3"
    assert ml.label == "ECS service ml<br/>2 vCPU / 8 GB x 2"
    assert api.group == ml.group == "compute_cluster" and d.groups["compute_cluster"].parent == "region_us_east_1"
    assert "roi-systems-prod-cloudfront" in edge_acl.label and edge_acl.shape == "hexagon"


def test_prod_draws_its_data_stores_and_who_uses_them(diagrams, stacks) -> None:
    d, s = diagrams["prod"], stacks["prod"]
    api = node(d, s, "aws_ecs_service", name="roi-systems-prod-api")
    ml = node(d, s, "aws_ecs_service", name="roi-systems-prod-ml")
    primary = node(d, s, "aws_db_instance", identifier="roi-systems-prod-postgres")
    replica = node(d, s, "aws_db_instance", identifier="roi-systems-prod-postgres-replica-0")
    proxy = node(d, s, "aws_db_proxy")
    redis = node(d, s, "aws_elasticache_replication_group")
    sessions = node(d, s, "aws_dynamodb_table", name="roi-systems-prod-sessions")
    queue = node(d, s, "aws_sqs_queue", name="roi-systems-prod-events")
    assert primary.label == "RDS PostgreSQL 16 primary<br/>db.r5.large, Multi-AZ"
    assert replica.label == "read replica<br/>db.r5.large" and replica.group == "region_us_east_1"
    assert redis.label == "ElastiCache Redis<br/>cache.r5.large x 2"
    assert {(proxy.id, primary.id), (primary.id, replica.id)} <= arrows(d)
    uses = {t for src, t in arrows(d) if src == api.id}
    assert uses == {proxy.id, redis.id, sessions.id, bucket(d, s, "documents").id, queue.id, node(d, s, "aws_lb",
                    internal=True).id}  # fmt: skip
    assert (api.id, primary.id) not in arrows(d)  # through the proxy, not to the database
    assert {t for src, t in arrows(d) if src == ml.id} == {bucket(d, s, "ml-artifacts").id}
    roles = {n.label.removeprefix("S3 ") for n in d.nodes.values() if n.resource and n.resource[0] == "aws_s3_bucket"}
    assert roles == {"artifacts", "assets", "backups", "documents", "logs", "ml-artifacts", "documents-replica",
                     "ml-artifacts-replica", "artifacts-replica", "logs-us-west-2"}  # fmt: skip


def test_prod_draws_its_dr_region(diagrams, stacks) -> None:
    d, s = diagrams["prod"], stacks["prod"]
    primary = node(d, s, "aws_db_instance", identifier="roi-systems-prod-postgres")
    dr_replica = node(d, s, "aws_db_instance", identifier="roi-systems-prod-postgres-dr")
    standby = node(d, s, "aws_vpc", cidr_block="10.31.0.0/16")
    copy = bucket(d, s, "documents-replica")
    assert d.groups["region_us_west_2"].label == "us-west-2 (DR)"
    assert dr_replica.group == standby.group == copy.group == "region_us_west_2"
    assert dr_replica.label == "cross-region replica<br/>db.r5.large"
    assert standby.label == "standby VPC<br/>10.31.0.0/16"
    replication = {(e.source, e.target): e for e in d.edges}
    assert replication[(primary.id, dr_replica.id)].label == "replicates"
    assert replication[(dr_replica.id, standby.id)].label == "in"
    assert replication[(bucket(d, s, "documents").id, copy.id)].dotted
    gpu = node(d, s, "aws_ecs_capacity_provider")
    assert gpu.label == "capacity provider gpu<br/>g4dn.xlarge x 0-2 (Spot)" and gpu.group == "compute_cluster"
    # The primary VPC frames everything and is not drawn.
    assert d.node_of(("aws_vpc", s.one("aws_vpc", cidr_block="10.30.0.0/16")[0])) is None


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_draws_what_its_config_has_and_nothing_it_lacks(diagrams, stacks, configs, env) -> None:
    d, s, config = diagrams[env], stacks[env], configs[env]
    drawn = {n.resource[0] for n in d.nodes.values() if n.resource}
    dr = {n.id for n in d.nodes.values() if n.group == "region_us_west_2"}
    assert ("aws_ecs_capacity_provider" in drawn) is config.compute.gpu_training.enabled
    assert ("aws_vpc" in drawn) is (config.dr_networking is not None)
    replicas = [n for n in d.nodes.values() if n.label.startswith("read replica")]
    assert len(replicas) == config.database.read_replicas
    cross = [n for n in d.nodes.values() if n.label.startswith("cross-region replica")]
    assert len(cross) == int(config.database.cross_region_replica)
    lambda_ = node(d, s, "aws_lambda_function")
    events = config.compute.event_processing
    assert lambda_.label.endswith(f"{events.memory_mb} MB, reserved concurrency {events.reserved_concurrency}")
    queue = node(d, s, "aws_sqs_queue", name=f"roi-systems-{env}-events")
    dlq = node(d, s, "aws_sqs_queue", name=f"roi-systems-{env}-events-dlq")
    assert (queue.id, lambda_.id) in arrows(d) and (queue.id, dlq.id) in arrows(d)
    assert dlq.label.startswith("SQS dead-letter queue") and queue.label.startswith("SQS queue")
    # The internet reaches the load balancer itself only where its ingress is the internet (dev, plain HTTP).
    public = node(d, s, "aws_lb", internal=False)
    open_lb = config.compute.load_balancer.ingress == "internet" and config.compute.load_balancer.plain_http
    assert ((INTERNET, public.id) in arrows(d)) is open_lb
    cdn = node(d, s, "aws_cloudfront_distribution")
    assert ((cdn.id, public.id) in arrows(d)) is (config.cdn.api_origin and config.cdn.domain_name is not None)
    if env == "dev":  # us-west-2 holds only the copy of the documents (and its access logs): no standby, no replica
        assert {d.nodes[i].label for i in dr} == {"S3 documents-replica", "S3 logs-us-west-2"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_alerts_go_where_the_config_routes_them(diagrams, stacks, configs, env) -> None:
    d, s, monitoring = diagrams[env], stacks[env], configs[env].monitoring
    expected = {"pagerduty": "PagerDuty", "email": "e-mail {}", "slack": "Slack channel {}", "none": None}
    for severity in ("critical", "warning"):
        route = getattr(monitoring, severity)
        topic = node(d, s, "aws_sns_topic", name=f"roi-systems-{env}-{severity}")
        targets = sorted(d.nodes[t].label for src, t in arrows(d) if src == topic.id)
        want = expected[route.route]
        if want is None:
            assert targets == [] and topic.label.endswith("<br/>delivered nowhere"), (severity, topic.label)
        else:
            assert targets == [want.format(route.email or route.slack_channel_id)], (severity, targets)
            assert "delivered nowhere" not in topic.label
        arn = Stack.ref("aws_sns_topic", topic.resource[1], "arn")
        alarms = sum(arn in a.get("alarm_actions", []) for a in s.resources("aws_cloudwatch_metric_alarm").values())
        assert f"<br/>{alarms} alarm" in topic.label and alarms > 0
    dr_topics = [n for n in d.nodes.values() if n.resource and n.resource[0] == "aws_sns_topic" and n.group]
    assert all(n.group == "region_us_east_1" for n in dr_topics) is (configs[env].dr_networking is None)


# --- Every node a resource; valid, deterministic Mermaid ---------------------------------------------------------


NODE_LINE = re.compile(r'^\s+([A-Za-z][A-Za-z0-9_]*)(\["|\[\("|\(\("|\{\{"|\(\[")([^"]*)("\]|"\)\]|"\)\)|"\}\}|"\]\))$')
EDGE_LINE = re.compile(r'^  ([A-Za-z]\w*) (-->|-\.->)(\|"[^"]*"\|)? ([A-Za-z]\w*)$')
SUBGRAPH_LINE = re.compile(r'^\s+subgraph ([A-Za-z]\w*)\["[^"]*"\]$')


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_node_is_a_resource_of_the_stack(diagrams, stacks, env) -> None:
    d, resources = diagrams[env], stacks[env].json["resource"]
    assert d.nodes[INTERNET].resource is None
    for node_id, n in d.nodes.items():
        assert node_id == n.id and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", node_id), node_id
        if node_id != INTERNET:
            assert n.resource is not None and n.resource[1] in resources.get(n.resource[0], {}), n
        assert n.group == "" or n.group in d.groups, n
    for group in d.groups.values():
        assert group.resource is None or group.resource[1] in resources[group.resource[0]]
        assert group.id not in d.nodes
    assert all(e.source in d.nodes and e.target in d.nodes for e in d.edges)
    # Nothing drawn floats alone but buckets written by what is not drawn (AWS services, the pipeline, backups),
    # the GPU capacity (inside the cluster it serves) and a topic delivered nowhere.
    linked = {e.source for e in d.edges} | {e.target for e in d.edges}
    for n in (n for i, n in d.nodes.items() if i not in linked):
        assert (
            n.label in {"S3 logs", "S3 logs-us-west-2", "S3 artifacts", "S3 backups"}
            or n.resource[0] == "aws_ecs_capacity_provider"
            or n.label.endswith("delivered nowhere")
        ), n


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_mermaid_text_is_well_formed_and_deterministic(diagrams, stacks, env) -> None:
    text = diagram.mermaid(stacks[env].json)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR" and text.endswith("\n")
    depth, nodes, edges = 0, [], []
    for line in lines[1:]:
        if match := NODE_LINE.match(line):
            nodes.append(match.group(1))
        elif match := EDGE_LINE.match(line):
            edges.append((match.group(1), match.group(4)))
            assert match.group(1) in diagrams[env].nodes and match.group(4) in diagrams[env].nodes
        elif SUBGRAPH_LINE.match(line):
            depth += 1
        elif line.strip() == "end":
            depth -= 1
            assert depth >= 0
        else:
            pytest.fail(f"not a Mermaid line: {line!r}")
    assert depth == 0 and sorted(nodes) == sorted(diagrams[env].nodes) and len(edges) == len(diagrams[env].edges)
    assert edges == sorted(edges)
    # The same stack with every object's keys in reverse order draws the same text.
    reverse = json.loads(json.dumps(stacks[env].json), object_hook=lambda o: dict(reversed(list(o.items()))))
    assert diagram.mermaid(reverse) == text


def test_a_quote_in_a_label_cannot_end_it() -> None:
    d = Diagram("x")
    d.nodes["a"] = diagram.Node("a", 'say "hi"', "box", None, "")
    assert diagram.render(d) == 'flowchart LR\n  a["say #quot;hi#quot;"]\n'


# --- docs/ARCHITECTURE.md ----------------------------------------------------------------------------------------


def test_the_committed_diagrams_are_current(stacks) -> None:
    """docs/ARCHITECTURE.md's diagram blocks are `make docs`'s output for the shipped configs."""
    text = DOC.read_text()
    for env in ENVIRONMENTS:
        block = f"{diagram.begin_marker(env)}\n```mermaid\n{diagram.mermaid(stacks[env].json)}```\n"
        assert block + diagram.end_marker(env) in text, (
            f"docs/ARCHITECTURE.md: {env}'s diagram is stale: run `make docs`"
        )
    assert text.index("## Diagram (generated)") < text.index("## Stacks and state")


def test_update_document_rewrites_only_the_marked_blocks() -> None:
    doc = "intro\n<!-- diagram:dev:begin -->\nold\n<!-- diagram:dev:end -->\noutro\n"
    new = diagram.update_document(doc, {"dev": "flowchart LR\n"})
    assert new == "intro\n<!-- diagram:dev:begin -->\n```mermaid\nflowchart LR\n```\n<!-- diagram:dev:end -->\noutro\n"
    assert diagram.update_document(new, {"dev": "flowchart LR\n"}) == new
    with pytest.raises(ValueError, match="diagram:prod:begin"):
        diagram.update_document(doc, {"prod": "flowchart LR\n"})


# --- The command line --------------------------------------------------------------------------------------------


run_diagram = functools.partial(run_tool, "diagram")


def test_the_command_prints_the_diagram_and_exit_codes(current_outdir: Path, stacks, tmp_path: Path, capsys) -> None:
    printed = run_diagram("prod", "--outdir", str(current_outdir))
    assert printed.returncode == 0 and printed.stderr == "", printed.stderr
    assert printed.stdout == diagram.mermaid(stacks["prod"].json)
    unknown = run_diagram("qa")
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines() == ["error: unknown environment qa: choose from dev, staging, prod"]
    assert diagram.main([]) == 2 and capsys.readouterr().err == "error: name an environment (or --update-docs FILE)\n"
    # --update-docs (what `make docs` runs), in process: every environment's block rewritten.
    doc = tmp_path / "ARCHITECTURE.md"
    empty = "".join(f"{diagram.begin_marker(e)}\n{diagram.end_marker(e)}\n" for e in ENVIRONMENTS)
    doc.write_text(empty)
    assert diagram.main(["--update-docs", str(doc), "--outdir", str(current_outdir)]) == 0
    expected = diagram.update_document(empty, {e: diagram.mermaid(stacks[e].json) for e in ENVIRONMENTS})
    assert doc.read_text() == expected != empty
    assert "```mermaid\nflowchart LR\n" in doc.read_text() and capsys.readouterr().err == ""
    doc.write_text("no markers\n")
    assert diagram.main(["--update-docs", str(doc), "--outdir", str(current_outdir)]) == 2
    assert "expected one <!-- diagram:dev:begin -->" in capsys.readouterr().err and doc.read_text() == "no markers\n"
    assert "--update-docs docs/ARCHITECTURE.md" in (REPO / "Makefile").read_text().split("\ndocs:")[1].split("\n\n")[0]

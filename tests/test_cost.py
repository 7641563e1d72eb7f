"""The cost estimate (roi_tf/tools/cost.py, ``python -m roi_tf cost``): the arithmetic on hand-computed cases, the
design document's production figures line by line, each environment against its budget, the price file's
provenance, the generated docs/COST_ESTIMATION.md, and the command line."""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import REPO, Stack, run_tool
from roi_tf.config import ENVIRONMENTS, EnvironmentConfig
from roi_tf.tools import cost, fingerprint
from roi_tf.tools.cost import NO_CHARGE, NOT_PRICED, PRICED, Prices, estimate

DOC = REPO / "docs" / "COST_ESTIMATION.md"
# The design document's "Monthly Cost Breakdown (Production)" lines whose configuration prod has.
DOCUMENTED = {"fargate_api": 450, "rds_primary": 380, "elasticache": 280, "alb": 40, "nat": 90, "secrets_50": 20}
BUDGETS = {"dev": 300, "staging": 800, "prod": 2500}  # design document: ~$300 / ~$800 / ~$2,500


@pytest.fixture(scope="module")
def prices() -> Prices:
    return Prices.load()


@pytest.fixture(scope="module")
def estimates(stacks: dict[str, Stack], configs: dict[str, EnvironmentConfig], prices: Prices) -> dict[str, Any]:
    return {env: estimate(stacks[env].json, configs[env], prices) for env in ENVIRONMENTS}


# --- Arithmetic on hand-computed cases -------------------------------------------------------------------------


ROUND_PRICES = Prices(
    {
        "fargate.vcpu_hour": {"us-east-1": 0.04},
        "fargate.gb_hour": {"us-east-1": 0.005},
        "fargate.spot_discount": {"us-east-1": 0.7},
        "rds.postgres.db.r5.large": {"us-east-1": 0.25, "us-west-2": 0.3},
        "rds.gp3_gb_month": {"us-east-1": 0.1},
        "elasticache.cache.r5.large": {"us-east-1": 0.2},
        "cloudwatch.alarm_month": {"us-east-1": 0.1},
        "cloudwatch.logs_ingest_gb": {"us-east-1": 0.5},
        "cloudwatch.logs_storage_gb_month": {"us-east-1": 0.03},
    },
    "test",
)


def small_stack() -> dict[str, Any]:
    """One service, a Multi-AZ database with a replica in another region, a cache, a metric-math alarm."""
    return {
        "provider": {"aws": [{"region": "us-east-1"}, {"alias": "dr", "region": "us-west-2"}]},
        "resource": {
            "aws_ecs_task_definition": {"t": {"cpu": "2048", "memory": "4096", "family": "roi-systems-x-api"}},
            "aws_ecs_service": {
                "s": {
                    "desired_count": 3,
                    "task_definition": "${aws_ecs_task_definition.t.arn}",
                    "capacity_provider_strategy": [
                        {"base": 1, "capacity_provider": "FARGATE", "weight": 1},
                        {"capacity_provider": "FARGATE_SPOT", "weight": 1},
                    ],
                }
            },
            "aws_db_instance": {
                "p": {"identifier": "x", "instance_class": "db.r5.large", "multi_az": True, "allocated_storage": 100},
                "r": {
                    "identifier": "x-dr",
                    "instance_class": "db.r5.large",
                    "replicate_source_db": "${aws_db_instance.p.arn}",
                    "provider": "aws.dr",
                },
            },
            "aws_elasticache_replication_group": {
                "c": {"node_type": "cache.r5.large", "num_node_groups": 1, "replicas_per_node_group": 1}
            },
            "aws_cloudwatch_metric_alarm": {
                "a": {
                    "metric_query": [
                        {"id": "e", "expression": "m1/m2"},
                        {"id": "m1", "metric": [{}]},
                        {"id": "m2", "metric": [{}]},
                    ]
                },
                "b": {"metric_name": "CPUUtilization"},
            },
        },
    }


def test_each_price_is_hand_computed(configs) -> None:
    config = dataclasses.replace(
        configs["dev"], usage=dataclasses.replace(configs["dev"].usage, log_ingestion_gb=10, log_storage_gb=100)
    )
    lines = {(line.service, line.item): line for line in estimate(small_stack(), config, ROUND_PRICES).lines}
    by = {item: line.monthly_usd for (_, item), line in lines.items()}
    # Fargate: (2 vCPU x 0.04 + 4 GB x 0.005) x 730 = 73 per task; 1 base + 2 split 1:1 -> 1 on Spot at 70 % off.
    assert by["api: 2 vCPU / 4 GB x 3 (1 on Spot)"] == pytest.approx(2 * 73 + 73 * 0.3)
    # RDS: Multi-AZ doubles the instance and its storage; the replica copies the primary's storage, in its region.
    assert by["db.r5.large Multi-AZ primary"] == pytest.approx(0.25 * 2 * 730)
    assert by["100 GB gp3 (primary)"] == pytest.approx(100 * 0.1 * 2)
    assert by["db.r5.large replica (us-west-2)"] == pytest.approx(0.3 * 730)
    assert by["100 GB gp3 (replica (us-west-2))"] == pytest.approx(100 * 0.1)  # us-east-1's gp3 rate, noted below
    # ElastiCache: one shard with one replica = 2 nodes.
    assert by["cache.r5.large x 2"] == pytest.approx(2 * 0.2 * 730)
    # Alarms: a metric-math alarm is billed per metric it reads.
    assert by["2 alarms (3 metrics)"] == pytest.approx(0.3)
    assert by["logs: 10 GB ingested, 100 GB stored"] == pytest.approx(10 * 0.5 + 100 * 0.03)
    result = estimate(small_stack(), config, ROUND_PRICES)
    assert result.notes == ["rds.gp3_gb_month: no us-west-2 rate in the price file, us-east-1's used"]
    assert result.total_usd == pytest.approx(sum(by.values()))


def test_spot_share_follows_ecs_placement() -> None:
    on_demand = [{"base": 1, "capacity_provider": "FARGATE", "weight": 100}]
    half = [
        {"base": 1, "capacity_provider": "FARGATE", "weight": 50},
        {"capacity_provider": "FARGATE_SPOT", "weight": 50},
    ]
    all_spot = [{"capacity_provider": "FARGATE_SPOT", "weight": 1}]
    assert cost._spot_tasks(3, on_demand) == 0
    assert cost._spot_tasks(2, half) == 0.5 and cost._spot_tasks(5, half) == 2
    assert cost._spot_tasks(1, half) == 0  # the base first
    assert cost._spot_tasks(2, all_spot) == 2
    assert cost._spot_tasks(2, []) == 0  # the default provider (FARGATE)


def test_a_missing_rate_is_an_error_not_zero(configs) -> None:
    with pytest.raises(cost.PriceError, match=r"no rate for elasticache\.cache\.r5\.large"):
        estimate(
            small_stack(),
            configs["dev"],
            Prices({k: v for k, v in ROUND_PRICES.rates.items() if "elasticache" not in k}, "t"),
        )


# --- The design document's figures and the budgets -------------------------------------------------------------


def item(result, service: str, starts: str) -> float:
    (found,) = [line.monthly_usd for line in result.lines if line.service == service and line.item.startswith(starts)]
    return found


def test_prod_matches_the_design_documents_breakdown_line_by_line(estimates, prices) -> None:
    prod = estimates["prod"]
    ours = {
        "fargate_api": item(prod, "ECS Fargate", "api: 4 vCPU / 8 GB x 3"),
        "rds_primary": item(prod, "RDS PostgreSQL", "db.r5.large Multi-AZ primary"),
        "elasticache": item(prod, "ElastiCache", "cache.r5.large x 2"),
        "alb": sum(line.monthly_usd for line in prod.lines if line.service == "ALB"),
        "nat": item(prod, "NAT Gateway", "2 gateways"),
        "secrets_50": 50 * prices.rate("secretsmanager.secret_month", "us-east-1")[0],
    }
    assert [line for line in prod.lines if line.service == "ALB"].__len__() == 2
    for line, documented in DOCUMENTED.items():
        assert abs(ours[line] - documented) <= 0.15 * documented, (line, ours[line], documented)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_pilot_lights_replicas_are_priced_in_the_dr_region_where_configured(
    estimates, configs, prices, env
) -> None:
    """The idle cost of the pilot light is stated: the replicas of secrets, sessions and images, at DR rates."""
    config, result = configs[env], estimates[env]
    dr_lines = {line.service: line for line in result.lines if line.region == config.dr_region}
    replicas = {"Secrets Manager", "DynamoDB", "ECR"}
    assert (replicas & set(dr_lines)) == (replicas if config.dr.enabled else set())
    if config.dr.enabled:
        month, _ = prices.rate("secretsmanager.secret_month", config.dr_region)
        assert dr_lines["Secrets Manager"].monthly_usd == pytest.approx(2 * month)  # the two application secrets
        writes, _ = prices.rate("dynamodb.write_request_per_million", config.dr_region)
        assert dr_lines["DynamoDB"].monthly_usd > config.usage.sessions_writes_millions * writes  # + storage, PITR
        gb, _ = prices.rate("ecr.storage_gb_month", config.dr_region)
        assert dr_lines["ECR"].monthly_usd == pytest.approx(config.usage.ecr_storage_gb * gb)


def test_failed_over_prod_prices_the_promoted_database_its_proxy_and_the_dr_network(
    failed_over: Stack, estimates, configs, prices
) -> None:
    """Failed over (dr.active), the stack still holds us-east-1's resources (billed while they exist): the estimate
    adds the promoted instance at Multi-AZ with the primary's storage, its proxy, NAT and endpoints in us-west-2."""
    config, dr = configs["prod"], configs["prod"].dr_region
    result = estimate(failed_over.json, config, prices)
    rds = {
        line.item: line.monthly_usd for line in result.lines if line.service == "RDS PostgreSQL" and line.region == dr
    }
    hourly, _ = prices.rate(f"rds.postgres.{config.database.instance_class}", dr)
    gb, _ = prices.rate("rds.gp3_gb_month", dr)
    promoted = f"{config.database.instance_class} Multi-AZ promoted replica ({dr})"
    assert rds[promoted] == pytest.approx(2 * hourly * 730)
    storage = f"{config.database.allocated_storage_gb} GB gp3 (promoted replica ({dr}))"
    assert rds[storage] == pytest.approx(2 * config.database.allocated_storage_gb * gb)
    assert any(item.startswith("RDS Proxy") for item in rds)

    def by_service(lines) -> dict[str, float]:
        return {s: sum(line.monthly_usd for line in lines if line.service == s) for s in {li.service for li in lines}}

    standing, failed = by_service(estimates["prod"].lines), by_service(result.lines)
    for service in ("NAT Gateway", "VPC endpoints", "RDS PostgreSQL"):
        assert failed[service] > standing[service], service
    assert result.total_usd > estimates["prod"].total_usd + 300


def test_the_standby_application_tier_bills_by_the_hour_idle_and_by_traffic_failed_over(
    canary, failed_over: Stack, configs, prices
) -> None:
    """Idle (the canary's dr.standby_compute), us-west-2's load balancers cost their hours and no LCU, its services
    nothing, its web ACL its rules; failed over, the load balancers carry prod's LCUs, the web ACL its requests, the
    services their tasks."""
    prod = configs["prod"]
    failed_over_config = dataclasses.replace(prod, dr=dataclasses.replace(prod.dr, active=True))
    for config, stack, serving in ((canary[0], canary[1]["canary"], False), (failed_over_config, failed_over, True)):
        result, dr = estimate(stack.json, config, prices), config.dr_region
        hour, _ = prices.rate("alb.hour", dr)
        lcu, _ = prices.rate("alb.lcu_hour", dr)
        lbs = [line for line in result.lines if line.service == "ALB" and line.region == dr]
        used = config.usage.load_balancer_lcus if serving else 0
        assert [line.monthly_usd for line in lbs] == [pytest.approx((hour + used * lcu) * 730, abs=0.01)] * 2
        assert all(f"({used:g} LCU, {dr})" in line.item for line in lbs)
        fargate = sum(line.monthly_usd for line in result.lines if line.service == "ECS Fargate" and line.region == dr)
        assert (fargate > 500) if serving else fargate == 0
        (acl,) = [line for line in result.lines if line.service == "WAF" and line.region == dr]
        assert f"{config.usage.api_requests_millions if serving else 0:g} M requests" in acl.item


def test_the_route53_checks_of_the_failover_pair_are_priced(estimates, configs, prices) -> None:
    month, _ = prices.rate("route53.health_check_month", "us-east-1")
    for env, result in estimates.items():
        lines = [line for line in result.lines if "Route 53 health checks" in line.item]
        assert [line.monthly_usd for line in lines] == ([3 * month] if configs[env].dr.enabled else []), env


def test_a_global_datastore_secondary_is_priced_as_the_primarys_node_type_in_the_dr_region(canary, prices) -> None:
    config, canary_stacks = canary
    result = estimate(canary_stacks[config.name].json, config, prices)
    lines = [line for line in result.lines if line.service == "ElastiCache"]
    (secondary,) = [line for line in lines if line.region == config.dr_region]
    hourly, _ = prices.rate(f"elasticache.{config.cache.node_type}", config.dr_region)
    # One node per shard while it stands by, of the primary's type (AWS requires the same type in every member).
    assert (
        secondary.item == f"{config.cache.node_type} x {config.cache.shards} (Global Datastore secondary in "
        f"{config.dr_region})"
    )
    assert secondary.monthly_usd == pytest.approx(config.cache.shards * hourly * 730)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_is_estimated_within_its_documented_budget(estimates, configs, env: str) -> None:
    result = estimates[env]
    assert configs[env].budget.monthly_usd == BUDGETS[env]
    assert result.within_budget and 0 < result.total_usd <= BUDGETS[env], result.total_usd


def test_unverified_and_borrowed_rates_are_flagged_in_the_estimate(estimates, prices) -> None:
    """A rate without a readable source, or another region's, is named in the notes of every estimate using it."""
    raw = json.loads(cost.PRICES.read_text())["prices"]
    for result in estimates.values():
        expected = []
        for line in result.lines:
            for key in line.rates:
                unverified = f"{key}: unverified rate (no source readable offline); confirm at {raw[key]['aws_page']}"
                borrowed = f"{key}: no {line.region} rate in the price file, us-east-1's used"
                if raw[key].get("verified") is False and unverified not in expected:
                    expected.append(unverified)
                if line.region not in raw[key] and borrowed not in expected:
                    expected.append(borrowed)
        assert sorted(result.notes) == sorted(expected), result.environment


def test_every_resource_type_is_priced_or_said_to_be_free_or_unpriced(stacks: dict[str, Stack]) -> None:
    assert not PRICED & NO_CHARGE and not PRICED & NOT_PRICED.keys() and not NO_CHARGE & NOT_PRICED.keys()
    for env in ENVIRONMENTS:
        unknown = set(stacks[env].json["resource"]) - PRICED - NOT_PRICED.keys() - NO_CHARGE
        assert not unknown, (env, unknown)


def test_every_rate_names_its_source_and_date(prices, estimates) -> None:
    raw = json.loads(cost.PRICES.read_text())
    assert raw["hours_per_month"] == cost.HOURS
    used = {rate for result in estimates.values() for line in result.lines for rate in line.rates}
    assert used and used <= raw["prices"].keys()
    for key in used:
        entry = raw["prices"][key]
        assert entry["aws_page"].startswith(("https://aws.amazon.com/", "http://aws.amazon.com/")), key
        assert "us-east-1" in entry and entry["unit"], key
        if entry.get("verified") is False:
            assert entry["as_of"] == "unverified" and "confirm" in entry["note"], key  # flagged, see below
        else:
            assert entry["source"].startswith(("https://", "http://", "github:")) and entry["as_of"], key


# --- Output ------------------------------------------------------------------------------------------------------


def test_the_json_output_follows_its_schema_and_adds_up(estimates, prices) -> None:
    document = cost.as_json(estimates.values(), prices)
    jsonschema.validate(document, json.loads(cost.SCHEMA.read_text()))
    for env in document["environments"]:
        services = sum(s["monthly_usd"] for s in env["services"])
        assert env["total_usd"] == pytest.approx(services, abs=0.05)
        for service in env["services"]:
            assert service["monthly_usd"] == pytest.approx(sum(i["monthly_usd"] for i in service["items"]), abs=0.05)
    broken = json.loads(json.dumps(document))
    del broken["environments"][0]["total_usd"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads(cost.SCHEMA.read_text()))


def test_the_committed_cost_document_is_current(estimates, prices, configs) -> None:
    """docs/COST_ESTIMATION.md is `make docs`'s output for the shipped configs and prices: regenerate it."""
    expected = cost.as_markdown(list(estimates.values()), prices, {env: configs[env].usage for env in ENVIRONMENTS})
    assert DOC.read_text() == expected, "docs/COST_ESTIMATION.md is stale: run `make docs`"


run_cost = functools.partial(run_tool, "cost")


def test_the_command_prints_tables_json_and_exit_codes(current_outdir: Path, tmp_path: Path) -> None:
    table = run_cost("prod", "--outdir", str(current_outdir))
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith("prod (us-east-1): estimated monthly cost")
    assert "budget $2,500.00: within" in table.stdout and table.stderr == ""
    machine = run_cost("--format", "json", "--outdir", str(current_outdir))
    document = json.loads(machine.stdout)
    assert [e["environment"] for e in document["environments"]] == list(ENVIRONMENTS)
    jsonschema.validate(document, json.loads(cost.SCHEMA.read_text()))
    # Over budget: exit 1 only when asked to fail.
    environments = tmp_path / "environments"
    shutil.copytree(REPO / "environments", environments)
    dev = json.loads((environments / "dev.json").read_text())
    dev["budget"]["monthly_usd"] = 10
    (environments / "dev.json").write_text(json.dumps(dev))
    fingerprint.stamp("dev", fingerprint.digest("dev", environments), current_outdir)  # same stacks: budget only
    over = ["dev", "--outdir", str(current_outdir), "--environments-dir", str(environments)]
    assert run_cost(*over).returncode == 0
    failed = run_cost(*over, "--fail-over-budget")
    assert failed.returncode == 1 and failed.stderr.strip() == "error: over budget: dev"
    assert "OVER" in failed.stdout
    unknown = run_cost("qa")
    assert unknown.returncode == 2 and "unknown environment(s) qa" in unknown.stderr


def test_a_stale_output_is_synthesized_first_with_a_progress_line(
    tmp_path: Path, synth_outdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import roi_tf.app

    synthesized: list[list[str]] = []

    def synth(configs, outdir: Path) -> None:  # the session's stacks stand in for a real synth
        synthesized.append(list(configs))
        for env in configs:
            for stack in (env, f"state-{env}"):
                shutil.copytree(synth_outdir / "stacks" / stack, outdir / "stacks" / stack, dirs_exist_ok=True)

    monkeypatch.setattr(roi_tf.app, "synth", synth)
    assert cost.main(["staging", "--outdir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr()
    assert synthesized == [["staging"]]
    assert out.err.splitlines() == [
        f"synthesizing staging into {tmp_path / 'out'} (the stacks there are not current) ...",
        "synthesized staging",
    ]
    assert out.out.startswith("staging (us-east-1): estimated monthly cost")
    # Now current: read, not synthesized again.
    assert cost.main(["staging", "--outdir", str(tmp_path / "out")]) == 0
    assert synthesized == [["staging"]] and capsys.readouterr().err == ""


def test_a_configuration_error_is_reported_not_raised(tmp_path: Path) -> None:
    environments = tmp_path / "environments"
    shutil.copytree(REPO / "environments", environments)
    prod = json.loads((environments / "prod.json").read_text())
    prod["networking"]["az_count"] = 1
    (environments / "prod.json").write_text(json.dumps(prod))
    done = run_cost("prod", "--environments-dir", str(environments), "--outdir", str(tmp_path / "out"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: {environments / 'prod.json'}: $.networking.az_count: 1 is less than the minimum of 2"
    ]
    assert not (tmp_path / "out").exists()  # nothing synthesized

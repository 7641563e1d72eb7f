"""Configuration: schema, typed objects, cross-field rules, and what the user sees on bad input."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import REPO
from roi_tf import config as cfg

ENV_DIR = REPO / "environments"


# --- the files themselves ---------------------------------------------------------------------


def test_schema_is_valid_json_schema_2020_12_and_closed_everywhere() -> None:
    schema = json.loads((ENV_DIR / "schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                # Closed, or a map whose values are closed objects (storage.buckets).
                extra = node.get("additionalProperties")
                assert extra is False or (isinstance(extra, dict) and extra.get("additionalProperties") is False), path
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(schema, "$")


@pytest.mark.parametrize("env", cfg.ENVIRONMENTS)
def test_each_environment_file_points_editors_at_the_schema(env: str) -> None:
    data = json.loads((ENV_DIR / f"{env}.json").read_text())
    assert data["$schema"] == "./schema.json"
    assert data["environment"] == env


def test_schema_defaults_match_the_dataclass_defaults() -> None:
    """One source of truth: a default documented in the schema is the default the code applies."""
    schema = json.loads((ENV_DIR / "schema.json").read_text())
    sections = {
        "state": cfg.StateConfig,
        "database": cfg.DatabaseConfig,
        "cache": cfg.CacheConfig,
        "sessions": cfg.SessionsConfig,
        "compute": cfg.ComputeConfig,
        "networking": cfg.NetworkingConfig,
        "security": cfg.SecurityConfig,
        "storage": cfg.StorageConfig,
        "cdn": cfg.CdnConfig,
        "monitoring": cfg.MonitoringConfig,
        "ci": cfg.CiConfig,
        "dr": cfg.DrConfig,
    }
    monitoring = schema["properties"]["monitoring"]["properties"]
    nested = {
        "monitoring.thresholds": (monitoring["thresholds"], cfg.ThresholdsConfig),
        "monitoring.critical": (monitoring["critical"], cfg.AlertRouteConfig),
        "monitoring.warning": (monitoring["warning"], cfg.AlertRouteConfig),
        "cdn.api_cache": (schema["properties"]["cdn"]["properties"]["api_cache"], cfg.ApiCacheConfig),
        "cdn.geo_restriction": (schema["properties"]["cdn"]["properties"]["geo_restriction"], cfg.GeoRestrictionConfig),
        "compute.load_balancer": (
            schema["properties"]["compute"]["properties"]["load_balancer"],
            cfg.LoadBalancerConfig,
        ),
        "compute.event_processing": (
            schema["properties"]["compute"]["properties"]["event_processing"],
            cfg.EventProcessingConfig,
        ),
        "compute.gpu_training": (schema["properties"]["compute"]["properties"]["gpu_training"], cfg.GpuTrainingConfig),
        "ecs_service": (schema["$defs"]["ecs_service"], cfg.ServiceConfig),
        "ecs_service.autoscaling": (schema["$defs"]["ecs_service"]["properties"]["autoscaling"], cfg.AutoscalingConfig),
    }
    checked = {**{s: (schema["properties"][s], k) for s, k in sections.items()}, **nested}
    for section, (node, klass) in checked.items():
        fields = {f.name: f for f in dataclasses.fields(klass)}
        for name, prop in node["properties"].items():
            if "default" in prop and name in fields:
                default = fields[name].default
                expected = tuple(prop["default"]) if isinstance(prop["default"], list) else prop["default"]
                assert default == expected, f"{section}.{name}"


def test_configs_are_frozen_and_typed(configs) -> None:
    prod = configs["prod"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        prod.region = "eu-west-1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        prod.default_tags["Owner"] = "someone"  # type: ignore[index]
    assert isinstance(prod.networking.vpc_cidr, ipaddress.IPv4Network)
    assert isinstance(prod.networking.interface_endpoints, tuple)


def test_design_document_values(configs) -> None:
    dev, staging, prod = configs["dev"], configs["staging"], configs["prod"]
    assert (dev.budget.monthly_usd, staging.budget.monthly_usd, prod.budget.monthly_usd) == (300, 800, 2500)
    assert {c.region for c in configs.values()} == {"us-east-1"}
    assert {c.dr_region for c in configs.values()} == {"us-west-2"}
    # dev: single NAT, single-AZ instances, no auto-scaling.
    assert dev.networking.nat_gateway_count == 1
    assert not dev.database.multi_az and not dev.compute.api.autoscaling.enabled
    # staging: Multi-AZ, production-like, auto-scaling.
    assert staging.networking.nat_gateway_count == staging.networking.az_count
    assert staging.database.multi_az and staging.compute.api.autoscaling.enabled
    # prod baseline: 2 NAT, 3 Fargate tasks of 4 vCPU / 8 GB, db.r5.large Multi-AZ, 2 x cache.r5.large, 2 ALBs.
    assert prod.networking.nat_gateway_count == 2
    assert (prod.compute.api.task_cpu, prod.compute.api.task_memory_mib, prod.compute.api.desired_count) == (
        4096,
        8192,
        3,
    )
    assert (prod.database.instance_class, prod.database.multi_az) == ("db.r5.large", True)
    assert prod.cache.node_type == "cache.r5.large"
    assert prod.cache.shards * (1 + prod.cache.replicas_per_shard) == 2
    assert prod.database.backup_retention_days == 30
    scaling = prod.compute.api.autoscaling
    assert scaling.max_capacity >= 4 * scaling.min_capacity  # aggressive


def test_vpc_cidrs_of_environments_do_not_overlap(configs) -> None:
    cidrs = [c.networking.vpc_cidr for c in configs.values()]
    for i, a in enumerate(cidrs):
        for b in cidrs[i + 1 :]:
            assert not a.overlaps(b), (a, b)


# --- subnet planning ----------------------------------------------------------------------------


def test_plan_subnets_packs_largest_first_aligned_and_disjoint() -> None:
    plan = cfg.plan_subnets(ipaddress.IPv4Network("10.0.0.0/16"), 3, {"public": 24, "private": 20, "isolated": 24})
    assert plan is not None
    assert [str(n) for n in plan.private] == ["10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"]
    assert [str(n) for n in plan.public] == ["10.0.48.0/24", "10.0.49.0/24", "10.0.50.0/24"]
    assert [str(n) for n in plan.isolated] == ["10.0.51.0/24", "10.0.52.0/24", "10.0.53.0/24"]


def test_plan_subnets_returns_none_when_they_do_not_fit() -> None:
    vpc = ipaddress.IPv4Network("10.0.0.0/22")
    assert cfg.plan_subnets(vpc, 2, {"public": 24, "private": 20, "isolated": 24}) is None
    assert cfg.plan_subnets(vpc, 2, {"public": 25, "private": 24, "isolated": 25}) is not None


@pytest.mark.parametrize(
    ("daily", "weekly", "overlap"),
    [
        ("03:00-04:00", "sun:04:30-sun:05:30", False),
        ("03:00-04:00", "wed:03:30-wed:04:30", True),
        ("23:30-00:30", "mon:00:00-mon:01:00", True),  # the daily window wraps midnight
        ("00:00-01:00", "sun:23:30-mon:00:30", True),  # the weekly window wraps the week
        ("02:00-03:00", "sun:23:30-mon:00:30", False),
        # Back to back (one ends the minute the other starts) is no overlap; one shared minute is.
        ("03:00-04:00", "sun:04:00-sun:05:00", False),
        ("03:00-04:00", "sun:03:59-sun:05:00", True),
        ("03:00-04:00", "sun:02:00-sun:03:00", False),
        ("03:00-04:00", "sun:02:00-sun:03:01", True),
        ("23:00-00:00", "mon:00:00-mon:01:00", False),  # the daily window ends at midnight
        ("23:00-00:00", "sun:23:59-mon:01:00", True),
        ("00:00-01:00", "sun:23:00-mon:00:00", False),  # the weekly window ends where the week starts
        ("00:00-01:00", "sun:23:00-mon:00:01", True),
    ],
)
def test_maintenance_and_backup_windows_overlap_across_midnight_and_the_week(
    daily: str, weekly: str, overlap: bool
) -> None:
    """Guards the overlap test's bounds (``<=`` would make back-to-back windows overlap) across midnight and the
    week."""
    assert cfg.windows_overlap(cfg.daily_window_minutes(daily), cfg.weekly_window_minutes(weekly)) is overlap


def test_window_minutes() -> None:
    """Guards the clock arithmetic: minutes of the week, a daily window wrapping midnight ends the next day."""
    assert cfg.daily_window_minutes("03:00-03:30")[:2] == [(180, 210), (1620, 1650)]
    assert cfg.daily_window_minutes("23:45-00:15")[6] == (6 * 1440 + 1425, 6 * 1440 + 1455)
    assert cfg.weekly_window_minutes("mon:00:00-mon:00:30") == (0, 30)
    assert cfg.weekly_window_minutes("sun:23:00-mon:00:00") == (6 * 1440 + 1380, 7 * 1440)
    assert cfg.weekly_window_minutes("wed:04:00-tue:04:00") == (2 * 1440 + 240, 8 * 1440 + 240)


# --- bad input, through the real command line ---------------------------------------------------

SENTINEL = "synthesized earlier; must survive a failed synth\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of environments/ and an earlier cdktf.out/ to prove nothing gets touched."""
    shutil.copytree(ENV_DIR, tmp_path / "environments")
    earlier = tmp_path / "cdktf.out" / "stacks" / "prod"
    earlier.mkdir(parents=True)
    (earlier / "cdk.tf.json").write_text(SENTINEL)
    (tmp_path / "cdktf.out" / "manifest.json").write_text("{}")
    return tmp_path


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_main(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CDKTF_OUTDIR", None)
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "main.py"),
            "--environments-dir",
            "environments",
            "--outdir",
            "cdktf.out",
            *args,
        ],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def edit(path: Path, change: Callable[[dict], None]) -> None:
    """Apply ``change`` to the JSON in ``path``."""
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def break_file(path: Path, change: Callable[[dict], None] | None) -> None:
    """A bad-input case applied to an environment file: an edit of its JSON, or (None) the file removed."""
    if change is None:
        path.unlink()
    else:
        edit(path, change)


def set_path(*keys: str, value: Any) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        node = data
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return change


_ENGINES = json.loads((REPO / "roi_tf" / "data" / "engines.json").read_text())["ec2_gpu_instance_types"]
GPU_TYPE_MESSAGE = [
    "environments/prod.json: $.compute.gpu_training.instance_type: 'g4dn.3xlarge' is not a GPU instance type EC2 "
    f"offers (AWS's list, read 2026-11-26: {', '.join(_ENGINES['instance_types'])}; {_ENGINES['source']})"
]
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
# case -> (the environment file(s) to edit, the edit, the expected messages in order).
BAD_INPUTS: dict[str, tuple[str | tuple[str, ...], Callable[[dict], None] | None, list[str]]] = {
    "az_count below minimum": (
        "prod",
        set_path("networking", "az_count", value=1),
        ["environments/prod.json: $.networking.az_count: 1 is less than the minimum of 2"],
    ),
    "wrong type": (
        "staging",
        set_path("networking", "nat_gateway_count", value="two"),
        ["environments/staging.json: $.networking.nat_gateway_count: 'two' is not of type 'integer'"],
    ),
    "unknown property": (
        "dev",
        set_path("networking", "enable_ipv6", value=True),
        ["environments/dev.json: $.networking: Additional properties are not allowed ('enable_ipv6' was unexpected)"],
    ),
    "missing required property": (
        "dev",
        lambda d: d["state"].pop("lock_table"),
        ["environments/dev.json: $.state: 'lock_table' is a required property"],
    ),
    "zone IDs do not match az_count": (
        "dev",
        set_path("networking", "availability_zone_ids", value=["use1-az1", "use1-az2", "use1-az4"]),
        [
            "environments/dev.json: $.networking.availability_zone_ids: lists 3 zones but az_count is 2 "
            "(one zone ID per AZ)"
        ],
    ),
    "more NAT gateways than AZs": (
        "staging",
        set_path("networking", "nat_gateway_count", value=3),
        [
            "environments/staging.json: $.networking.nat_gateway_count: 3 NAT gateways exceed az_count 2 "
            "(at most one per AZ)"
        ],
    ),
    "subnets do not fit the VPC": (
        "dev",
        set_path("networking", "vpc_cidr", value="10.10.0.0/22"),
        [
            "environments/dev.json: $.networking.subnet_prefix_lengths: subnets do not fit in vpc_cidr 10.10.0.0/22: "
            "2 AZs x (public /24, private /20, isolated /24) need 9216 addresses, the VPC holds 1024"
        ],
    ),
    "VPC CIDR with host bits": (
        "dev",
        set_path("networking", "vpc_cidr", value="10.10.1.0/16"),
        [
            "environments/dev.json: $.networking.vpc_cidr: '10.10.1.0/16' is not a valid IPv4 network: "
            "10.10.1.0/16 has host bits set"
        ],
    ),
    "prod not Multi-AZ and not deletion-protected": (
        "prod",
        lambda d: d["database"].update(multi_az=False, deletion_protection=False),
        [
            "environments/prod.json: $.database.deletion_protection: must be true when protection.prevent_destroy "
            "is: AWS must refuse a delete Terraform refuses",
            "environments/prod.json: $.database.multi_az: must be true in prod: production databases are Multi-AZ",
        ],
    ),
    "prod single NAT": (
        "prod",
        set_path("networking", "nat_gateway_count", value=1),
        [
            "environments/prod.json: $.networking.nat_gateway_count: must equal az_count (2) in prod: one NAT "
            "gateway per AZ (HA)"
        ],
    ),
    "prod backups shorter than 30 days": (
        "prod",
        set_path("database", "backup_retention_days", value=7),
        ["environments/prod.json: $.database.backup_retention_days: 7 is less than the production minimum of 30 days"],
    ),
    "invalid Fargate size": (
        "prod",
        set_path("compute", "api", "task_memory_mib", value=4096),
        [
            "environments/prod.json: $.compute.api.task_memory_mib: 4096 MiB is not a valid Fargate size for task_cpu "
            "4096 "
            "(allowed: 8192 to 30720 in steps of 1024)"
        ],
    ),
    "desired count outside the scaling range": (
        "staging",
        set_path("compute", "api", "desired_count", value=9),
        ["environments/staging.json: $.compute.api.desired_count: 9 is outside the auto-scaling range 2 to 6"],
    ),
    "environment name does not match the file": (
        "staging",
        set_path("environment", value="prod"),
        ["environments/staging.json: $.environment: 'prod' does not match the file name 'staging'"],
    ),
    "database minor version pinned, bad insights retention, idle pool above the maximum": (
        "dev",
        lambda d: d["database"].update(
            engine_version="16.4", performance_insights_retention_days=10, proxy_max_idle_connections_percent=95
        ),
        [
            "environments/dev.json: $.database.engine_version: '16.4' pins a minor version: give the major version "
            "only ('16'), minor versions are upgraded automatically",
            "environments/dev.json: $.database.performance_insights_retention_days: 10 is neither 7 nor a multiple "
            "of 31 (Performance Insights retention)",
            "environments/dev.json: $.database.proxy_max_idle_connections_percent: 95 exceeds "
            "proxy_max_connections_percent 90",
        ],
    ),
    "database and cache windows overlap, backup window too short": (
        "staging",
        lambda d: (
            d["database"].update(backup_window="04:00-04:20", maintenance_window="sun:04:10-sun:05:00"),
            d["cache"].update(snapshot_window="06:00-07:00", maintenance_window="sat:23:30-sun:06:30"),
        ),
        [
            "environments/staging.json: $.database.maintenance_window: sun:04:10-sun:05:00 overlaps backup_window "
            "04:00-04:20 (RDS rejects overlapping windows)",
            "environments/staging.json: $.database.backup_window: 04:00-04:20 is shorter than 30 minutes",
            "environments/staging.json: $.cache.maintenance_window: sat:23:30-sun:06:30 overlaps snapshot_window "
            "06:00-07:00 (ElastiCache rejects overlapping windows)",
        ],
    ),
    "prod without replicas, DR backups, cache failover or protected sessions": (
        "prod",
        lambda d: (
            d["database"].update(read_replicas=0, cross_region_backups=False),
            d["cache"].update(replicas_per_shard=0),
            d["sessions"].update(deletion_protection=False),
        ),
        [
            "environments/prod.json: $.dr: needs database.cross_region_backups: a promoted replica still needs its "
            "history",
            "environments/prod.json: $.sessions.deletion_protection: must be true when protection.prevent_destroy "
            "is: AWS must refuse a delete Terraform refuses",
            "environments/prod.json: $.database.read_replicas: must be at least 1 in prod: production reads scale "
            "out to a replica",
            "environments/prod.json: $.database.cross_region_backups: must be true in prod: backups are replicated "
            "to the DR region",
            "environments/prod.json: $.cache.replicas_per_shard: must be at least 1 in prod: every shard needs a "
            "replica to fail over to",
        ],
    ),
    "prod operators without MFA and documents not replicated": (
        "prod",
        lambda d: (
            d["security"].update(operators_require_mfa=False),
            d["storage"]["buckets"]["documents"].update(replicate=False),
        ),
        [
            "environments/prod.json: $.dr: needs storage.buckets documents replicated: the application tier in "
            "dr_region reads them there (documents, models, the event processor's packages)",
            "environments/prod.json: $.security.operators_require_mfa: must be true in prod: MFA is required for "
            "production access",
            "environments/prod.json: $.storage.buckets.documents.replicate: must be true in prod: documents are "
            "replicated to the DR region",
        ],
    ),
    "prod without a pilot light": (
        "prod",
        lambda d: d.pop("dr"),
        ["environments/prod.json: $: needs a dr section in prod: the design promises RTO 1 hour, RPO 5 minutes"],
    ),
    "pilot light on its own state bucket, without a database replica or bounded document replication": (
        "prod",
        lambda d: (
            d["dr"].update(state_bucket=d["state"]["bucket"]),
            d["database"].update(cross_region_replica=False),
            d["storage"].update(replication_time_control=False),
        ),
        [
            "environments/prod.json: $.dr.state_bucket: must differ from state.bucket: it is the state's copy in "
            "dr_region",
            "environments/prod.json: $.dr: needs database.cross_region_replica: the replica is the database after "
            "failover",
            "environments/prod.json: $.dr: needs storage.replication_time_control: without it S3 bounds no "
            "replication lag of the documents",
        ],
    ),
    "cache copied by a Global Datastore on a node type that cannot join one": (
        "prod",
        lambda d: (d["dr"].update(cache_replica=True), d["cache"].update(node_type="cache.t4g.medium")),
        [
            "environments/prod.json: $.dr.cache_replica: cache.node_type 'cache.t4g.medium' cannot join a Global "
            "Datastore (AWS: families c7gn, m5, m6g, m7g, r5, r6g, r6gd, r7g, size large and above; "
            "https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Redis-Global-Datastores-Getting-Started.html)"
        ],
    ),
    "failing back without being failed over": (
        "prod",
        lambda d: d["dr"].update(failback_replica=True),
        [
            "environments/prod.json: $.dr.failback_replica: needs dr.active: the primary region's database "
            "replicates from the promoted one in dr_region, which exists only failed over"
        ],
    ),
    "prod keeps its state in staging's bucket, lock table and (as its DR copy) dev's bucket": (
        "prod",
        lambda d: (
            d["state"].update(
                bucket="roi-systems-terraform-state-staging", lock_table="roi-systems-terraform-locks-staging"
            ),
            d["dr"].update(state_bucket="roi-systems-terraform-state-dev"),
        ),
        [
            "environments/prod.json: $.state.bucket: 'roi-systems-terraform-state-staging' is staging's already: every "
            "environment keeps its state apart (S3 bucket names are global)",
            "environments/prod.json: $.dr.state_bucket: 'roi-systems-terraform-state-dev' is dev's already: every "
            "environment keeps its state apart (S3 bucket names are global)",
            "environments/prod.json: $.state.lock_table: 'roi-systems-terraform-locks-staging' is staging's already: "
            "every environment keeps its state apart (a shared lock table shares the locks)",
        ],
    ),
    "a PostgreSQL major RDS does not offer": (
        "staging",
        set_path("database", "engine_version", value="10"),
        [
            "environments/staging.json: $.database.engine_version: '10' is not a PostgreSQL major version RDS offers "
            "for new instances (AWS's list, read 2026-11-26: 11, 12, 13, 14, 15, 16, 17, 18; "
            "https://docs.aws.amazon.com/AmazonRDS/latest/PostgreSQLReleaseNotes/postgresql-release-calendar.html)"
        ],
    ),
    "force_destroy outside dev": (
        "staging",
        set_path("storage", "force_destroy", value=True),
        [
            "environments/staging.json: $.storage.force_destroy: must be false in staging: only dev may empty "
            "buckets on destroy"
        ],
    ),
    "noncurrent versions expire before they reach Glacier": (
        "dev",
        set_path("storage", "noncurrent_expiration_days", value=30),
        [
            "environments/dev.json: $.storage.noncurrent_expiration_days: 30 must be greater than "
            "noncurrent_glacier_days 30 (S3 rejects an expiration before the transition)"
        ],
    ),
    "bucket name too long for the replica name": (
        "dev",
        lambda d: d["storage"]["buckets"].update({"a-very-long-bucket-name": {"description": "x"}}),
        ["environments/dev.json: $.storage.buckets: 'a-very-long-bucket-name' does not match '^[a-z][a-z0-9-]{1,16}$'"],
    ),
    "documents bucket missing": (
        "staging",
        lambda d: d["storage"]["buckets"].pop("documents"),
        ["environments/staging.json: $.storage.buckets: 'documents' is a required property"],
    ),
    "cross-region replica without a standby VPC": (
        "staging",
        set_path("database", "cross_region_replica", value=True),
        [
            "environments/staging.json: $.database.cross_region_replica: needs dr_networking: the replica lives in "
            "a VPC in dr_region"
        ],
    ),
    "standby VPC overlapping the primary VPC": (
        "prod",
        set_path("dr_networking", "vpc_cidr", value="10.30.0.0/16"),
        [
            "environments/prod.json: $.dr_networking.vpc_cidr: 10.30.0.0/16 overlaps networking.vpc_cidr 10.30.0.0/16 "
            "(the VPCs must be peerable)"
        ],
    ),
    "DR region equal to the region": (
        "staging",
        set_path("dr_region", value="us-east-1"),
        ["environments/staging.json: $.dr_region: must differ from region 'us-east-1'"],
    ),
    "public VPC range": (
        "dev",
        set_path("networking", "vpc_cidr", value="11.10.0.0/16"),
        ["environments/dev.json: $.networking.vpc_cidr: 11.10.0.0/16 is not a private (RFC 1918) range"],
    ),
    "VPC larger than AWS allows": (
        "dev",
        set_path("networking", "vpc_cidr", value="10.0.0.0/12"),
        ["environments/dev.json: $.networking.vpc_cidr: /12 is outside the VPC limits /16 to /28"],
    ),
    "auto-scaling enabled without its bounds": (
        "dev",
        set_path("compute", "ml", "autoscaling", value={"enabled": True}),
        [
            "environments/dev.json: $.compute.ml.autoscaling.min_capacity: is required when auto-scaling is enabled",
            "environments/dev.json: $.compute.ml.autoscaling.max_capacity: is required when auto-scaling is enabled",
            "environments/dev.json: $.compute.ml.autoscaling.target_cpu_percent: is required when auto-scaling is "
            "enabled",
        ],
    ),
    "database storage maximum below the allocation": (
        "staging",
        lambda d: d["database"].update(allocated_storage_gb=200, max_allocated_storage_gb=100),
        ["environments/staging.json: $.database.max_allocated_storage_gb: 100 is less than allocated_storage_gb 200"],
    ),
    "cache snapshot window too short": (
        "dev",
        set_path("cache", "snapshot_window", value="05:00-05:15"),
        ["environments/dev.json: $.cache.snapshot_window: 05:00-05:15 is shorter than 30 minutes"],
    ),
    "secrets deleted at once outside dev": (
        "staging",
        set_path("security", "secret_recovery_window_days", value=0),
        [
            "environments/staging.json: $.security.secret_recovery_window_days: 0 (delete at once) is for disposable "
            "environments (dev); staging keeps deleted secrets restorable for 7 to 30 days"
        ],
    ),
    "prod destroyable, without GuardDuty where its data copies are": (
        "prod",
        lambda d: (
            d["protection"].update(prevent_destroy=False),
            d["security"].update(enable_guardduty_in_dr_region=False),
        ),
        [
            "environments/prod.json: $.protection.prevent_destroy: must be true in prod: nothing that holds data or "
            "audit history may be destroyed by accident",
            "environments/prod.json: $.security.enable_guardduty_in_dr_region: must be true in prod: the DR region "
            "holds copies of customer data",
        ],
    ),
    "two owners of one account's services": (
        ("staging", "prod"),
        set_path("allowed_account_ids", value=["111122223333"]),
        [
            "environments/prod.json: $.security.owns_account_services: account 111122223333 is shared with staging, "
            "which owns its account services already (GuardDuty, Security Hub, AWS Config, the password policy): "
            "set this false to reference them"
        ],
    ),
    "two pilot lights in one account": (
        ("staging", "prod"),
        lambda d: (
            d.update(allowed_account_ids=["111122223333"]),
            d["environment"] == "staging"
            and (
                d["security"].update(owns_account_services=False),
                d["database"].update(cross_region_replica=True, cross_region_backups=True),
                d["storage"].update(replication_time_control=True),
                [d["storage"]["buckets"][name].update(replicate=True) for name in ("ml-artifacts", "artifacts")],
                d.update(
                    dr_networking={"vpc_cidr": "10.21.0.0/16", "availability_zone_ids": ["usw2-az1", "usw2-az2"]},
                    dr={"state_bucket": "roi-systems-terraform-state-staging-us-west-2"},
                ),
            ),
        ),
        [
            "environments/prod.json: $.dr: account 111122223333 is shared with staging, whose pilot light owns the "
            "account's ECR replication already (one per account and region): give this environment its own account"
        ],
    ),
    "load balancer: certificate and domain both, certificate in another region": (
        "prod",
        set_path(
            "compute",
            "load_balancer",
            value={
                "certificate_arn": CERTIFICATE.replace("us-east-1", "eu-west-1"),
                "domain_name": "api.roisystems.com",
                "hosted_zone_name": "roisystems.com",
            },
        ),
        [
            "environments/prod.json: $.compute.load_balancer.domain_name: give either certificate_arn or domain_name, "
            "not both",
            "environments/prod.json: $.compute.load_balancer.certificate_arn: is in eu-west-1: a load balancer's "
            "certificate must be in us-east-1",
            "environments/prod.json: $.dr: needs compute.load_balancer.domain_name and hosted_zone_name (not a "
            "certificate_arn, which is regional): the API's name fails over in DNS, and the DR region's certificate "
            "is issued for it",
        ],
    ),
    "load balancer: domain without its zone": (
        "staging",
        set_path("compute", "load_balancer", value={"domain_name": "api.staging.roisystems.com"}),
        [
            "environments/staging.json: $.compute.load_balancer.hosted_zone_name: is required with domain_name (the "
            "certificate's DNS validation)"
        ],
    ),
    # Ends with the zone's name without being in the zone: the check must compare labels, not characters.
    "load balancer: domain outside its zone": (
        "staging",
        set_path(
            "compute",
            "load_balancer",
            value={"domain_name": "api.notroisystems.com", "hosted_zone_name": "roisystems.com"},
        ),
        [
            "environments/staging.json: $.compute.load_balancer.domain_name: api.notroisystems.com is not in the "
            "zone roisystems.com"
        ],
    ),
    "load balancer: plain HTTP beside a requested certificate, in dev": (
        "dev",
        set_path(
            "compute",
            "load_balancer",
            value={"plain_http": True, "domain_name": "api.dev.roisystems.com", "hosted_zone_name": "roisystems.com"},
        ),
        [
            "environments/dev.json: $.compute.load_balancer.plain_http: must be false when a certificate is "
            "configured (HTTPS only)"
        ],
    ),
    "load balancer: plain HTTP with a certificate, outside dev": (
        "staging",
        set_path(
            "compute",
            "load_balancer",
            value={
                "certificate_arn": CERTIFICATE,
                "plain_http": True,
            },
        ),
        [
            "environments/staging.json: $.compute.load_balancer.plain_http: must be false when a certificate is "
            "configured (HTTPS only)",
            "environments/staging.json: $.compute.load_balancer.plain_http: must be false in staging: the API is never "
            "served over plain HTTP outside dev",
            # An existing certificate names no host CloudFront could reach the API by.
            "environments/staging.json: $.cdn.api_origin: needs compute.load_balancer.domain_name: CloudFront reaches "
            "the API over HTTPS by the name the load balancer's certificate covers (set api_origin false to serve the "
            "assets only)",
        ],
    ),
    "cdn: domain without its zone, Authorization forwarded, whitelist without countries": (
        "staging",
        set_path(
            "cdn",
            value={
                "domain_name": "app.staging.roisystems.com",
                "api_forwarded_headers": ["Accept", "authorization"],
                "geo_restriction": {"type": "whitelist"},
            },
        ),
        [
            "environments/staging.json: $.cdn.hosted_zone_name: is required with domain_name (aliases and "
            "certificate validation)",
            "environments/staging.json: $.cdn.api_forwarded_headers: must not list Authorization (it travels in the "
            "cache key, so no caller gets another's response), Cookie (cookies are never forwarded) or Host (the "
            "origin's certificate is for its own name)",
            "environments/staging.json: $.cdn.geo_restriction: type none takes no locations; whitelist and blacklist "
            "need at least one",
        ],
    ),
    "cdn: domain outside its zone, TTLs out of order, countries without a restriction": (
        "prod",
        set_path(
            "cdn",
            value={
                "domain_name": "app.notroisystems.com",
                "hosted_zone_name": "roisystems.com",
                "api_cache": {"min_ttl_seconds": 10, "default_ttl_seconds": 5},
                "geo_restriction": {"locations": ["DE"]},
            },
        ),
        [
            "environments/prod.json: $.cdn.domain_name: app.notroisystems.com is not in the zone roisystems.com",
            "environments/prod.json: $.cdn.api_cache: TTLs must satisfy min <= default <= max (got 10, 5, 60)",
            "environments/prod.json: $.cdn.geo_restriction: type none takes no locations; whitelist and blacklist "
            "need at least one",
        ],
    ),
    "cdn: the API through CloudFront where the load balancer has no name (dev)": (
        "dev",
        set_path("cdn", "api_origin", value=True),
        [
            "environments/dev.json: $.cdn.api_origin: needs compute.load_balancer.domain_name: CloudFront reaches "
            "the API over HTTPS by the name the load balancer's certificate covers (set api_origin false to serve the "
            "assets only)",
        ],
    ),
    "load balancer: neither HTTPS nor plain HTTP": (
        "dev",
        set_path("compute", "load_balancer", value={}),
        [
            "environments/dev.json: $.compute.load_balancer: needs certificate_arn or domain_name (HTTPS), or "
            "plain_http: true in a disposable environment"
        ],
    ),
    "dead letters kept shorter than the messages": (
        "staging",
        set_path("compute", "event_processing", value={"message_retention_days": 7, "dead_letter_retention_days": 7}),
        [
            "environments/staging.json: $.compute.event_processing.dead_letter_retention_days: 7 must be greater "
            "than message_retention_days 7 (a failed message keeps its original age in the dead-letter queue)"
        ],
    ),
    "missing file": ("dev", None, ["environments/dev.json: file not found"]),
    "alert route without its endpoint": (
        "staging",
        set_path("monitoring", "critical", value={"route": "email"}),
        ["environments/staging.json: $.monitoring.critical.email: is required with route 'email' (where alerts go)"],
    ),
    "slack route without workspace and channel": (
        "staging",
        set_path("monitoring", "warning", value={"route": "slack"}),
        [
            "environments/staging.json: $.monitoring.warning.slack_workspace_id: is required with route 'slack' "
            "(where alerts go)",
            "environments/staging.json: $.monitoring.warning.slack_channel_id: is required with route 'slack' "
            "(where alerts go)",
        ],
    ),
    "alert endpoint the route does not use": (
        "dev",
        set_path("monitoring", "warning", value={"route": "none", "email": "ops@roisystems.com"}),
        [
            "environments/dev.json: $.monitoring.warning.email: is not used by route 'none': remove it, or set the "
            "route that delivers to it"
        ],
    ),
    "a critical route that cannot page": (
        "dev",
        set_path("monitoring", "critical", value={"route": "slack"}),
        ["environments/dev.json: $.monitoring.critical.route: 'slack' is not one of ['pagerduty', 'email', 'none']"],
    ),
    "prod critical alerts not paging": (
        "prod",
        set_path("monitoring", "critical", value={"route": "email", "email": "devops@roisystems.com"}),
        [
            "environments/prod.json: $.monitoring.critical.route: must be 'pagerduty' in prod: critical alerts page "
            "the on-call engineer (design document)"
        ],
    ),
    "more datapoints than evaluation periods": (
        "dev",
        lambda d: d["monitoring"].update(evaluation_periods=2, datapoints_to_alarm=3),
        [
            "environments/dev.json: $.monitoring.datapoints_to_alarm: 3 exceeds evaluation_periods 2 (an alarm "
            "needs M of the last N periods breaching, M <= N)"
        ],
    ),
    "pipeline environment without a repository": (
        "prod",
        set_path("ci", value={"github_environment": "production"}),
        [
            "environments/prod.json: $.ci.github_environment: needs github_repository: without it no pipeline role "
            "exists to trust that environment"
        ],
    ),
    "pipeline trusting a pattern of repositories": (
        "staging",
        set_path("ci", "github_repository", value="roisystems/*"),
        [
            "environments/staging.json: $.ci.github_repository: 'roisystems/*' does not match "
            "'^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$'"
        ],
    ),
    "tag value AWS refuses": (
        "dev",
        set_path("tags", "owner", value="devops, platform"),
        [
            "environments/dev.json: $.tags.owner: 'devops, platform' has ',', which AWS tags refuse (letters, digits, "
            "spaces and _ . : / = + - @ only)"
        ],
    ),
    "zone of another region": (
        "prod",
        set_path("networking", "availability_zone_ids", value=["use1-az1", "usw2-az1"]),
        [
            "environments/prod.json: $.networking.availability_zone_ids[1]: 'usw2-az1' is not an AZ ID of us-east-1 "
            "(AWS lists use1-az1, use1-az2, use1-az3, use1-az4, use1-az5, use1-az6)"
        ],
    ),
    "DR zone of the primary region": (
        "prod",
        set_path("dr_networking", "availability_zone_ids", value=["use1-az1", "usw2-az2"]),
        [
            "environments/prod.json: $.dr_networking.availability_zone_ids[0]: 'use1-az1' is not an AZ ID of "
            "us-west-2 (AWS lists usw2-az1, usw2-az2, usw2-az3, usw2-az4)"
        ],
    ),
    "zone AWS does not list": (
        "staging",
        set_path("networking", "availability_zone_ids", value=["use1-az1", "use1-az7"]),
        [
            "environments/staging.json: $.networking.availability_zone_ids[1]: 'use1-az7' is not an AZ ID of "
            "us-east-1 (AWS lists use1-az1, use1-az2, use1-az3, use1-az4, use1-az5, use1-az6)"
        ],
    ),
    "region missing from the AZ data": (
        "prod",
        lambda d: d.update(dr_region="xx-north-9"),
        [
            "environments/prod.json: $.dr_networking.availability_zone_ids: no AZ IDs of xx-north-9 in "
            "roi_tf/data/az_ids.json (AWS's list, read 2026-11-26): add the region's from "
            "https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-availability-zones.html, or check "
            "the region"
        ],
    ),
    "instance class RDS does not offer": (
        "prod",
        set_path("database", "instance_class", value="db.r5.3xlarge"),
        [
            "environments/prod.json: $.database.instance_class: 'db.r5.3xlarge' is not a DB instance class RDS for "
            "PostgreSQL offers (AWS's list, read 2026-11-26: "
            "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.DBInstanceClass.Support.html)"
        ],
    ),
    "node type ElastiCache does not offer": (
        "dev",
        set_path("cache", "node_type", value="cache.t4g.xlarge"),
        [
            "environments/dev.json: $.cache.node_type: 'cache.t4g.xlarge' is not a node type ElastiCache offers "
            "(AWS's list, read 2026-11-26: "
            "https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/CacheNodes.SupportedTypes.html)"
        ],
    ),
    "Redis version ElastiCache does not offer": (
        "prod",
        set_path("cache", "engine_version", value="7.9"),
        [
            "environments/prod.json: $.cache.engine_version: '7.9' is not a Redis OSS version ElastiCache offers "
            "(AWS's list, read 2026-11-26: 7.0, 7.1; "
            "https://docs.aws.amazon.com/fr_fr/AmazonElastiCache/latest/red-ug/supported-engine-versions.html)"
        ],
    ),
    "GPU instance type EC2 does not offer": (
        "prod",
        lambda d: d["compute"]["gpu_training"].update(instance_type="g4dn.3xlarge"),
        GPU_TYPE_MESSAGE,
    ),
    "redis page at or below its warning": (
        "staging",
        set_path("monitoring", "thresholds", value={"memory_percent": 85, "redis_memory_critical_percent": 85}),
        [
            "environments/staging.json: $.monitoring.thresholds.redis_memory_critical_percent: 85 must exceed "
            "memory_percent 85 (the warning comes first, then the page)"
        ],
    ),
}


def packed(cases: dict[str, tuple[Any, Any, list[str]]]) -> list[tuple[str, ...]]:
    """The cases, up to one per environment file in each main.py run (each run costs a Python start): main.py
    reports the files in environment order, so a run's output is its cases' messages in that order. A case
    breaking several files runs alone."""
    single = {env: [c for c, (envs, _, _) in cases.items() if envs == env] for env in cfg.ENVIRONMENTS}
    runs = []
    while any(single.values()):
        runs.append(tuple(single[env].pop(0) for env in cfg.ENVIRONMENTS if single[env]))
    return runs + [(c,) for c, (envs, _, _) in cases.items() if not isinstance(envs, str)]


def test_packing_runs_every_case_once_and_never_two_on_one_file() -> None:
    runs = packed(BAD_INPUTS)
    assert sorted(c for run in runs for c in run) == sorted(BAD_INPUTS)
    for run in runs:
        files = [BAD_INPUTS[c][0] for c in run]
        assert len(run) == 1 or (all(isinstance(f, str) for f in files) and len(set(files)) == len(files))
    assert len(runs) < len(BAD_INPUTS) / 2


@pytest.mark.parametrize("cases", packed(BAD_INPUTS), ids=" + ".join)
def test_bad_input_gives_one_line_per_problem_and_leaves_cdktf_out_intact(
    workspace: Path, cases: tuple[str, ...]
) -> None:
    expected = []
    for case in cases:
        envs, change, messages = BAD_INPUTS[case]
        for env in (envs,) if isinstance(envs, str) else envs:
            break_file(workspace / "environments" / f"{env}.json", change)
        expected += messages
    before = tree_digest(workspace / "cdktf.out")

    done = run_main(workspace)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[:-1] == [f"error: {message}" for message in expected]
    assert lines[-1] == f"synth aborted: {len(expected)} problem(s); cdktf.out left unchanged"
    assert done.stdout == ""
    assert tree_digest(workspace / "cdktf.out") == before


def config_rule_sites() -> dict[int, str]:
    """Line -> source of every place roi_tf/config.py reports a broken rule (each ``<loader>.problem(...)`` call)."""
    source = Path(cfg.__file__).read_text()
    return {
        node.lineno: ast.get_source_segment(source, node).splitlines()[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "problem"
    }


# Bad files that are not an edit of valid JSON: (environment, how to break the file, first expected message).
RAW_INPUTS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "invalid JSON": (
        "staging",
        lambda path: path.write_text('{\n  "environment": "staging",\n  oops\n}\n'),
        "environments/staging.json: invalid JSON at line 3, column 3: Expecting property name enclosed in double "
        "quotes",
    ),
    "not UTF-8": (
        "prod",
        lambda path: path.write_bytes(path.read_bytes().replace(b'"platform"', b'"plat\xe9form"', 1)),
        "environments/prod.json: not UTF-8: byte 0xe9 at line 7, column 32 (save the file as UTF-8)",
    ),
    "key given twice": (
        "staging",
        lambda path: path.write_text(path.read_text().replace('"az_count": 2,', '"az_count": 2, "az_count": 3,', 1)),
        "environments/staging.json: $.networking.az_count: given twice in the same object (JSON keeps only the last "
        "one): remove one",
    ),
    "unreadable file": (
        "dev",
        lambda path: (path.unlink(), path.mkdir()),
        "environments/dev.json: cannot read: Is a directory",
    ),
}


@pytest.mark.parametrize("case", RAW_INPUTS)
def test_unreadable_input_is_one_line_naming_the_file(workspace: Path, case: str) -> None:
    env, breaks, expected = RAW_INPUTS[case]
    breaks(workspace / "environments" / f"{env}.json")
    before = tree_digest(workspace / "cdktf.out")
    done = run_main(workspace)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [f"error: {expected}", "synth aborted: 1 problem(s); cdktf.out left unchanged"]
    assert tree_digest(workspace / "cdktf.out") == before


def test_every_rule_in_config_py_has_a_bad_input_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checked_schema: dict[str, Any]
) -> None:
    """A rule nobody feeds a bad value can be broken unnoticed: every ``problem()`` call must fire for some case.

    The cases run in-process here (the same tables the command-line tests above run through main.py). No case edits
    the schema, so it is loaded and checked once (``check_schema`` costs ~40 ms a call).
    """
    monkeypatch.setattr(cfg, "load_schema", lambda environments_dir: checked_schema)
    fired: set[int] = set()
    report = cfg._Loader.problem

    def spy(self: cfg._Loader, json_path: str | None, message: str) -> None:
        fired.add(sys._getframe(1).f_lineno)
        report(self, json_path, message)

    monkeypatch.setattr(cfg._Loader, "problem", spy)
    edits = [
        ((envs,) if isinstance(envs, str) else envs, lambda path, change=change: break_file(path, change))
        for envs, change, _ in BAD_INPUTS.values()
    ]
    raw = [((env,), breaks) for env, breaks, _ in RAW_INPUTS.values()]
    for i, (envs, breaks) in enumerate(edits + raw):
        directory = tmp_path / str(i)
        shutil.copytree(ENV_DIR, directory)
        for env in envs:
            breaks(directory / f"{env}.json")
        with pytest.raises(cfg.ConfigError):
            cfg.load_environments(None, directory)
    sites = config_rule_sites()
    assert len(sites) >= 30, "the rule finder sees config.py's rules"
    assert {line: code for line, code in sites.items() if line not in fired} == {}


def test_unknown_environment_name(workspace: Path) -> None:
    before = tree_digest(workspace / "cdktf.out")
    done = run_main(workspace, "--env", "qa")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: unknown environment 'qa': expected one of dev, staging, prod",
        "synth aborted: 1 problem(s); cdktf.out left unchanged",
    ]
    assert tree_digest(workspace / "cdktf.out") == before


def test_problems_in_several_files_are_all_reported(workspace: Path) -> None:
    edit(workspace / "environments" / "dev.json", set_path("region", value="moon-1"))
    edit(workspace / "environments" / "prod.json", set_path("networking", "az_count", value=7))
    done = run_main(workspace)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: environments/dev.json: $.region: 'moon-1' does not match '^[a-z]{2}(-gov)?-[a-z]+-[0-9]$'",
        "error: environments/prod.json: $.networking.az_count: 7 is greater than the maximum of 6",
    ]


def test_check_mode_validates_without_writing(workspace: Path) -> None:
    before = tree_digest(workspace / "cdktf.out")
    done = run_main(workspace, "--check")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "configuration valid: dev, staging, prod"
    assert tree_digest(workspace / "cdktf.out") == before


def test_config_errors_are_found_without_importing_the_provider() -> None:
    """Bad input fails fast: the config module never imports cdktf or the provider."""
    code = (
        "import sys; import roi_tf.config as c; c.load_environments();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cdktf', 'cdktf_cdktf_provider_aws', 'jsii')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- the rules' boundaries, both sides, through load_environments ------------------------------


@pytest.fixture(scope="module")
def checked_schema() -> dict[str, Any]:
    return cfg.load_schema(ENV_DIR)


@pytest.fixture
def problems_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checked_schema: dict[str, Any]
) -> Callable[[str, Callable[[dict], None]], list[str]]:
    """The problems ``load_environments([env])`` (main.py's path) reports for an edited copy of ``<env>.json``.

    The schema is loaded and checked once: ``check_schema`` costs ~40 ms a call, the rest of a load ~2 ms.
    """
    shutil.copy(ENV_DIR / "schema.json", tmp_path / "schema.json")
    monkeypatch.setattr(cfg, "load_schema", lambda environments_dir: checked_schema)

    def problems(env: str, change: Callable[[dict], None]) -> list[str]:
        shutil.copy(ENV_DIR / f"{env}.json", tmp_path / f"{env}.json")
        edit(tmp_path / f"{env}.json", change)
        try:
            cfg.load_environments([env], tmp_path)
        except cfg.ConfigError as error:
            return [problem.split(": ", 1)[1] for problem in error.problems]  # without the file name
        return []

    return problems


def test_problems_after_sees_the_unedited_files_as_valid_and_a_bad_edit_as_invalid(problems_after) -> None:
    """Negative control for the helper the boundary tests below use."""
    for env in cfg.ENVIRONMENTS:
        assert problems_after(env, lambda data: None) == []
    assert problems_after("dev", set_path("compute", "api", "desired_count", value=0)) == [
        "$.compute.api.desired_count: 0 is less than the minimum of 1"
    ]


# AWS's documented Fargate task sizes (ECS developer guide, "Task CPU and memory"), written out here rather than
# read from config.FARGATE_MEMORY: CPU units -> every valid memory size in MiB.
AWS_FARGATE_MEMORY_MIB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: (1024, 2048, 3072, 4096),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),  # Linux platform 1.4.0 or later
    16384: tuple(range(32768, 122880 + 1, 8192)),  # Linux platform 1.4.0 or later
}
# Invalid sizes per CPU: below the lowest, one step above the highest, and one off the step inside the range.
AWS_FARGATE_INVALID_MIB: dict[int, tuple[int, ...]] = {
    256: (256, 1536, 3072, 4096),
    512: (512, 5120, 1536),
    1024: (1024, 9216, 2560),
    2048: (3072, 17408, 4608),
    4096: (7168, 31744, 8704),
    8192: (12288, 65536, 17408),
    16384: (24576, 131072, 36864),
}


def test_fargate_tables_cover_every_cpu_size_the_schema_allows(checked_schema: dict[str, Any]) -> None:
    """Guards a CPU size added to the schema without AWS's memory sizes for it written here."""
    cpus = checked_schema["$defs"]["ecs_service"]["properties"]["task_cpu"]["enum"]
    assert sorted(cpus) == sorted(AWS_FARGATE_MEMORY_MIB) == sorted(AWS_FARGATE_INVALID_MIB)


@pytest.mark.parametrize("cpu", AWS_FARGATE_MEMORY_MIB)
def test_fargate_sizes_accepted_are_exactly_aws_sizes(problems_after, cpu: int) -> None:
    """Guards the Fargate table and its bounds: a widened row (``1024: (2048, 16384, 1024)``) or an exclusive
    maximum (``low <= memory < high``) lets synth pass a task size that ECS then refuses to register."""
    accepted, rejected = set(), {}
    for memory in AWS_FARGATE_MEMORY_MIB[cpu] + AWS_FARGATE_INVALID_MIB[cpu]:
        found = problems_after(
            "dev", lambda data, memory=memory: data["compute"]["api"].update(task_cpu=cpu, task_memory_mib=memory)
        )
        if found:
            rejected[memory] = found
        else:
            accepted.add(memory)
    assert sorted(accepted) == sorted(AWS_FARGATE_MEMORY_MIB[cpu])
    for memory, found in rejected.items():  # one problem each, about the memory (the rule, or the schema's range)
        assert len(found) == 1 and found[0].startswith(f"$.compute.api.task_memory_mib: {memory} "), found


def test_fargate_rule_over_every_memory_size_the_schema_allows(checked_schema: dict[str, Any]) -> None:
    """Guards the whole table, not only its edges: every multiple of 512 MiB in the schema's range, for each CPU,
    is accepted by the Fargate rule exactly when AWS lists it."""
    memory_schema = checked_schema["$defs"]["ecs_service"]["properties"]["task_memory_mib"]
    loader = cfg._Loader(ENV_DIR / "dev.json", checked_schema)
    for cpu, valid in AWS_FARGATE_MEMORY_MIB.items():
        accepted = []
        for memory in range(memory_schema["minimum"], memory_schema["maximum"] + 1, 512):
            loader.problems.clear()
            raw = {"task_cpu": cpu, "task_memory_mib": memory, "desired_count": 1}
            loader._service("$.compute.api", {**raw, "autoscaling": {"enabled": False}})
            if not loader.problems:
                accepted.append(memory)
        assert accepted == list(valid), cpu


@pytest.mark.parametrize(
    ("backup_window", "maintenance_window", "expected"),
    [
        ("03:00-04:00", "sun:04:00-sun:05:00", []),  # back to back, either side
        ("03:00-04:00", "sun:02:00-sun:03:00", []),
        ("03:00-04:00", "sun:03:59-sun:05:00", ["overlap"]),  # one shared minute, either side
        ("03:00-04:00", "sun:02:00-sun:03:01", ["overlap"]),
        ("03:00-03:30", "sun:04:30-sun:05:30", []),  # exactly MIN_WINDOW_MINUTES
        ("03:00-03:29", "sun:04:30-sun:05:30", ["short"]),
        ("23:45-00:15", "sun:04:30-sun:05:30", []),  # 30 minutes across midnight
        ("23:45-00:14", "sun:04:30-sun:05:30", ["short"]),
    ],
)
@pytest.mark.parametrize("section", ["database", "cache"])
def test_window_boundaries(
    problems_after, section: str, backup_window: str, maintenance_window: str, expected: list[str]
) -> None:
    """Guards both window rules at their edges, for RDS and ElastiCache: back-to-back windows are valid and one
    minute of overlap is not (``<=`` in windows_overlap), 30 minutes is enough and 29 is not (``<=`` against
    MIN_WINDOW_MINUTES, or a different minimum)."""
    daily_key, service = ("backup_window", "RDS") if section == "database" else ("snapshot_window", "ElastiCache")
    messages = {
        "overlap": f"$.{section}.maintenance_window: {maintenance_window} overlaps {daily_key} {backup_window} "
        f"({service} rejects overlapping windows)",
        "short": f"$.{section}.{daily_key}: {backup_window} is shorter than 30 minutes",
    }
    found = problems_after(
        "staging",
        lambda data: data[section].update({daily_key: backup_window, "maintenance_window": maintenance_window}),
    )
    assert found == [messages[key] for key in expected]


@pytest.mark.parametrize(
    ("desired_count", "accepted"),
    [(1, False), (2, True), (3, True), (6, True), (7, False)],
)
def test_desired_count_boundaries_of_the_scaling_range(problems_after, desired_count: int, accepted: bool) -> None:
    """Guards the auto-scaling bounds (staging scales 2 to 6): both ends are inside, one beyond either is not."""
    found = problems_after("staging", set_path("compute", "api", "desired_count", value=desired_count))
    assert found == (
        [] if accepted else [f"$.compute.api.desired_count: {desired_count} is outside the auto-scaling range 2 to 6"]
    )


def put(*keys: str, value: Any) -> Callable[[dict], None]:
    """Set a nested value, creating the sections on the way (a section may be absent where defaults apply)."""

    def change(data: dict) -> None:
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    return change


# Schema limits that keep a running system safe: (env, path, the first value refused, the last value accepted).
SAFETY_LIMITS = {
    "the event source polls with 2 invocations: less reserved concurrency throttles it": (
        "prod", ("compute", "event_processing", "reserved_concurrency"), 1, 2),
    "an SQS batch above 10 needs a batching window, refused by the API at apply": (
        "prod", ("compute", "event_processing", "batch_size"), 11, 10),
    "no load balancer policy without TLS 1.3": (
        "prod", ("compute", "load_balancer", "ssl_policy"), "ELBSecurityPolicy-2016-08",
        "ELBSecurityPolicy-TLS13-1-2-2021-06"),
    "auto-scaling never scales a service to zero tasks": (
        "staging", ("compute", "api", "autoscaling", "min_capacity"), 0, 1),
    "the app runs as uid 1000, which cannot bind a privileged port": (
        "prod", ("compute", "api", "container_port"), 1023, 1024),
    "HSTS for at least a year": ("prod", ("cdn", "hsts_max_age_seconds"), 31535999, 31536000),
    "viewers get TLS 1.2 (2021 policy) or newer": (
        "prod", ("cdn", "minimum_protocol_version"), "TLSv1.2_2019", "TLSv1.2_2021"),
    "API responses are cached at most an hour": ("prod", ("cdn", "api_cache", "max_ttl_seconds"), 3601, 3600),
    "no 2018 viewer TLS policy (weaker ciphers)": (
        "prod", ("cdn", "minimum_protocol_version"), "TLSv1.2_2018", "TLSv1.2_2025"),
    "no TLS 1.0 for viewers": ("prod", ("cdn", "minimum_protocol_version"), "TLSv1_2016", "TLSv1.3_2025"),
    "the full URL never leaks to other sites": (
        "prod", ("cdn", "referrer_policy"), "unsafe-url", "strict-origin-when-cross-origin"),
    "nor over HTTP": ("prod", ("cdn", "referrer_policy"), "no-referrer-when-downgrade", "no-referrer"),
    "CloudFront's quota of 10 headers per origin request policy": (
        "prod", ("cdn", "api_forwarded_headers"), [f"X-H{i}" for i in range(11)], [f"X-H{i}" for i in range(10)]),
    "the API path is a prefix pattern (else /api/x would fall to the assets and their SPA rewrite)": (
        "prod", ("cdn", "api_path_pattern"), "/api", "/api/*"),
}  # fmt: skip


@pytest.mark.parametrize("limit", SAFETY_LIMITS)
def test_schema_limits_refuse_the_first_unsafe_value_and_accept_the_last_safe_one(problems_after, limit) -> None:
    env, path, refused, accepted = SAFETY_LIMITS[limit]
    where = "$." + ".".join(path)
    problems = problems_after(env, put(*path, value=refused))
    assert len(problems) == 1 and problems[0].startswith(f"{where}: "), problems
    assert problems_after(env, put(*path, value=accepted)) == []


def test_a_load_balancer_certificate_must_be_in_the_environments_own_region(problems_after) -> None:
    """In eu-west-1, an eu-west-1 certificate is accepted and a us-east-1 one refused (not the other way round)."""

    def moved(certificate_region: str) -> Callable[[dict], None]:
        def change(data: dict) -> None:
            data["region"] = "eu-west-1"
            data["networking"]["availability_zone_ids"] = ["euw1-az1", "euw1-az2"]
            data["compute"]["load_balancer"] = {
                "certificate_arn": CERTIFICATE.replace("us-east-1", certificate_region),
                "ingress": "cloudfront",
            }
            data["cdn"]["api_origin"] = False  # an existing certificate names no host for CloudFront

        return change

    assert problems_after("staging", moved("eu-west-1")) == []
    assert problems_after("staging", moved("us-east-1")) == [
        "$.compute.load_balancer.certificate_arn: is in us-east-1: a load balancer's certificate must be in eu-west-1"
    ]


@pytest.mark.parametrize("header", ["Authorization", "COOKIE", "Host"])
def test_headers_that_break_caching_or_the_origin_are_never_forwarded_whatever_their_case(problems_after, header):
    problems = problems_after("prod", put("cdn", "api_forwarded_headers", value=["Accept", header]))
    assert [p.split(": ", 1)[0] for p in problems] == ["$.cdn.api_forwarded_headers"]
    assert problems_after("prod", put("cdn", "api_forwarded_headers", value=["Accept", "X-Request-Id"])) == []


def test_the_default_ttl_may_not_exceed_the_maximum(problems_after) -> None:
    assert problems_after(
        "prod", put("cdn", "api_cache", value={"default_ttl_seconds": 90, "max_ttl_seconds": 60})
    ) == ["$.cdn.api_cache: TTLs must satisfy min <= default <= max (got 0, 90, 60)"]
    assert (
        problems_after("prod", put("cdn", "api_cache", value={"default_ttl_seconds": 60, "max_ttl_seconds": 60})) == []
    )


@pytest.mark.parametrize("section", [("cdn",), ("compute", "load_balancer")])
def test_a_zone_apex_is_in_its_zone_and_a_lookalike_is_not(problems_after, section) -> None:
    """Alias records at the apex are valid (CloudFront and load balancers); a name that merely ends alike is not."""

    def named(domain: str) -> Callable[[dict], None]:
        def change(data: dict) -> None:
            node = data
            for key in section:
                node = node[key]
            node.update(domain_name=domain, hosted_zone_name="roisystems.com")

        return change

    assert problems_after("prod", named("roisystems.com")) == []
    where = "$." + ".".join(section)
    assert problems_after("prod", named("xroisystems.com")) == [
        f"{where}.domain_name: xroisystems.com is not in the zone roisystems.com"
    ]


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("devops@roisystems.com", True),
        ("platform", True),
        ("Zoë Müller / équipe données", True),  # letters of any script, spaces, slash
        ("team:a=b+c-d_e.f", True),
        ("devops, platform", False),
        ("cost#center", False),
        ("owner <devops>", False),
        (" platform", False),  # AWS strips surrounding spaces: the tag would not match the config
        ("platform\t", False),
    ],
)
def test_tag_values_follow_awss_character_set(value: str, accepted: bool) -> None:
    assert (cfg.tag_problem(value) is None) is accepted


@pytest.mark.parametrize(
    ("node_type", "joins"),
    [("cache.r5.large", True), ("cache.m5.xlarge", True), ("cache.r7g.large", True), ("cache.m5.medium", False),
     ("cache.t4g.medium", False), ("cache.r4.large", False)],
)  # fmt: skip
def test_only_global_datastore_families_of_size_large_and_above_can_copy_the_cache(
    problems_after, node_type: str, joins: bool
) -> None:
    def change(d: dict) -> None:
        d["dr"]["cache_replica"] = True
        d["cache"]["node_type"] = node_type

    found = [p for p in problems_after("prod", change) if p.startswith("$.dr.cache_replica")]
    assert (found == []) is joins, found


def test_state_names_are_checked_against_the_environments_not_being_loaded(tmp_path: Path) -> None:
    """``main.py --env prod`` (deploy.sh) still refuses staging's state bucket: the other files are read for their
    names, even a file with problems of its own; names no one else uses pass."""
    shutil.copytree(ENV_DIR, tmp_path, dirs_exist_ok=True)
    prod = tmp_path / "prod.json"
    edit(prod, lambda d: d["state"].update(bucket="roi-systems-terraform-state-staging"))
    edit(tmp_path / "staging.json", lambda d: d["networking"].update(az_count=1))  # staging itself is broken
    with pytest.raises(cfg.ConfigError) as error:
        cfg.load_environments(["prod"], tmp_path)
    assert [p.split(": ", 2)[1:] for p in error.value.problems] == [
        ["$.state.bucket", "'roi-systems-terraform-state-staging' is staging's already: every environment keeps its "
         "state apart (S3 bucket names are global)"]
    ]  # fmt: skip
    edit(prod, lambda d: d["state"].update(bucket="roi-systems-terraform-state-prod-2"))
    assert list(cfg.load_environments(["prod"], tmp_path)) == ["prod"]


@pytest.mark.parametrize(
    ("version", "offered"),
    [("16", True), ("14", True), ("11", True), ("18", True), ("10", False), ("19", False), ("99", False)],
)
def test_only_postgresql_majors_rds_offers_pass(problems_after, version: str, offered: bool) -> None:
    found = [p for p in problems_after("prod", put("database", "engine_version", value=version))
             if p.startswith("$.database.engine_version")]  # fmt: skip
    assert (found == []) is offered, found

"""The environment diff (roi_tf/tools/envdiff.py, ``python -m roi_tf diff ENV1 ENV2``): staging against prod
value by value and resource type by type, checked against the configs and stacks themselves; an environment
against itself; the walk on hand-made cases; the table, the JSON and its schema; the command line."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import jsonschema
import pytest

from conftest import Stack, run_tool
from roi_tf.config import ENVIRONMENTS, BucketConfig
from roi_tf.tools import envdiff


@pytest.fixture(scope="module")
def staging_prod(stacks: dict[str, Stack], configs) -> dict[str, Any]:
    return envdiff.diff(configs["staging"], configs["prod"], stacks["staging"].json, stacks["prod"].json)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(envdiff.SCHEMA.read_text())


def values(document: Mapping[str, Any]) -> dict[str, tuple[str, Any, Any]]:
    return {c["path"]: (m["module"], c["left"], c["right"]) for m in document["modules"] for c in m["config"]}


def counts(document: Mapping[str, Any]) -> dict[tuple[str, str], tuple[int, int]]:
    return {(m["module"], r["type"]): (r["left"], r["right"]) for m in document["modules"] for r in m["resources"]}


def resolve(config: Any, path: str) -> Any:
    for key in path.split("."):
        if config is None:
            return None
        config = config[key] if isinstance(config, Mapping) else getattr(config, key)
    return envdiff.plain(config)


def test_staging_against_prod_names_the_documented_differences(staging_prod, configs) -> None:
    staging, prod = configs["staging"], configs["prod"]
    found, resources = values(staging_prod), counts(staging_prod)
    assert found["database.instance_class"] == ("database", "db.t4g.large", "db.r5.large")
    assert found["compute.api.task_cpu"] == ("compute", 1024, 4096)
    assert found["compute.api.task_memory_mib"] == ("compute", 2048, 8192)
    assert found["compute.api.desired_count"] == ("compute", 2, 3)
    assert found["compute.gpu_training.enabled"] == ("compute", False, True)
    assert found["cache.node_type"] == ("cache", staging.cache.node_type, prod.cache.node_type)
    assert found["dr_networking.vpc_cidr"] == ("dr_networking", None, "10.31.0.0/16")
    assert found["database.cross_region_replica"] == ("database", False, True)
    assert found["region" if staging.region != prod.region else "description"][0] == "environment"
    # GPU training capacity only in prod; the DR resources (standby VPC, cross-region replica, backup copies).
    for rtype in ("aws_autoscaling_group", "aws_launch_template", "aws_ecs_capacity_provider"):
        assert resources[("compute", rtype)] == (0, 1), rtype
    assert resources[("dr_networking", "aws_vpc")] == (0, 1)
    assert resources[("database", "aws_db_instance")] == (2, 3)
    assert resources[("database", "aws_db_instance_automated_backups_replication")] == (0, 1)
    assert resources[("security", "aws_kms_key")] == (7, 9)  # the keys construct, reported as security
    # What is equal is not reported: both have one read replica, the same engine.
    assert "database.read_replicas" not in found and "database.engine_version" not in found
    # prod's pilot light replicates the ML models and the event processor's packages too (its application tier).
    replicated = {env: sum(b.replicate for b in c.storage.buckets.values()) for env, c in (("s", staging), ("p", prod))}
    left, right = resources[("storage", "aws_s3_bucket")]
    assert right - left == replicated["p"] - replicated["s"] == 2
    assert not {"name", "source"} & {path.split(".")[0] for path in found}


def test_every_reported_value_is_the_configs_own_and_modules_are_sorted(staging_prod, configs) -> None:
    for path, (module, left, right) in values(staging_prod).items():
        assert left == resolve(configs["staging"], path) and right == resolve(configs["prod"], path), path
        assert left != right and module == (path.split(".")[0] if "." in path else "environment")
    names = [m["module"] for m in staging_prod["modules"]]
    assert names == sorted(names) and len(names) == len(set(names))
    for module in staging_prod["modules"]:
        paths, types = [c["path"] for c in module["config"]], [r["type"] for r in module["resources"]]
        assert paths == sorted(paths) and types == sorted(types) and (paths or types)


def test_resource_counts_add_up_to_each_stacks_own(staging_prod, stacks) -> None:
    """Per type, the reported module differences sum to the whole stacks' difference, and no type is missed."""
    left = Counter({t: len(items) for t, items in stacks["staging"].json["resource"].items()})
    right = Counter({t: len(items) for t, items in stacks["prod"].json["resource"].items()})
    delta: Counter[str] = Counter()
    for (_, rtype), (lcount, rcount) in counts(staging_prod).items():
        delta[rtype] += rcount - lcount
    for rtype in left.keys() | right.keys():
        assert delta[rtype] == right[rtype] - left[rtype], rtype
    # A module's count is its construct's: the database module of staging has its primary and replica.
    assert (
        stacks["staging"].under("database").count("aws_db_instance")
        == counts(staging_prod)[("database", "aws_db_instance")][0]
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_an_environment_against_itself_reports_nothing(stacks, configs, env) -> None:
    document = envdiff.diff(configs[env], configs[env], stacks[env].json, stacks[env].json)
    assert document == {"left": env, "right": env, "modules": []}
    assert envdiff.as_table(document) == f"{env} and {env}: no differences"


def test_the_walk_compares_sections_maps_and_missing_sections(configs) -> None:
    dev = configs["dev"]
    changed = dataclasses.replace(
        dev,
        name="other",
        source="elsewhere.json",
        storage=dataclasses.replace(
            dev.storage, buckets={**dev.storage.buckets, "extra": BucketConfig(description="x", replicate=True)}
        ),
        dr_networking=configs["prod"].dr_networking,
    )
    found = {path: (left, right) for path, left, right in envdiff.config_differences(dev, changed)}
    assert "name" not in found and "source" not in found  # skipped at the top
    assert found["storage.buckets.extra.replicate"] == (None, True)
    assert found["storage.buckets.extra.description"] == (None, "x")
    assert found["dr_networking.vpc_cidr"] == (None, "10.31.0.0/16")
    assert {p.split(".")[0] for p in found} == {"storage", "dr_networking"}
    assert envdiff.config_differences(dev, dataclasses.replace(dev, name="x")) == []


# --- Output ------------------------------------------------------------------------------------------------------


def test_the_table_is_readable_and_sorted(staging_prod) -> None:
    table = envdiff.as_table(staging_prod).splitlines()
    assert table[0] == f"staging -> prod: {len(staging_prod['modules'])} module(s) differ"
    database = table.index("database")
    section = table[database + 1 : table.index("", database)]
    assert '  database.instance_class: "db.t4g.large" -> "db.r5.large"' in section
    assert "  resources:" in section and "    aws_db_instance: 2 -> 3" in section
    headings = [line for line in table[1:] if line and not line.startswith(" ")]
    assert headings == sorted(headings) == [m["module"] for m in staging_prod["modules"]]


def test_the_json_follows_its_schema_and_a_broken_document_fails(staging_prod, schema) -> None:
    jsonschema.validate(staging_prod, schema)
    jsonschema.validate(json.loads(json.dumps(staging_prod)), schema)  # as printed
    broken = [json.loads(json.dumps(staging_prod)) for _ in range(4)]
    del broken[0]["modules"][0]["config"]
    broken[1]["modules"][-1]["resources"] = [{"type": "aws_vpc", "left": "0", "right": 1}]
    broken[2]["modules"][0] |= {"config": [], "resources": []}  # a module listed without a difference
    broken[3]["extra"] = True
    for document in broken:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(document, schema)


# --- The command line --------------------------------------------------------------------------------------------


run_diff = functools.partial(run_tool, "diff")


def test_the_command_prints_json_tables_and_exit_codes(current_outdir, staging_prod, schema, capsys) -> None:
    machine = run_diff("staging", "prod", "--format", "json", "--outdir", str(current_outdir))
    assert machine.returncode == 0 and machine.stderr == "", machine.stderr
    assert json.loads(machine.stdout) == json.loads(json.dumps(staging_prod))
    jsonschema.validate(json.loads(machine.stdout), schema)
    unknown = run_diff("staging", "qa")
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines() == ["error: unknown environment(s) qa: choose from dev, staging, prod"]
    assert envdiff.main(["staging", "prod", "--outdir", str(current_outdir)]) == 0
    out = capsys.readouterr()
    assert out.out == envdiff.as_table(staging_prod) + "\n" and out.err == ""
    assert envdiff.main(["dev", "dev", "--outdir", str(current_outdir)]) == 0
    assert capsys.readouterr().out == "dev and dev: no differences\n"

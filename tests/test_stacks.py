"""Stacks: providers, remote state, sensitive variables, and the state-bootstrap stack."""

from __future__ import annotations

import json

import pytest

from conftest import DUMMY_SECRETS, Stack, iter_strings
from roi_tf.config import ENVIRONMENTS, EnvironmentConfig


def test_one_stack_per_environment_plus_its_state_stack(stacks: dict[str, Stack]) -> None:
    assert sorted(stacks) == sorted([*ENVIRONMENTS, *(f"state-{e}" for e in ENVIRONMENTS)])


def test_manifest_lists_every_stack_with_its_directory(synth_outdir) -> None:
    manifest = json.loads((synth_outdir / "manifest.json").read_text())
    assert {name: s["workingDirectory"] for name, s in manifest["stacks"].items()} == {
        name: f"stacks/{name}" for name in [*ENVIRONMENTS, *(f"state-{e}" for e in ENVIRONMENTS)]
    }


def test_providers_default_region_dr_alias_and_global_alias(stack: Stack, config: EnvironmentConfig) -> None:
    providers = {p.get("alias"): p for p in stack.json["provider"]["aws"]}
    assert providers[None]["region"] == config.region == "us-east-1"
    assert providers["dr"]["region"] == config.dr_region == "us-west-2"
    assert providers["us_east_1"]["region"] == "us-east-1"


def test_every_provider_sets_the_default_tags(stack: Stack, config: EnvironmentConfig) -> None:
    expected = {
        "Project": "roi-systems",
        "Environment": config.name,
        "ManagedBy": "cdktf",
        "CostCenter": config.tags.cost_center,
        "Owner": config.tags.owner,
    }
    for provider in stack.json["provider"]["aws"]:
        assert provider["default_tags"] == [{"tags": expected}]


def test_s3_backend_uses_the_environment_key_lock_table_and_kms(stack: Stack, config: EnvironmentConfig) -> None:
    backend = stack.json["terraform"]["backend"]["s3"]
    assert backend["bucket"] == config.state.bucket
    assert backend["key"] == f"{config.name}/terraform.tfstate"
    assert backend["region"] == config.region
    assert backend["dynamodb_table"] == config.state.lock_table
    assert backend["encrypt"] is True
    assert backend["kms_key_id"] == f"alias/roi-systems-{config.name}-tfstate"
    assert backend.get("use_lockfile", False) is config.state.use_lockfile


@pytest.mark.parametrize(("env", "lockfile"), [("dev", True), ("staging", False), ("prod", False)], indirect=["env"])
def test_s3_native_locking_is_added_by_override_where_config_asks(stack: Stack, lockfile: bool) -> None:
    assert ("use_lockfile" in stack.json["terraform"]["backend"]["s3"]) is lockfile


def test_secret_variables_are_ephemeral_sensitive_required_and_validated(stack: Stack) -> None:
    """Ephemeral: Terraform never writes them to a plan or the state, and refuses them outside write-only arguments."""
    variables = stack.json["variable"]
    secrets = {name for name, variable in variables.items() if variable.get("sensitive") and variable.get("ephemeral")}
    assert secrets == {"db_password", "jwt_secret"}
    for name in secrets:
        variable = variables[name]
        assert variable["ephemeral"] is True, name
        assert variable["type"] == "string", name
        assert "default" not in variable, name
        assert variable["nullable"] is False, name
        assert f"var.{name}" in variable["validation"][0]["condition"], name
    # The JWT secret's minimum as a literal (README: 16 characters); db_password: tests/test_variable_validation.py.
    assert variables["jwt_secret"]["validation"][0]["condition"] == "${length(var.jwt_secret) >= 16}"


def test_pagerduty_url_is_a_sensitive_required_variable_only_where_critical_alerts_page(stack: Stack, config) -> None:
    """Never in config files: a sensitive input (redacted in plans), declared only when the route needs it."""
    variables = stack.json["variable"]
    pages = config.monitoring.critical.route == "pagerduty"
    assert ("pagerduty_integration_url" in variables) is pages
    assert pages is (config.name == "prod")
    if pages:
        variable = variables["pagerduty_integration_url"]
        assert variable["sensitive"] is True and variable["nullable"] is False and "default" not in variable
        # Not ephemeral: an SNS subscription's endpoint has no write-only argument (tests/test_secret_scan.py).
        assert "ephemeral" not in variable
        assert "var.pagerduty_integration_url" in variable["validation"][0]["condition"]


def test_deployment_inputs_are_required_plain_variables(stack: Stack) -> None:
    """What CI deploys (image tags, the event processor's package): required, validated, and not secret (they
    appear in plans, which is what a reviewer wants to see)."""
    variables = stack.json["variable"]
    inputs = {name for name, variable in variables.items() if not variable.get("sensitive")}
    assert inputs == {"api_image_tag", "ml_image_tag", "event_processor_code"}
    for name in inputs:
        variable = variables[name]
        assert "default" not in variable and variable["nullable"] is False and "ephemeral" not in variable, name
        assert f"var.{name}" in variable["validation"][0]["condition"], name


def test_no_secret_value_appears_in_any_synthesized_file(synth_outdir) -> None:
    for path in synth_outdir.rglob("*.json"):
        text = path.read_text()
        for value in DUMMY_SECRETS.values():
            assert value not in text, path


def _state_buckets(state_stack: Stack) -> dict[str, dict]:
    """The state stack's buckets by logical name: the state bucket, and its DR copy where configured."""
    return state_stack.resources("aws_s3_bucket")


def _primary_bucket(state_stack: Stack) -> tuple[str, dict]:
    return state_stack.one_primary("aws_s3_bucket")


def test_backend_names_exactly_what_the_state_stack_creates(stack: Stack, state_stack: Stack, config) -> None:
    backend = stack.json["terraform"]["backend"]["s3"]
    _, bucket = _primary_bucket(state_stack)
    (table,) = state_stack.resources("aws_dynamodb_table").values()
    assert bucket["bucket"] == backend["bucket"] and backend["region"] == config.region
    assert table["name"] == backend["dynamodb_table"]
    aliases = state_stack.find("aws_kms_alias", name=backend["kms_key_id"])
    assert sorted(str(a.get("provider")) for _, a in aliases) == ["None", *(["aws.dr"] if config.dr.enabled else [])]
    # The DR copy, where configured, is the only other bucket: in the DR region, under the configured name.
    copies = [b for b in _state_buckets(state_stack).values() if b is not bucket]
    assert [(b["bucket"], b["provider"]) for b in copies] == (
        [(config.dr.state_bucket, "aws.dr")] if config.dr.enabled else []
    )


def test_state_stack_keeps_its_own_state_in_the_bucket_it_creates(stack: Stack, state_stack: Stack, env: str) -> None:
    """Nothing lives only on one laptop: after the first bootstrap (local state, scripts/init.sh), the state stack's
    state is in its own bucket, beside the environment's, under its own key, locked and encrypted the same way."""
    backend = state_stack.json["terraform"]["backend"]
    assert list(backend) == ["s3"]
    environment = stack.json["terraform"]["backend"]["s3"]
    assert backend["s3"] == {**environment, "key": f"state-{env}/terraform.tfstate"}
    assert backend["s3"]["key"] != environment["key"]


def test_state_buckets_are_versioned_kms_encrypted_private_and_owner_enforced(state_stack: Stack, env: str) -> None:
    buckets = _state_buckets(state_stack)
    assert buckets
    for name, body in buckets.items():
        bucket, provider = Stack.ref("aws_s3_bucket", name, "id"), body.get("provider")
        _, sse = state_stack.one("aws_s3_bucket_server_side_encryption_configuration", bucket=bucket)
        (rule,) = sse["rule"]
        key_name = rule["apply_server_side_encryption_by_default"]["kms_master_key_id"].split(".")[1]
        assert rule["apply_server_side_encryption_by_default"] == {
            "sse_algorithm": "aws:kms",
            "kms_master_key_id": Stack.ref("aws_kms_key", key_name, "arn"),
        }
        assert rule["bucket_key_enabled"] is True and sse.get("provider") == provider
        key = state_stack.resources("aws_kms_key")[key_name]
        assert key["enable_key_rotation"] is True and key.get("provider") == provider
        # The same alias in each region: one backend setting (kms_key_id) names the key wherever the state is.
        _, alias = state_stack.one("aws_kms_alias", target_key_id=Stack.ref("aws_kms_key", key_name, "key_id"))
        assert alias["name"] == f"alias/roi-systems-{env}-tfstate" and alias.get("provider") == provider

        _, versioning = state_stack.one("aws_s3_bucket_versioning", bucket=bucket)
        assert versioning["versioning_configuration"]["status"] == "Enabled"
        _, pab = state_stack.one("aws_s3_bucket_public_access_block", bucket=bucket)
        for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            assert pab[flag] is True, flag
        _, ownership = state_stack.one("aws_s3_bucket_ownership_controls", bucket=bucket)
        assert ownership["rule"]["object_ownership"] == "BucketOwnerEnforced"
        _, lifecycle = state_stack.one("aws_s3_bucket_lifecycle_configuration", bucket=bucket)
        (expiry,) = lifecycle["rule"]
        assert expiry["noncurrent_version_expiration"] == [{"noncurrent_days": 365}]  # a year of state history


def test_state_bucket_policy_denies_every_request_without_tls_1_2(state_stack: Stack) -> None:
    """Each state bucket's policy holds only the two TLS denies (who reads the state is decided by IAM)."""
    for name in _state_buckets(state_stack):
        _, policy = state_stack.one("aws_s3_bucket_policy", bucket=Stack.ref("aws_s3_bucket", name, "id"))
        document = state_stack.data("aws_iam_policy_document")[policy["policy"].split(".")[2]]
        arn = Stack.ref("aws_s3_bucket", name, "arn")
        deny_all = {"effect": "Deny", "actions": ["s3:*"], "resources": [arn, f"{arn}/*"],
                    "principals": [{"type": "*", "identifiers": ["*"]}]}  # fmt: skip
        assert document["statement"] == [
            {**deny_all, "sid": "DenyInsecureTransport",
             "condition": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]},
            {**deny_all, "sid": "DenyOutdatedTls",
             "condition": [{"test": "NumericLessThan", "variable": "s3:TlsVersion", "values": ["1.2"]}]},
        ]  # fmt: skip


def test_state_resources_are_protected_from_destroy(state_stack: Stack) -> None:
    for rtype in ("aws_s3_bucket", "aws_dynamodb_table", "aws_kms_key"):
        for name, body in state_stack.resources(rtype).items():
            assert body["lifecycle"]["prevent_destroy"] is True, (rtype, name)
    for bucket in _state_buckets(state_stack).values():
        assert bucket["force_destroy"] is False


def test_lock_table_is_pay_per_request_recoverable_encrypted_and_deletion_protected(
    state_stack: Stack,
) -> None:
    (table,) = state_stack.resources("aws_dynamodb_table").values()
    assert table["hash_key"] == "LockID"
    assert table["attribute"] == [{"name": "LockID", "type": "S"}]
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["point_in_time_recovery"] == {"enabled": True}
    name, _ = _primary_bucket(state_stack)
    _, sse = state_stack.one(
        "aws_s3_bucket_server_side_encryption_configuration", bucket=Stack.ref("aws_s3_bucket", name, "id")
    )
    (rule,) = sse["rule"]
    assert table["server_side_encryption"] == {
        "enabled": True,
        "kms_key_arn": rule["apply_server_side_encryption_by_default"]["kms_master_key_id"],
    }
    assert table["deletion_protection_enabled"] is True
    assert "provider" not in table


def test_every_kms_key_rotates_and_has_its_own_policy(stacks: dict[str, Stack]) -> None:
    keys = [(s.name, n, k) for s in stacks.values() for n, k in s.resources("aws_kms_key").items()]
    assert keys
    for stack_name, name, key in keys:
        assert key["enable_key_rotation"] is True, (stack_name, name)
        policy = json.loads(key["policy"])
        principals = [s.get("Principal") for s in policy["Statement"]]
        assert "*" not in principals and {"AWS": "*"} not in principals, (stack_name, name)


def test_no_resource_hardcodes_an_account_id(stacks: dict[str, Stack]) -> None:
    import re

    for stack in stacks.values():
        for value in iter_strings(stack.json.get("resource", {})):
            assert not re.search(r"\b\d{12}\b", value), (stack.name, value)

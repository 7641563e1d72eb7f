"""Each configured value where it lands, on every resource of the kind, in every stack (state stacks included).

Module tests check their own resources; these walk every resource of a kind across all six stacks, so a value
that reaches most resources but not one (a state key, a DR log group, a replica bucket) is caught.
"""

from __future__ import annotations

import fnmatch

import pytest

from conftest import Stack
from roi_tf.config import ENVIRONMENTS, EnvironmentConfig

# Literals, not the production constants: a changed constant must fail here (README: state versions kept a year).
STATE_NONCURRENT_VERSION_DAYS = 365
STATE_ABORT_MULTIPART_DAYS = 7


CASES = [(env, kind) for env in (*ENVIRONMENTS, "canary") for kind in ("env", "state")]


@pytest.fixture(params=CASES, ids=[f"{kind}-{env}" for env, kind in CASES])
def case(request: pytest.FixtureRequest, stacks: dict[str, Stack], configs) -> tuple[Stack, EnvironmentConfig]:
    """Every stack with its configuration, the canary's too (conftest.canary_config: settings told apart)."""
    env, kind = request.param
    if env == "canary":
        config, canary_stacks = request.getfixturevalue("canary")
        return canary_stacks[config.name if kind == "env" else f"state-{config.name}"], config
    return stacks[env if kind == "env" else f"state-{env}"], configs[env]


def is_state(stack: Stack) -> bool:
    return stack.name.startswith("state-")


def log_retention(config: EnvironmentConfig, name: str) -> int:
    """The configured retention of a log group, by its name; unknown groups fail (add them here)."""
    env = config.name
    table = {
        f"/roi-systems/{env}/vpc-flow-logs": config.networking.flow_log_retention_days,
        f"/roi-systems/{env}/cloudtrail": config.security.cloudtrail_log_retention_days,
        f"/roi-systems/{env}/elasticache/redis/*": config.cache.log_retention_days,
        f"/aws/rds/instance/roi-systems-{env}-postgres*": config.database.log_retention_days,
        f"/aws/rds/proxy/roi-systems-{env}-postgres": config.database.log_retention_days,
        f"aws-waf-logs-roi-systems-{env}-*": config.security.waf_log_retention_days,
        f"/roi-systems/{env}/ecs/*": config.compute.log_retention_days,
        f"/roi-systems/{env}/ecs-exec": config.compute.log_retention_days,
        f"/roi-systems/{env}/lambda/*": config.compute.log_retention_days,
    }
    if config.dr_networking is not None:
        table[f"/roi-systems/{env}/dr/vpc-flow-logs"] = config.dr_networking.flow_log_retention_days
    if config.dr_networking is not None and config.dr.enabled:  # the pilot light's compute module
        for group in ("ecs/*", "ecs-exec", "lambda/*"):
            table[f"/roi-systems/{env}/dr/{group}"] = config.compute.log_retention_days
    if config.dr.enabled:  # the promoted database's RDS Proxy logs there (the group stands with the pilot light)
        table[f"/aws/rds/proxy/roi-systems-{env}-postgres-dr"] = config.database.log_retention_days
    (days,) = [days for pattern, days in table.items() if fnmatch.fnmatchcase(name, pattern)] or [None]
    assert days is not None, f"log group {name} has no configured retention in this table"
    return days


def test_every_kms_key_rotates_with_the_configured_deletion_window(case) -> None:
    any_stack, config = case
    expected = (
        config.state.kms_deletion_window_days if is_state(any_stack) else config.security.kms_deletion_window_days
    )
    keys = any_stack.resources("aws_kms_key")
    assert keys
    for name, key in keys.items():
        assert key["deletion_window_in_days"] == expected, f"{any_stack.name}: {name}"
        assert key["enable_key_rotation"] is True, f"{any_stack.name}: {name}"


def test_every_log_group_keeps_logs_for_the_configured_days(case) -> None:
    any_stack, config = case
    for name, group in any_stack.resources("aws_cloudwatch_log_group").items():
        assert group["retention_in_days"] == log_retention(config, group["name"]), f"{any_stack.name}: {name}"
        assert group["kms_key_id"].startswith("${aws_kms_key."), f"{any_stack.name}: {name} is not encrypted"


def test_every_secret_has_the_configured_recovery_window(case) -> None:
    any_stack, config = case
    for name, secret in any_stack.resources("aws_secretsmanager_secret").items():
        assert secret["recovery_window_in_days"] == config.security.secret_recovery_window_days, name


def test_every_bucket_expires_noncurrent_versions_and_aborts_uploads_as_configured(case) -> None:
    any_stack, config = case
    storage = config.storage
    expected_noncurrent = STATE_NONCURRENT_VERSION_DAYS if is_state(any_stack) else storage.noncurrent_expiration_days
    expected_abort = STATE_ABORT_MULTIPART_DAYS if is_state(any_stack) else storage.abort_incomplete_multipart_days
    lifecycles = {
        rule["bucket"]: rule["rule"] for rule in any_stack.resources("aws_s3_bucket_lifecycle_configuration").values()
    }
    buckets = any_stack.resources("aws_s3_bucket")
    assert buckets
    for name, bucket in buckets.items():
        rules = lifecycles[Stack.ref("aws_s3_bucket", name)]
        expirations = [e for r in rules for e in r.get("noncurrent_version_expiration", [])]
        assert expirations == [{"noncurrent_days": expected_noncurrent}], f"{any_stack.name}: {name}"
        aborts = [a for r in rules for a in r.get("abort_incomplete_multipart_upload", [])]
        assert aborts == [{"days_after_initiation": expected_abort}], f"{any_stack.name}: {name}"
        assert bucket["force_destroy"] is (storage.force_destroy and not is_state(any_stack)), name


def test_every_dynamodb_table_is_recoverable_encrypted_and_protected_as_configured(case) -> None:
    any_stack, config = case
    tables = any_stack.resources("aws_dynamodb_table")
    for name, table in tables.items():
        assert table["point_in_time_recovery"] == {"enabled": True}, name
        assert table["server_side_encryption"]["enabled"] is True, name
        assert table["server_side_encryption"]["kms_key_arn"].startswith("${aws_kms_key."), name
        protected = True if is_state(any_stack) else config.sessions.deletion_protection
        assert table["deletion_protection_enabled"] is protected, name
    assert len(tables) == (1 if is_state(any_stack) else int(config.sessions.enabled))

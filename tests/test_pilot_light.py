"""The DR pilot light (config section ``dr``): what is copied to the DR region while the primary serves.

The state's copy is in tests/test_dr_state.py, the images in tests/test_compute.py, the standby VPC and the database
replica in tests/test_dr.py; here the secrets and the sessions.
"""

from __future__ import annotations

from conftest import Stack
from roi_tf.config import EnvironmentConfig


def dr_data_key(stack: Stack, config: EnvironmentConfig) -> str:
    name, key = stack.kms_key(f"alias/roi-systems-{config.name}-dr-data")
    assert key["provider"] == "aws.dr"
    return Stack.ref("aws_kms_key", name, "arn")


def test_only_prod_has_a_pilot_light(configs) -> None:
    assert [env for env, config in configs.items() if config.dr.enabled] == ["prod"]


def test_every_secret_has_a_replica_in_the_dr_region_exactly_with_a_pilot_light(stack: Stack, config) -> None:
    secrets = stack.resources("aws_secretsmanager_secret")
    assert len(secrets) == 2
    expected = [{"region": config.dr_region, "kms_key_id": dr_data_key(stack, config)}] if config.dr.enabled else None
    for name, secret in secrets.items():
        assert secret.get("replica") == expected, name


def test_the_sessions_table_is_global_with_a_protected_recoverable_replica_with_a_pilot_light(
    stack: Stack, config
) -> None:
    tables = stack.resources("aws_dynamodb_table")
    assert len(tables) == int(config.sessions.enabled)
    for name, table in tables.items():
        if not config.dr.enabled:
            assert "replica" not in table and "stream_enabled" not in table, name
            continue
        assert table["replica"] == [
            {
                "region_name": config.dr_region,
                "kms_key_arn": dr_data_key(stack, config),
                "point_in_time_recovery": True,
                "propagate_tags": True,
                "deletion_protection_enabled": config.sessions.deletion_protection,
            }
        ]
        assert table["stream_enabled"] is True and table["stream_view_type"] == "NEW_AND_OLD_IMAGES"
        assert table["deletion_protection_enabled"] is True  # prod: the table and its replica alike

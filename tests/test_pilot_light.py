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


# Arguments AWS refuses on a Global Datastore's secondary: they come from the global group.
SECONDARY_REFUSES = ("engine", "engine_version", "node_type", "num_node_groups", "parameter_group_name",
                     "at_rest_encryption_enabled", "transit_encryption_enabled", "transit_encryption_mode",
                     "cluster_mode", "snapshot_arns", "snapshot_name")  # fmt: skip


def test_the_cache_is_a_global_datastore_exactly_where_configured(deployed) -> None:
    stack, config = deployed
    groups = stack.resources("aws_elasticache_replication_group")
    primary, _ = stack.one_primary("aws_elasticache_replication_group")
    datastores = stack.resources("aws_elasticache_global_replication_group")
    assert len(datastores) == len(groups) - 1 == int(config.dr.enabled and config.dr.cache_replica)
    ignored = groups[primary]["lifecycle"]["ignore_changes"]
    assert ("engine_version" in ignored) is bool(datastores)  # upgraded through the global group once in one
    for name, datastore in datastores.items():
        assert "provider" not in datastore
        assert datastore["primary_replication_group_id"] == Stack.ref("aws_elasticache_replication_group", primary)
        assert datastore["engine_version"] == config.cache.engine_version
        ((_, secondary),) = [(n, g) for n, g in groups.items() if n != primary]
        assert secondary["provider"] == "aws.dr"
        assert secondary["global_replication_group_id"] == Stack.ref(
            "aws_elasticache_global_replication_group", name, "global_replication_group_id"
        )
        assert not [argument for argument in SECONDARY_REFUSES if argument in secondary]
        assert secondary["replication_group_id"] == f"roi-systems-{config.name}-redis-dr"
        assert secondary["replicas_per_node_group"] == 0  # one node per shard while it stands by
        assert secondary["kms_key_id"] == dr_data_key(stack, config)
        assert secondary["snapshot_retention_limit"] == config.cache.snapshot_retention_days


def test_the_cache_secondary_has_its_own_users_group_and_logs_in_the_standby_vpc(deployed) -> None:
    stack, config = deployed
    if not (config.dr.enabled and config.dr.cache_replica):
        assert not [g for g in stack.resources("aws_elasticache_replication_group").values() if g.get("provider")]
        return
    (secondary,) = [g for g in stack.resources("aws_elasticache_replication_group").values() if g.get("provider")]
    name = f"roi-systems-{config.name}-redis"
    (user_group,) = secondary["user_group_ids"]
    _, group = stack.one("aws_elasticache_user_group", user_group_id=f"{name}-users", provider="aws.dr")
    assert user_group == Stack.ref("aws_elasticache_user_group", user_group.split(".")[1], "user_group_id")
    users = {stack.resources("aws_elasticache_user")[ref.split(".")[1]]["user_name"]: ref for ref in group["user_ids"]}
    assert sorted(users) == ["default", f"{name}-app"]  # the application's user name in either region
    for ref in users.values():
        user = stack.resources("aws_elasticache_user")[ref.split(".")[1]]
        assert user["provider"] == "aws.dr"
    (security_group_ref,) = secondary["security_group_ids"]
    security_group = stack.resources("aws_security_group")[security_group_ref.split(".")[1]]
    (vpc,) = [n for n, v in stack.resources("aws_vpc").items() if v.get("provider") == "aws.dr"]
    assert security_group["vpc_id"] == Stack.ref("aws_vpc", vpc) and security_group["provider"] == "aws.dr"
    dr_logs, _ = stack.kms_key(f"alias/roi-systems-{config.name}-dr-logs")
    for delivery in secondary["log_delivery_configuration"]:
        group_name = delivery["destination"].split(".")[1]
        log_group = stack.resources("aws_cloudwatch_log_group")[group_name]
        assert log_group["provider"] == "aws.dr"
        assert log_group["kms_key_id"] == Stack.ref("aws_kms_key", dr_logs, "arn")

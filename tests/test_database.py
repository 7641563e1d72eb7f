"""Database module: PostgreSQL, RDS Proxy, Redis and the sessions table in every environment's JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest
from redis_acl import allowed_commands, command_categories

from conftest import Stack

PG, REDIS = 5432, 6379


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def stack(stacks: dict[str, Stack], env: str) -> Stack:
    """The primary region's database; the standby VPC and the cross-region replica: tests/test_dr.py."""
    return stacks[env].excluding("dr_networking", "database/postgres/dr")


def key_arn(stack: Stack, env: str, purpose: str) -> str:
    name, _ = stack.kms_key(f"alias/roi-systems-{env}-{purpose}")
    return Stack.ref("aws_kms_key", name, "arn")


def primary(stack: Stack, env: str) -> tuple[str, dict]:
    return stack.one("aws_db_instance", identifier=f"roi-systems-{env}-postgres")


def replicas(stack: Stack) -> list[dict]:
    return [i for i in stack.resources("aws_db_instance").values() if "replicate_source_db" in i]


def sg_ref(stack: Stack, name: str) -> str:
    sg_name, _ = stack.one("aws_security_group", name=name)
    return Stack.ref("aws_security_group", sg_name)


def groups(stack: Stack, env: str) -> dict[str, str]:
    """References to the security groups of the chain."""
    return {
        "app": sg_ref(stack, f"roi-systems-{env}-app"),
        "db": sg_ref(stack, f"roi-systems-{env}-postgres"),
        "proxy": sg_ref(stack, f"roi-systems-{env}-postgres-proxy"),
        "cache": sg_ref(stack, f"roi-systems-{env}-redis"),
    }


def rules(stack: Stack, rtype: str, group: str) -> set[tuple[str, int, int, str]]:
    """(protocol, from, to, peer) of every rule of a type attached to a group."""
    return {
        (
            r["ip_protocol"],
            r.get("from_port"),
            r.get("to_port"),
            r.get("referenced_security_group_id") or r["cidr_ipv4"],
        )
        for r in stack.resources(rtype).values()
        if r["security_group_id"] == group
    }


def policy(stack: Stack, reference: str) -> dict:
    """The aws_iam_policy_document data source behind ``${data.aws_iam_policy_document.<name>.json}``."""
    return stack.data("aws_iam_policy_document")[reference.split(".")[2]]


def role_of(stack: Stack, reference: str) -> tuple[str, dict]:
    name = reference.split(".")[1]
    return name, stack.resources("aws_iam_role")[name]


# --- PostgreSQL -------------------------------------------------------------------------------------


def test_primary_is_postgres_on_autoscaling_gp3_with_configured_version_and_class(stack, config) -> None:
    db = config.database
    _, instance = primary(stack, config.name)
    assert instance["engine"] == "postgres"
    assert instance["engine_version"] == db.engine_version
    assert instance["instance_class"] == db.instance_class
    assert instance["storage_type"] == "gp3"
    assert instance["allocated_storage"] == db.allocated_storage_gb
    assert instance["max_allocated_storage"] == db.max_allocated_storage_gb > db.allocated_storage_gb
    assert instance["db_name"] == db.database_name
    assert instance["username"] == db.master_username
    assert instance["allow_major_version_upgrade"] is False


def test_master_password_is_write_only_from_the_ephemeral_variable_and_rotates_before_the_secret(stack, config):
    """The password never enters plan or state; the proxy's secret changes only after RDS has the new password."""
    name, instance = primary(stack, config.name)
    assert instance["password_wo"] == "${var.db_password}"
    assert instance["password_wo_version"] == config.security.db_password_version
    assert "password" not in instance
    for other_name, other in stack.resources("aws_db_instance").items():
        assert other is instance or not {"password", "password_wo"} & other.keys(), other_name
    secret_name, _ = stack.one("aws_secretsmanager_secret", name=f"roi-systems/{config.name}/database/master")
    (version,) = stack.find("aws_secretsmanager_secret_version", secret_id=Stack.ref("aws_secretsmanager_secret",
                                                                                       secret_name))  # fmt: skip
    assert version[1]["depends_on"] == [f"aws_db_instance.{name}"]
    assert version[1]["secret_string_wo_version"] == config.security.db_password_version


def test_primary_lives_in_the_isolated_subnet_group(stack, config) -> None:
    _, instance = primary(stack, config.name)
    (group_name,) = stack.resources("aws_db_subnet_group")
    assert instance["db_subnet_group_name"] == Stack.ref("aws_db_subnet_group", group_name, "name")


def test_every_instance_is_private_encrypted_and_behind_the_database_group(stack, config) -> None:
    instances = stack.resources("aws_db_instance")
    assert len(instances) == 1 + config.database.read_replicas
    data_key = key_arn(stack, config.name, "data")
    db_sg = groups(stack, config.name)["db"]
    for name, instance in instances.items():
        assert instance["publicly_accessible"] is False, name
        assert instance["storage_encrypted"] is True, name
        assert instance["kms_key_id"] == data_key, name
        assert instance["vpc_security_group_ids"] == [db_sg], name
        assert instance["port"] == PG, name


def test_every_instance_has_iam_auth_tls_logs_insights_monitoring_and_minor_upgrades(stack, config) -> None:
    db = config.database
    data_key = key_arn(stack, config.name, "data")
    (group_name,) = stack.resources("aws_db_parameter_group")
    for name, instance in stack.resources("aws_db_instance").items():
        assert instance["iam_database_authentication_enabled"] is True, name
        assert instance["parameter_group_name"] == Stack.ref("aws_db_parameter_group", group_name, "name"), name
        assert instance["ca_cert_identifier"] == "rds-ca-rsa2048-g1", name
        assert instance["enabled_cloudwatch_logs_exports"] == ["postgresql", "upgrade"], name
        assert instance["performance_insights_enabled"] is True, name
        assert instance["performance_insights_kms_key_id"] == data_key, name
        assert instance["performance_insights_retention_period"] == db.performance_insights_retention_days, name
        assert instance["monitoring_interval"] == db.monitoring_interval_seconds, name
        assert instance["auto_minor_version_upgrade"] is True, name
        assert instance["copy_tags_to_snapshot"] is True, name
        assert instance["maintenance_window"] == db.maintenance_window, name
        assert instance["apply_immediately"] is False, name


def test_parameter_group_family_follows_the_major_version_and_forces_tls_and_logging(stack, config) -> None:
    (group,) = stack.resources("aws_db_parameter_group").values()
    major = config.database.engine_version.split(".")[0]
    assert group["family"] == f"postgres{major}"
    assert group["lifecycle"] == {"create_before_destroy": True}
    # Exactly these: TLS only and at least 1.2 (1.3 would lock out RDS Proxy; docs/ARCHITECTURE.md, "TLS in
    # transit"), slow statements and DDL logged (never "all": it would log bind values, personal data), connections,
    # lock waits and temporary files logged.
    assert {p["name"]: p["value"] for p in group["parameter"]} == {
        "rds.force_ssl": "1",
        "ssl_min_protocol_version": "TLSv1.2",
        "log_min_duration_statement": str(config.database.log_min_duration_statement_ms),
        "log_statement": "ddl",
        "log_connections": "1",
        "log_disconnections": "1",
        "log_lock_waits": "1",
        "log_temp_files": "0",
    }


def test_every_instance_exports_into_precreated_encrypted_log_groups(stack, config) -> None:
    logs_key = key_arn(stack, config.name, "logs")
    log_groups = stack.resources("aws_cloudwatch_log_group")
    for name, instance in stack.resources("aws_db_instance").items():
        for export in instance["enabled_cloudwatch_logs_exports"]:
            group_name, group = stack.one(
                "aws_cloudwatch_log_group", name=f"/aws/rds/instance/{instance['identifier']}/{export}"
            )
            assert group["kms_key_id"] == logs_key, group_name
            assert group["retention_in_days"] == config.database.log_retention_days, group_name
            assert f"aws_cloudwatch_log_group.{group_name}" in instance["depends_on"], name
    assert log_groups


def test_every_instance_waits_for_its_monitoring_role_to_be_usable(stack) -> None:
    """RDS refuses an instance whose Enhanced Monitoring role lacks its policy yet ("monitoring role invalid")."""
    (attachment,) = [
        n
        for n, a in stack.resources("aws_iam_role_policy_attachment").items()
        if a["policy_arn"].endswith(":policy/service-role/AmazonRDSEnhancedMonitoringRole")
    ]
    for name, instance in stack.resources("aws_db_instance").items():
        assert f"aws_iam_role_policy_attachment.{attachment}" in instance["depends_on"], name


def test_enhanced_monitoring_role_trusts_only_rds_monitoring_of_this_account(stack, config) -> None:
    roles = {i["monitoring_role_arn"] for i in stack.resources("aws_db_instance").values()}
    (reference,) = roles
    role_name, role = role_of(stack, reference)
    (statement,) = policy(stack, role["assume_role_policy"])["statement"]
    assert statement["principals"] == [{"type": "Service", "identifiers": ["monitoring.rds.amazonaws.com"]}]
    assert statement["condition"] == [
        {
            "test": "StringEquals",
            "variable": "aws:SourceAccount",
            "values": ["${data.aws_caller_identity.current.account_id}"],
        }
    ]
    (attachment,) = (a for a in stack.resources("aws_iam_role_policy_attachment").values() if role_name in a["role"])
    assert attachment["policy_arn"].endswith(":iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole")


def test_backups_follow_config_and_protected_data_keeps_a_final_snapshot(stack, config) -> None:
    db = config.database
    _, instance = primary(stack, config.name)
    assert instance["backup_retention_period"] == db.backup_retention_days
    assert instance["backup_window"] == db.backup_window
    assert instance["deletion_protection"] is db.deletion_protection
    if db.deletion_protection:
        assert instance["skip_final_snapshot"] is False
        assert instance["final_snapshot_identifier"].startswith(f"roi-systems-{config.name}-postgres-final-")
        assert instance["delete_automated_backups"] is False
    else:
        assert instance["skip_final_snapshot"] is True
        assert "final_snapshot_identifier" not in instance
    for replica in replicas(stack):
        assert replica["deletion_protection"] is db.deletion_protection


def test_read_replicas_follow_config_and_replicate_the_primary(stack, config) -> None:
    primary_name, _ = primary(stack, config.name)
    found = replicas(stack)
    assert len(found) == config.database.read_replicas
    for i, replica in enumerate(sorted(found, key=lambda r: r["identifier"])):
        assert replica["identifier"] == f"roi-systems-{config.name}-postgres-replica-{i}"
        assert replica["replicate_source_db"] == Stack.ref("aws_db_instance", primary_name, "identifier")
        assert replica["instance_class"] == config.database.instance_class
        for own in ("password", "username", "db_subnet_group_name", "backup_retention_period"):
            assert own not in replica, f"a same-region replica inherits {own} from the primary"


def test_backup_replication_to_the_dr_region_follows_config(stack, config) -> None:
    found = stack.resources("aws_db_instance_automated_backups_replication")
    if not config.database.cross_region_backups:
        assert found == {}
        return
    (replication,) = found.values()
    primary_name, _ = primary(stack, config.name)
    assert replication["source_db_instance_arn"] == Stack.ref("aws_db_instance", primary_name, "arn")
    assert replication["provider"] == "aws.dr"
    assert replication["kms_key_id"] == key_arn(stack, config.name, "dr-data")
    assert replication["retention_period"] == config.database.backup_retention_days
    dr = {p.get("alias"): p for p in stack.json["provider"]["aws"]}["dr"]
    assert dr["region"] == config.dr_region


@pytest.mark.parametrize("env", ["dev"], indirect=True)
def test_dev_database_is_single_az_without_replicas_or_protection(stack, config) -> None:
    _, instance = primary(stack, config.name)
    assert instance["multi_az"] is False
    assert replicas(stack) == []
    assert instance["deletion_protection"] is False
    assert stack.resources("aws_db_instance_automated_backups_replication") == {}


@pytest.mark.parametrize("env", ["staging", "prod"], indirect=True)
def test_staging_and_prod_databases_are_multi_az_replicated_and_protected(stack, config) -> None:
    _, instance = primary(stack, config.name)
    assert instance["multi_az"] is True
    assert len(replicas(stack)) >= 1
    assert instance["deletion_protection"] is True


@pytest.mark.parametrize("env", ["prod"], indirect=True)
def test_prod_keeps_30_days_of_backups_replicated_to_us_west_2(stack, config) -> None:
    _, instance = primary(stack, config.name)
    assert instance["backup_retention_period"] == 30
    (replication,) = stack.resources("aws_db_instance_automated_backups_replication").values()
    assert replication["retention_period"] == 30
    dr = {p.get("alias"): p for p in stack.json["provider"]["aws"]}[replication["provider"].split(".")[1]]
    assert dr["region"] == "us-west-2"


# --- RDS Proxy --------------------------------------------------------------------------------------


def test_proxy_requires_tls_and_iam_and_reads_the_master_secret(stack, config) -> None:
    (proxy,) = stack.resources("aws_db_proxy").values()
    secret_name, _ = stack.one("aws_secretsmanager_secret", name=f"roi-systems/{config.name}/database/master")
    assert proxy["engine_family"] == "POSTGRESQL"
    assert proxy["require_tls"] is True
    assert proxy["debug_logging"] is False
    assert proxy["auth"] == [
        {
            "auth_scheme": "SECRETS",
            "iam_auth": "REQUIRED",
            "secret_arn": Stack.ref("aws_secretsmanager_secret", secret_name, "arn"),
            "description": proxy["auth"][0]["description"],
        }
    ]
    isolated = sorted(
        Stack.ref("aws_subnet", n) for n, s in stack.resources("aws_subnet").items() if s["tags"]["Tier"] == "isolated"
    )
    assert sorted(proxy["vpc_subnet_ids"]) == isolated
    assert proxy["vpc_security_group_ids"] == [groups(stack, config.name)["proxy"]]
    assert proxy["idle_client_timeout"] == config.database.proxy_idle_client_timeout_seconds


def test_proxy_pools_connections_to_the_primary_with_configured_limits(stack, config) -> None:
    db = config.database
    (proxy_name,) = stack.resources("aws_db_proxy")
    (group,) = stack.resources("aws_db_proxy_default_target_group").values()
    assert group["db_proxy_name"] == Stack.ref("aws_db_proxy", proxy_name, "name")
    assert group["connection_pool_config"] == {
        "max_connections_percent": db.proxy_max_connections_percent,
        "max_idle_connections_percent": db.proxy_max_idle_connections_percent,
        "connection_borrow_timeout": db.proxy_connection_borrow_timeout_seconds,
    }
    (target,) = stack.resources("aws_db_proxy_target").values()
    primary_name, _ = primary(stack, config.name)
    assert target["db_instance_identifier"] == Stack.ref("aws_db_instance", primary_name, "identifier")


def test_proxy_role_may_only_read_the_master_secret(stack, config) -> None:
    (proxy,) = stack.resources("aws_db_proxy").values()
    role_name, role = role_of(stack, proxy["role_arn"])
    (trust,) = policy(stack, role["assume_role_policy"])["statement"]
    assert trust["principals"] == [{"type": "Service", "identifiers": ["rds.amazonaws.com"]}]
    assert trust["condition"][0]["variable"] == "aws:SourceAccount"
    attached = [a for a in stack.resources("aws_iam_role_policy_attachment").values() if role_name in a["role"]]
    assert attached == [], "no managed policy on the proxy role"
    (inline,) = (p for p in stack.resources("aws_iam_role_policy").values() if role_name in p["role"])
    statements = {s["sid"]: s for s in policy(stack, inline["policy"])["statement"]}
    assert statements.keys() == {"ReadSecret", "DecryptSecretThroughSecretsManager"}
    secret_arn = proxy["auth"][0]["secret_arn"]
    assert statements["ReadSecret"]["resources"] == [secret_arn]
    assert set(statements["ReadSecret"]["actions"]) == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }
    assert statements["DecryptSecretThroughSecretsManager"]["resources"] == [key_arn(stack, config.name, "data")]
    assert statements["DecryptSecretThroughSecretsManager"]["condition"][0]["values"] == [
        f"secretsmanager.{config.region}.amazonaws.com"
    ]


def test_proxy_logs_go_to_a_precreated_encrypted_group(stack, config) -> None:
    _, group = stack.one("aws_cloudwatch_log_group", name=f"/aws/rds/proxy/roi-systems-{config.name}-postgres")
    assert group["kms_key_id"] == key_arn(stack, config.name, "logs")
    assert group["retention_in_days"] == config.database.log_retention_days


# --- Redis ------------------------------------------------------------------------------------------


def replication_group(stack: Stack) -> dict:
    (group,) = stack.resources("aws_elasticache_replication_group").values()
    return group


def test_redis_runs_in_cluster_mode_with_configured_shards_and_replicas(stack, config) -> None:
    cache, group = config.cache, replication_group(stack)
    assert group["engine"] == "redis"
    assert group["engine_version"] == cache.engine_version
    assert group["node_type"] == cache.node_type
    assert group["cluster_mode"] == "enabled"
    assert group["num_node_groups"] == cache.shards
    assert group["replicas_per_node_group"] == cache.replicas_per_shard
    assert group["automatic_failover_enabled"] is True, "cluster mode requires it"
    assert group["multi_az_enabled"] is (cache.replicas_per_shard > 0)
    assert group["port"] == REDIS
    (subnet_group,) = stack.resources("aws_elasticache_subnet_group")
    assert group["subnet_group_name"] == Stack.ref("aws_elasticache_subnet_group", subnet_group, "name")
    assert group["security_group_ids"] == [groups(stack, config.name)["cache"]]


@pytest.mark.parametrize(("env", "nodes", "multi_az"), [("dev", 1, False), ("prod", 2, True)], indirect=["env"])
def test_redis_nodes_and_multi_az_contrast_between_dev_and_prod(stack, nodes: int, multi_az: bool) -> None:
    """Design document: prod runs 2 x cache.r5.large; dev one small node."""
    group = replication_group(stack)
    assert group["num_node_groups"] * (1 + group["replicas_per_node_group"]) == nodes
    assert group["multi_az_enabled"] is multi_az


def test_redis_is_encrypted_at_rest_and_in_transit(stack, config) -> None:
    group = replication_group(stack)
    assert group["at_rest_encryption_enabled"] == "true"
    assert group["kms_key_id"] == key_arn(stack, config.name, "data")
    assert group["transit_encryption_enabled"] is True
    assert group["transit_encryption_mode"] == "required"
    assert "auth_token" not in group, "RBAC users with IAM authentication, no shared password"


def test_redis_users_authenticate_with_iam_and_the_default_user_is_off(stack, config) -> None:
    group = replication_group(stack)
    ((user_group_name, user_group),) = stack.resources("aws_elasticache_user_group").items()
    assert group["user_group_ids"] == [Stack.ref("aws_elasticache_user_group", user_group_name, "user_group_id")]
    users = {u["user_name"]: (n, u) for n, u in stack.resources("aws_elasticache_user").items()}
    app = f"roi-systems-{config.name}-redis-app"
    assert users.keys() == {"default", app}
    assert sorted(user_group["user_ids"]) == sorted(
        Stack.ref("aws_elasticache_user", n, "user_id") for n, _ in users.values()
    )
    _, default = users["default"]
    assert default["access_string"].startswith("off ")
    _, app_user = users[app]
    assert app_user["authentication_mode"] == {"type": "iam"}
    assert app_user["user_id"] == app_user["user_name"], "IAM authentication requires it"
    assert app_user["access_string"].startswith("on ")
    for _, user in users.values():
        assert "passwords" not in user and "passwords" not in user["authentication_mode"]


def test_redis_snapshots_and_windows_follow_config(stack, config) -> None:
    cache, group = config.cache, replication_group(stack)
    assert group["snapshot_retention_limit"] == cache.snapshot_retention_days
    assert group["snapshot_window"] == cache.snapshot_window
    assert group["maintenance_window"] == cache.maintenance_window
    assert group["auto_minor_version_upgrade"] == "true"
    assert ("final_snapshot_identifier" in group) is cache.final_snapshot
    # Changes wait for the maintenance window: an immediate one can restart nodes at peak time.
    assert group["apply_immediately"] is False
    ((_, parameters),) = stack.resources("aws_elasticache_parameter_group").items()
    # An engine upgrade brings a new family: the new group must exist before the group in use goes.
    assert parameters["lifecycle"] == {"create_before_destroy": True}


def test_redis_parameter_group_enables_cluster_mode_for_the_engine_family(stack, config) -> None:
    ((name, parameters),) = stack.resources("aws_elasticache_parameter_group").items()
    assert replication_group(stack)["parameter_group_name"] == Stack.ref(
        "aws_elasticache_parameter_group", name, "name"
    )
    assert parameters["family"] == f"redis{config.cache.engine_version.split('.')[0]}"
    assert parameters["parameter"] == [{"name": "cluster-enabled", "value": "yes"}]


def test_redis_delivers_slow_and_engine_logs_to_encrypted_groups(stack, config) -> None:
    deliveries = {d["log_type"]: d for d in replication_group(stack)["log_delivery_configuration"]}
    assert deliveries.keys() == {"slow-log", "engine-log"}
    for log_type, delivery in deliveries.items():
        group_name, group = stack.one_primary(
            "aws_cloudwatch_log_group", name=f"/roi-systems/{config.name}/elasticache/redis/{log_type}"
        )
        assert delivery["destination"] == Stack.ref("aws_cloudwatch_log_group", group_name, "name")
        assert delivery["destination_type"] == "cloudwatch-logs"
        assert group["kms_key_id"] == key_arn(stack, config.name, "logs")
        assert group["retention_in_days"] == config.cache.log_retention_days


# --- DynamoDB sessions ------------------------------------------------------------------------------


def test_sessions_table_follows_config(stack, config) -> None:
    sessions = config.sessions
    found = stack.find("aws_dynamodb_table", name=f"roi-systems-{config.name}-sessions")
    if not sessions.enabled:
        assert found == []
        return
    ((_, table),) = found
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["hash_key"] == "session_id"
    assert table["attribute"] == [{"name": "session_id", "type": "S"}]
    assert table["ttl"] == {"attribute_name": sessions.ttl_attribute, "enabled": True}
    assert table["point_in_time_recovery"] == {"enabled": True}
    assert table["server_side_encryption"] == {"enabled": True, "kms_key_arn": key_arn(stack, config.name, "data")}
    assert table["deletion_protection_enabled"] is sessions.deletion_protection
    assert table["tags"] == {"Name": f"roi-systems-{config.name}-sessions"}


@pytest.mark.parametrize(("env", "protected"), [("dev", False), ("staging", True), ("prod", True)], indirect=["env"])
def test_sessions_table_is_deletion_protected_outside_dev(stack, env: str, protected: bool) -> None:
    _, table = stack.one("aws_dynamodb_table", name=f"roi-systems-{env}-sessions")
    assert table["deletion_protection_enabled"] is protected


# --- the security-group chain ------------------------------------------------------------------------


def test_database_admits_postgres_only_from_the_application_and_the_proxy(stack, config) -> None:
    g = groups(stack, config.name)
    assert rules(stack, "aws_vpc_security_group_ingress_rule", g["db"]) == {
        ("tcp", PG, PG, g["app"]),
        ("tcp", PG, PG, g["proxy"]),
    }
    assert rules(stack, "aws_vpc_security_group_ingress_rule", g["proxy"]) == {("tcp", PG, PG, g["app"])}
    assert rules(stack, "aws_vpc_security_group_egress_rule", g["proxy"]) == {("tcp", PG, PG, g["db"])}
    assert rules(stack, "aws_vpc_security_group_egress_rule", g["db"]) == set(), "the database only answers"


def test_cache_admits_redis_only_from_the_application(stack, config) -> None:
    g = groups(stack, config.name)
    assert rules(stack, "aws_vpc_security_group_ingress_rule", g["cache"]) == {("tcp", REDIS, REDIS, g["app"])}
    assert rules(stack, "aws_vpc_security_group_egress_rule", g["cache"]) == set()


def test_application_may_reach_the_proxy_the_database_and_the_cache(stack, config) -> None:
    g = groups(stack, config.name)
    egress = rules(stack, "aws_vpc_security_group_egress_rule", g["app"])
    assert {("tcp", PG, PG, g["proxy"]), ("tcp", PG, PG, g["db"]), ("tcp", REDIS, REDIS, g["cache"])} <= egress


def test_no_rule_anywhere_opens_postgres_or_redis_to_anything_but_the_app_and_proxy(stack, config) -> None:
    g = groups(stack, config.name)
    allowed = {g["app"], g["proxy"]}
    for name, rule in stack.resources("aws_vpc_security_group_ingress_rule").items():
        low, high = rule.get("from_port", 0), rule.get("to_port", 65535)
        if rule["ip_protocol"] == "-1" or low <= PG <= high or low <= REDIS <= high:
            assert rule.get("referenced_security_group_id") in allowed, name
            assert "cidr_ipv4" not in rule and "cidr_ipv6" not in rule, name
    for name, sg in stack.resources("aws_security_group").items():
        assert "ingress" not in sg and "egress" not in sg, f"{name}: rules are separate resources, none hides inline"
    assert stack.resources("aws_security_group_rule") == {}, "legacy rules would bypass the checks above"


def test_every_security_group_is_attached_to_what_it_guards(stack) -> None:
    """Stands in for checkov's CKV2_AWS_5, which does not know that aws_db_proxy (and ECS services, functions and
    launch templates, whose groups sit in nested blocks) attach groups: a group nothing uses is a leftover."""
    attached = stack.attached_security_groups()
    unattached = {
        name: group["name"]
        for name, group in stack.resources("aws_security_group").items()
        if Stack.ref("aws_security_group", name) not in attached
    }
    # But one: the pilot light's event processor group before the failover creates its function (and load balancers,
    # dr.standby_compute off), which its role's policy names already: IAM's control plane is in us-east-1.
    if stack.under("dr_compute").resources("aws_security_group") and not stack.under("dr_compute").resources("aws_lb"):
        (events,) = [n for n, g in unattached.items() if g.endswith("-dr-events")]
        role_policies = json.dumps(stack.under("dr_compute/events").data("aws_iam_policy_document"))
        assert f"security-group/${{aws_security_group.{events}.id}}" in role_policies
        del unattached[events]
    assert unattached == {}


# --- outputs ----------------------------------------------------------------------------------------


def test_outputs_name_the_endpoints_the_application_connects_to(stack, config) -> None:
    outputs = stack.json["output"]
    (proxy_name,) = stack.resources("aws_db_proxy")
    assert outputs["database_proxy_endpoint"]["value"] == Stack.ref("aws_db_proxy", proxy_name, "endpoint")
    group_name = next(iter(stack.resources("aws_elasticache_replication_group")))
    assert outputs["cache_configuration_endpoint"]["value"] == Stack.ref(
        "aws_elasticache_replication_group", group_name, "configuration_endpoint_address"
    )
    assert outputs["database_port"]["value"] == PG
    assert outputs["cache_port"]["value"] == REDIS
    assert len(outputs["database_replica_endpoints"]["value"]) == config.database.read_replicas
    assert ("sessions_table_name" in outputs) is config.sessions.enabled
    for name in ("database_proxy_endpoint", "database_endpoint", "cache_configuration_endpoint", "cache_user_name"):
        assert outputs[name]["description"], name
        assert outputs[name].get("sensitive") is not True, name


def test_module_uses_no_literal_secret(stack) -> None:
    """The only secret the database module touches is the db_password variable, by reference."""
    for rtype in ("aws_db_instance", "aws_elasticache_replication_group", "aws_elasticache_user", "aws_db_proxy"):
        for name, body in stack.resources(rtype).items():
            text = json.dumps(body)
            assert "auth_token" not in text and "passwords" not in text, name
            if "password" in body:
                assert body["password"] == "${var.db_password}", name


# --- what the Redis users may run ---------------------------------------------------------------------

# What a cache-and-queue client runs (reads, writes, expiry, streams, blocking pops, scripts, pub/sub,
# transactions, cluster topology, the server version) and what it must never run.
APP_NEEDS = (
    "get", "set", "mget", "incr", "expire", "del", "unlink", "exists", "scan", "type", "hset", "hgetall", "lpush",
    "brpop", "lmove", "blmove", "zadd", "zrangebyscore", "bzpopmin", "sadd", "xadd", "xreadgroup", "xack",
    "evalsha", "eval", "script|load", "publish", "subscribe", "multi", "exec", "watch", "ping", "hello", "auth",
    "readonly", "info", "cluster|slots", "cluster|shards", "cluster|nodes",
)  # fmt: skip
NEVER = (
    "flushall", "flushdb", "keys", "config|get", "config|set", "debug", "monitor", "shutdown", "swapdb", "migrate",
    "restore", "sort", "client|kill", "acl|setuser", "cluster|failover", "cluster|reset", "bgsave", "save",
    "replicaof", "module|load",
)  # fmt: skip


def redis_users(stack: Stack) -> dict[str, dict]:
    return {u["user_name"]: u for u in stack.resources("aws_elasticache_user").values()}


def test_redis_app_user_may_run_what_the_application_needs_and_nothing_dangerous(stack, config) -> None:
    """Guards against +@all (which leaves FLUSHALL, FLUSHDB and KEYS to anyone holding a task role) and against a
    rule so narrow that cluster-mode clients cannot even discover the topology."""
    app = redis_users(stack)[f"roi-systems-{config.name}-redis-app"]
    allowed = allowed_commands(app["access_string"])
    assert set(APP_NEEDS) <= allowed, set(APP_NEEDS) - allowed
    assert not set(NEVER) & allowed
    assert (
        not {name for name, categories in command_categories().items() if "@dangerous" in categories} - {"info"}
        & allowed
    ), "nothing @dangerous but INFO"


def test_redis_default_user_can_run_nothing(stack) -> None:
    default = redis_users(stack)["default"]
    assert allowed_commands(default["access_string"]) == frozenset()


def test_the_acl_evaluator_refuses_what_it_does_not_understand() -> None:
    """Control: a typo in a rule must not read as 'allowed' or 'denied' silently."""
    with pytest.raises(ValueError, match="unknown command"):
        allowed_commands("on ~* +flushal")
    assert "flushall" in allowed_commands("on ~* +@all")
    assert "flushall" not in allowed_commands("on ~* +@all -@dangerous")
    assert allowed_commands("off +@all") == frozenset()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (Debian: redis-server)")
def test_the_acl_evaluator_agrees_with_a_real_redis_server(tmp_path) -> None:
    """The offline evaluator, checked against Redis's own ACL DRYRUN for every command, with our access string."""
    from roi_tf.modules.database.cache import APP_ACCESS_STRING

    port = "6397"
    server = subprocess.Popen(["redis-server", "--port", port, "--save", ""], stdout=subprocess.DEVNULL)
    cli = ["redis-cli", "-p", port]
    try:
        for _ in range(50):
            if subprocess.run([*cli, "PING"], capture_output=True, text=True).stdout.strip() == "PONG":
                break
            time.sleep(0.1)
        subprocess.run([*cli, "ACL", "SETUSER", "app", "reset", *APP_ACCESS_STRING.split(), "nopass"], check=True)
        names = subprocess.run([*cli, "COMMAND", "LIST"], capture_output=True, text=True, check=True).stdout.split()
        info = json.loads(subprocess.run([*cli, "--json", "COMMAND", "INFO", *names], capture_output=True,
                                         text=True, check=True).stdout)  # fmt: skip
        arity: dict[str, int] = {}

        def walk(entries: list) -> None:
            for entry in entries:
                arity[entry[0]] = entry[1]
                walk(entry[9])

        walk(info)
        mine = allowed_commands(APP_ACCESS_STRING)
        leaves = [n for n in arity if "|" in n or not any(k.startswith(f"{n}|") for k in arity)]
        for name in leaves:
            words = name.split("|")
            args = words + ["1"] * max(abs(arity[name]) - len(words), 0)
            answer = subprocess.run([*cli, "ACL", "DRYRUN", "app", *args], capture_output=True, text=True).stdout
            assert answer.strip() == "OK" or "no permissions" in answer, (name, answer)
            assert (answer.strip() == "OK") is (name in mine), name
        assert len(leaves) > 300
    finally:
        server.terminate()
        server.wait()

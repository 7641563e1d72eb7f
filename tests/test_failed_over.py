"""prod failed over (``dr.active``): the promoted replica is the database, behind its own RDS Proxy, and the standby
VPC has the primary's NAT gateways and endpoints; the standing prod has none of it. Terraform's loader and checkov
run over this shape in test_terraform_loader.py and test_checkov_gate.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import Stack
from roi_tf.config import EnvironmentConfig

DR = "aws.dr"
IDENTIFIER = "roi-systems-prod-postgres"


def in_dr(stack: Stack, rtype: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in stack.resources(rtype).items() if body.get("provider") == DR}


def dr_instance(stack: Stack) -> tuple[str, dict[str, Any]]:
    ((name, body),) = in_dr(stack, "aws_db_instance").items()
    return name, body


@pytest.fixture
def prod(stacks: dict[str, Stack]) -> Stack:
    return stacks["prod"]


def test_the_replica_is_promoted_with_the_primarys_settings(failed_over: Stack, configs) -> None:
    db = configs["prod"].database
    _, promoted = dr_instance(failed_over)
    assert promoted["identifier"] == f"{IDENTIFIER}-dr"
    assert "replicate_source_db" not in promoted
    # failover.sh promotes it; Terraform must not try again from a state that still names the lost source.
    assert promoted["lifecycle"] == {"ignore_changes": ["replicate_source_db"], "prevent_destroy": True}
    assert promoted["multi_az"] is db.multi_az is True
    assert promoted["deletion_protection"] is True and promoted["skip_final_snapshot"] is False
    assert promoted["final_snapshot_identifier"] == f"{IDENTIFIER}-dr-final-promoted"
    assert promoted["delete_automated_backups"] is False
    assert promoted["backup_retention_period"] == db.backup_retention_days
    assert promoted["apply_immediately"] is True  # Multi-AZ now, not at the next maintenance window
    assert promoted["storage_encrypted"] is True and promoted["iam_database_authentication_enabled"] is True


def test_standing_the_replica_replicates_and_nothing_else_is_there(prod: Stack) -> None:
    _, replica = dr_instance(prod)
    primary, _ = prod.one_primary("aws_db_instance", identifier=IDENTIFIER)
    assert replica["replicate_source_db"] == Stack.ref("aws_db_instance", primary, "arn")
    assert replica["multi_az"] is False and replica["skip_final_snapshot"] is True
    assert replica["apply_immediately"] is False
    assert "ignore_changes" not in replica["lifecycle"]
    for rtype in ("aws_db_proxy", "aws_nat_gateway", "aws_eip"):
        assert in_dr(prod, rtype) == {}, rtype
    # The gateway endpoints (S3, DynamoDB: free) stand there already; no interface endpoint (billed hourly).
    assert sorted(e["vpc_endpoint_type"] for e in in_dr(prod, "aws_vpc_endpoint").values()) == ["Gateway"] * 2


def test_the_promoted_database_has_its_own_proxy(failed_over: Stack) -> None:
    instance, promoted = dr_instance(failed_over)
    ((name, proxy),) = in_dr(failed_over, "aws_db_proxy").items()
    # failover.sh checks the proxy under the instance's name.
    assert proxy["name"] == promoted["identifier"]
    assert proxy["require_tls"] is True and proxy["debug_logging"] is False
    (auth,) = proxy["auth"]
    assert auth["iam_auth"] == "REQUIRED" and auth["auth_scheme"] == "SECRETS"
    secret, _ = failed_over.one("aws_secretsmanager_secret", name="roi-systems/prod/database/master")
    # The credentials' replica in the DR region (the primary's secret may be unreachable).
    assert auth["secret_arn"] == (f'${{replace(aws_secretsmanager_secret.{secret}.arn, ":us-east-1:", ":us-west-2:")}}')
    role, _ = failed_over.one("aws_iam_role", name=f"{IDENTIFIER}-dr-proxy")
    assert proxy["role_arn"] == Stack.ref("aws_iam_role", role, "arn")
    ((group, dr_group),) = in_dr(failed_over, "aws_db_subnet_group").items()
    assert promoted["db_subnet_group_name"] == Stack.ref("aws_db_subnet_group", group, "name")
    assert proxy["vpc_subnet_ids"] == dr_group["subnet_ids"]
    ((_, target),) = in_dr(failed_over, "aws_db_proxy_target").items()
    assert target["db_instance_identifier"] == Stack.ref("aws_db_instance", instance, "identifier")
    assert target["db_proxy_name"] == Stack.ref("aws_db_proxy", name, "name")
    ((_, pool),) = in_dr(failed_over, "aws_db_proxy_default_target_group").items()
    assert pool["db_proxy_name"] == Stack.ref("aws_db_proxy", name, "name")
    ((_, logs),) = [(n, g) for n, g in in_dr(failed_over, "aws_cloudwatch_log_group").items()
                    if g["name"] == f"/aws/rds/proxy/{IDENTIFIER}-dr"]  # fmt: skip
    key, _ = failed_over.kms_key("alias/roi-systems-prod-dr-logs")
    assert logs["kms_key_id"] == Stack.ref("aws_kms_key", key, "arn")


def test_the_dr_proxy_admits_the_dr_application_and_reaches_only_the_promoted_database(failed_over: Stack) -> None:
    ((_, proxy),) = in_dr(failed_over, "aws_db_proxy").items()
    (group_ref,) = proxy["vpc_security_group_ids"]
    groups = {Stack.ref("aws_security_group", n): g for n, g in failed_over.resources("aws_security_group").items()}
    assert groups[group_ref]["name"] == f"{IDENTIFIER}-dr-proxy" and groups[group_ref]["provider"] == DR
    _, promoted = dr_instance(failed_over)
    (database_group,) = promoted["vpc_security_group_ids"]
    app = [r for r, g in groups.items() if g.get("provider") == DR and g["name"] == "roi-systems-prod-dr-app"]
    ingress = failed_over.resources("aws_vpc_security_group_ingress_rule")
    into_proxy = [r for r in ingress.values() if r["security_group_id"] == group_ref]
    assert [(r["referenced_security_group_id"], r["from_port"], r["to_port"]) for r in into_proxy] == [
        (app[0], 5432, 5432)
    ]
    from_proxy = [r for r in ingress.values() if r.get("referenced_security_group_id") == group_ref]
    assert [(r["security_group_id"], r["from_port"]) for r in from_proxy] == [(database_group, 5432)]


@pytest.mark.parametrize("shape", ["standing", "failed_over"])
def test_the_dr_proxy_role_exists_while_idle_and_reads_only_the_credentials_replica(
    shape: str, prod: Stack, failed_over: Stack
) -> None:
    """IAM's control plane is in us-east-1: the role is created with the pilot light, not during the outage."""
    stack = failed_over if shape == "failed_over" else prod
    role, _ = stack.one("aws_iam_role", name=f"{IDENTIFIER}-dr-proxy")
    trust = json.dumps(stack.json["data"]["aws_iam_policy_document"])
    assert "rds.amazonaws.com" in trust
    (policy,) = [p for p in stack.resources("aws_iam_role_policy").values()
                 if p["role"] == Stack.ref("aws_iam_role", role, "name")]  # fmt: skip
    document = policy["policy"].removeprefix("${data.aws_iam_policy_document.").removesuffix(".json}")
    statements = {s["sid"]: s for s in stack.data("aws_iam_policy_document")[document]["statement"]}
    secret, _ = stack.one("aws_secretsmanager_secret", name="roi-systems/prod/database/master")
    assert statements["ReadSecret"]["resources"] == [
        f'${{replace(aws_secretsmanager_secret.{secret}.arn, ":us-east-1:", ":us-west-2:")}}'
    ]
    key, _ = stack.kms_key("alias/roi-systems-prod-dr-data")
    decrypt = statements["DecryptSecretThroughSecretsManager"]
    assert decrypt["actions"] == ["kms:Decrypt"] and decrypt["resources"] == [Stack.ref("aws_kms_key", key, "arn")]
    assert decrypt["condition"][0]["values"] == ["secretsmanager.us-west-2.amazonaws.com"]
    assert set(statements) == {"ReadSecret", "DecryptSecretThroughSecretsManager"}


def test_the_standby_vpc_gets_the_primarys_nat_and_endpoints(failed_over: Stack, configs) -> None:
    net, dr_net = configs["prod"].networking, configs["prod"].dr_networking
    assert dr_net is not None and dr_net.nat_gateway_count == 0 and dr_net.interface_endpoints == ()
    nat = in_dr(failed_over, "aws_nat_gateway")
    assert len(nat) == min(net.nat_gateway_count, len(dr_net.availability_zone_ids)) == 2
    endpoints = in_dr(failed_over, "aws_vpc_endpoint")
    interface = sorted(e["service_name"] for e in endpoints.values() if e["vpc_endpoint_type"] == "Interface")
    assert interface == sorted(f"com.amazonaws.us-west-2.{s}" for s in net.interface_endpoints)
    # Private subnets route to a NAT gateway of their own zone's (one per zone).
    routes = [r for r in in_dr(failed_over, "aws_route").values() if "nat_gateway_id" in r]
    assert sorted(r["nat_gateway_id"] for r in routes) == sorted(Stack.ref("aws_nat_gateway", n) for n in nat)


def test_nothing_outside_the_dr_region_changes_but_the_new_outputs(prod: Stack, failed_over: Stack) -> None:
    """The failover touches us-west-2 only: every other resource and data source is the standing prod's."""
    for block in ("resource", "data"):
        for rtype in {*prod.json[block], *failed_over.json[block]}:
            standing = {n: b for n, b in prod.json[block].get(rtype, {}).items() if b.get("provider") != DR}
            failed = {n: b for n, b in failed_over.json[block].get(rtype, {}).items() if b.get("provider") != DR}
            assert failed == standing, (block, rtype)
    added = set(failed_over.json["output"]) - set(prod.json["output"])
    # The promoted database's proxy, and what the failover adds to the application tier (prod's dr.standby_compute is
    # off: its load balancers, services and function), what failover.sh starts its services with, prefixed dr_.
    standby = {
        f"dr_{name}"
        for name in ("ecs_cluster_name", "api_service_name", "ml_service_name", "api_task_definition_arn",
                     "ml_task_definition_arn", "api_load_balancer_dns_name", "ml_service_url",
                     "event_processor_function_name", "regional_web_acl_arn")
    }  # fmt: skip
    assert added == {"database_dr_proxy_endpoint", *standby}
    assert set(prod.json["output"]) <= set(failed_over.json["output"])


def test_the_switch_is_off_in_every_shipped_environment(configs: dict[str, EnvironmentConfig]) -> None:
    assert [c.dr.active for c in configs.values()] == [False] * len(configs)


def test_failed_over_the_promoted_database_is_watched_as_the_primary_and_not_for_lag(
    prod: Stack, failed_over: Stack, configs
) -> None:
    """A promoted instance stops reporting ReplicaLag: its lag alarm (missing data breaching) would page for ever,
    while nothing watched the database that now takes the writes."""
    th = configs["prod"].monitoring.thresholds

    def alarms(stack: Stack) -> dict[str, dict[str, Any]]:
        return {
            a["alarm_name"].removeprefix("roi-systems-prod-"): a
            for a in stack.resources("aws_cloudwatch_metric_alarm").values()
        }

    standing, failed = alarms(prod), alarms(failed_over)
    instance, _ = dr_instance(failed_over)
    assert "critical-database-dr-replica-lag" in standing and "critical-database-dr-cpu" not in standing
    assert "critical-database-dr-replica-lag" not in failed
    expected = {
        "critical-database-dr-cpu": ("CPUUtilization", th.database_cpu_percent),
        "critical-database-dr-free-storage": ("FreeStorageSpace", th.database_free_storage_gb * 1024**3),
    }
    for name, (metric, threshold) in expected.items():
        alarm = failed[name]
        assert alarm["provider"] == DR and alarm["metric_name"] == metric and alarm["threshold"] == threshold
        assert alarm["dimensions"] == {"DBInstanceIdentifier": Stack.ref("aws_db_instance", instance, "identifier")}
        assert alarm["treat_missing_data"] == "breaching"
        (topic,) = alarm["alarm_actions"]
        topic_name = topic.split(".")[1]
        assert failed_over.resources("aws_sns_topic")[topic_name]["provider"] == DR
    # Everything else alarms as it stood, but for the DR region's services (tests/test_dr_compute.py).
    services = {name for name in failed if name.startswith("critical-dr-")}
    assert len(services) == 5
    assert set(failed) - set(expected) - services == set(standing) - {"critical-database-dr-replica-lag"}

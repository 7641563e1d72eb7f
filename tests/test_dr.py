"""The DR region: a standby VPC with no running cost, and the cross-region database replica inside it."""

from __future__ import annotations

import ipaddress

import pytest

from conftest import Stack
from roi_tf.config import EnvironmentConfig

DR = "aws.dr"


def dr_network(stack: Stack) -> Stack:
    """Only what the standby VPC's construct created."""
    return stack.under("dr_networking")


def test_only_prod_has_a_standby_vpc_and_a_cross_region_replica(configs) -> None:
    assert configs["prod"].dr_networking is not None and configs["prod"].database.cross_region_replica
    assert configs["dev"].dr_networking is None and configs["staging"].dr_networking is None


def test_standby_vpc_exists_exactly_where_configured(stack: Stack, config: EnvironmentConfig) -> None:
    vpcs = [v for v in stack.resources("aws_vpc").values() if v.get("provider") == DR]
    assert len(vpcs) == (1 if config.dr_networking else 0)


@pytest.mark.parametrize("env", ["prod"], indirect=True)
def test_everything_of_the_standby_vpc_is_in_the_dr_region(stack: Stack) -> None:
    net = dr_network(stack)
    bodies = [b for block in ("resource", "data") for items in net.json[block].values() for b in items.values()]
    assert len(bodies) > 30
    assert all(b.get("provider") == DR for b in bodies)


@pytest.mark.parametrize("env", ["prod"], indirect=True)
def test_standby_vpc_has_its_own_cidr_pinned_zones_and_no_running_cost(stack: Stack, config) -> None:
    net, dr = dr_network(stack), config.dr_networking
    (vpc,) = net.resources("aws_vpc").values()
    assert vpc["cidr_block"] == str(dr.vpc_cidr)
    assert not ipaddress.ip_network(vpc["cidr_block"]).overlaps(config.networking.vpc_cidr)
    assert {s["availability_zone_id"] for s in net.resources("aws_subnet").values()} == set(dr.availability_zone_ids)
    assert net.count("aws_nat_gateway") == 0 and net.count("aws_eip") == 0
    assert all(e["vpc_endpoint_type"] == "Gateway" for e in net.resources("aws_vpc_endpoint").values())
    assert all(
        e["service_name"].startswith(f"com.amazonaws.{config.dr_region}.")
        for e in net.resources("aws_vpc_endpoint").values()
    )
    for route in net.resources("aws_route").values():
        assert "gateway_id" in route and "nat_gateway_id" not in route  # only the public tier reaches the internet


@pytest.mark.parametrize("env", ["prod"], indirect=True)
def test_standby_flow_logs_are_encrypted_with_the_dr_logs_key(stack: Stack, config: EnvironmentConfig) -> None:
    net = dr_network(stack)
    (flow,) = net.resources("aws_flow_log").values()
    assert flow["traffic_type"] == "ALL"
    (group,) = net.resources("aws_cloudwatch_log_group").values()
    assert group["name"] == f"/roi-systems/{config.name}/dr/vpc-flow-logs"
    key_name, key = stack.kms_key(f"alias/roi-systems-{config.name}-dr-logs")
    assert group["kms_key_id"] == Stack.ref("aws_kms_key", key_name, "arn")
    assert key["provider"] == DR
    (role,) = net.resources("aws_iam_role").values()
    assert role["name"] == f"roi-systems-{config.name}-dr-vpc-flow-logs"  # IAM is global: a name of its own


# --- the cross-region replica ----------------------------------------------------------------------


def dr_replicas(stack: Stack) -> list[tuple[str, dict]]:
    return [(n, b) for n, b in stack.resources("aws_db_instance").items() if b.get("provider") == DR]


def test_cross_region_replica_exists_exactly_where_configured(stack: Stack, config: EnvironmentConfig) -> None:
    assert len(dr_replicas(stack)) == int(config.database.cross_region_replica)
    assert ("database_dr_replica_endpoint" in stack.json["output"]) is config.database.cross_region_replica


@pytest.mark.parametrize("env", ["prod"], indirect=True)
def test_cross_region_replica_copies_the_primary_encrypted_with_the_dr_key(stack: Stack, config) -> None:
    ((name, replica),) = dr_replicas(stack)
    (primary,) = [n for n, b in stack.resources("aws_db_instance").items() if "replicate_source_db" not in b]
    assert replica["replicate_source_db"] == Stack.ref("aws_db_instance", primary, "arn")  # cross-region: by ARN
    dr_key, _ = stack.kms_key(f"alias/roi-systems-{config.name}-dr-data")
    assert (
        replica["kms_key_id"] == replica["performance_insights_kms_key_id"] == Stack.ref("aws_kms_key", dr_key, "arn")
    )
    assert replica["storage_encrypted"] is True and replica["publicly_accessible"] is False
    assert replica["iam_database_authentication_enabled"] is True
    # Promoted, it is the new primary: it keeps backups and deletion protection from the start.
    assert replica["backup_retention_period"] == config.database.backup_retention_days
    assert replica["deletion_protection"] is True
    net = dr_network(stack)
    (subnet_group,) = net.resources("aws_db_subnet_group")
    assert replica["db_subnet_group_name"] == Stack.ref("aws_db_subnet_group", subnet_group, "name")
    parameter_group = stack.resources("aws_db_parameter_group")[replica["parameter_group_name"].split(".")[1]]
    assert parameter_group["provider"] == DR
    assert {"name": "rds.force_ssl", "value": "1", "apply_method": "pending-reboot"} in parameter_group["parameter"]
    assert {"name": "ssl_min_protocol_version", "value": "TLSv1.2"} in parameter_group["parameter"]
    assert stack.json["output"]["database_dr_replica_endpoint"]["value"] == Stack.ref(
        "aws_db_instance", name, "address"
    )


@pytest.mark.parametrize("env", ["prod"], indirect=True)
def test_cross_region_replica_admits_postgres_only_from_the_dr_application_group(stack: Stack, config) -> None:
    ((_, replica),) = dr_replicas(stack)
    (group_ref,) = replica["vpc_security_group_ids"]
    group = stack.resources("aws_security_group")[group_ref.split(".")[1]]
    net = dr_network(stack)
    (vpc,) = net.resources("aws_vpc")
    assert group["vpc_id"] == Stack.ref("aws_vpc", vpc) and group["provider"] == DR
    (app,) = [n for n, g in net.resources("aws_security_group").items() if g["name"].endswith("-dr-app")]
    ingress = [
        r
        for r in stack.resources("aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == group_ref
    ]
    assert [(r["referenced_security_group_id"], r["from_port"], r["to_port"]) for r in ingress] == [
        (Stack.ref("aws_security_group", app), 5432, 5432)
    ]
    assert all(r["provider"] == DR for r in ingress)
    assert not [
        r for r in stack.resources("aws_vpc_security_group_egress_rule").values() if r["security_group_id"] == group_ref
    ]


@pytest.mark.parametrize("env", ["prod"], indirect=True)
def test_cross_region_replica_logs_into_encrypted_groups_in_the_dr_region(stack: Stack, config) -> None:
    ((_, replica),) = dr_replicas(stack)
    dr_logs, _ = stack.kms_key(f"alias/roi-systems-{config.name}-dr-logs")
    for export in replica["enabled_cloudwatch_logs_exports"]:
        _, group = stack.one("aws_cloudwatch_log_group", name=f"/aws/rds/instance/{replica['identifier']}/{export}")
        assert group["provider"] == DR
        assert group["kms_key_id"] == Stack.ref("aws_kms_key", dr_logs, "arn")


@pytest.mark.parametrize("env", ["prod"], indirect=True)
def test_only_the_standby_application_group_waits_for_its_tasks(stack: Stack) -> None:
    """Stands in for checkov's CKV2_AWS_5 in the DR region, as tests/test_database.py does in the primary."""
    attached = stack.attached_security_groups()
    dr_groups = {n: g for n, g in stack.resources("aws_security_group").items() if g.get("provider") == DR}
    unattached = {g["name"] for n, g in dr_groups.items() if Stack.ref("aws_security_group", n) not in attached}
    assert len(dr_groups) >= 2
    # Attached once the services and the event processor's function exist there (the failover creates them: prod's
    # dr.standby_compute is off). The event processor's group stands ready: its role's policy names it.
    assert unattached == {"roi-systems-prod-dr-app", "roi-systems-prod-dr-events"}

"""prod while its database fails back (``dr.failback_replica``, with ``dr.active``): us-east-1's instance is a
cross-region replica of the promoted one in us-west-2, catching up until failback-database.sh promotes it; and what
the script takes out of Terraform's state between the shapes (stackinfo retire). Terraform's loader and checkov run
over this shape in test_terraform_loader.py and test_checkov_gate.py."""

from __future__ import annotations

from typing import Any

from conftest import Stack
from roi_tf.config import EnvironmentConfig
from roi_tf.tools.stackinfo import retirements

IDENTIFIER = "roi-systems-prod-postgres"
# What a replica inherits from its source, and RDS refuses on one.
INHERITED = ("engine", "engine_version", "username", "password_wo", "password_wo_version", "db_name",
             "allocated_storage")  # fmt: skip


def resources(stack: Stack) -> dict[str, dict[str, Any]]:
    return {f"{t}.{n}": body for t, items in stack.json["resource"].items() for n, body in items.items()}


def in_primary_region(stack: Stack, rtype: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in stack.resources(rtype).items() if "provider" not in body}


def test_the_primary_replicates_from_the_promoted_database(failing_back: Stack, configs) -> None:
    db = configs["prod"].database
    name, primary = failing_back.one_primary("aws_db_instance", identifier=IDENTIFIER)
    ((promoted_name, promoted),) = [
        (n, b) for n, b in failing_back.resources("aws_db_instance").items() if b.get("provider") == "aws.dr"
    ]
    assert promoted["identifier"] == f"{IDENTIFIER}-dr" and "replicate_source_db" not in promoted
    # Cross-region: the source by ARN; this region's key, subnets and security group.
    assert primary["replicate_source_db"] == Stack.ref("aws_db_instance", promoted_name, "arn")
    data_key, _ = failing_back.kms_key("alias/roi-systems-prod-data")
    assert primary["kms_key_id"] == Stack.ref("aws_kms_key", data_key, "arn")
    assert primary["db_subnet_group_name"].startswith("${aws_db_subnet_group.")
    assert all(key not in primary for key in INHERITED), [key for key in INHERITED if key in primary]
    assert primary["multi_az"] is False and primary["skip_final_snapshot"] is True
    # Ignored after creation: named now, for the final snapshot the promoted primary takes.
    assert primary["final_snapshot_identifier"] == f"{IDENTIFIER}-final-failback"
    assert primary["lifecycle"]["ignore_changes"] == ["final_snapshot_identifier"]
    # Promoted at the cut-over, it must already keep backups, and keep them past an accidental destroy.
    assert primary["backup_retention_period"] == db.backup_retention_days
    assert primary["delete_automated_backups"] is False and primary["deletion_protection"] is True
    assert primary["lifecycle"]["prevent_destroy"] is True
    assert primary["storage_encrypted"] is True and primary["iam_database_authentication_enabled"] is True
    assert name == failing_back.one_primary("aws_db_instance", identifier=IDENTIFIER)[0]


def test_while_it_replicates_nothing_else_hangs_on_the_primary(
    failing_back: Stack, failed_over: Stack, stacks: dict[str, Stack], configs: dict[str, EnvironmentConfig]
) -> None:
    """No read replica, backups replication or proxy target while the primary is a replica (RDS refuses each); the
    read replicas' log groups stay, since the replicas come back under their names. Standing and failed over, prod
    has all of them."""
    count = configs["prod"].database.read_replicas
    assert count >= 1
    for stack, replicas, attached in ((stacks["prod"], count, 1), (failed_over, count, 1), (failing_back, 0, 0)):
        instances = in_primary_region(stack, "aws_db_instance").values()
        same_region = [b for b in instances if "-replica-" in b["identifier"]]
        assert len(same_region) == replicas, stack.path
        assert len(stack.resources("aws_db_instance_automated_backups_replication")) == attached
        targets = [b for b in stack.resources("aws_db_proxy_target").values() if "provider" not in b]
        assert len(targets) == attached and len(in_primary_region(stack, "aws_db_proxy")) == 1
        log_groups = {b["name"] for b in in_primary_region(stack, "aws_cloudwatch_log_group").values()}
        for i in range(count):
            assert f"/aws/rds/instance/{IDENTIFIER}-replica-{i}/postgresql" in log_groups


def test_failing_back_changes_only_the_primary_region_database(failing_back: Stack, failed_over: Stack) -> None:
    """Everything in the DR region is the failed-over prod's but the primary's backups copied there; in us-east-1
    only the database changes shape (and what lists its instances: the dashboard, the events rule)."""
    before, after = resources(failed_over), resources(failing_back)
    changed = {a for a in before.keys() & after.keys() if before[a] != after[a]}
    both = {**before, **after}
    in_dr = {a.split(".")[0] for a in changed | (before.keys() ^ after.keys()) if both[a].get("provider") == "aws.dr"}
    assert in_dr == {"aws_db_instance_automated_backups_replication"}
    assert {a.split(".")[0] for a in before.keys() - after.keys()} == {
        "aws_db_instance", "aws_db_instance_automated_backups_replication", "aws_db_proxy_target",
        "aws_cloudwatch_metric_alarm",  # the read replica's
    }  # fmt: skip
    assert after.keys() - before.keys() == set()
    assert {a.split(".")[0] for a in changed} == {
        "aws_db_instance",
        "aws_cloudwatch_dashboard",
        "aws_cloudwatch_event_rule",
    }


def lines(found: list[tuple[str, str]], action: str) -> list[str]:
    return [argument for kind, argument in found if kind == action]


def test_the_first_run_retires_the_stale_primary_and_its_replicas(failed_over: Stack, failing_back: Stack) -> None:
    found = retirements(failed_over.json, failing_back.json)
    # In this order: out of the proxy first (a renamed instance would stay its target), renamed, then forgotten.
    assert [kind for kind, _ in found] == ["deregister", "rename", "rename", *["forget"] * 4]
    assert lines(found, "deregister") == [f"us-east-1 {IDENTIFIER} {IDENTIFIER}"]
    # The primary comes back as a replica under its name; the read replica is gone from the new shape.
    assert lines(found, "rename") == [f"us-east-1 {IDENTIFIER} replica", f"us-east-1 {IDENTIFIER}-replica-0 absent"]
    forgotten = {argument.split()[0] for argument in lines(found, "forget")}
    primary, _ = failed_over.one_primary("aws_db_instance", identifier=IDENTIFIER)
    replica, _ = failed_over.one_primary("aws_db_instance", identifier=f"{IDENTIFIER}-replica-0")
    ((target, _),) = in_primary_region(failed_over, "aws_db_proxy_target").items()
    ((backups, _),) = failed_over.resources("aws_db_instance_automated_backups_replication").items()
    assert forgotten == {
        f"aws_db_instance.{primary}", f"aws_db_instance.{replica}", f"aws_db_proxy_target.{target}",
        f"aws_db_instance_automated_backups_replication.{backups}",
    }  # fmt: skip
    # The promoted database, which the primary now replicates from, stays.
    assert not [argument for argument in lines(found, "rename") if "-dr " in argument]


def test_the_cut_over_retires_the_dr_database_and_forgets_what_only_failover_has(
    failing_back: Stack, stacks: dict[str, Stack]
) -> None:
    standing = stacks["prod"]
    found = retirements(failing_back.json, standing.json)
    assert lines(found, "deregister") == [f"us-west-2 {IDENTIFIER}-dr {IDENTIFIER}-dr"]
    # The promoted primary (a replica before) stays; the DR database, a replica again, is a new instance.
    assert lines(found, "rename") == [f"us-west-2 {IDENTIFIER}-dr replica"]
    # The Redis the failover made goes, with a final snapshot: the next failover makes it again under its name.
    assert lines(found, "delete-cache") == ["us-west-2 roi-systems-prod-redis-dr"]
    assert [kind for kind, _ in found][:3] == ["deregister", "rename", "delete-cache"]
    forgotten = {argument.split()[0] for argument in lines(found, "forget")}
    protected_gone = {
        f"{t}.{n}"
        for t, items in failing_back.json["resource"].items()
        for n, body in items.items()
        if body.get("lifecycle", {}).get("prevent_destroy") and n not in standing.resources(t)
    }
    assert {a.split(".")[0] for a in protected_gone} == {"aws_elasticache_replication_group"}
    assert protected_gone <= forgotten
    assert {a.split(".")[0] for a in forgotten - protected_gone} == {"aws_db_instance", "aws_db_proxy_target"}


def test_what_holds_logs_of_the_failed_over_region_stands_with_the_pilot_light(
    failed_over: Stack, stacks: dict[str, Stack]
) -> None:
    """Every protected resource of the failed-over prod is in the standing prod, the same (so failing back forgets
    none and the next failover creates none that a failback left behind: the DR proxy's, the DR cache's and the DR
    web ACL's log groups), but the Redis the failover makes, which the failback deletes with a final snapshot."""
    standing = resources(stacks["prod"])
    protected = {a: b for a, b in resources(failed_over).items() if b.get("lifecycle", {}).get("prevent_destroy")}
    assert {a.split(".")[0] for a in protected.keys() - standing.keys()} == {"aws_elasticache_replication_group"}
    # The same groups (names, keys, retention); the databases differ by role only (test_failed_over.py).
    assert [a for a, b in protected.items() if a in standing and standing[a] != b] == [
        a for a in protected if a.startswith("aws_db_instance.") and "_dr_" in a
    ]
    log_groups = {b["name"] for b in standing.values() if b.get("provider") == "aws.dr" and "retention_in_days" in b}
    assert {"/aws/rds/proxy/roi-systems-prod-postgres-dr", "aws-waf-logs-roi-systems-prod-regional",
            "/roi-systems/prod/elasticache/redis/slow-log"} <= log_groups  # fmt: skip


def test_nothing_is_retired_between_equal_shapes(stacks: dict[str, Stack], failed_over: Stack) -> None:
    """The other side: no change of shape, nothing retired; failing over (standing to failed over) neither, as the
    failover promotes the replica in place."""
    assert retirements(stacks["prod"].json, stacks["prod"].json) == []
    assert retirements(stacks["prod"].json, failed_over.json) == []

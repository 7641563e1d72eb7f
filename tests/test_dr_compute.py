"""The pilot light's application tier: the compute module again, in the standby VPC of the DR region.

Three shapes: prod standing (``dr.standby_compute`` off: the tier without its load balancers, so without services,
DNS names or web ACL, and only the primary's half of the DNS failover pair), the canary (the whole tier idle at zero
tasks) and prod failed over (``dr.active``: the tier serving). The module's
own behaviour is tested on the primary's copy in tests/test_compute.py and tests/test_events.py; here, that the copy
is that module, placed and wired for its region, and what idle and failed over change.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from conftest import Stack
from roi_tf.config import EnvironmentConfig

DR = "aws.dr"


@pytest.fixture(params=["prod", "canary", "failed-over"])
def standby(request: pytest.FixtureRequest, stacks, configs) -> tuple[Stack, EnvironmentConfig, bool]:
    """(stack, config, serving): prod's tier without load balancers, the canary's idle with them, prod's failed over."""
    if request.param == "canary":
        config, canary_stacks = request.getfixturevalue("canary")
        return canary_stacks[config.name], config, False
    if request.param == "prod":
        return stacks["prod"], configs["prod"], False
    return request.getfixturevalue("failed_over"), configs["prod"], True


def with_load_balancers(stack: Stack) -> bool:
    return bool(stack.under("dr_compute").resources("aws_lb"))


def path(body: dict[str, Any]) -> str:
    return body["//"]["metadata"]["path"]


def in_tier(stack: Stack, rtype: str) -> dict[str, dict[str, Any]]:
    return stack.under("dr_compute").resources(rtype)


# The JWT secret's replica: the secret's ARN, region swapped (Terraform resolves it before the JSON is read).
REPLICA_ARN = re.compile(r'\$\{replace\(aws_secretsmanager_secret\.\w+\.arn, ":[a-z0-9-]+:", ":[a-z0-9-]+:"\)\}')


def containers(task: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The task's containers, and the replica ARN expressions they name (as <replica> in the containers)."""
    raw = task["container_definitions"]
    return json.loads(REPLICA_ARN.sub("<replica>", raw)), REPLICA_ARN.findall(raw)


def task_environment(stack: Stack, which: str) -> dict[str, str]:
    (task,) = [t for t in in_tier(stack, "aws_ecs_task_definition").values() if t["family"].endswith(f"-dr-{which}")]
    found, replicas = containers(task)
    (app,) = [c for c in found if c["name"] == "app"]
    secrets = {s["name"]: s["valueFrom"].replace("<replica>", replicas[0]) for s in app["secrets"]}
    return {e["name"]: e["value"] for e in app["environment"]} | secrets


def relative(body: dict[str, Any], construct: str) -> str:
    """A resource's construct path under ``construct``, with the construct's name taken out of generated IDs."""
    return path(body).split(f"/{construct}/", 1)[1].replace(f"_{construct}_", "_")


def replica_bucket(stack: Stack, name: str) -> str:
    return stack.bucket_named(f"{name}-replica")


# --- the same module, in the DR region -----------------------------------------------------------------------------


def test_the_tier_is_the_compute_module_placed_in_the_dr_region(standby) -> None:
    """Every resource and data source of the copy is in the DR region, at a construct path the primary's module has
    too; what the copy lacks is what it deliberately does without."""
    stack, config, _ = standby
    tier = stack.under("dr_compute")
    primary = stack.under("compute")
    mirrored = set()
    for block in ("resource", "data"):
        ours = {(t, relative(b, "dr_compute")): b for t, items in tier.json[block].items() for b in items.values()}
        theirs = {(t, relative(b, "compute")) for t, items in primary.json[block].items() for b in items.values()}
        assert {b.get("provider") for b in ours.values()} == {DR}, block
        assert set(ours) <= theirs, set(ours) - theirs
        mirrored |= theirs - set(ours)
    without = {rtype for rtype, _ in mirrored}
    # No repositories (the replicated images), no GPU capacity, no validation records (the primary's prove it).
    assert {"aws_ecr_repository", "aws_ecr_lifecycle_policy", "aws_ecr_replication_configuration"} <= without
    assert ("aws_autoscaling_group" in without) is config.compute.gpu_training.enabled
    assert not [r for r in in_tier(stack, "aws_route53_record").values() if "domain_validation_options" in r["name"]]
    assert len(set(tier.json["resource"])) >= 10


def test_the_tier_uses_the_dr_regions_copies_and_keys(standby) -> None:
    stack, config, serving = standby
    api, ml = task_environment(stack, "api"), task_environment(stack, "ml")
    assert api["AWS_REGION"] == ml["AWS_REGION"] == config.dr_region
    assert api["DOCUMENTS_BUCKET"] == Stack.ref("aws_s3_bucket", replica_bucket(stack, "documents"), "bucket")
    assert ml["MODELS_BUCKET"] == Stack.ref("aws_s3_bucket", replica_bucket(stack, "ml-artifacts"), "bucket")
    # The JWT secret's replica: the secret's ARN with the region swapped.
    secret, _ = stack.one("aws_secretsmanager_secret", name=f"roi-systems/{config.name}/api/jwt-secret")
    assert api["JWT_SECRET"] == (
        f'${{replace(aws_secretsmanager_secret.{secret}.arn, ":{config.region}:", ":{config.dr_region}:")}}'
    )
    # The images come from the replicated repositories in the DR region.
    for task in in_tier(stack, "aws_ecs_task_definition").values():
        image = containers(task)[0][0]["image"]
        repository = re.match(r"\$\{aws_ecr_repository\.(\w+)\.repository_url\}", image)
        assert repository and stack.resources("aws_ecr_repository")[repository.group(1)]["provider"] == DR
    logs_key, _ = stack.kms_key(f"alias/roi-systems-{config.name}-dr-logs")
    for group in in_tier(stack, "aws_cloudwatch_log_group").values():
        assert group["kms_key_id"] == Stack.ref("aws_kms_key", logs_key, "arn"), group["name"]
        assert group["name"].startswith(f"/roi-systems/{config.name}/dr/")
    buckets = stack.resources("aws_s3_bucket").items()
    (dr_logs,) = [n for n, b in buckets if b.get("provider") == DR and "-logs-" in b["bucket"]]
    for lb in in_tier(stack, "aws_lb").values():
        assert lb["access_logs"]["bucket"] == Stack.ref("aws_s3_bucket", dr_logs, "bucket")
    # IAM names are global: the tier's roles carry -dr.
    for role in in_tier(stack, "aws_iam_role").values():
        assert role["name"].startswith(f"roi-systems-{config.name}-dr-"), role["name"]
    del serving


def test_the_database_and_cache_are_the_dr_regions(standby) -> None:
    """Idle: the replica itself (no task runs) and, without a Global Datastore, no cache; failed over: the promoted
    database's RDS Proxy and the DR region's cache (the canary's: the Global Datastore's secondary)."""
    stack, config, serving = standby
    api = task_environment(stack, "api")
    (replica,) = [n for n, b in stack.resources("aws_db_instance").items() if b.get("provider") == DR]
    proxies = [n for n, b in stack.resources("aws_db_proxy").items() if b.get("provider") == DR]
    if serving:
        assert api["DATABASE_HOST"] == Stack.ref("aws_db_proxy", proxies[0], "endpoint") and len(proxies) == 1
    else:
        assert api["DATABASE_HOST"] == Stack.ref("aws_db_instance", replica, "address") and proxies == []
    groups = {n: b for n, b in stack.resources("aws_elasticache_replication_group").items() if b.get("provider") == DR}
    if not serving and not config.dr.cache_replica:  # prod idle: no cache there yet
        assert groups == {} and "REDIS_HOST" not in api
        return
    (group,) = groups.items()
    assert group[1]["replication_group_id"] == f"roi-systems-{config.name}-redis-dr"
    attribute = "configuration_endpoint_address"
    assert api["REDIS_HOST"] == Stack.ref("aws_elasticache_replication_group", group[0], attribute)
    assert api["REDIS_USER"] == f"roi-systems-{config.name}-redis-app"
    # Without a Global Datastore (prod), the failover creates the cache, empty, with the DR data key.
    assert ("global_replication_group_id" in group[1]) is config.dr.cache_replica
    if not config.dr.cache_replica:
        data_key, _ = stack.kms_key(f"alias/roi-systems-{config.name}-dr-data")
        assert group[1]["kms_key_id"] == Stack.ref("aws_kms_key", data_key, "arn")
        assert group[1]["transit_encryption_enabled"] is True


def test_prod_standing_holds_the_tier_without_what_costs_while_idle(stacks: dict[str, Stack], configs) -> None:
    """dr.standby_compute off: the cluster, task definitions, roles, queues, log groups and certificate stand ready
    (free; IAM's control plane is in us-east-1), without the load balancers and what needs them (services, their
    scaling, DNS names, the web ACL) or the event processor's function: the failover creates those."""
    prod, config = stacks["prod"], configs["prod"]
    assert config.dr.enabled and not config.dr.standby_compute and not config.dr.cache_replica
    tier = prod.under("dr_compute")
    for rtype in ("aws_lb", "aws_lb_target_group", "aws_lb_listener", "aws_ecs_service", "aws_appautoscaling_target",
                  "aws_route53_record", "aws_wafv2_web_acl_association", "aws_lambda_function"):  # fmt: skip
        assert tier.resources(rtype) == {}, rtype
    assert [b.get("provider") for b in prod.resources("aws_wafv2_web_acl").values()].count(DR) == 0
    assert len(tier.resources("aws_ecs_cluster")) == 1 and len(tier.resources("aws_ecs_task_definition")) == 2
    assert sorted(r["name"] for r in tier.resources("aws_iam_role").values()) == [
        f"roi-systems-prod-dr-{role}" for role in ("api-execution", "api-task", "events", "ml-execution", "ml-task")
    ]
    assert len(tier.resources("aws_acm_certificate")) == 1 and len(tier.resources("aws_sqs_queue")) == 2
    # The API calls the ML service by the name the failover's internal load balancer will answer.
    assert task_environment(prod, "api")["ML_SERVICE_URL"] == f"https://ml.{config.compute.load_balancer.domain_name}"
    # Nothing that needs the load balancers: the DR logs bucket admits ELB only once they come (the primary's does).
    policy = json.dumps(prod.data("aws_iam_policy_document"))
    assert policy.count('"sid": "AlbAccessLogsElbAccount"') == 1
    groups = [b for b in prod.resources("aws_elasticache_replication_group").values() if b.get("provider") == DR]
    assert groups == []


# --- idle and failed over --------------------------------------------------------------------------------------------


def test_idle_nothing_runs_and_failed_over_everything_runs_as_configured(standby) -> None:
    stack, config, serving = standby
    services = {s["name"].rsplit("-", 1)[1]: s for s in in_tier(stack, "aws_ecs_service").values()}
    assert set(services) == ({"api", "ml"} if with_load_balancers(stack) else set())
    for which, service in services.items():
        want = getattr(config.compute, which)
        assert service["desired_count"] == (want.desired_count if serving else 0)
        # Changed only by failover.sh (update-service) and scaling, as in the primary region.
        assert service["lifecycle"]["ignore_changes"] == ["task_definition", "desired_count"]
    targets = {path(t).split("/")[-2]: t for t in in_tier(stack, "aws_appautoscaling_target").values()}
    scaled = {w for w in ("api", "ml") if getattr(config.compute, w).autoscaling.enabled}
    assert set(targets) == (scaled if serving else set())
    for which, target in targets.items():
        scaling = getattr(config.compute, which).autoscaling
        assert (target["min_capacity"], target["max_capacity"]) == (scaling.min_capacity, scaling.max_capacity)
    functions = in_tier(stack, "aws_lambda_function")
    assert len(functions) == (1 if serving else 0) and len(in_tier(stack, "aws_lambda_event_source_mapping")) == len(
        functions
    )
    if not with_load_balancers(stack):
        return  # prod standing (tests/test_dr_compute.py::test_prod_standing_holds_the_tier_...)
    # A public load balancer is never without its web ACL, idle or not (the same rules as the primary's).
    (acl,) = [n for n, b in stack.resources("aws_wafv2_web_acl").items() if b.get("provider") == DR]
    (public,) = [n for n, b in in_tier(stack, "aws_lb").items() if not b["internal"]]
    (association,) = in_tier(stack, "aws_wafv2_web_acl_association").values()
    assert association["web_acl_arn"] == Stack.ref("aws_wafv2_web_acl", acl, "arn")
    assert association["resource_arn"] == Stack.ref("aws_lb", public, "arn")
    primary_acl = stack.without_standby().one("aws_wafv2_web_acl", scope="REGIONAL")[1]
    assert stack.resources("aws_wafv2_web_acl")[acl]["rule"] == primary_acl["rule"]
    if serving:
        (function,) = functions.values()
        if config.compute.event_processing.package_type == "Zip":
            assert function["s3_bucket"] == Stack.ref("aws_s3_bucket", replica_bucket(stack, "artifacts"), "bucket")


def test_the_tiers_iam_does_not_change_with_the_failover(standby) -> None:
    """IAM's control plane is in us-east-1: every policy of the tier names its DR backends by name (the proxy by
    any proxy ID there, the cache, the sessions replica), never a resource that only the failover creates."""
    stack, config, _ = standby
    documents = stack.under("dr_compute").data("aws_iam_policy_document")
    text = json.dumps(documents)
    for created_by_the_failover in ("aws_db_proxy.", "aws_lambda_function.", "aws_wafv2_web_acl.", "database_dr_"):
        assert created_by_the_failover not in text
    statements = {s["sid"]: s for d in documents.values() for s in d["statement"] if "sid" in s}
    account = "${data.aws_caller_identity.current.account_id}"

    def arn(service: str) -> str:
        return f"arn:${{data.aws_partition.partition.partition}}:{service}:{config.dr_region}:{account}"

    assert statements["ConnectThroughRdsProxy"]["resources"] == [
        f"{arn('rds-db')}:dbuser:prx-*/{config.database.master_username}"
    ]
    group = f"roi-systems-{config.name}-redis"
    assert statements["ConnectToRedisAsAppUser"]["resources"] == [
        f"{arn('elasticache')}:replicationgroup:{group}-dr",
        f"{arn('elasticache')}:user:{group}-app",
    ]
    if config.sessions.enabled:
        assert statements["UseSessions"]["resources"] == [f"{arn('dynamodb')}:table/roi-systems-{config.name}-sessions"]
    for sid in ("DocumentsKeyThroughS3", "SessionsKeyThroughDynamoDb", "EncryptEventsThroughSqs"):
        (condition,) = statements[sid]["condition"]
        assert condition["values"][0].endswith(f".{config.dr_region}.amazonaws.com"), sid


def test_the_certificate_is_proven_by_the_primarys_validation_records(standby) -> None:
    stack, _, _ = standby
    (primary,) = stack.under("compute").resources("aws_acm_certificate").values()
    (copy,) = in_tier(stack, "aws_acm_certificate").values()
    assert (copy["domain_name"], copy["subject_alternative_names"]) == (
        primary["domain_name"],
        primary["subject_alternative_names"],
    )
    (primary_validation,) = stack.under("compute").resources("aws_acm_certificate_validation").values()
    (validation,) = in_tier(stack, "aws_acm_certificate_validation").values()
    assert validation["validation_record_fqdns"] == primary_validation["validation_record_fqdns"]
    assert stack.under("dr_compute").data("aws_route53_zone") == {}


# --- DNS: the failover pair ------------------------------------------------------------------------------------------


@pytest.fixture(params=["prod", "canary", "failed-over"])
def shape(request: pytest.FixtureRequest, stacks, configs) -> tuple[Stack, EnvironmentConfig]:
    if request.param == "canary":
        config, canary_stacks = request.getfixturevalue("canary")
        return canary_stacks[config.name], config
    if request.param == "failed-over":
        return request.getfixturevalue("failed_over"), configs["prod"]
    return stacks["prod"], configs["prod"]


def test_the_names_fail_over_from_the_primary_to_the_standby(shape) -> None:
    stack, config = shape
    lb = config.compute.load_balancer
    has_tier = bool(in_tier(stack, "aws_lb"))
    (check,) = stack.resources("aws_route53_health_check").keys() & {
        n for n, b in stack.resources("aws_route53_health_check").items() if b["type"] == "CALCULATED"
    }
    for name in (lb.domain_name, f"ml.{lb.domain_name}"):
        records = {r["failover_routing_policy"]["type"]: r for r in stack.resources("aws_route53_record").values()
                   if r["name"] == name}  # fmt: skip
        assert set(records) == ({"PRIMARY", "SECONDARY"} if has_tier else {"PRIMARY"})
        assert records["PRIMARY"]["health_check_id"] == Stack.ref("aws_route53_health_check", check, "id")
        assert records["PRIMARY"]["set_identifier"] == config.region and "provider" not in records["PRIMARY"]
        if has_tier:
            secondary = records["SECONDARY"]
            assert secondary["set_identifier"] == config.dr_region and "health_check_id" not in secondary
            internal = name.startswith("ml.")
            (target,) = [n for n, b in in_tier(stack, "aws_lb").items() if b["internal"] is internal]
            assert secondary["alias"] == {
                "name": Stack.ref("aws_lb", target, "dns_name"),
                "zone_id": Stack.ref("aws_lb", target, "zone_id"),
                "evaluate_target_health": True,  # idle at zero tasks: unhealthy, so Route 53 keeps the primary
            }


def test_the_primary_is_healthy_while_it_serves_and_its_replica_still_replicates(shape) -> None:
    stack, config = shape
    checks = stack.resources("aws_route53_health_check")
    (calculated,) = [b for b in checks.values() if b["type"] == "CALCULATED"]
    children = {n: b for n, b in checks.items() if b["type"] == "CLOUDWATCH_METRIC"}
    assert sorted(calculated["child_healthchecks"]) == sorted(Stack.ref("aws_route53_health_check", n, "id")
                                                              for n in children)  # fmt: skip
    assert calculated["child_health_threshold"] == len(children) == 2  # both must hold
    found = stack.under("serving_check").resources("aws_cloudwatch_metric_alarm").items()
    alarms = {a["alarm_name"]: (n, a) for n, a in found}
    by_reference = {Stack.ref("aws_cloudwatch_metric_alarm", n, "alarm_name"): a for n, a in found}
    assert len(alarms) == 2
    for child in children.values():
        # A lost region reports nothing: no data is unhealthy.
        assert child["insufficient_data_health_status"] == "Unhealthy"
        alarm = by_reference[child["cloudwatch_alarm_name"]]
        assert child["cloudwatch_alarm_region"] == (config.dr_region if alarm.get("provider") == DR else config.region)
    prefix = f"roi-systems-{config.name}-route53"
    _, serving = alarms[f"{prefix}-api-serving"]
    public, public_lb = stack.without_standby().one("aws_lb", internal=False)
    (group,) = [n for n, b in stack.under("compute/public_lb").resources("aws_lb_target_group").items()]
    assert serving["dimensions"] == {
        "LoadBalancer": Stack.ref("aws_lb", public, "arn_suffix"),
        "TargetGroup": Stack.ref("aws_lb_target_group", group, "arn_suffix"),
    }
    assert (serving["namespace"], serving["metric_name"], serving["statistic"]) == (
        "AWS/ApplicationELB", "HealthyHostCount", "Minimum"
    )  # fmt: skip
    _, replicating = alarms[f"{prefix}-database-dr-replicating"]
    (replica,) = [n for n, b in stack.resources("aws_db_instance").items() if b.get("provider") == DR]
    assert replicating["dimensions"] == {"DBInstanceIdentifier": Stack.ref("aws_db_instance", replica, "identifier")}
    assert (replicating["metric_name"], replicating["statistic"], replicating["provider"]) == (
        "ReplicaLag", "SampleCount", DR
    )  # fmt: skip
    for alarm in (serving, replicating):
        assert (alarm["comparison_operator"], alarm["threshold"], alarm["treat_missing_data"]) == (
            "LessThanThreshold", 1, "breaching"
        )  # fmt: skip
        assert (alarm["period"], alarm["evaluation_periods"]) == (60, 3)
        # Route 53's inputs, not pages: the API's and the replica's own alarms page.
        assert "alarm_actions" not in alarm and "ok_actions" not in alarm
    del public_lb


def test_without_a_pilot_light_the_names_are_plain_records(stacks: dict[str, Stack], configs) -> None:
    for env in ("dev", "staging"):
        assert not configs[env].dr.enabled
        assert stacks[env].resources("aws_route53_health_check") == {}
        for record in stacks[env].resources("aws_route53_record").values():
            assert "failover_routing_policy" not in record and "set_identifier" not in record


def test_the_switch_for_the_idle_tier_is_off_in_every_shipped_environment(configs) -> None:
    """prod's budget leaves no room for it yet (docs/DEPLOYMENT.md, "The application tier")."""
    assert [c.dr.standby_compute for c in configs.values()] == [False] * len(configs)


# --- monitoring ------------------------------------------------------------------------------------------------------


def test_failed_over_the_tiers_services_page_as_the_primarys_do(standby) -> None:
    """Critical alarms of the DR region's services once they serve, on its topic there (it has no warning topic):
    the API's 5XX rate, unhealthy targets of both load balancers, missing tasks of both services."""
    stack, config, serving = standby
    prefix = f"roi-systems-{config.name}-critical-dr-"
    alarms = {a["alarm_name"].removeprefix(prefix): a for a in stack.resources("aws_cloudwatch_metric_alarm").values()
              if a["alarm_name"].startswith(prefix)}  # fmt: skip
    wanted = {"api-error-rate", "api-unhealthy-hosts", "ml-unhealthy-hosts", "api-tasks-below-desired",
              "ml-tasks-below-desired"}  # fmt: skip
    assert set(alarms) == (wanted if serving else set())
    if not serving:
        return
    (topic,) = [n for n, t in stack.resources("aws_sns_topic").items() if t.get("provider") == DR]
    lbs = {b["internal"]: n for n, b in in_tier(stack, "aws_lb").items()}
    groups = {path(b).split("/")[-2]: n for n, b in in_tier(stack, "aws_lb_target_group").items()}
    (cluster,) = in_tier(stack, "aws_ecs_cluster")
    services = {b["name"].rsplit("-", 1)[1]: n for n, b in in_tier(stack, "aws_ecs_service").items()}
    for key, alarm in alarms.items():
        assert alarm["provider"] == DR and alarm["alarm_actions"] == alarm["ok_actions"] == [
            Stack.ref("aws_sns_topic", topic, "arn")
        ]
        assert alarm["alarm_description"].startswith(f"In {config.dr_region} (failed over): ")
        dimensions = [q["metric"]["dimensions"] for q in alarm.get("metric_query", []) if "metric" in q]
        dimensions += [alarm["dimensions"]] if "dimensions" in alarm else []
        which = key.split("-")[0]
        for found in dimensions:
            if "LoadBalancer" in found:
                assert found["LoadBalancer"] == Stack.ref("aws_lb", lbs[which == "ml"], "arn_suffix"), key
            if "TargetGroup" in found:
                lb = "internal_lb" if which == "ml" else "public_lb"
                assert found["TargetGroup"] == Stack.ref("aws_lb_target_group", groups[lb], "arn_suffix"), key
            if "ClusterName" in found:
                assert found["ClusterName"] == Stack.ref("aws_ecs_cluster", cluster, "name"), key
                assert found["ServiceName"] == Stack.ref("aws_ecs_service", services[which], "name"), key
        assert dimensions, key

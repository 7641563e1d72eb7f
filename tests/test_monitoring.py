"""Monitoring: what pages whom, at which threshold, about which resource (design document, Monitoring & Alerting).

The expectations are computed here from the config and from the other modules' resources, independently of the
monitoring module's own catalog, and compared whole: an alarm missing, added, wired to the wrong resource, topic,
threshold or statistic fails. Every environment and the canary (other regions, every threshold distinct) are
checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import Stack
from roi_tf.config import EnvironmentConfig

GB = 1024**3
GLOBAL_REGION = "us-east-1"
REF = re.compile(r"^\$\{([a-z0-9_]+)\.([A-Za-z0-9_]+)\.([a-z_]+)\}$")


# --- helpers --------------------------------------------------------------------------------------


def prefix(config: EnvironmentConfig) -> str:
    return f"roi-systems-{config.name}"


def topic_ref(stack: Stack, name: str) -> str:
    topic, _ = stack.one("aws_sns_topic", name=name)
    return Stack.ref("aws_sns_topic", topic, "arn")


def by_name(stack: Stack, rtype: str, attribute: str, **props: Any) -> str:
    name, _ = stack.one(rtype, **props)
    return Stack.ref(rtype, name, attribute)


def public_and_internal(stack: Stack, config: EnvironmentConfig) -> dict[str, tuple[str, str]]:
    """ "api" / "ml" -> (load balancer, target group) arn_suffix references: the group each service registers in."""
    found = {}
    for label, internal in (("api", False), ("ml", True)):
        lb, _ = stack.one("aws_lb", internal=internal)
        _, service = stack.one("aws_ecs_service", name=f"{prefix(config)}-{label}")
        (registration,) = service["load_balancer"]
        group = registration["target_group_arn"].split(".")[1]
        found[label] = (Stack.ref("aws_lb", lb, "arn_suffix"), Stack.ref("aws_lb_target_group", group, "arn_suffix"))
    return found


def db_instances(stack: Stack) -> list[tuple[str, dict[str, Any]]]:
    return sorted(stack.resources("aws_db_instance").items(), key=lambda item: item[1]["identifier"])


def redis_nodes(stack: Stack, config: EnvironmentConfig) -> list[str]:
    """The primary's nodes (a Global Datastore secondary, in the DR region, is not alarmed while it stands by)."""
    group, _ = stack.one_primary("aws_elasticache_replication_group")
    nodes = config.cache.replicas_per_shard + 1
    return [
        f"{Stack.ref('aws_elasticache_replication_group', group, 'id')}-{shard:04d}-{node:03d}"
        for shard in range(1, config.cache.shards + 1)
        for node in range(1, nodes + 1)
    ]


def dead_letter_queue(stack: Stack) -> str:
    """The queue the event queue's redrive policy sends failed messages to."""
    (queue,) = [b for b in stack.resources("aws_sqs_queue").values() if "redrive_policy" in b]
    target = json.loads(queue["redrive_policy"])["deadLetterTargetArn"]
    return target.replace(".arn}", ".name}")


def normalized(alarm: dict[str, Any]) -> tuple:
    """What an alarm watches and how: (threshold, comparison, stat, namespace, metric, dimensions) or the math."""
    if "metric_query" in alarm:
        queries = {q["id"]: q for q in alarm["metric_query"]}
        (result,) = [q for q in alarm["metric_query"] if q.get("return_data")]
        metrics = tuple(
            sorted(
                (qid, q["metric"]["stat"], q["metric"]["namespace"], q["metric"]["metric_name"],
                 tuple(sorted(q["metric"]["dimensions"].items())))
                for qid, q in queries.items()
                if "metric" in q
            )
        )  # fmt: skip
        return (alarm["threshold"], alarm["comparison_operator"], result["expression"], metrics)
    stat = alarm.get("statistic") or alarm["extended_statistic"]
    dims = tuple(sorted(alarm.get("dimensions", {}).items()))
    return (alarm["threshold"], alarm["comparison_operator"], stat, alarm["namespace"], alarm["metric_name"], dims)


def expected_alarms(stack: Stack, config: EnvironmentConfig) -> dict[str, tuple[str, str, tuple]]:
    """Alarm name -> (severity, region, normalized) from the config and the stack's other resources."""
    th, name = config.monitoring.thresholds, prefix(config)
    lbs = public_and_internal(stack, config)
    public_lb, public_group = lbs["api"]
    (cluster,) = stack.resources("aws_ecs_cluster")
    cluster_name = Stack.ref("aws_ecs_cluster", cluster, "name")
    expected: dict[str, tuple[str, str, tuple]] = {}

    def add(severity: str, key: str, watched: tuple, region: str = "") -> None:
        expected[f"{name}-{severity}-{key}"] = (severity, region or config.region, watched)

    def elb(metric: str, stat: str, dims: dict[str, str]) -> tuple:
        return ("AWS/ApplicationELB", metric, tuple(sorted(dims.items())), stat)

    add(
        "critical",
        "api-error-rate",
        (
            th.api_error_rate_percent,
            "GreaterThanThreshold",
            "100 * (FILL(m1, 0) + FILL(m2, 0)) / m3",
            tuple(
                sorted(
                    (qid, stat, "AWS/ApplicationELB", metric, (("LoadBalancer", public_lb),))
                    for qid, metric, stat in (
                        ("m1", "HTTPCode_Target_5XX_Count", "Sum"),
                        ("m2", "HTTPCode_ELB_5XX_Count", "Sum"),
                        ("m3", "RequestCount", "Sum"),
                    )
                )
            ),
        ),
    )
    lb_dims = {"LoadBalancer": public_lb, "TargetGroup": public_group}
    add(
        "warning",
        "api-latency-p95",
        (th.api_latency_p95_ms / 1000, "GreaterThanThreshold", "p95", "AWS/ApplicationELB", "TargetResponseTime",
         tuple(sorted(lb_dims.items()))),
    )  # fmt: skip
    for label, (lb, group) in lbs.items():
        dims = tuple(sorted({"LoadBalancer": lb, "TargetGroup": group}.items()))
        add(
            "critical",
            f"{label}-unhealthy-hosts",
            (0, "GreaterThanThreshold", "Maximum", "AWS/ApplicationELB", "UnHealthyHostCount", dims),
        )
    for label in ("api", "ml"):
        service = by_name(stack, "aws_ecs_service", "name", name=f"{name}-{label}")
        dims = (("ClusterName", cluster_name), ("ServiceName", service))
        insights = [
            (qid, "Average", "ECS/ContainerInsights", metric, dims)
            for qid, metric in (("m1", "DesiredTaskCount"), ("m2", "RunningTaskCount"))
        ]
        add(
            "critical",
            f"{label}-tasks-below-desired",
            (0, "GreaterThanThreshold", "FILL(m1, 0) - FILL(m2, 0)", tuple(sorted(insights))),
        )
        add(
            "warning",
            f"{label}-memory",
            (th.memory_percent, "GreaterThanThreshold", "Average", "AWS/ECS", "MemoryUtilization", dims),
        )
    replicas = 0
    for logical, instance in db_instances(stack):
        identifier = Stack.ref("aws_db_instance", logical, "identifier")
        dims = (("DBInstanceIdentifier", identifier),)
        region = stack.region_of(instance)
        suffix = instance["identifier"].removeprefix(f"{name}-postgres")  # "", "-replica-1", "-dr"
        label = {"": "database", "-dr": "database-dr-replica"}.get(suffix, f"database{suffix}")
        if region == config.region:
            add(
                "critical",
                f"{label}-cpu",
                (th.database_cpu_percent, "GreaterThanThreshold", "Average", "AWS/RDS", "CPUUtilization", dims),
            )
            add(
                "critical",
                f"{label}-free-storage",
                (th.database_free_storage_gb * GB, "LessThanThreshold", "Minimum", "AWS/RDS", "FreeStorageSpace", dims),
            )
        if "replicate_source_db" in instance:
            replicas += 1
            add(
                "critical",
                f"{label}-lag",
                (th.replica_lag_seconds, "GreaterThanThreshold", "Maximum", "AWS/RDS", "ReplicaLag", dims),
                region,
            )
    assert replicas == config.database.read_replicas + config.database.cross_region_replica
    for i, node in enumerate(redis_nodes(stack, config), start=1):
        dims = (("CacheClusterId", node),)
        memory = "DatabaseMemoryUsagePercentage"
        add(
            "critical",
            f"redis-node-{i}-cpu",
            (th.redis_cpu_percent, "GreaterThanThreshold", "Average", "AWS/ElastiCache", "EngineCPUUtilization", dims),
        )
        add(
            "critical",
            f"redis-node-{i}-memory-critical",
            (th.redis_memory_critical_percent, "GreaterThanThreshold", "Average", "AWS/ElastiCache", memory, dims),
        )
        add(
            "warning",
            f"redis-node-{i}-memory",
            (th.memory_percent, "GreaterThanThreshold", "Average", "AWS/ElastiCache", memory, dims),
        )
    add(
        "critical",
        "events-dead-letters",
        (0, "GreaterThanThreshold", "Maximum", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
         (("QueueName", dead_letter_queue(stack)),)),
    )  # fmt: skip
    (log_filter,) = stack.resources("aws_cloudwatch_log_metric_filter").values()
    transformation = log_filter["metric_transformation"]
    add(
        "warning",
        "api-log-errors",
        (th.api_log_errors_per_minute, "GreaterThanThreshold", "Sum", transformation["namespace"],
         transformation["name"], ()),
    )  # fmt: skip
    if config.dr.enabled:  # the pilot light's replication, against the RPO
        rpo = config.dr.rpo_minutes * 60
        for short, bucket in config.storage.buckets.items():
            if not bucket.replicate:
                continue
            source, replica = stack.bucket_named(short), stack.bucket_named(f"{short}-replica")
            dims = (
                ("DestinationBucket", Stack.ref("aws_s3_bucket", replica, "bucket")),
                ("RuleId", f"to-{config.dr_region}"),
                ("SourceBucket", Stack.ref("aws_s3_bucket", source, "bucket")),
            )
            watched = (rpo, "GreaterThanThreshold", "Maximum", "AWS/S3", "ReplicationLatency", dims)
            add("critical", f"{short}-replication-latency", watched, config.dr_region)  # the destination's region
        # The state's copy, made by state-<env> with the same rule: the source and copy by their configured names.
        dims = (
            ("DestinationBucket", config.dr.state_bucket),
            ("RuleId", f"to-{config.dr_region}"),
            ("SourceBucket", config.state.bucket),
        )
        watched = (rpo, "GreaterThanThreshold", "Maximum", "AWS/S3", "ReplicationLatency", dims)
        add("critical", "terraform-state-replication-latency", watched, config.dr_region)
        if config.sessions.enabled:
            (table,) = stack.resources("aws_dynamodb_table")
            dims = (
                ("ReceivingRegion", config.dr_region),
                ("TableName", Stack.ref("aws_dynamodb_table", table, "name")),
            )
            watched = (rpo * 1000, "GreaterThanThreshold", "Maximum", "AWS/DynamoDB", "ReplicationLatency", dims)
            add("critical", "sessions-replication-latency", watched)
    del elb
    return expected


@pytest.fixture
def deployed(deployed: tuple[Stack, EnvironmentConfig]) -> tuple[Stack, EnvironmentConfig]:
    """The monitoring module's view: without the pilot light's application tier and without the alarms that are
    Route 53's inputs, not pages (both in tests/test_dr_compute.py)."""
    stack, config = deployed
    return stack.without_standby().excluding("serving_check"), config


@pytest.fixture
def alarms(deployed) -> dict[str, dict[str, Any]]:
    stack, _ = deployed
    return {body["alarm_name"]: body for body in stack.resources("aws_cloudwatch_metric_alarm").values()}


# --- alarms -----------------------------------------------------------------------------------------


def test_each_alarm_watches_the_intended_resource_at_its_threshold_and_nothing_else_alarms(deployed, alarms) -> None:
    """Guards against a missing or extra alarm, and one on the wrong resource, metric, statistic or threshold."""
    stack, config = deployed
    expected = expected_alarms(stack, config)
    assert {n: normalized(a) for n, a in alarms.items()} == {n: watched for n, (_, _, watched) in expected.items()}


def test_the_design_documents_alarms_are_there_at_its_numbers(stacks, configs) -> None:
    """The design document's list, in prod: critical API error rate > 1 % (a rate, not a count), database CPU
    > 80 %, ECS task failures; warnings API p95 > 500 ms, memory > 80 %."""
    stack = stacks["prod"]
    alarms = {a["alarm_name"]: a for a in stack.resources("aws_cloudwatch_metric_alarm").values()}
    error_rate = alarms["roi-systems-prod-critical-api-error-rate"]
    assert error_rate["threshold"] == 1 and error_rate["comparison_operator"] == "GreaterThanThreshold"
    assert alarms["roi-systems-prod-critical-database-cpu"]["threshold"] == 80
    assert alarms["roi-systems-prod-warning-api-latency-p95"]["threshold"] == 0.5
    assert alarms["roi-systems-prod-warning-api-latency-p95"]["extended_statistic"] == "p95"
    assert {alarms[f"roi-systems-prod-warning-{s}-memory"]["threshold"] for s in ("api", "ml")} == {80}
    assert "roi-systems-prod-critical-api-tasks-below-desired" in alarms
    assert configs["prod"].monitoring.thresholds.cost_increase_percent == 20


@pytest.mark.parametrize(
    ("target_5xx", "elb_5xx", "requests", "fires"),
    [(5, 0, 1000, False), (11, 0, 1000, True), (0, 11, 1000, True), (6, 5, 1000, True), (50, 0, 100000, False)],
)
def test_the_error_rate_is_5xx_over_requests_not_a_count(stacks, target_5xx, elb_5xx, requests, fires) -> None:
    """The expression evaluated on sample minutes: 11 errors in 1,000 requests breach 1 %, 50 in 100,000 do not."""
    (alarm,) = [a for a in stacks["prod"].resources("aws_cloudwatch_metric_alarm").values()
                if a["alarm_name"].endswith("-api-error-rate")]  # fmt: skip
    queries = {q["id"]: q for q in alarm["metric_query"]}
    values = {
        qid: {"HTTPCode_Target_5XX_Count": target_5xx, "HTTPCode_ELB_5XX_Count": elb_5xx, "RequestCount": requests}[
            q["metric"]["metric_name"]
        ]
        for qid, q in queries.items()
        if "metric" in q
    }
    (result,) = [q for q in queries.values() if q.get("return_data")]
    expression = re.sub(r"FILL\((m\d), 0\)", r"\1", result["expression"])
    assert re.fullmatch(r"[m0-9 ()*/+.-]+", expression), expression
    rate = eval(expression, {}, values)  # noqa: S307 (arithmetic on ids checked just above)
    assert (rate > alarm["threshold"]) is fires


# What no data means for each kind of alarm (chosen on purpose; see roi_tf/modules/monitoring/alarms.py).
MISSING_DATA = {
    "api-error-rate": "notBreaching",  # no requests: no errors
    "api-latency-p95": "notBreaching",
    "events-dead-letters": "notBreaching",  # an idle, empty queue may report nothing
    "api-log-errors": "notBreaching",  # the filter publishes only on a match
    "unhealthy-hosts": "missing",
    "tasks-below-desired": "missing",
    "memory": "missing",  # warnings: a gap says nothing
    "cpu": "breaching",  # a database or node that stops reporting is down
    "free-storage": "breaching",
    "lag": "breaching",  # a replica that stops reporting lag stopped replicating
    "memory-critical": "breaching",
    "replication-latency": "missing",  # reported while something replicates; a quiet hour says nothing
}


def test_every_alarm_notifies_its_severitys_topic_in_its_region_on_alarm_and_on_recovery(deployed, alarms) -> None:
    """Guards against a page sent to the warning channel (or the reverse), an alarm that never resolves, and an
    alarm notifying a topic of another region (CloudWatch cannot)."""
    stack, config = deployed
    expected = expected_alarms(stack, config)
    topics = {
        (t["name"].removeprefix(f"{prefix(config)}-").removeprefix("dr-"), stack.region_of(t)): Stack.ref(
            "aws_sns_topic", n, "arn"
        )
        for n, t in stack.resources("aws_sns_topic").items()
    }
    for alarm_name, alarm in alarms.items():
        severity, region, _ = expected[alarm_name]
        assert stack.region_of(alarm) == region, alarm_name
        topic = topics[(severity, region)]
        assert alarm["alarm_actions"] == [topic] and alarm["ok_actions"] == [topic], alarm_name


def test_every_alarm_uses_the_configured_periods_and_its_chosen_missing_data_treatment(deployed, alarms) -> None:
    _, config = deployed
    m = config.monitoring
    assert len(alarms) >= 15
    for alarm_name, alarm in alarms.items():
        kind = next(k for k in sorted(MISSING_DATA, key=len, reverse=True) if alarm_name.endswith(k))
        assert alarm["treat_missing_data"] == MISSING_DATA[kind], alarm_name
        assert (alarm["evaluation_periods"], alarm["datapoints_to_alarm"]) == (
            m.evaluation_periods,
            m.datapoints_to_alarm,
        )
        periods = [q["metric"]["period"] for q in alarm.get("metric_query", []) if "metric" in q] or [alarm["period"]]
        assert set(periods) == {m.period_seconds}, alarm_name
        # What an engineer paged at night reads first: what it means and where to look.
        assert "Check first:" in alarm["alarm_description"], alarm_name


# --- routes -----------------------------------------------------------------------------------------


def expected_topics(config: EnvironmentConfig) -> dict[str, str]:
    """Topic name -> region: critical and warning always, cost alerts in us-east-1, the DR replica's topic."""
    name = prefix(config)
    topics = {f"{name}-critical": config.region, f"{name}-warning": config.region}
    if config.region != GLOBAL_REGION:
        topics[f"{name}-cost-warning"] = GLOBAL_REGION
    if config.database.cross_region_replica:
        topics[f"{name}-dr-critical"] = config.dr_region
    return topics


def test_topics_exist_per_severity_and_region_encrypted_with_an_alerts_key_of_their_region(deployed) -> None:
    stack, config = deployed
    topics = stack.resources("aws_sns_topic")
    assert {t["name"]: stack.region_of(t) for t in topics.values()} == expected_topics(config)
    aliases = {a["target_key_id"].split(".")[1]: a["name"] for a in stack.resources("aws_kms_alias").values()}
    keys = stack.resources("aws_kms_key")
    for topic in topics.values():
        key = topic["kms_master_key_id"].split(".")[1]
        assert topic["kms_master_key_id"] == Stack.ref("aws_kms_key", key, "arn")
        assert aliases[key].endswith("alerts") and stack.region_of(keys[key]) == stack.region_of(topic)


def subscriptions(stack: Stack) -> set[tuple[str, str, str]]:
    names = {n: t["name"] for n, t in stack.resources("aws_sns_topic").items()}
    return {
        (names[s["topic_arn"].split(".")[1]], s["protocol"], s["endpoint"])
        for s in stack.resources("aws_sns_topic_subscription").values()
    }


def test_routes_deliver_each_severity_where_config_says_and_nowhere_else(deployed) -> None:
    """Guards against a page that reaches no one, a warning that pages, and an endpoint from the wrong section."""
    stack, config = deployed
    m = config.monitoring
    expected = set()
    for topic in expected_topics(config):
        route = m.critical if topic.endswith("critical") else m.warning
        if route.route == "pagerduty":
            expected.add((topic, "https", "${var.pagerduty_integration_url}"))
        elif route.route == "email":
            expected.add((topic, "email", route.email))
    assert subscriptions(stack) == expected
    for body in stack.resources("aws_sns_topic_subscription").values():
        # PagerDuty confirms its subscription itself; an e-mail's owner confirms by clicking.
        assert body.get("endpoint_auto_confirms") is (True if body["protocol"] == "https" else None)
    channels = stack.resources("aws_chatbot_slack_channel_configuration")
    assert bool(channels) is (m.warning.route == "slack")


def test_prod_pages_pagerduty_and_dev_pages_no_one_by_default(stacks, configs) -> None:
    assert configs["prod"].monitoring.critical.route == "pagerduty"
    assert ("roi-systems-prod-critical", "https", "${var.pagerduty_integration_url}") in subscriptions(stacks["prod"])
    assert ("roi-systems-prod-dr-critical", "https", "${var.pagerduty_integration_url}") in subscriptions(
        stacks["prod"]
    )
    assert not [s for s in subscriptions(stacks["dev"]) if s[1] == "https"]


def test_slack_channel_posts_every_warning_topic_read_only(canary) -> None:
    """The canary routes warnings to Slack: Chatbot in its API region, read-only guardrail, the warning topics only."""
    config, canary_stacks = canary
    stack = canary_stacks[config.name]
    (channel,) = stack.resources("aws_chatbot_slack_channel_configuration").values()
    assert stack.region_of(channel) == config.monitoring.chatbot_region
    assert channel["slack_team_id"] == config.monitoring.warning.slack_workspace_id
    assert channel["slack_channel_id"] == config.monitoring.warning.slack_channel_id
    warning = {n for n, t in stack.resources("aws_sns_topic").items() if t["name"].endswith("warning")}
    assert len(warning) == 2  # the canary's region is not us-east-1: cost warnings have their own topic
    assert {ref.split(".")[1] for ref in channel["sns_topic_arns"]} == warning
    assert channel["guardrail_policy_arns"] == [
        "arn:${data.aws_partition.partition.partition}:iam::aws:policy/ReadOnlyAccess"
    ]
    assert channel["user_authorization_required"] is True
    role = channel["iam_role_arn"].split(".")[1]
    trust = stack.data("aws_iam_policy_document")[
        stack.resources("aws_iam_role")[role]["assume_role_policy"].split(".")[2]
    ]
    assert trust["statement"][0]["principals"] == [{"type": "Service", "identifiers": ["chatbot.amazonaws.com"]}]


# --- event rules ------------------------------------------------------------------------------------


def rules(stack: Stack) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Rule name -> (event pattern, its one target)."""
    targets = {t["rule"].split(".")[1]: t for t in stack.resources("aws_cloudwatch_event_target").values()}
    return {
        body["name"]: (json.loads(body["event_pattern"]), targets[name])
        for name, body in stack.resources("aws_cloudwatch_event_rule").items()
        if name in targets and targets[name]["arn"].startswith("${aws_sns_topic.")
    }


def test_ecs_task_failures_and_rds_failures_page_through_eventbridge(deployed) -> None:
    """Guards against a rule on another cluster or database, one that matches every stop (deployments), or one
    that notifies the warning topic."""
    stack, config = deployed
    critical = topic_ref(stack, f"{prefix(config)}-critical")
    found = rules(stack)
    assert set(found) == {f"{prefix(config)}-ecs-task-failures", f"{prefix(config)}-database-failures"}
    ecs, ecs_target = found[f"{prefix(config)}-ecs-task-failures"]
    (cluster,) = stack.resources("aws_ecs_cluster")
    assert ecs == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": [Stack.ref("aws_ecs_cluster", cluster, "arn")],
            "lastStatus": ["STOPPED"],
            "stopCode": ["TaskFailedToStart", "EssentialContainerExited"],
        },
    }
    rds, rds_target = found[f"{prefix(config)}-database-failures"]
    in_region = [Stack.ref("aws_db_instance", n, "identifier") for n, b in db_instances(stack)
                 if stack.region_of(b) == config.region]  # fmt: skip
    assert sorted(rds["detail"]["SourceIdentifier"]) == sorted(in_region)
    assert {"EventCategories": ["failure", "low storage"]} in rds["detail"]["$or"]
    for target in (ecs_target, rds_target):
        assert target["arn"] == critical
        # The page says what happened in words, not a raw event.
        assert "Check first" in target["input_transformer"]["input_template"]
        paths = target["input_transformer"]["input_paths"]
        assert set(re.findall(r"<(\w+)>", target["input_transformer"]["input_template"])) == set(paths)


# --- cost ---------------------------------------------------------------------------------------------


def test_the_budget_is_this_environments_monthly_budget_with_forecast_and_actual_alerts(deployed) -> None:
    """design document: dev $300, staging $800, prod $2,500; forecast > 100 %, actual > 80 % (defaults)."""
    stack, config = deployed
    (budget,) = stack.resources("aws_budgets_budget").values()
    assert (budget["limit_amount"], budget["limit_unit"], budget["time_unit"], budget["budget_type"]) == (
        str(config.budget.monthly_usd), "USD", "MONTHLY", "COST"
    )  # fmt: skip
    assert budget["cost_filter"] == [{"name": "TagKeyValue", "values": [f"user:Environment${config.name}"]}]
    cost_topic = topic_ref(stack, next(n for n in expected_topics(config) if n.endswith("-warning") and (
        n.endswith("cost-warning") or config.region == GLOBAL_REGION)))  # fmt: skip
    m = config.monitoring
    assert sorted(
        (n["notification_type"], n["comparison_operator"], n["threshold"], n["threshold_type"],
         tuple(n["subscriber_sns_topic_arns"]))
        for n in budget["notification"]
    ) == [
        ("ACTUAL", "GREATER_THAN", m.budget_actual_percent, "PERCENTAGE", (cost_topic,)),
        ("FORECASTED", "GREATER_THAN", m.budget_forecast_percent, "PERCENTAGE", (cost_topic,)),
    ]  # fmt: skip
    assert stack.region_of(budget) == GLOBAL_REGION


@pytest.mark.parametrize(("env", "usd"), [("dev", 300), ("staging", 800), ("prod", 2500)])
def test_budgets_are_the_design_documents(stacks, env: str, usd: int) -> None:
    (budget,) = stacks[env].resources("aws_budgets_budget").values()
    assert budget["limit_amount"] == str(usd)


def test_a_cost_increase_over_the_threshold_warns_through_cost_anomaly_detection(deployed) -> None:
    stack, config = deployed
    ((monitor_name, monitor),) = stack.resources("aws_ce_anomaly_monitor").items()
    assert monitor["monitor_type"] == "CUSTOM"
    assert json.loads(monitor["monitor_specification"]) == {
        "Tags": {"Key": "Environment", "Values": [config.name], "MatchOptions": ["EQUALS"]}
    }
    (subscription,) = stack.resources("aws_ce_anomaly_subscription").values()
    assert subscription["monitor_arn_list"] == [Stack.ref("aws_ce_anomaly_monitor", monitor_name, "arn")]
    assert subscription["frequency"] == "IMMEDIATE"
    (subscriber,) = subscription["subscriber"]
    assert subscriber["type"] == "SNS" and stack.region_of(subscription) == GLOBAL_REGION
    topic = stack.resources("aws_sns_topic")[subscriber["address"].split(".")[1]]
    assert stack.region_of(topic) == GLOBAL_REGION and topic["name"].endswith("warning")
    assert subscription["threshold_expression"] == {
        "dimension": {
            "key": "ANOMALY_TOTAL_IMPACT_PERCENTAGE",
            "match_options": ["GREATER_THAN_OR_EQUAL"],
            "values": [str(config.monitoring.thresholds.cost_increase_percent)],
        }
    }


# --- dashboards --------------------------------------------------------------------------------------


def dashboards(stack: Stack) -> dict[str, dict[str, Any]]:
    return {
        d["dashboard_name"]: json.loads(d["dashboard_body"])
        for d in stack.resources("aws_cloudwatch_dashboard").values()
    }


def metric_lines(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], list[Any]]]:
    """(widget region, widget, metric line) of every metric line (not expressions) of a dashboard."""
    for widget in body["widgets"]:
        for line in widget["properties"].get("metrics", []):
            if isinstance(line[0], str):
                yield line[-1].get("region", widget["properties"]["region"]), widget, line


def metric_of(line: list[Any]) -> tuple[str, str, dict[str, str], str]:
    namespace, name, *pairs = line[:-1]
    return namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)), line[-1]["stat"]


def test_the_four_dashboards_and_the_overview_exist_laid_out_on_the_grid(deployed) -> None:
    stack, config = deployed
    name = prefix(config)
    found = dashboards(stack)
    assert set(found) == {name, *(f"{name}-{d}" for d in ("backend-api", "ml-service", "database", "cost"))}
    for dashboard, body in found.items():
        cells = set()
        for widget in body["widgets"]:
            assert widget["x"] >= 0 and widget["x"] + widget["width"] <= 24, dashboard
            area = {(x, y) for x in range(widget["x"], widget["x"] + widget["width"])
                    for y in range(widget["y"], widget["y"] + widget["height"])}  # fmt: skip
            assert not cells & area, f"{dashboard}: widgets overlap"
            cells |= area
            assert widget["properties"].get("title") or widget["type"] == "text", dashboard


def shown(stack: Stack, dashboard: str) -> set[tuple[str, str]]:
    return {(metric_of(line)[0], metric_of(line)[1]) for _, _, line in metric_lines(dashboards(stack)[dashboard])}


def test_each_dashboard_shows_what_the_design_document_lists(deployed) -> None:
    stack, config = deployed
    name = prefix(config)
    elb, rds, redis = "AWS/ApplicationELB", "AWS/RDS", "AWS/ElastiCache"
    api = shown(stack, f"{name}-backend-api")
    assert {(elb, m) for m in ("RequestCount", "TargetResponseTime", "HTTPCode_Target_4XX_Count",
                               "HTTPCode_Target_5XX_Count", "HealthyHostCount")} <= api  # fmt: skip
    assert (("AWS/CloudFront", "CacheHitRate") in api) is config.monitoring.cloudfront_additional_metrics
    latency = {metric_of(line)[3] for _, _, line in metric_lines(dashboards(stack)[f"{name}-backend-api"])
               if metric_of(line)[1] == "TargetResponseTime"}  # fmt: skip
    assert latency == {"p50", "p95", "p99"}
    ml = shown(stack, f"{name}-ml-service")
    assert {(elb, "TargetResponseTime"), ("AWS/ECS", "CPUUtilization"), ("AWS/ECS", "MemoryUtilization")} <= ml
    assert (("CWAgent", "nvidia_smi_utilization_gpu") in ml) is config.compute.gpu_training.enabled
    database = shown(stack, f"{name}-database")
    assert {
        (rds, m) for m in ("CPUUtilization", "DatabaseConnections", "FreeStorageSpace", "ReadIOPS", "WriteIOPS")
    } <= database
    assert ((rds, "ReplicaLag") in database) is (
        config.database.read_replicas + config.database.cross_region_replica > 0
    )
    assert {(redis, m) for m in ("CacheHits", "CacheMisses", "Evictions", "DatabaseMemoryUsagePercentage")} <= database
    cost = dashboards(stack)[f"{name}-cost"]
    assert {w["properties"]["region"] for w in cost["widgets"]} == {GLOBAL_REGION}  # billing metrics live there
    expressions = [q["expression"] for w in cost["widgets"] for q in w["properties"]["metrics"]
                   if isinstance(q[0], dict) for q in q if "expression" in q]  # fmt: skip
    assert any("AWS/Billing,Currency,ServiceName" in e and "EstimatedCharges" in e for e in expressions)
    budget_lines = [
        a["value"] for w in cost["widgets"] for a in w["properties"].get("annotations", {}).get("horizontal", [])
    ]
    assert budget_lines == [config.budget.monthly_usd]


# Dimension -> (resource type, attribute) whose reference must be its value: CloudWatch's name for each resource.
DIMENSIONS = {
    "LoadBalancer": ("aws_lb", "arn_suffix"),
    "TargetGroup": ("aws_lb_target_group", "arn_suffix"),
    "ClusterName": ("aws_ecs_cluster", "name"),
    "ServiceName": ("aws_ecs_service", "name"),
    "DBInstanceIdentifier": ("aws_db_instance", "identifier"),
    "QueueName": ("aws_sqs_queue", "name"),
    "DistributionId": ("aws_cloudfront_distribution", "id"),
    "AutoScalingGroupName": ("aws_autoscaling_group", "name"),
    "CacheClusterId": ("aws_elasticache_replication_group", "id"),
    "SourceBucket": ("aws_s3_bucket", "bucket"),
    "DestinationBucket": ("aws_s3_bucket", "bucket"),
    "TableName": ("aws_dynamodb_table", "name"),
}
# S3 publishes replication metrics in the destination bucket's region, naming the source bucket of the other.
READ_ELSEWHERE = {("AWS/S3", "SourceBucket")}
LITERAL_DIMENSIONS = {"Region": "Global", "Currency": "USD"}
# The dimension sets CloudWatch publishes each namespace's metrics under: a metric asked for with a set AWS does not
# publish (CloudFront without Region=Global) is simply empty.
DIMENSION_SETS = {
    "AWS/ApplicationELB": [{"LoadBalancer"}, {"LoadBalancer", "TargetGroup"}],
    "AWS/ECS": [{"ClusterName", "ServiceName"}],
    "ECS/ContainerInsights": [{"ClusterName", "ServiceName"}],
    "AWS/RDS": [{"DBInstanceIdentifier"}],
    "AWS/ElastiCache": [{"CacheClusterId"}],
    "AWS/SQS": [{"QueueName"}],
    "AWS/CloudFront": [{"DistributionId", "Region"}],
    "AWS/Billing": [{"Currency"}, {"Currency", "ServiceName"}],
    "CWAgent": [{"AutoScalingGroupName"}],
    "AWS/S3": [{"SourceBucket", "DestinationBucket", "RuleId"}],  # replication metrics
    "AWS/DynamoDB": [{"TableName", "ReceivingRegion"}],  # global tables' replication metrics
}


def every_metric(stack: Stack) -> Iterator[tuple[str, str, dict[str, str], str]]:
    """(where, region, dimensions, namespace) of every metric an alarm or a dashboard names."""
    for body in stack.resources("aws_cloudwatch_metric_alarm").values():
        region = stack.region_of(body)
        if "dimensions" in body:
            yield body["alarm_name"], region, body["dimensions"], body["namespace"]
        for query in body.get("metric_query", []):
            if "metric" in query:
                yield body["alarm_name"], region, query["metric"]["dimensions"], query["metric"]["namespace"]
    for name, body in dashboards(stack).items():
        for region, _, line in metric_lines(body):
            namespace, _, dims, _ = metric_of(line)
            yield name, region, dims, namespace


def test_every_metric_names_a_resource_of_this_stack_in_the_region_it_is_read_from(deployed) -> None:
    """Guards against a dead widget or an alarm that can never fire: a placeholder, a renamed resource, the wrong
    attribute (an ARN where CloudWatch wants its suffix) or a metric read in a region its resource is not in."""
    stack, config = deployed
    checked = 0
    for where, region, dims, namespace in every_metric(stack):
        if not namespace.startswith("roi-systems-"):  # our log metric filter publishes without dimensions
            assert set(dims) in DIMENSION_SETS[namespace], f"{where}: {namespace} is not published under {set(dims)}"
        for dimension, value in dims.items():
            if dimension in LITERAL_DIMENSIONS:
                assert value == LITERAL_DIMENSIONS[dimension], where
                continue
            if namespace == "AWS/Billing" and dimension == "ServiceName":
                continue
            # The state's buckets belong to the state-<env> stack: named as config names them, source and copy.
            state_buckets = {"SourceBucket": config.state.bucket, "DestinationBucket": config.dr.state_bucket}
            if "terraform-state" in where and dimension in state_buckets:
                assert value == state_buckets[dimension] and region == config.dr_region, where
                continue
            if dimension in ("RuleId", "ReceivingRegion"):  # the replication's rule and destination: the DR region
                assert value in (f"to-{config.dr_region}", config.dr_region) and region in (
                    config.region,
                    config.dr_region,
                )
                continue
            rtype, attribute = DIMENSIONS[dimension]
            reference = value.split("}-")[0] + "}" if dimension == "CacheClusterId" else value
            match = REF.match(reference)
            assert match and match.group(1) == rtype and match.group(3) == attribute, f"{where}: {dimension}={value}"
            resource = stack.resources(rtype).get(match.group(2))
            assert resource is not None, f"{where}: {value} names no resource of this stack"
            home = GLOBAL_REGION if rtype == "aws_cloudfront_distribution" else stack.region_of(resource)
            assert (home == region) is not ((namespace, dimension) in READ_ELSEWHERE), (
                f"{where}: {dimension} of {home} read in {region}"
            )
            checked += 1
    assert checked >= 60, checked


def test_the_overview_shows_the_state_of_every_alarm_of_the_region(deployed) -> None:
    """The ARNs are spelled from the alarms' names (no attribute reads): each must be a real alarm's."""
    stack, config = deployed
    (overview,) = [w for w in dashboards(stack)[prefix(config)]["widgets"] if w["type"] == "alarm"]
    account, partition = "${data.aws_caller_identity.current.account_id}", "${data.aws_partition.partition.partition}"
    here = {
        f"arn:{partition}:cloudwatch:{config.region}:{account}:alarm:{a['alarm_name']}"
        for a in stack.resources("aws_cloudwatch_metric_alarm").values()
        if stack.region_of(a) == config.region
    }
    assert set(overview["properties"]["alarms"]) == here and len(overview["properties"]["alarms"]) == len(here)


# --- logs and tracing ----------------------------------------------------------------------------------


def test_the_api_error_log_filter_counts_error_lines_of_the_api_log_group(deployed) -> None:
    stack, config = deployed
    (log_filter,) = stack.resources("aws_cloudwatch_log_metric_filter").values()
    group = by_name(stack, "aws_cloudwatch_log_group", "name", name=f"/roi-systems/{config.name}/ecs/api")
    assert log_filter["log_group_name"] == group
    assert log_filter["pattern"] == '"ERROR"'
    assert log_filter["metric_transformation"]["value"] == "1"
    # Per environment: two environments in one account must not add up each other's errors.
    assert log_filter["metric_transformation"]["namespace"] == f"roi-systems-{config.name}/application"


def test_xray_samples_the_api_as_configured_and_groups_its_traces(deployed) -> None:
    stack, config = deployed
    (rule,) = stack.resources("aws_xray_sampling_rule").values()
    (group,) = stack.resources("aws_xray_group").values()
    (task,) = [t for t in stack.resources("aws_ecs_task_definition").values() if t["family"].endswith("-api")]
    app = next(c for c in json.loads(task["container_definitions"]) if c["name"] == "app")
    tracing_name = {e["name"]: e["value"] for e in app["environment"]}["AWS_XRAY_TRACING_NAME"]
    assert rule["service_name"] == tracing_name == f"roi-systems-{config.name}-api"
    assert (rule["fixed_rate"], rule["reservoir_size"]) == (
        config.monitoring.xray_sampling_rate,
        config.monitoring.xray_reservoir_per_second,
    )
    assert len(rule["rule_name"]) <= 32
    assert group["filter_expression"] == f'service("{tracing_name}")'

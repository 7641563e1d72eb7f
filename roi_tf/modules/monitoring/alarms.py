"""The alarms, as Python data: what each watches, its threshold, its severity, and what to check first."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from roi_tf.config import MonitoringConfig
from roi_tf.modules.monitoring.alerts import CRITICAL, WARNING

GB = 1024**3
API_LOG_ERRORS_METRIC = "ApiLogErrors"

# treat_missing_data, each chosen on purpose (the alarm's comment says why):
NOT_BREACHING = "notBreaching"  # no data means nothing happened (no requests, no errors, an empty queue)
BREACHING = "breaching"  # no data means the thing itself is gone (a database that stopped reporting)
MISSING = "missing"  # keep the last state: a gap says nothing either way


@dataclass(frozen=True, kw_only=True)
class Metric:
    """One CloudWatch metric of a resource of this stack."""

    namespace: str
    name: str
    dimensions: Mapping[str, str]
    stat: str  # "Average", "Maximum", "Sum", or a percentile "p95"
    label: str = ""


@dataclass(frozen=True, kw_only=True)
class Alarm:
    """One alarm: a metric (or metric math over several) compared with a threshold."""

    key: str  # snake_case; the alarm is named roi-systems-<env>-<severity>-<key with hyphens>
    severity: str  # CRITICAL or WARNING: the topic it notifies
    description: str  # what it means and what to check first (shown in the page and in Slack)
    comparison: str
    threshold: float
    treat_missing_data: str
    metric: Metric | None = None
    expression: str = ""  # metric math over ``metrics`` (ids m1, m2, ...)
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    region: str = ""  # default: the stack's primary region; the DR replica's alarm lives in the DR region

    def __post_init__(self) -> None:
        if (self.metric is None) == (not self.expression):
            raise ValueError(f"alarm {self.key}: give a metric or an expression over metrics, not both")
        if self.severity not in (CRITICAL, WARNING):
            raise ValueError(f"alarm {self.key}: severity must be {CRITICAL} or {WARNING}")


@dataclass(frozen=True, kw_only=True)
class ServingTier:
    """The services of one region and their load balancers: the primary's, and a failed-over DR region's."""

    cluster_name: str
    services: Mapping[str, str]  # "api"/"ml" -> ECS service name
    public_lb: str  # the load balancer's arn_suffix (dimension LoadBalancer)
    public_target_group: str  # arn_suffix (dimension TargetGroup)
    internal_lb: str
    internal_target_group: str
    api_log_group: str  # where the API's errors are (named in the alarms' descriptions)


@dataclass(frozen=True, kw_only=True)
class Targets:
    """The resources of this stack that are watched, as the attributes CloudWatch names them by."""

    tier: ServingTier  # the services and load balancers of the primary region
    cluster_arn: str
    database: str  # the primary's identifier
    database_replicas: Sequence[str]  # in-region read replicas
    dr_replica: str | None  # the cross-region replica, in dr_region
    redis_nodes: Sequence[str]  # cache cluster ids of every node
    dead_letter_queue: str  # the event processor's dead-letter queue name
    function_name: str
    log_metric_namespace: str  # where this environment's log metric filters publish ("roi-systems/<env>")
    distribution_id: str
    api_tracing_name: str  # the X-Ray service name the API reports (AWS_XRAY_TRACING_NAME)
    gpu_auto_scaling_group: str | None  # default: no GPU capacity
    # The DR pilot light's replication, alarmed against the RPO: (source, replica) bucket names with their rule's ID,
    # and the sessions global table; default: nothing replicated is alarmed (no pilot light).
    replicated_buckets: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # "documents" -> (source, replica)
    replication_rule_id: str = ""
    replicated_table: str | None = None
    rpo_seconds: int = 300
    # Failed over (dr.active): dr_replica is the promoted, writable database; it is watched as the primary is (CPU,
    # free storage) in dr_region, and no longer for a replica's lag, which it stops reporting.
    dr_promoted: bool = False
    # Failed over with the application tier in dr_region: its services are watched as the primary's are (the
    # critical alarms: 5XX rate, unhealthy targets, missing tasks), on the DR region's topic.
    dr_tier: ServingTier | None = None


def _lb(target: str, metric: str, stat: str, **extra: str) -> Metric:
    return Metric(namespace="AWS/ApplicationELB", name=metric, dimensions={"LoadBalancer": target, **extra}, stat=stat)


def _rds(identifier: str, metric: str, stat: str = "Average") -> Metric:
    return Metric(namespace="AWS/RDS", name=metric, dimensions={"DBInstanceIdentifier": identifier}, stat=stat)


def _redis(node: str, metric: str) -> Metric:
    return Metric(namespace="AWS/ElastiCache", name=metric, dimensions={"CacheClusterId": node}, stat="Average")


def catalog(t: Targets, config: MonitoringConfig, dr_region: str) -> list[Alarm]:
    """Every alarm of an environment, from the resources it has and the configured thresholds."""
    th = config.thresholds
    alarms = _tier_alarms(t.tier, config)
    instances = [
        ("database", t.database, ""),
        *((f"database_replica_{i}", r, "") for i, r in enumerate(t.database_replicas)),
        *([("database_dr", t.dr_replica, dr_region)] if t.dr_replica and t.dr_promoted else []),
    ]
    for label, identifier, region in instances:
        alarms += [
            Alarm(
                key=f"{label}_cpu",
                severity=CRITICAL,
                description=(
                    f"{identifier}: CPU above {th.database_cpu_percent}%. Check first: Performance Insights "
                    "(top SQL), then connections through the proxy and the API's request rate."
                ),
                comparison="GreaterThanThreshold",
                threshold=th.database_cpu_percent,
                # An instance that stops reporting is down: that must not look healthy.
                treat_missing_data=BREACHING,
                metric=_rds(identifier, "CPUUtilization"),
                region=region,
            ),
            Alarm(
                key=f"{label}_free_storage",
                severity=CRITICAL,
                description=(
                    f"{identifier}: less than {th.database_free_storage_gb} GB free. Check first: whether storage "
                    "autoscaling reached max_allocated_storage_gb, then table and WAL growth."
                ),
                comparison="LessThanThreshold",
                threshold=th.database_free_storage_gb * GB,
                treat_missing_data=BREACHING,
                metric=_rds(identifier, "FreeStorageSpace", "Minimum"),
                region=region,
            ),
        ]
    replicas = [(f"database_replica_{i}", r, "") for i, r in enumerate(t.database_replicas)]
    if t.dr_replica and not t.dr_promoted:
        replicas.append(("database_dr_replica", t.dr_replica, dr_region))
    for label, identifier, region in replicas:
        alarms.append(
            Alarm(
                key=f"{label}_lag",
                severity=CRITICAL,
                description=(
                    f"{identifier}: replica lag above {th.replica_lag_seconds} s (RPO 5 minutes). Check first: "
                    "write volume and long transactions on the primary, then the replica's CPU and network."
                ),
                comparison="GreaterThanThreshold",
                threshold=th.replica_lag_seconds,
                # A replica that stops reporting lag has stopped replicating, or is gone.
                treat_missing_data=BREACHING,
                metric=_rds(identifier, "ReplicaLag", "Maximum"),
                region=region,
            )
        )
    for short, (source, replica) in t.replicated_buckets.items():
        alarms.append(
            Alarm(
                key=f"{short.replace('-', '_')}_replication_latency",
                severity=CRITICAL,
                description=(
                    f"The {short} bucket's replica: S3 replication behind by more than {t.rpo_seconds} s (the RPO; "
                    "Replication Time Control promises 15 minutes). Check first: OperationsPendingReplication and "
                    "OperationsFailedReplication, the replication role and the DR key's policy."
                ),
                comparison="GreaterThanThreshold",
                threshold=t.rpo_seconds,
                treat_missing_data=MISSING,  # reported while objects replicate; a quiet bucket says nothing
                # Published in the destination bucket's region.
                metric=Metric(
                    namespace="AWS/S3",
                    name="ReplicationLatency",
                    dimensions={"SourceBucket": source, "DestinationBucket": replica, "RuleId": t.replication_rule_id},
                    stat="Maximum",
                ),
                region=dr_region,
            )
        )
    if t.replicated_table is not None:
        alarms.append(
            Alarm(
                key="sessions_replication_latency",
                severity=CRITICAL,
                description=(
                    f"{t.replicated_table}: writes reach the replica in {dr_region} more than {t.rpo_seconds} s "
                    "late (the RPO; usually under a second). Check first: the table's throttling, the AWS Health "
                    "dashboard for DynamoDB in either region."
                ),
                comparison="GreaterThanThreshold",
                threshold=t.rpo_seconds * 1000,  # milliseconds
                treat_missing_data=MISSING,  # reported while items are written
                metric=Metric(
                    namespace="AWS/DynamoDB",
                    name="ReplicationLatency",
                    dimensions={"TableName": t.replicated_table, "ReceivingRegion": dr_region},
                    stat="Maximum",
                ),
            )
        )
    for i, node in enumerate(t.redis_nodes):
        label = f"redis_node_{i + 1}"
        alarms += [
            Alarm(
                key=f"{label}_cpu",
                severity=CRITICAL,
                description=(
                    f"Redis node {node}: engine CPU above {th.redis_cpu_percent}%. Check first: slow commands "
                    "(SLOWLOG), large keys, the API's request rate; then a larger node type or more shards."
                ),
                comparison="GreaterThanThreshold",
                threshold=th.redis_cpu_percent,
                treat_missing_data=BREACHING,
                metric=_redis(node, "EngineCPUUtilization"),
            ),
            Alarm(
                key=f"{label}_memory_critical",
                severity=CRITICAL,
                description=(
                    f"Redis node {node}: memory above {th.redis_memory_critical_percent}%; evictions and refused "
                    "writes are next. Check first: keys without TTL, the eviction count, then node type or shards."
                ),
                comparison="GreaterThanThreshold",
                threshold=th.redis_memory_critical_percent,
                treat_missing_data=BREACHING,
                metric=_redis(node, "DatabaseMemoryUsagePercentage"),
            ),
            Alarm(
                key=f"{label}_memory",
                severity=WARNING,
                description=(
                    f"Redis node {node}: memory above {th.memory_percent}%. Check first: growth of the key count "
                    "and keys without TTL."
                ),
                comparison="GreaterThanThreshold",
                threshold=th.memory_percent,
                treat_missing_data=MISSING,
                metric=_redis(node, "DatabaseMemoryUsagePercentage"),
            ),
        ]
    alarms.append(
        Alarm(
            key="events_dead_letters",
            severity=CRITICAL,
            description=(
                f"Events failed processing and wait in the dead-letter queue {t.dead_letter_queue}. Check first: "
                f"the errors of {t.function_name} in its logs; redrive the messages once fixed (docs/DEPLOYMENT.md)."
            ),
            comparison="GreaterThanThreshold",
            threshold=0,
            treat_missing_data=NOT_BREACHING,  # an empty, idle queue may report nothing
            metric=Metric(
                namespace="AWS/SQS",
                name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": t.dead_letter_queue},
                stat="Maximum",
            ),
        )
    )
    alarms.append(
        Alarm(
            key="api_log_errors",
            severity=WARNING,
            description=(
                f"The API logs more than {th.api_log_errors_per_minute} ERROR lines a minute. Check first: the "
                f"log group {t.tier.api_log_group} (CloudWatch Logs Insights: filter @message like /ERROR/)."
            ),
            comparison="GreaterThanThreshold",
            threshold=th.api_log_errors_per_minute,
            treat_missing_data=NOT_BREACHING,  # the filter publishes only when a line matches
            # A metric filter publishes no dimension of its own: the namespace is this environment's.
            metric=Metric(namespace=t.log_metric_namespace, name=API_LOG_ERRORS_METRIC, dimensions={}, stat="Sum"),
        )
    )
    if t.dr_tier is not None:
        alarms += _tier_alarms(t.dr_tier, config, dr_region=dr_region)
    return alarms


def _tier_alarms(tier: ServingTier, config: MonitoringConfig, *, dr_region: str = "") -> list[Alarm]:
    """The alarms of one region's services: the primary's all, a failed-over DR region's critical ones (its topic
    there is critical only), keyed dr_<key>."""
    th = config.thresholds
    alarms = [
        Alarm(
            key="api_error_rate",
            severity=CRITICAL,
            description=(
                f"More than {th.api_error_rate_percent}% of API requests fail with 5XX. Check first: the API "
                f"service's recent deployments and its logs ({tier.api_log_group}), then the database and Redis alarms."
            ),
            comparison="GreaterThanThreshold",
            threshold=th.api_error_rate_percent,
            # No requests at all is not an error rate; the unhealthy-hosts and task alarms cover a dead service.
            treat_missing_data=NOT_BREACHING,
            expression="100 * (FILL(m1, 0) + FILL(m2, 0)) / m3",
            metrics={
                "m1": _lb(tier.public_lb, "HTTPCode_Target_5XX_Count", "Sum"),
                "m2": _lb(tier.public_lb, "HTTPCode_ELB_5XX_Count", "Sum"),
                "m3": _lb(tier.public_lb, "RequestCount", "Sum"),
            },
        ),
        Alarm(
            key="api_latency_p95",
            severity=WARNING,
            description=(
                f"API p95 latency is above {th.api_latency_p95_ms} ms. Check first: the Backend API dashboard "
                "(CPU, task count vs. maximum), database CPU and connections, slow-query logs."
            ),
            comparison="GreaterThanThreshold",
            threshold=th.api_latency_p95_ms / 1000,  # TargetResponseTime is in seconds
            treat_missing_data=NOT_BREACHING,  # no requests, no latency
            metric=_lb(tier.public_lb, "TargetResponseTime", "p95", TargetGroup=tier.public_target_group),
        ),
    ]
    for label, (lb, group) in {
        "api": (tier.public_lb, tier.public_target_group),
        "ml": (tier.internal_lb, tier.internal_target_group),
    }.items():
        alarms.append(
            Alarm(
                key=f"{label}_unhealthy_hosts",
                severity=CRITICAL,
                description=(
                    f"Targets of the {label} service fail their load balancer health checks. Check first: the "
                    f"service's stopped tasks (ECS console, stopped reason) and its health endpoint in the logs."
                ),
                comparison="GreaterThanThreshold",
                threshold=0,
                # The metric is published while the target group serves: a gap is no news.
                treat_missing_data=MISSING,
                metric=_lb(lb, "UnHealthyHostCount", "Maximum", TargetGroup=group),
            )
        )
    for label, service in tier.services.items():
        dimensions = {"ClusterName": tier.cluster_name, "ServiceName": service}
        alarms.append(
            Alarm(
                key=f"{label}_tasks_below_desired",
                severity=CRITICAL,
                description=(
                    f"The {label} service runs fewer tasks than it wants. Check first: its stopped tasks' reasons "
                    "(image pull, secrets, health check), then Fargate capacity and the deployment's circuit breaker."
                ),
                comparison="GreaterThanThreshold",
                threshold=0,
                # Container Insights reports every service each minute: a gap is no news.
                treat_missing_data=MISSING,
                expression="FILL(m1, 0) - FILL(m2, 0)",
                metrics={
                    "m1": Metric(
                        namespace="ECS/ContainerInsights",
                        name="DesiredTaskCount",
                        dimensions=dimensions,
                        stat="Average",
                    ),
                    "m2": Metric(
                        namespace="ECS/ContainerInsights",
                        name="RunningTaskCount",
                        dimensions=dimensions,
                        stat="Average",
                    ),
                },
            )
        )
        alarms.append(
            Alarm(
                key=f"{label}_memory",
                severity=WARNING,
                description=(
                    f"The {label} service uses more than {th.memory_percent}% of its tasks' memory. Check first: "
                    "a leak after the last deployment, then the task size and scaling limits in config."
                ),
                comparison="GreaterThanThreshold",
                threshold=th.memory_percent,
                treat_missing_data=MISSING,
                metric=Metric(namespace="AWS/ECS", name="MemoryUtilization", dimensions=dimensions, stat="Average"),
            )
        )
    if not dr_region:
        return alarms
    return [
        dataclasses.replace(alarm, key=f"dr_{alarm.key}", region=dr_region, description=f"In {dr_region} (failed "
                            f"over): {alarm.description}")
        for alarm in alarms
        if alarm.severity == CRITICAL
    ]  # fmt: skip

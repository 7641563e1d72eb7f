"""The monitoring module: alert topics and routes, alarms, event rules, dashboards, budgets, cost anomalies, tracing.

What pages whom: critical alarms go to the ``critical`` topic (PagerDuty in prod), warnings to the ``warning`` topic
(Slack through AWS Chatbot, or e-mail); each environment chooses its routes in ``monitoring`` of its config.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.budgets_budget import BudgetsBudget, BudgetsBudgetCostFilter, BudgetsBudgetNotification
from cdktf_cdktf_provider_aws.ce_anomaly_monitor import CeAnomalyMonitor
from cdktf_cdktf_provider_aws.ce_anomaly_subscription import (
    CeAnomalySubscription,
    CeAnomalySubscriptionSubscriber,
    CeAnomalySubscriptionThresholdExpression,
    CeAnomalySubscriptionThresholdExpressionDimension,
)
from cdktf_cdktf_provider_aws.cloudfront_monitoring_subscription import (
    CloudfrontMonitoringSubscription,
    CloudfrontMonitoringSubscriptionMonitoringSubscription,
    CloudfrontMonitoringSubscriptionMonitoringSubscriptionRealtimeMetricsSubscriptionConfig,
)
from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import (
    CloudwatchEventTarget,
    CloudwatchEventTargetInputTransformer,
)
from cdktf_cdktf_provider_aws.cloudwatch_log_metric_filter import (
    CloudwatchLogMetricFilter,
    CloudwatchLogMetricFilterMetricTransformation,
)
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from cdktf_cdktf_provider_aws.xray_group import XrayGroup, XrayGroupInsightsConfiguration
from cdktf_cdktf_provider_aws.xray_sampling_rule import XraySamplingRule
from constructs import Construct

from roi_tf.config import BudgetConfig, MonitoringConfig
from roi_tf.modules.exports import export
from roi_tf.modules.monitoring import dashboards
from roi_tf.modules.monitoring.alarms import API_LOG_ERRORS_METRIC, Alarm, Targets, catalog
from roi_tf.modules.monitoring.alerts import (
    ALARMS,
    BUDGETS,
    COST_ANOMALIES,
    CRITICAL,
    EVENTS,
    WARNING,
    AlertTopic,
    SlackChannel,
    TopicProps,
)
from roi_tf.modules.security import KmsKey

__all__ = ["AlertKeys", "Monitoring", "Regions", "Targets", "publishers"]

# What reaches the critical topic through EventBridge: the ECS and RDS events no metric shows.
TASK_FAILURE_STOP_CODES = ["TaskFailedToStart", "EssentialContainerExited"]


@dataclass(frozen=True, kw_only=True)
class AlertKeys:
    """The KMS keys of the alert topics: in the primary region, in us-east-1 (cost alerts), in the DR region."""

    primary: KmsKey
    cost: KmsKey  # the primary key when the primary region is us-east-1
    dr: KmsKey | None  # only where an alarm lives in the DR region (the cross-region replica)


@dataclass(frozen=True, kw_only=True)
class Regions:
    primary: str
    dr: str
    cost: str  # where Budgets and Cost Anomaly Detection deliver (us-east-1)


def publishers(regions: Regions, *, dr_topic: bool) -> dict[str, list[str]]:
    """The services that publish to the alert topics of each region ("primary", "cost", "dr"): their keys' grants."""
    cost = [BUDGETS, COST_ANOMALIES]
    same = regions.cost == regions.primary
    return {
        "primary": [ALARMS, EVENTS, *(cost if same else ())],
        "cost": [] if same else cost,
        "dr": [ALARMS] if dr_topic else [],
    }


class Monitoring(Construct):
    """Alarms on every watched resource of an environment, routed by severity, with its dashboards and budget."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: MonitoringConfig,
        budget: BudgetConfig,
        env: str,
        name: str,  # "roi-systems-<env>": the prefix of every name here
        targets: Targets,
        regions: Regions,
        account_id: str,
        partition: str,
        keys: AlertKeys,
        pagerduty_url: str | None,  # the sensitive variable's reference, when the critical route is PagerDuty
        providers: Mapping[str, TerraformProvider],  # "dr", "cost" (us-east-1), "chatbot"
    ) -> None:
        super().__init__(scope, id)
        self._config, self._name, self._targets = config, name, targets
        self._account_id, self._partition = account_id, partition

        def topic(key: str, severity: str, region: str, publishers: Sequence[str], kms: KmsKey, provider: str | None):
            return AlertTopic(
                self,
                key,
                props=TopicProps(
                    name=f"{name}-{key.replace('_', '-')}",
                    severity=severity,
                    region=region,
                    account_id=account_id,
                    partition=partition,
                    publishers=publishers,
                ),
                key=kms,
                provider=providers[provider] if provider else None,
            )

        by_region = publishers(regions, dr_topic=targets.dr_replica is not None)
        self.critical = topic(CRITICAL, CRITICAL, regions.primary, [ALARMS, EVENTS], keys.primary, None)
        self.warning = topic(WARNING, WARNING, regions.primary, by_region["primary"], keys.primary, None)
        # Budgets and Cost Anomaly Detection deliver from us-east-1: their topic lives there.
        self.cost_warning = (
            topic("cost_warning", WARNING, regions.cost, by_region["cost"], keys.cost, "cost")
            if by_region["cost"]
            else self.warning
        )
        # An alarm notifies topics of its own region only: the DR replica's alarm needs one in the DR region.
        self.dr_critical = None
        if by_region["dr"]:
            assert keys.dr is not None  # the stack creates the DR alerts key from the same publishers
            self.dr_critical = topic("dr_critical", CRITICAL, regions.dr, by_region["dr"], keys.dr, "dr")
        # Each once: the cost topic may be the warning topic itself.
        candidates = (self.critical, self.warning, self.cost_warning, self.dr_critical)
        self.topics = list(dict.fromkeys(t for t in candidates if t is not None))
        self._route(pagerduty_url, account_id, partition, providers)

        self._topic_for = {(CRITICAL, ""): self.critical, (WARNING, ""): self.warning}
        if self.dr_critical is not None:
            self._topic_for[(CRITICAL, regions.dr)] = self.dr_critical
        self._log_metric_filters()
        self._catalog = catalog(targets, config, regions.dr)
        self.alarms = {a.key: self._alarm(a, providers.get("dr")) for a in self._catalog}
        self._event_rules(targets)
        self._cost(env, budget, providers["cost"])
        self._tracing()
        if config.cloudfront_additional_metrics:
            CloudfrontMonitoringSubscription(
                self,
                "cloudfront_metrics",
                distribution_id=targets.distribution_id,
                monitoring_subscription=CloudfrontMonitoringSubscriptionMonitoringSubscription(
                    realtime_metrics_subscription_config=CloudfrontMonitoringSubscriptionMonitoringSubscriptionRealtimeMetricsSubscriptionConfig(
                        realtime_metrics_subscription_status="Enabled"
                    )
                ),
                provider=providers["cost"],
            )
        self.dashboard_names = self._dashboards(budget, regions)
        export(
            self,
            {
                "critical_alerts_topic_arn": (self.critical.arn, "SNS topic of critical alerts (pages on-call)"),
                "warning_alerts_topic_arn": (self.warning.arn, "SNS topic of warnings (team channel)"),
                "dashboard_names": (self.dashboard_names, "CloudWatch dashboards: overview, API, ML, database, cost"),
            },
        )

    # --- routes ------------------------------------------------------------------------------------

    def _route(
        self, pagerduty_url: str | None, account_id: str, partition: str, providers: Mapping[str, TerraformProvider]
    ) -> None:
        c = self._config
        for topic in self.topics:
            topic.deliver(c.critical if topic.severity == CRITICAL else c.warning, pagerduty_url=pagerduty_url)
        if c.warning.route == "slack":
            SlackChannel(
                self,
                "slack",
                name=f"{self._name}-chatbot",
                route=c.warning,
                topics=[t for t in self.topics if t.severity == WARNING],
                account_id=account_id,
                partition=partition,
                provider=providers["chatbot"],
            )

    # --- alarms ------------------------------------------------------------------------------------

    def _alarm(self, alarm: Alarm, dr_provider: TerraformProvider | None) -> CloudwatchMetricAlarm:
        c = self._config
        topic = self._topic_for[(alarm.severity, alarm.region)]
        common = {
            "alarm_name": self._alarm_name(alarm),
            "alarm_description": alarm.description,
            "comparison_operator": alarm.comparison,
            "threshold": alarm.threshold,
            "evaluation_periods": c.evaluation_periods,
            "datapoints_to_alarm": c.datapoints_to_alarm,
            "treat_missing_data": alarm.treat_missing_data,
            # Told when it fires and when it clears, so a page resolves itself.
            "alarm_actions": [topic.arn],
            "ok_actions": [topic.arn],
            "provider": dr_provider if alarm.region else None,
        }
        if alarm.metric is not None:
            m = alarm.metric
            percentile = m.stat.startswith("p")
            return CloudwatchMetricAlarm(
                self,
                f"alarm_{alarm.key}",
                namespace=m.namespace,
                metric_name=m.name,
                dimensions=dict(m.dimensions) or None,
                period=c.period_seconds,
                statistic=None if percentile else m.stat,
                extended_statistic=m.stat if percentile else None,
                **common,
            )
        queries = [
            CloudwatchMetricAlarmMetricQuery(id="e1", expression=alarm.expression, label=alarm.key, return_data=True)
        ]
        queries += [
            CloudwatchMetricAlarmMetricQuery(
                id=query_id,
                return_data=False,
                metric=CloudwatchMetricAlarmMetricQueryMetric(
                    namespace=m.namespace,
                    metric_name=m.name,
                    dimensions=dict(m.dimensions),
                    period=c.period_seconds,
                    stat=m.stat,
                ),
            )
            for query_id, m in alarm.metrics.items()
        ]
        return CloudwatchMetricAlarm(self, f"alarm_{alarm.key}", metric_query=queries, **common)

    def _alarm_name(self, alarm: Alarm) -> str:
        return f"{self._name}-{alarm.severity}-{alarm.key.replace('_', '-')}"

    def _log_metric_filters(self) -> None:
        """ERROR lines of the API's logs, counted for the api_log_errors warning."""
        t = self._targets
        CloudwatchLogMetricFilter(
            self,
            "api_log_errors",
            name=f"{self._name}-api-log-errors",
            log_group_name=t.tier.api_log_group,
            pattern='"ERROR"',
            metric_transformation=CloudwatchLogMetricFilterMetricTransformation(
                name=API_LOG_ERRORS_METRIC, namespace=t.log_metric_namespace, value="1", unit="Count"
            ),
        )

    def _event_rules(self, t: Targets) -> None:
        """ECS tasks that fail, and RDS failures and backup-replication failures, page like the alarms do."""
        rules = {
            "ecs_task_failures": (
                "ECS tasks of this environment that failed to start or whose essential container exited",
                {
                    "source": ["aws.ecs"],
                    "detail-type": ["ECS Task State Change"],
                    "detail": {
                        "clusterArn": [t.cluster_arn],
                        "lastStatus": ["STOPPED"],
                        "stopCode": TASK_FAILURE_STOP_CODES,
                    },
                },
                {"group": "$.detail.group", "reason": "$.detail.stoppedReason", "task": "$.detail.taskArn"},
                "\"ECS task of <group> stopped: <reason>. Task <task>. Check first: the service's stopped tasks "
                'and the logs of its last deployment."',
            ),
            "database_failures": (
                "RDS failures of this environment's instances, and failed automated-backup replication",
                {
                    "source": ["aws.rds"],
                    "detail-type": ["RDS DB Instance Event"],
                    "detail": {
                        "SourceIdentifier": [t.database, *t.database_replicas],
                        "$or": [
                            {"EventCategories": ["failure", "low storage"]},
                            # Backup replication to the DR region reports its failures as backup events.
                            {"EventCategories": ["backup"], "Message": [{"wildcard": "*fail*"}]},
                        ],
                    },
                },
                {"source": "$.detail.SourceIdentifier", "message": "$.detail.Message", "event": "$.detail.EventID"},
                '"RDS <source>: <message> (<event>). Check first: the RDS console events and the Database dashboard."',
            ),
        }
        for key, (description, pattern, paths, template) in rules.items():
            rule = CloudwatchEventRule(
                self,
                f"rule_{key}",
                name=f"{self._name}-{key.replace('_', '-')}",
                description=description,
                event_pattern=json.dumps(pattern),
            )
            CloudwatchEventTarget(
                self,
                f"rule_{key}_target",
                rule=rule.name,
                arn=self.critical.arn,
                input_transformer=CloudwatchEventTargetInputTransformer(input_paths=paths, input_template=template),
            )

    # --- cost --------------------------------------------------------------------------------------

    def _cost(self, env: str, budget: BudgetConfig, provider: TerraformProvider) -> None:
        """The environment's budget (its Environment tag), and Cost Anomaly Detection over the same tag."""
        c = self._config
        topic = [self.cost_warning.arn]
        BudgetsBudget(
            self,
            "budget",
            name=f"{self._name}-monthly",
            budget_type="COST",
            limit_amount=str(budget.monthly_usd),
            limit_unit="USD",
            time_unit="MONTHLY",
            # The provider tags every resource with Environment; it must be an active cost allocation tag.
            cost_filter=[BudgetsBudgetCostFilter(name="TagKeyValue", values=[f"user:Environment${env}"])],
            notification=[
                BudgetsBudgetNotification(
                    notification_type=kind,
                    comparison_operator="GREATER_THAN",
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                    subscriber_sns_topic_arns=topic,
                )
                for kind, percent in (("FORECASTED", c.budget_forecast_percent), ("ACTUAL", c.budget_actual_percent))
            ],
            provider=provider,
        )
        monitor = CeAnomalyMonitor(
            self,
            "cost_anomaly_monitor",
            name=f"{self._name}-spend",
            monitor_type="CUSTOM",
            monitor_specification=json.dumps(
                {"Tags": {"Key": "Environment", "Values": [env], "MatchOptions": ["EQUALS"]}}
            ),
            provider=provider,
        )
        CeAnomalySubscription(
            self,
            "cost_anomaly_subscription",
            name=f"{self._name}-spend-increase",
            frequency="IMMEDIATE",  # the only frequency that delivers to SNS
            monitor_arn_list=[monitor.arn],
            subscriber=[CeAnomalySubscriptionSubscriber(type="SNS", address=self.cost_warning.arn)],
            threshold_expression=CeAnomalySubscriptionThresholdExpression(
                dimension=CeAnomalySubscriptionThresholdExpressionDimension(
                    key="ANOMALY_TOTAL_IMPACT_PERCENTAGE",
                    match_options=["GREATER_THAN_OR_EQUAL"],
                    values=[str(c.thresholds.cost_increase_percent)],
                )
            ),
            provider=provider,
        )

    # --- tracing -----------------------------------------------------------------------------------

    def _tracing(self) -> None:
        """Sample the API's requests (a reservoir each second, then a rate), and group its traces."""
        c = self._config
        XraySamplingRule(
            self,
            "xray_sampling",
            rule_name=f"{self._name}-api"[:32],
            priority=100,
            version=1,
            reservoir_size=c.xray_reservoir_per_second,
            fixed_rate=c.xray_sampling_rate,
            service_name=self._targets.api_tracing_name,
            service_type="*",
            host="*",
            http_method="*",
            url_path="*",
            resource_arn="*",
        )
        XrayGroup(
            self,
            "xray_group",
            group_name=f"{self._name}-api",
            filter_expression=f'service("{self._targets.api_tracing_name}")',
            insights_configuration=XrayGroupInsightsConfiguration(insights_enabled=True, notifications_enabled=False),
        )

    # --- dashboards --------------------------------------------------------------------------------

    def _dashboards(self, budget: BudgetConfig, regions: Regions) -> list[str]:
        c, t, n = self._config, self._targets, self._name
        bodies = {
            "backend_api": dashboards.backend_api(
                t,
                regions.primary,
                latency_ms=c.thresholds.api_latency_p95_ms,
                cache_hit_rate=c.cloudfront_additional_metrics,
            ),
            "ml_service": dashboards.ml_service(t, regions.primary),
            "database": dashboards.database(t, regions.primary, regions.dr),
            "cost": dashboards.cost(budget.monthly_usd),
        }
        names = {key: f"{n}-{key.replace('_', '-')}" for key in bodies}
        # The design document's check: aws cloudwatch get-dashboard --dashboard-name roi-systems-<env>.
        # Spelled from the names (each attribute read of an alarm would be a round trip to jsii's node process).
        in_region = [
            f"arn:{self._partition}:cloudwatch:{regions.primary}:{self._account_id}:alarm:{self._alarm_name(a)}"
            for a in self._catalog
            if not a.region
        ]
        bodies["overview"] = dashboards.overview(in_region, list(names.values()), regions.primary)
        names["overview"] = n
        for key, body in bodies.items():
            CloudwatchDashboard(self, f"dashboard_{key}", dashboard_name=names[key], dashboard_body=json.dumps(body))
        return [names["overview"], *(names[k] for k in bodies if k != "overview")]

"""Which region serves the API: the Route 53 check behind the DNS failover pair of the pilot light.

The primary region's names are PRIMARY, healthy while both hold:

- **it serves**: its API target group has a healthy task (an alarm in the primary region);
- **it has not been failed over**: the database replica in the DR region still replicates, that is, reports its
  lag (an alarm in the DR region). Promoting the replica (failover.sh) ends that, for good.

Both are CloudWatch-alarm checks whose missing data counts as unhealthy, so losing the primary region fails the
check too. Nothing here needs the primary region's control planes at failover: Route 53 answers from its data plane,
and the switch is the replica's promotion. Once promoted, the old region cannot take the traffic back when it
returns, even fully healthy: its database is no longer the one written to (no split brain). The standby's names
(SECONDARY) are judged by its load balancers' target health: while it idles at zero tasks it is unhealthy, and
Route 53 keeps answering with the primary (it does when every record of a pair is unhealthy).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from cdktf_cdktf_provider_aws.route53_health_check import Route53HealthCheck
from constructs import Construct

# Three minutes of one-minute data: a deployment's brief gap does not move the traffic, a lost region does.
PERIOD_SECONDS = 60
EVALUATION_PERIODS = 3


@dataclass(frozen=True)
class ServingTargets:
    """What the check watches: the primary API's target group, and the DR replica."""

    region: str
    load_balancer: str  # arn_suffix of the primary public load balancer
    target_group: str  # arn_suffix of its API target group
    dr_region: str
    dr_replica: str  # identifier of the database replica in the DR region


class ServingCheck(Construct):
    """The primary region's Route 53 health check: it serves and has not been failed over (module docstring)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,  # "roi-systems-<env>": the alarms' and checks' names
        targets: ServingTargets,
        dr_provider: TerraformProvider,
    ) -> None:
        super().__init__(scope, id)
        serving = self._alarm(
            "serving",
            f"{name}-route53-api-serving",
            f"Route 53's check that {targets.region} serves the API: no healthy API task (or no data, the region "
            "lost) sends the API's name to the DR region once it has healthy tasks there.",
            ("AWS/ApplicationELB", "HealthyHostCount", "Minimum"),
            {"LoadBalancer": targets.load_balancer, "TargetGroup": targets.target_group},
        )
        replicating = self._alarm(
            "replicating",
            f"{name}-route53-database-dr-replicating",
            f"Route 53's check that {targets.region} has not been failed over: the replica in {targets.dr_region} "
            "reports its lag until it is promoted, then never again.",
            ("AWS/RDS", "ReplicaLag", "SampleCount"),
            {"DBInstanceIdentifier": targets.dr_replica},
            provider=dr_provider,
        )
        children = [
            Route53HealthCheck(
                self,
                check,
                type="CLOUDWATCH_METRIC",
                cloudwatch_alarm_name=alarm.alarm_name,
                cloudwatch_alarm_region=region,
                insufficient_data_health_status="Unhealthy",
                tags={"Name": f"{name}-{check.replace('_', '-')}"},
            )
            for check, alarm, region in (
                ("api_serving", serving, targets.region),
                ("not_failed_over", replicating, targets.dr_region),
            )
        ]
        self.health_check = Route53HealthCheck(
            self,
            "primary",
            type="CALCULATED",
            child_healthchecks=[child.id for child in children],
            child_health_threshold=len(children),
            tags={"Name": f"{name}-primary-region"},
        )
        self.health_check_id = self.health_check.id

    def _alarm(
        self,
        id: str,
        name: str,
        description: str,
        metric: tuple[str, str, str],  # namespace, name, statistic
        dimensions: dict[str, str],
        provider: TerraformProvider | None = None,
    ) -> CloudwatchMetricAlarm:
        """Below 1 for three minutes, or no data: unhealthy. No actions: Route 53 reads it, nobody is paged by it
        (the API's and the replica's own alarms page)."""
        namespace, metric_name, statistic = metric
        return CloudwatchMetricAlarm(
            self,
            id,
            alarm_name=name,
            alarm_description=description,
            namespace=namespace,
            metric_name=metric_name,
            dimensions=dimensions,
            statistic=statistic,
            period=PERIOD_SECONDS,
            evaluation_periods=EVALUATION_PERIODS,
            comparison_operator="LessThanThreshold",
            threshold=1,
            treat_missing_data="breaching",
            provider=provider,
        )

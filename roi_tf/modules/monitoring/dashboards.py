"""The design document's dashboards (Backend API, ML Service, Database, Cost) and an overview, as Python data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from roi_tf.modules.compute.gpu import GPU_METRICS_NAMESPACE as GPU_NAMESPACE
from roi_tf.modules.monitoring.alarms import Metric, Targets

WIDTH = 12  # two widgets a row (the grid is 24 wide)
HEIGHT = 6
PERIOD = 300
BILLING_REGION = "us-east-1"  # AWS publishes the billing metrics there only
CLOUDFRONT_REGION = "us-east-1"  # and CloudFront's


def _line(metric: Metric, **options: Any) -> list[Any]:
    """A metric line of a widget: namespace, name, dimension pairs, then its options."""
    line: list[Any] = [metric.namespace, metric.name]
    for name, value in metric.dimensions.items():
        line += [name, value]
    return [*line, {"stat": metric.stat, **({"label": metric.label} if metric.label else {}), **options}]


def graph(
    title: str,
    lines: Sequence[list[Any]],
    *,
    region: str,
    stacked: bool = False,
    y_label: str = "",
    annotations: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "title": title,
        "view": "timeSeries",
        "stacked": stacked,
        "region": region,
        "period": PERIOD,
        "metrics": list(lines),
    }
    if y_label:
        properties["yAxis"] = {"left": {"label": y_label, "showUnits": False}}
    if annotations:
        properties["annotations"] = {"horizontal": list(annotations)}
    return {"type": "metric", "width": WIDTH, "height": HEIGHT, "properties": properties}


def _layout(widgets: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Widgets left to right in rows of the 24-wide grid, in order."""
    placed, x, y, row_height = [], 0, 0, 0
    for widget in widgets:
        if x + widget["width"] > 2 * WIDTH:
            x, y, row_height = 0, y + row_height, 0
        placed.append({**widget, "x": x, "y": y})
        x, row_height = x + widget["width"], max(row_height, widget["height"])
    return {"widgets": placed}


def _m(namespace: str, name: str, dimensions: Mapping[str, str], stat: str, label: str = "") -> Metric:
    return Metric(namespace=namespace, name=name, dimensions=dimensions, stat=stat, label=label)


def _elb(lb: str, group: str | None, name: str, stat: str, label: str = "") -> Metric:
    dimensions = {"LoadBalancer": lb, **({"TargetGroup": group} if group else {})}
    return _m("AWS/ApplicationELB", name, dimensions, stat, label)


def _service(t: Targets, service: str, name: str, stat: str = "Average", label: str = "") -> Metric:
    return _m("AWS/ECS", name, {"ClusterName": t.tier.cluster_name, "ServiceName": service}, stat, label or name)


def _percentiles(lb: str, group: str) -> list[list[Any]]:
    return [_line(_elb(lb, group, "TargetResponseTime", p, p)) for p in ("p50", "p95", "p99")]


def backend_api(t: Targets, region: str, *, latency_ms: int, cache_hit_rate: bool) -> dict[str, Any]:
    lb, group = t.tier.public_lb, t.tier.public_target_group
    widgets = [
        graph(
            "Requests (public load balancer)", [_line(_elb(lb, None, "RequestCount", "Sum", "requests"))], region=region
        ),
        graph(
            "API latency (s)",
            _percentiles(lb, group),
            region=region,
            annotations=[{"label": "p95 warning", "value": latency_ms / 1000}],
        ),
        graph(
            "4XX / 5XX responses",
            [
                _line(_elb(lb, None, "HTTPCode_Target_4XX_Count", "Sum", "4XX (API)")),
                _line(_elb(lb, None, "HTTPCode_Target_5XX_Count", "Sum", "5XX (API)")),
                _line(_elb(lb, None, "HTTPCode_ELB_5XX_Count", "Sum", "5XX (load balancer)")),
            ],
            region=region,
        ),
        graph(
            "Healthy / unhealthy API tasks",
            [
                _line(_elb(lb, group, "HealthyHostCount", "Minimum", "healthy")),
                _line(_elb(lb, group, "UnHealthyHostCount", "Maximum", "unhealthy")),
            ],
            region=region,
        ),
        graph(
            "API CPU / memory (%)",
            [
                _line(_service(t, t.tier.services["api"], "CPUUtilization")),
                _line(_service(t, t.tier.services["api"], "MemoryUtilization")),
            ],
            region=region,
        ),
    ]
    cloudfront = {"DistributionId": t.distribution_id, "Region": "Global"}
    lines = [_line(_m("AWS/CloudFront", "Requests", cloudfront, "Sum", "requests"))]
    if cache_hit_rate:  # an additional metric: only with the distribution's monitoring subscription
        lines.append(
            _line(_m("AWS/CloudFront", "CacheHitRate", cloudfront, "Average", "cache hit rate (%)"), yAxis="right")
        )
    widgets.append(graph("CloudFront requests and cache hit rate", lines, region=CLOUDFRONT_REGION))
    return _layout(widgets)


def ml_service(t: Targets, region: str) -> dict[str, Any]:
    ml = t.tier.services["ml"]
    widgets = [
        graph(
            "Inference latency (s, internal load balancer)",
            _percentiles(t.tier.internal_lb, t.tier.internal_target_group),
            region=region,
        ),
        graph(
            "Inference requests",
            [_line(_elb(t.tier.internal_lb, None, "RequestCount", "Sum", "requests"))],
            region=region,
        ),
        graph(
            "ML CPU / memory (%)",
            [_line(_service(t, ml, "CPUUtilization")), _line(_service(t, ml, "MemoryUtilization"))],
            region=region,
        ),
        graph(
            "ML tasks",
            [
                _line(
                    _m(
                        "ECS/ContainerInsights",
                        "RunningTaskCount",
                        {"ClusterName": t.tier.cluster_name, "ServiceName": ml},
                        "Average",
                        "running",
                    )
                ),
                _line(
                    _m(
                        "ECS/ContainerInsights",
                        "DesiredTaskCount",
                        {"ClusterName": t.tier.cluster_name, "ServiceName": ml},
                        "Average",
                        "desired",
                    )
                ),
            ],
            region=region,
        ),
    ]
    if t.gpu_auto_scaling_group:
        group = {"AutoScalingGroupName": t.gpu_auto_scaling_group}
        widgets.append(
            graph(
                "GPU utilization (%, training instances)",
                [
                    _line(_m(GPU_NAMESPACE, "nvidia_smi_utilization_gpu", group, "Average", "GPU")),
                    _line(_m(GPU_NAMESPACE, "nvidia_smi_utilization_memory", group, "Average", "GPU memory")),
                ],
                region=region,
            )
        )
    return _layout(widgets)


def database(t: Targets, region: str, dr_region: str) -> dict[str, Any]:
    instances = [t.database, *t.database_replicas]

    def each(name: str, stat: str = "Average") -> list[list[Any]]:
        return [_line(_m("AWS/RDS", name, {"DBInstanceIdentifier": i}, stat, i)) for i in instances]

    lag = [_line(_m("AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": r}, "Maximum", r)) for r in t.database_replicas]
    if t.dr_replica:
        lag.append(
            _line(
                _m("AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": t.dr_replica}, "Maximum", t.dr_replica),
                region=dr_region,
            )
        )
    widgets = [
        graph("Database CPU (%)", each("CPUUtilization"), region=region),
        graph("Database connections", each("DatabaseConnections", "Maximum"), region=region),
        graph("Free storage (bytes)", each("FreeStorageSpace", "Minimum"), region=region),
        graph("Read / write IOPS", [*each("ReadIOPS"), *each("WriteIOPS")], region=region),
    ]
    if lag:
        widgets.append(graph("Replica lag (s)", lag, region=region))

    def redis(name: str, stat: str) -> list[list[Any]]:
        return [_line(_m("AWS/ElastiCache", name, {"CacheClusterId": n}, stat, f"{name} {n}")) for n in t.redis_nodes]

    widgets += [
        graph(
            "Redis hits / misses / evictions",
            [*redis("CacheHits", "Sum"), *redis("CacheMisses", "Sum"), *redis("Evictions", "Sum")],
            region=region,
        ),
        graph("Redis memory (%)", redis("DatabaseMemoryUsagePercentage", "Maximum"), region=region),
    ]
    return _layout(widgets)


def cost(monthly_budget_usd: int) -> dict[str, Any]:
    """Daily spend by service (the day's increase of the month-to-date estimate) and the month against the budget.

    Billing metrics are account-wide: where environments share an account they show the sum, while the budget (AWS
    Budgets, filtered by the Environment tag) is this environment's own.
    """
    by_service = (
        'SEARCH(\'{AWS/Billing,Currency,ServiceName} MetricName="EstimatedCharges" Currency="USD"\', '
        "'Maximum', 86400)"
    )
    widgets = [
        {
            "type": "metric",
            "width": 2 * WIDTH,
            "height": HEIGHT,
            "properties": {
                "title": "Daily spend by service (USD, account)",
                "view": "timeSeries",
                "stacked": True,
                "region": BILLING_REGION,
                "period": 86400,
                "metrics": [
                    [{"expression": by_service, "id": "mtd", "visible": False}],
                    [{"expression": "DIFF(mtd)", "id": "daily", "label": "daily (the 1st of a month shows the reset)"}],
                ],
            },
        },
        graph(
            "Month to date (USD, account) vs this environment's budget",
            [
                _line(
                    _m("AWS/Billing", "EstimatedCharges", {"Currency": "USD"}, "Maximum", "estimated charges"),
                    period=86400,
                )
            ],
            region=BILLING_REGION,
            annotations=[{"label": "budget.monthly_usd", "value": monthly_budget_usd}],
        ),
    ]
    return _layout(widgets)


def overview(alarm_arns: Sequence[str], dashboards: Sequence[str], region: str) -> dict[str, Any]:
    """Every alarm's state on one page, and where to look next."""
    links = " · ".join(f"[{name}](#dashboards:name={name})" for name in dashboards)
    widgets = [
        {
            "type": "alarm",
            "width": 2 * WIDTH,
            "height": HEIGHT,
            "properties": {"title": "Alarms", "alarms": list(alarm_arns), "sortBy": "stateUpdatedTimestamp"},
        },
        {
            "type": "text",
            "width": 2 * WIDTH,
            "height": 2,
            "properties": {"markdown": f"Dashboards: {links} (region {region})"},
        },
    ]
    return _layout(widgets)

"""Load and validate ``environments/<env>.json`` into frozen, typed configuration objects.

Validation happens in two passes, and every problem is reported (not just the first):

1. JSON Schema 2020-12 (``environments/schema.json``): shape, types, ranges, enums.
2. Cross-field rules that a schema cannot say well: NAT gateways <= AZs, subnets fit the VPC,
   Fargate CPU/memory pairs, auto-scaling bounds, production safety (Multi-AZ, deletion protection).

Each problem becomes one line ``<file>: <json path>: <rule broken>``; :class:`ConfigError` carries them
all. This module needs only the standard library and ``jsonschema``, so bad input is rejected before
the (slow) provider package is imported.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema

PROJECT = "roi-systems"
ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
# Environments held to the production rules below (design document: "Production: Multi-AZ, HA").
PRODUCTION_ENVIRONMENTS = frozenset({"prod"})
PRODUCTION_MIN_BACKUP_RETENTION_DAYS = 30
PERFORMANCE_INSIGHTS_FREE_DAYS = 7
# RDS and ElastiCache backup/snapshot windows must last at least 30 minutes.
MIN_WINDOW_MINUTES = 30
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEK_MINUTES = 7 * 24 * 60
# The only environments whose buckets terraform may empty on destroy (storage.force_destroy).
DISPOSABLE_ENVIRONMENTS = frozenset({"dev"})
# What the application tier reads in the DR region, so a pilot light replicates them there: the customers' documents,
# the ML service's models and the event processor's packages.
DR_BUCKETS = ("documents", "ml-artifacts", "artifacts")

DEFAULT_ENVIRONMENTS_DIR = Path(__file__).resolve().parent.parent / "environments"
SUBNET_TIERS: tuple[str, ...] = ("public", "private", "isolated")

# Valid Fargate task sizes: CPU units -> (min MiB, max MiB, step MiB).
FARGATE_MEMORY = {
    256: (512, 2048, None),
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}
FARGATE_256_MEMORY = (512, 1024, 2048)


class ConfigError(Exception):
    """One or more configuration problems, each a complete one-line message."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, kw_only=True)
class Tags:
    cost_center: str
    owner: str


@dataclass(frozen=True, kw_only=True)
class BudgetConfig:
    monthly_usd: int


@dataclass(frozen=True, kw_only=True)
class StateConfig:
    """Where ``<env>`` keeps its Terraform state; ``state-<env>`` creates exactly these."""

    bucket: str
    lock_table: str
    use_lockfile: bool = False  # default: DynamoDB locking only
    kms_deletion_window_days: int = 30


@dataclass(frozen=True, kw_only=True)
class ProtectionConfig:
    """Accidental-destroy protection of what holds data or audit history."""

    prevent_destroy: bool = True  # default: Terraform refuses a plan that destroys a data-holding resource


@dataclass(frozen=True, kw_only=True)
class SubnetPlan:
    """Computed subnet CIDRs per tier, one per AZ, in AZ order."""

    public: tuple[ipaddress.IPv4Network, ...]
    private: tuple[ipaddress.IPv4Network, ...]
    isolated: tuple[ipaddress.IPv4Network, ...]


@dataclass(frozen=True, kw_only=True)
class NetworkingConfig:
    vpc_cidr: ipaddress.IPv4Network
    az_count: int
    availability_zone_ids: tuple[str, ...]
    nat_gateway_count: int
    subnet_plan: SubnetPlan
    flow_log_retention_days: int = 90
    flow_log_aggregation_seconds: int = 600  # default: 10-minute aggregation (cheaper)
    interface_endpoints: tuple[str, ...] = ()  # default: no PrivateLink endpoints


@dataclass(frozen=True, kw_only=True)
class AutoscalingConfig:
    """Target tracking of one service (bounds required when enabled)."""

    enabled: bool
    min_capacity: int | None = None
    max_capacity: int | None = None
    target_cpu_percent: int | None = None
    target_memory_percent: int | None = None  # default: no memory target
    target_requests_per_target: int | None = None  # default: no request-count target
    scale_in_cooldown_seconds: int = 300
    scale_out_cooldown_seconds: int = 60


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    """One ECS Fargate service: task size, count, capacity mix, health checks and scaling."""

    task_cpu: int
    task_memory_mib: int
    desired_count: int
    autoscaling: AutoscalingConfig
    fargate_spot_percent: int = 0  # default: all tasks on on-demand Fargate
    container_port: int = 8080
    health_check_path: str = "/health"
    health_check_grace_period_seconds: int = 60
    deregistration_delay_seconds: int = 30


@dataclass(frozen=True, kw_only=True)
class LoadBalancerConfig:
    """The API's internet-facing load balancer."""

    certificate_arn: str | None = None  # default: none (then domain_name, or plain_http in dev)
    domain_name: str | None = None  # an ACM certificate for it, validated in hosted_zone_name
    hosted_zone_name: str | None = None
    ssl_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    plain_http: bool = False  # default: HTTPS only (plain HTTP only in a disposable environment)
    ingress: str = "internet"  # or "cloudfront": only CloudFront's origin-facing addresses
    idle_timeout_seconds: int = 60
    upload_path_prefixes: tuple[str, ...] = ("/api/documents",)  # large request bodies allowed (uploads)

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None or self.domain_name is not None


@dataclass(frozen=True, kw_only=True)
class EventProcessingConfig:
    """The SQS queue, its dead-letter queue and the Lambda function that consumes it."""

    package_type: str = "Zip"  # or "Image"
    runtime: str = "python3.12"
    handler: str = "app.handler"
    memory_mb: int = 512
    timeout_seconds: int = 60
    reserved_concurrency: int = 5
    batch_size: int = 10
    max_receive_count: int = 5
    message_retention_days: int = 4
    dead_letter_retention_days: int = 14


@dataclass(frozen=True, kw_only=True)
class GpuTrainingConfig:
    """Optional EC2 GPU capacity for training, as an ECS capacity provider scaled from zero."""

    enabled: bool = False  # default: no GPU capacity at all
    instance_type: str = "g4dn.xlarge"
    max_size: int = 2
    spot: bool = True
    volume_size_gb: int = 100


@dataclass(frozen=True, kw_only=True)
class ComputeConfig:
    """ECR, the ECS cluster, the API and ML services, event processing and GPU training capacity."""

    api: ServiceConfig
    ml: ServiceConfig
    image_keep_count: int = 30
    log_retention_days: int = 90
    enable_execute_command: bool = False  # default: no shell into running tasks
    load_balancer: LoadBalancerConfig = LoadBalancerConfig()
    event_processing: EventProcessingConfig = EventProcessingConfig()
    gpu_training: GpuTrainingConfig = GpuTrainingConfig()


@dataclass(frozen=True, kw_only=True)
class ApiCacheConfig:
    """TTLs of the API's cache policy: the API's Cache-Control decides within [min, max]."""

    min_ttl_seconds: int = 0
    default_ttl_seconds: int = 0  # default: cached only when the API says so
    max_ttl_seconds: int = 60


@dataclass(frozen=True, kw_only=True)
class GeoRestrictionConfig:
    type: str = "none"  # or "whitelist" / "blacklist" of locations
    locations: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CdnConfig:
    """The CloudFront distribution in front of the assets bucket and the API's load balancer."""

    domain_name: str | None = None  # default: CloudFront's own name and default certificate
    hosted_zone_name: str | None = None
    minimum_protocol_version: str = "TLSv1.2_2021"
    price_class: str = "PriceClass_100"
    api_origin: bool = True  # /api/* to the public load balancer, over HTTPS
    api_path_pattern: str = "/api/*"
    assets_cache_policy: str = "Managed-CachingOptimized"
    api_cache: ApiCacheConfig = ApiCacheConfig()
    api_forwarded_headers: tuple[str, ...] = (
        "Accept",
        "Accept-Language",
        "Content-Type",
        "Origin",
        "Referer",
        "User-Agent",
        "X-Request-Id",
    )
    hsts_max_age_seconds: int = 63072000  # two years
    hsts_preload: bool = False
    content_security_policy: str = (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
        "form-action 'self'; upgrade-insecure-requests"
    )
    referrer_policy: str = "strict-origin-when-cross-origin"
    frame_options: str = "DENY"
    geo_restriction: GeoRestrictionConfig = GeoRestrictionConfig()
    spa_fallback: bool = False


@dataclass(frozen=True, kw_only=True)
class DatabaseConfig:
    """RDS PostgreSQL and its RDS Proxy."""

    engine_version: str  # major only ("16"): minor upgrades are automatic
    instance_class: str
    multi_az: bool
    read_replicas: int
    backup_retention_days: int
    deletion_protection: bool  # also: a final snapshot on destroy
    allocated_storage_gb: int = 20
    max_allocated_storage_gb: int = 100
    backup_window: str = "03:00-04:00"  # UTC
    maintenance_window: str = "sun:04:30-sun:05:30"  # UTC, after the backup window
    cross_region_backups: bool = False  # default: backups stay in the primary region
    # A read replica in dr_region, promoted when the primary region fails; default: none (restore from backups).
    cross_region_replica: bool = False
    master_username: str = "roi_admin"
    database_name: str = "roi"
    monitoring_interval_seconds: int = 60
    performance_insights_retention_days: int = 7  # default: the free tier
    log_min_duration_statement_ms: int = 1000
    log_retention_days: int = 90
    proxy_max_connections_percent: int = 90  # default: leave 10% for direct admin sessions
    proxy_max_idle_connections_percent: int = 50
    proxy_connection_borrow_timeout_seconds: int = 120
    proxy_idle_client_timeout_seconds: int = 1800


@dataclass(frozen=True, kw_only=True)
class CacheConfig:
    """ElastiCache Redis in cluster mode."""

    node_type: str
    shards: int
    replicas_per_shard: int  # 0: single AZ, no failover target
    engine_version: str = "7.1"
    snapshot_retention_days: int = 1
    snapshot_window: str = "05:00-06:00"  # UTC
    maintenance_window: str = "sun:06:30-sun:07:30"  # UTC
    final_snapshot: bool = True  # default: a snapshot survives a destroy
    log_retention_days: int = 90


@dataclass(frozen=True, kw_only=True)
class SessionsConfig:
    """The DynamoDB sessions table."""

    enabled: bool = True
    ttl_attribute: str = "expires_at"
    deletion_protection: bool = True  # default: the table cannot be deleted by accident


@dataclass(frozen=True, kw_only=True)
class SecurityConfig:
    kms_deletion_window_days: int = 30  # default: the longest window, to recover from a mistaken deletion
    secret_recovery_window_days: int = 30  # 0: deleted at once (disposable environments only)
    # Bumped with a new TF_VAR_*: the values reach AWS only through write-only arguments keyed on these.
    db_password_version: int = 1
    jwt_secret_version: int = 1
    # Creates the once-per-account services (GuardDuty, Security Hub, AWS Config, password policy); default: yes.
    owns_account_services: bool = True
    enable_password_policy: bool = True  # default: the owner manages the account's password policy
    enable_security_hub: bool = True  # with the AWS Config recorder its controls need
    security_hub_standards: tuple[str, ...] = (
        "aws-foundational-security-best-practices",
        "cis-aws-foundations-benchmark",
    )
    enable_guardduty: bool = True
    enable_guardduty_in_dr_region: bool = False  # default: GuardDuty in the primary region only
    operators_require_mfa: bool = True
    operators_max_session_hours: int = 1
    cloudtrail_log_retention_days: int = 365
    waf_rate_limit: int = 2000  # requests per client IP in 5 minutes
    waf_log_retention_days: int = 90

    @property
    def records_configuration(self) -> bool:
        """This environment runs its account's AWS Config recorder (for Security Hub's controls)."""
        return self.owns_account_services and self.enable_security_hub


@dataclass(frozen=True, kw_only=True)
class BucketConfig:
    description: str
    archive_after_days: int | None = None  # default: current objects are never archived to Glacier
    replicate: bool = False  # default: no copy in the DR region


@dataclass(frozen=True, kw_only=True)
class StorageConfig:
    buckets: Mapping[str, BucketConfig]
    force_destroy: bool = False  # default: terraform refuses to destroy a bucket that holds objects
    intelligent_tiering: bool = True
    noncurrent_glacier_days: int = 30
    noncurrent_expiration_days: int = 365
    abort_incomplete_multipart_days: int = 7
    access_log_expiration_days: int = 365
    replication_time_control: bool = False


# Where alerts go: critical alerts page (design document: PagerDuty), warnings reach the team's channel (Slack).
CRITICAL_ROUTES = ("pagerduty", "email", "none")
WARNING_ROUTES = ("slack", "email", "none")


@dataclass(frozen=True, kw_only=True)
class AlertRouteConfig:
    """Where one severity's alerts are delivered; its endpoint, when the route needs one (never a secret)."""

    route: str = "none"  # default: the topic exists, and the alarms are visible in the console only
    email: str | None = None  # route "email": one address, confirmed by its owner after apply
    slack_workspace_id: str | None = None  # route "slack": the workspace authorized in AWS Chatbot (T...)
    slack_channel_id: str | None = None  # route "slack": the channel (C...)


@dataclass(frozen=True, kw_only=True)
class ThresholdsConfig:
    """Alarm thresholds; the defaults are the design document's numbers where it names one."""

    api_error_rate_percent: float = 1.0  # critical: 5XX responses over all requests
    database_cpu_percent: int = 80  # critical
    api_latency_p95_ms: int = 500  # warning: ALB TargetResponseTime p95
    memory_percent: int = 80  # warning: ECS services and Redis
    cost_increase_percent: int = 20  # warning: Cost Anomaly Detection impact over expected spend
    database_free_storage_gb: int = 10  # critical: below this, storage autoscaling has failed or hit its maximum
    replica_lag_seconds: int = 60  # critical: well inside the 5-minute RPO
    redis_cpu_percent: int = 80  # critical: EngineCPUUtilization (Redis is single-threaded)
    redis_memory_critical_percent: int = 90  # critical: evictions and refused writes are close
    api_log_errors_per_minute: int = 10  # warning: ERROR lines in the API's logs


@dataclass(frozen=True, kw_only=True)
class MonitoringConfig:
    """Alert routing, alarm settings and tracing of one environment."""

    critical: AlertRouteConfig = AlertRouteConfig()
    warning: AlertRouteConfig = AlertRouteConfig()
    chatbot_region: str = "us-west-2"  # AWS Chatbot's API lives in a few regions only (not us-east-1)
    period_seconds: int = 60
    evaluation_periods: int = 5
    datapoints_to_alarm: int = 3  # default: 3 of the last 5 minutes breaching
    thresholds: ThresholdsConfig = ThresholdsConfig()
    budget_forecast_percent: int = 100  # warning when the month's forecast exceeds the budget
    budget_actual_percent: int = 80  # warning when actual spend passes 80% of it
    cloudfront_additional_metrics: bool = True  # cache hit rate and origin latency (a paid CloudFront subscription)
    xray_sampling_rate: float = 0.05  # share of API requests traced beyond the reservoir
    xray_reservoir_per_second: int = 1  # requests traced every second whatever the rate


@dataclass(frozen=True, kw_only=True)
class UsageConfig:
    """Monthly usage the cost estimate prices (``python -m roi_tf cost``): assumptions, reviewed like code.

    Everything else the estimate prices (instances, node types, counts, hours) is read from the synthesized stack.
    """

    api_requests_millions: float = 1.0  # through CloudFront, both web ACLs and the public load balancer
    cdn_transfer_gb: float = 50.0  # CloudFront to viewers
    s3_storage_gb: float = 20.0  # S3 Standard, all buckets together
    s3_put_thousands: float = 100.0
    s3_get_thousands: float = 1000.0
    nat_processed_gb: float = 50.0  # through all NAT gateways
    endpoint_processed_gb: float = 20.0  # through all interface endpoints
    load_balancer_lcus: float = 1.0  # average LCUs of each load balancer
    log_ingestion_gb: float = 10.0  # CloudWatch Logs, all groups
    log_storage_gb: float = 30.0
    events_millions: float = 0.5  # event processor invocations (each: an SQS send, receive and delete)
    event_duration_ms: int = 500  # average Lambda duration
    sessions_reads_millions: float = 1.0
    sessions_writes_millions: float = 0.2
    sessions_storage_gb: float = 1.0
    database_backup_gb_beyond_free: float = 0.0  # backups beyond the free amount (the provisioned storage)
    secret_api_calls_thousands: float = 50.0
    kms_requests_thousands: float = 200.0
    cloudtrail_data_events_millions: float = 1.0
    security_hub_checks_thousands: float = 10.0
    config_items_thousands: float = 5.0
    ecr_storage_gb: float = 10.0


@dataclass(frozen=True, kw_only=True)
class CiConfig:
    """The GitHub Actions pipeline (``.github/workflows/infra.yml``): who may plan and apply this environment."""

    # "owner/name": the only repository whose workflows may assume the roles; default: no pipeline roles.
    github_repository: str | None = None
    # The GitHub environment (required reviewers in prod) whose jobs may apply; default: the environment's name.
    github_environment: str | None = None
    main_branch: str = "main"  # runs on this branch (and pull requests) may plan

    @property
    def enabled(self) -> bool:
        return self.github_repository is not None


# Where a stack's backend points: its state bucket in the primary region, or that bucket's replica in the DR region
# (dr.state_bucket) while the primary region is out (python main.py --state dr; docs/DEPLOYMENT.md).
STATE_LOCATIONS = ("primary", "dr")


@dataclass(frozen=True, kw_only=True)
class DrConfig:
    """The pilot light in ``dr_region``: what stands ready there while the primary region serves."""

    # Replica of the state bucket in dr_region, where Terraform keeps working when the primary region is lost
    # (python main.py --state dr); default: no pilot light (the section is omitted).
    state_bucket: str | None = None
    # The recovery point objective: the replication lag of the documents and the sessions alarms above it (the
    # database replica's lag alarms at monitoring.thresholds.replica_lag_seconds, tighter).
    rpo_minutes: int = 5
    # The cache as an ElastiCache Global Datastore with a secondary in dr_region (one node per shard, the primary's
    # node type); default: off (the cache is not copied: see docs/DEPLOYMENT.md, "Regional failover").
    cache_replica: bool = False
    # The application tier's load balancers stand idle in the standby VPC too (with the services at zero tasks, the
    # DNS names and the web ACL): a failover then needs no Route 53 call (its control plane is in us-east-1) and no
    # load balancer to create (+~$52/month: two load balancers, two public addresses, a web ACL). Default: off, only
    # what costs nothing stands ready (roles, task definitions, queues, certificate: docs/DEPLOYMENT.md, "The
    # application tier").
    standby_compute: bool = False
    # Failed over: dr_region serves. The promoted replica is the database (behind its own RDS Proxy) and the standby
    # VPC gets the primary's NAT gateways and VPC endpoints. failover.sh sets it after promoting the replica;
    # default: off (the pilot light stands idle).
    active: bool = False
    # Failing back (scripts/failback-database.sh): the primary region's database is a cross-region replica of the
    # promoted one in dr_region, catching up until the cut-over promotes it; needs active. Default: off.
    failback_replica: bool = False

    @property
    def enabled(self) -> bool:
        return self.state_bucket is not None


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """The whole, validated configuration of one environment."""

    name: str
    source: str  # the file it was loaded from, for messages
    region: str
    dr_region: str
    tags: Tags
    budget: BudgetConfig
    state: StateConfig
    protection: ProtectionConfig
    networking: NetworkingConfig
    compute: ComputeConfig
    cdn: CdnConfig
    database: DatabaseConfig
    cache: CacheConfig
    sessions: SessionsConfig
    security: SecurityConfig
    storage: StorageConfig
    monitoring: MonitoringConfig = MonitoringConfig()  # default: alarms and dashboards, alerts routed nowhere
    ci: CiConfig = CiConfig()  # default: no pipeline roles (deploys from operators' machines only)
    usage: UsageConfig = UsageConfig()  # the cost estimate's assumptions (defaults: a small environment)
    # The standby VPC in dr_region; default: none (only copies of data live there).
    dr_networking: NetworkingConfig | None = None
    dr: DrConfig = DrConfig()  # default: no pilot light (no replicated state, images, secrets, sessions)
    description: str = ""
    allowed_account_ids: tuple[str, ...] = ()  # default: any account

    @property
    def default_tags(self) -> Mapping[str, str]:
        """Tags the provider puts on every resource."""
        return MappingProxyType(
            {
                "Project": PROJECT,
                "Environment": self.name,
                "ManagedBy": "cdktf",
                "CostCenter": self.tags.cost_center,
                "Owner": self.tags.owner,
            }
        )


def in_zone(domain: str, zone: str) -> bool:
    """The zone's apex itself, or a name below it (label by label: api.notexample.com is not in example.com)."""
    return domain == zone or domain.endswith(f".{zone}")


def display_path(path: Path) -> str:
    """``environments/prod.json`` when under the working directory, else the absolute path."""
    rel = os.path.relpath(path)
    return path.as_posix() if rel.startswith("..") else Path(rel).as_posix()


def plan_subnets(
    vpc_cidr: ipaddress.IPv4Network, az_count: int, prefix_lengths: Mapping[str, int]
) -> SubnetPlan | None:
    """Pack one subnet per tier and AZ into the VPC, largest blocks first so every block stays aligned.

    Returns None when they do not fit. The order is deterministic: changing az_count or a prefix length
    renumbers subnets (and so replaces them), as with AWS CDK's automatic allocation.
    """
    requests = sorted(
        ((prefix_lengths[tier], SUBNET_TIERS.index(tier), az) for tier in SUBNET_TIERS for az in range(az_count)),
    )
    cursor = int(vpc_cidr.network_address)
    end = int(vpc_cidr.broadcast_address) + 1
    allocated: dict[str, list[ipaddress.IPv4Network]] = {tier: [None] * az_count for tier in SUBNET_TIERS}  # type: ignore[misc]
    for prefix, tier_index, az in requests:
        if prefix < vpc_cidr.prefixlen:
            return None
        size = 1 << (32 - prefix)
        cursor = -(-cursor // size) * size  # align up
        if cursor + size > end:
            return None
        allocated[SUBNET_TIERS[tier_index]][az] = ipaddress.IPv4Network((cursor, prefix))
        cursor += size
    return SubnetPlan(**{tier: tuple(nets) for tier, nets in allocated.items()})


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def daily_window_minutes(window: str) -> list[tuple[int, int]]:
    """``hh:mm-hh:mm`` (UTC, every day) as (start, end) minutes of the week, one pair per day."""
    start, end = (_minutes(part) for part in window.split("-"))
    if end <= start:
        end += 24 * 60
    return [(day * 24 * 60 + start, day * 24 * 60 + end) for day in range(7)]


def weekly_window_minutes(window: str) -> tuple[int, int]:
    """``ddd:hh:mm-ddd:hh:mm`` (UTC) as (start, end) minutes of the week."""
    start, end = (_DAYS.index(part[:3]) * 24 * 60 + _minutes(part[4:]) for part in (window[:9], window[10:]))
    return start, end if end > start else end + _WEEK_MINUTES


def _duration(window: tuple[int, int]) -> int:
    return window[1] - window[0]


def windows_overlap(daily: list[tuple[int, int]], weekly: tuple[int, int]) -> bool:
    """True if the weekly window shares a minute with any day's window (both may wrap the week)."""
    start, end = weekly
    shifted = [(s + k * _WEEK_MINUTES, e + k * _WEEK_MINUTES) for s, e in daily for k in (-1, 0, 1)]
    return any(s < end and start < e for s, e in shifted)


def _schema_defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {name: prop["default"] for name, prop in schema.get("properties", {}).items() if "default" in prop}


# Data AWS publishes, kept in the repository with its source and the date it was read (roi_tf/data/).
AWS_DATA_DIR = Path(__file__).resolve().parent / "data"


@functools.cache
def aws_data(name: str) -> Mapping[str, Any]:
    """``roi_tf/data/<name>.json``: AZ IDs per Region, the instance classes and node types AWS offers."""
    return json.loads((AWS_DATA_DIR / f"{name}.json").read_text())


# Node sizes below "large" (Global Datastore requires large and above).
SMALLER_THAN_LARGE = frozenset({"nano", "micro", "small", "medium"})


def node_family(node_type: str) -> str:
    """``cache.r5.large`` -> ``r5``; ``db.t4g.micro`` -> ``t4g``."""
    return node_type.split(".")[1]


class _Object(dict):  # type: ignore[type-arg]
    """A JSON object that remembers the keys given more than once (``json`` silently keeps the last)."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.duplicates: list[str] = []
        for key, value in pairs:
            if key in self and key not in self.duplicates:
                self.duplicates.append(key)
            self[key] = value


def _duplicate_keys(value: Any, where: str) -> list[tuple[str, str]]:
    """(JSON path of the object, key) of every key given twice, in document order."""
    found: list[tuple[str, str]] = []
    if isinstance(value, _Object):
        found += [(where, key) for key in value.duplicates]
        for key, item in value.items():
            found += _duplicate_keys(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found += _duplicate_keys(item, f"{where}[{n}]")
    return found


# The Environment tag of what exists once per account and every environment of the account reads (the GitHub OIDC
# provider, the GuardDuty detector): no environment's name (the schema's names have no hyphen).
ACCOUNT_SCOPE = "shared-account"

# What AWS accepts in a tag key or value: letters, digits and spaces (any script), and _ . : / = + - @.
TAG_PUNCTUATION = frozenset("_.:/=+-@")


def tag_problem(value: str) -> str | None:
    """Why AWS would refuse ``value`` as a tag value, or None."""
    bad = sorted({c for c in value if not (c.isalnum() or c == " " or c in TAG_PUNCTUATION)})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"{value!r} has {shown}, which AWS tags refuse (letters, digits, spaces and _ . : / = + - @ only)"
    if value != value.strip():
        return f"{value!r} starts or ends with a space (AWS strips it, so the tag would differ from the config)"
    return None


class _Loader:
    """Validates one environment file; collects problems instead of stopping at the first."""

    def __init__(self, path: Path, schema: Mapping[str, Any]) -> None:
        self.path = path
        self.where = display_path(path)
        self.schema = schema
        self.problems: list[str] = []

    def problem(self, json_path: str | None, message: str) -> None:
        """Record one broken rule; every rule of this module reports through here (tests enumerate the calls)."""
        self.problems.append(f"{self.where}: {json_path}: {message}" if json_path else f"{self.where}: {message}")

    def read(self) -> Any:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self.problem(None, "file not found")
            return None
        except OSError as exc:
            self.problem(None, f"cannot read: {exc.strerror}")
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            self.problem(
                None, f"not UTF-8: byte 0x{raw[exc.start]:02x} at line {line}, column {column} (save the file as UTF-8)"
            )
            return None
        try:
            data = json.loads(text, object_pairs_hook=_Object)
        except json.JSONDecodeError as exc:
            self.problem(None, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
            return None
        for where, key in _duplicate_keys(data, "$"):
            self.problem(f"{where}.{key}", "given twice in the same object (JSON keeps only the last one): remove one")
        return data  # duplicates are problems: the file is schema-checked, never built

    def validate_schema(self, data: Any) -> None:
        validator = jsonschema.Draft202012Validator(self.schema)
        errors = sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
        for error in errors:
            self.problem(error.json_path, error.message)

    def section(self, data: Mapping[str, Any], name: str) -> dict[str, Any]:
        """A section with the schema's defaults filled in."""
        return {**_schema_defaults(self.schema["properties"][name]), **data[name]}

    def build(self, data: Mapping[str, Any], expected_name: str) -> EnvironmentConfig | None:
        if data.get("environment") != expected_name:
            self.problem("$.environment", f"{data.get('environment')!r} does not match the file name {expected_name!r}")
        if data["region"] == data["dr_region"]:
            self.problem("$.dr_region", f"must differ from region {data['region']!r}")

        for field_name, value in data["tags"].items():
            if (why := tag_problem(value)) is not None:
                self.problem(f"$.tags.{field_name}", why)
        state = StateConfig(**self.section(data, "state"))
        protection = ProtectionConfig(**self.section(data, "protection"))
        networking = self._networking(self.section(data, "networking"), data["region"])
        dr_networking = self._dr_networking(data, networking)
        compute = self._compute(expected_name, data["region"], self.section(data, "compute"))
        cdn = self._cdn(self.section(data, "cdn"), compute.load_balancer)
        database = DatabaseConfig(**self.section(data, "database"))
        cache = CacheConfig(**self.section(data, "cache"))
        sessions = SessionsConfig(**self.section(data, "sessions"))
        security = self._security(self.section(data, "security"))
        storage = self._storage(expected_name, self.section(data, "storage"))
        monitoring = self._monitoring(expected_name, data.get("monitoring", {}))
        ci = self._ci(expected_name, data.get("ci", {}))
        usage = UsageConfig(**{**_schema_defaults(self.schema["properties"]["usage"]), **data.get("usage", {})})
        dr = self._dr(data, state, database, cache, storage, compute)
        self._check_database(database)
        if database.cross_region_replica and "dr_networking" not in data:
            self.problem(
                "$.database.cross_region_replica",
                "needs dr_networking: the replica lives in a VPC in dr_region",
            )
        self._check_cache(cache)
        self._check_classes(database, cache)
        self._check_versions(database, cache, compute.gpu_training)
        self._check_disposable(expected_name, security)
        self._check_protection(protection, database, sessions)
        self._check_production(expected_name, protection, networking, database, cache, sessions, security, storage)
        if expected_name in PRODUCTION_ENVIRONMENTS and not dr.enabled:
            self.problem("$", f"needs a dr section in {expected_name}: the design promises RTO 1 hour, RPO 5 minutes")
        if self.problems or networking is None:
            return None

        return EnvironmentConfig(
            name=expected_name,
            source=self.where,
            description=data.get("description", ""),
            region=data["region"],
            dr_region=data["dr_region"],
            allowed_account_ids=tuple(data.get("allowed_account_ids", ())),
            tags=Tags(**data["tags"]),
            budget=BudgetConfig(**data["budget"]),
            state=state,
            protection=protection,
            networking=networking,
            compute=compute,
            cdn=cdn,
            database=database,
            cache=cache,
            sessions=sessions,
            security=security,
            storage=storage,
            monitoring=monitoring,
            ci=ci,
            usage=usage,
            dr_networking=dr_networking,
            dr=dr,
        )

    def _dr(
        self,
        data: Mapping[str, Any],
        state: StateConfig,
        db: DatabaseConfig,
        cache: CacheConfig,
        storage: StorageConfig,
        compute: ComputeConfig,
    ) -> DrConfig:
        if "dr" not in data:
            return DrConfig()
        dr = DrConfig(**self.section(data, "dr"))
        lb = compute.load_balancer
        if not (lb.domain_name and lb.hosted_zone_name and not lb.certificate_arn):
            self.problem(
                "$.dr",
                "needs compute.load_balancer.domain_name and hosted_zone_name (not a certificate_arn, which is "
                "regional): the API's name fails over in DNS, and the DR region's certificate is issued for it",
            )
        unreplicated = [
            name for name in DR_BUCKETS if not (name in storage.buckets and storage.buckets[name].replicate)
        ]
        if unreplicated:
            self.problem(
                "$.dr",
                f"needs storage.buckets {', '.join(unreplicated)} replicated: the application tier in dr_region "
                "reads them there (documents, models, the event processor's packages)",
            )
        if dr.cache_replica:
            supported = aws_data("instance_classes")["elasticache_global_datastore_families"]
            family, size = node_family(cache.node_type), cache.node_type.rsplit(".", 1)[-1]
            if family not in supported["families"] or size in SMALLER_THAN_LARGE:
                self.problem(
                    "$.dr.cache_replica",
                    f"cache.node_type {cache.node_type!r} cannot join a Global Datastore (AWS: families "
                    f"{', '.join(supported['families'])}, size {supported['min_size']} and above; "
                    f"{supported['source_global']})",
                )
        if dr.failback_replica and not dr.active:
            self.problem(
                "$.dr.failback_replica",
                "needs dr.active: the primary region's database replicates from the promoted one in dr_region, "
                "which exists only failed over",
            )
        if dr.state_bucket == state.bucket:
            self.problem("$.dr.state_bucket", "must differ from state.bucket: it is the state's copy in dr_region")
        # What the pilot light stands on: the standby VPC with the database replica, and replicated backups.
        if not db.cross_region_replica:
            self.problem("$.dr", "needs database.cross_region_replica: the replica is the database after failover")
        if not db.cross_region_backups:
            self.problem("$.dr", "needs database.cross_region_backups: a promoted replica still needs its history")
        if not storage.replication_time_control:
            self.problem(
                "$.dr",
                "needs storage.replication_time_control: without it S3 bounds no replication lag of the documents",
            )
        return dr

    def _networking(self, raw: dict[str, Any], region: str, where: str = "$.networking") -> NetworkingConfig | None:
        try:
            vpc_cidr = ipaddress.IPv4Network(raw["vpc_cidr"])
        except ValueError as exc:
            self.problem(f"{where}.vpc_cidr", f"{raw['vpc_cidr']!r} is not a valid IPv4 network: {exc}")
            return None
        if not vpc_cidr.is_private:
            self.problem(f"{where}.vpc_cidr", f"{vpc_cidr} is not a private (RFC 1918) range")
        if not 16 <= vpc_cidr.prefixlen <= 28:
            self.problem(f"{where}.vpc_cidr", f"/{vpc_cidr.prefixlen} is outside the VPC limits /16 to /28")

        az_count, nat_count = raw["az_count"], raw["nat_gateway_count"]
        zone_ids = tuple(raw["availability_zone_ids"])
        self._check_zones(f"{where}.availability_zone_ids", zone_ids, region)
        if len(zone_ids) != az_count:
            self.problem(
                f"{where}.availability_zone_ids",
                f"lists {len(zone_ids)} zones but az_count is {az_count} (one zone ID per AZ)",
            )
        if nat_count > az_count:
            self.problem(
                f"{where}.nat_gateway_count",
                f"{nat_count} NAT gateways exceed az_count {az_count} (at most one per AZ)",
            )

        prefixes = {
            **_schema_defaults(self.schema["properties"]["networking"]["properties"]["subnet_prefix_lengths"]),
            **raw.get("subnet_prefix_lengths", {}),
        }
        plan = plan_subnets(vpc_cidr, az_count, prefixes)
        if plan is None:
            needed = az_count * sum(1 << (32 - prefixes[tier]) for tier in SUBNET_TIERS)
            shape = ", ".join(f"{tier} /{prefixes[tier]}" for tier in SUBNET_TIERS)
            self.problem(
                f"{where}.subnet_prefix_lengths",
                f"subnets do not fit in vpc_cidr {vpc_cidr}: {az_count} AZs x ({shape}) need {needed} "
                f"addresses, the VPC holds {vpc_cidr.num_addresses}",
            )
            return None
        return NetworkingConfig(
            vpc_cidr=vpc_cidr,
            az_count=az_count,
            availability_zone_ids=zone_ids,
            nat_gateway_count=nat_count,
            subnet_plan=plan,
            flow_log_retention_days=raw["flow_log_retention_days"],
            flow_log_aggregation_seconds=raw["flow_log_aggregation_seconds"],
            interface_endpoints=tuple(raw["interface_endpoints"]),
        )

    def _dr_networking(self, data: Mapping[str, Any], primary: NetworkingConfig | None) -> NetworkingConfig | None:
        """The standby VPC in dr_region: the primary's layout and flow logs, no NAT gateways, no endpoints while the
        pilot light stands idle; failed over (dr.active), the primary's NAT gateways (one per zone at most) and
        endpoints, so the services there reach their registries, logs and secrets as they do in the primary."""
        if "dr_networking" not in data or primary is None:
            return None
        raw = data["dr_networking"]
        zones = len(raw["availability_zone_ids"])
        active = data.get("dr", {}).get("active", False)
        merged = {
            **self.section(data, "networking"),
            "vpc_cidr": raw["vpc_cidr"],
            "availability_zone_ids": raw["availability_zone_ids"],
            "az_count": zones,
            "nat_gateway_count": min(primary.nat_gateway_count, zones) if active else 0,
            "interface_endpoints": list(primary.interface_endpoints) if active else [],
        }
        dr = self._networking(merged, data["dr_region"], where="$.dr_networking")
        if dr is not None and dr.vpc_cidr.overlaps(primary.vpc_cidr):
            self.problem(
                "$.dr_networking.vpc_cidr",
                f"{dr.vpc_cidr} overlaps networking.vpc_cidr {primary.vpc_cidr} (the VPCs must be peerable)",
            )
        return dr

    def _compute(self, name: str, region: str, raw: dict[str, Any]) -> ComputeConfig:
        schema = self.schema["properties"]["compute"]["properties"]
        services = {
            key: self._service(
                f"$.compute.{key}", {**_schema_defaults(self.schema["$defs"]["ecs_service"]), **raw[key]}
            )
            for key in ("api", "ml")
        }
        lb_raw = {**_schema_defaults(schema["load_balancer"]), **raw.get("load_balancer", {})}
        load_balancer = LoadBalancerConfig(**{**lb_raw, "upload_path_prefixes": tuple(lb_raw["upload_path_prefixes"])})
        self._check_load_balancer(name, region, load_balancer)
        events = EventProcessingConfig(
            **{**_schema_defaults(schema["event_processing"]), **raw.get("event_processing", {})}
        )
        if events.dead_letter_retention_days <= events.message_retention_days:
            # A message keeps its first enqueue time in the dead-letter queue: it must be kept longer there.
            self.problem(
                "$.compute.event_processing.dead_letter_retention_days",
                f"{events.dead_letter_retention_days} must be greater than message_retention_days "
                f"{events.message_retention_days} (a failed message keeps its original age in the dead-letter queue)",
            )
        return ComputeConfig(
            **{
                k: v
                for k, v in raw.items()
                if k not in ("api", "ml", "load_balancer", "event_processing", "gpu_training")
            },
            api=services["api"],
            ml=services["ml"],
            load_balancer=load_balancer,
            event_processing=events,
            gpu_training=GpuTrainingConfig(
                **{**_schema_defaults(schema["gpu_training"]), **raw.get("gpu_training", {})}
            ),
        )

    def _service(self, where: str, raw: dict[str, Any]) -> ServiceConfig:
        cpu, memory = raw["task_cpu"], raw["task_memory_mib"]
        low, high, step = FARGATE_MEMORY[cpu]
        valid = memory in FARGATE_256_MEMORY if step is None else low <= memory <= high and memory % step == 0
        if not valid:
            allowed = ", ".join(map(str, FARGATE_256_MEMORY)) if step is None else f"{low} to {high} in steps of {step}"
            self.problem(
                f"{where}.task_memory_mib",
                f"{memory} MiB is not a valid Fargate size for task_cpu {cpu} (allowed: {allowed})",
            )
        scaling_schema = self.schema["$defs"]["ecs_service"]["properties"]["autoscaling"]
        scaling = AutoscalingConfig(**{**_schema_defaults(scaling_schema), **raw["autoscaling"]})
        if scaling.enabled:
            missing = [k for k in ("min_capacity", "max_capacity", "target_cpu_percent") if getattr(scaling, k) is None]
            for key in missing:
                self.problem(f"{where}.autoscaling.{key}", "is required when auto-scaling is enabled")
            if not missing and not scaling.min_capacity <= raw["desired_count"] <= scaling.max_capacity:
                self.problem(
                    f"{where}.desired_count",
                    f"{raw['desired_count']} is outside the auto-scaling range "
                    f"{scaling.min_capacity} to {scaling.max_capacity}",
                )
        return ServiceConfig(**{**raw, "autoscaling": scaling})

    def _cdn(self, raw: dict[str, Any], lb: LoadBalancerConfig) -> CdnConfig:
        schema = self.schema["properties"]["cdn"]["properties"]
        api_cache = ApiCacheConfig(**{**_schema_defaults(schema["api_cache"]), **raw.get("api_cache", {})})
        geo_raw = {**_schema_defaults(schema["geo_restriction"]), **raw.get("geo_restriction", {})}
        geo = GeoRestrictionConfig(type=geo_raw["type"], locations=tuple(geo_raw["locations"]))
        cdn = CdnConfig(
            **{
                **raw,
                "api_cache": api_cache,
                "geo_restriction": geo,
                "api_forwarded_headers": tuple(raw["api_forwarded_headers"]),
            }
        )
        where = "$.cdn"
        self._check_domain(where, cdn.domain_name, cdn.hosted_zone_name, "aliases and certificate validation")
        if cdn.api_origin and not lb.domain_name:
            # CloudFront checks the origin's certificate against the origin's name: only a name the load
            # balancer's certificate covers works (its AWS DNS name never does), and plain HTTP never goes out.
            self.problem(
                f"{where}.api_origin",
                "needs compute.load_balancer.domain_name: CloudFront reaches the API over HTTPS by the name the load "
                "balancer's certificate covers (set api_origin false to serve the assets only)",
            )
        if not api_cache.min_ttl_seconds <= api_cache.default_ttl_seconds <= api_cache.max_ttl_seconds:
            self.problem(
                f"{where}.api_cache",
                f"TTLs must satisfy min <= default <= max (got {api_cache.min_ttl_seconds}, "
                f"{api_cache.default_ttl_seconds}, {api_cache.max_ttl_seconds})",
            )
        if any(header.lower() in ("authorization", "cookie", "host") for header in cdn.api_forwarded_headers):
            self.problem(
                f"{where}.api_forwarded_headers",
                "must not list Authorization (it travels in the cache key, so no caller gets another's response), "
                "Cookie (cookies are never forwarded) or Host (the origin's certificate is for its own name)",
            )
        if (geo.type == "none") != (not geo.locations):
            self.problem(
                f"{where}.geo_restriction",
                "type none takes no locations; whitelist and blacklist need at least one",
            )
        return cdn

    def _monitoring(self, name: str, raw: dict[str, Any]) -> MonitoringConfig:
        schema = self.schema["properties"]["monitoring"]["properties"]
        routes = {
            severity: AlertRouteConfig(**{**_schema_defaults(schema[severity]), **raw.get(severity, {})})
            for severity in ("critical", "warning")
        }
        thresholds = ThresholdsConfig(**{**_schema_defaults(schema["thresholds"]), **raw.get("thresholds", {})})
        monitoring = MonitoringConfig(
            **{**_schema_defaults(self.schema["properties"]["monitoring"]), **raw, **routes, "thresholds": thresholds}
        )
        endpoints = {"email": ("email",), "slack": ("slack_workspace_id", "slack_channel_id"), "pagerduty": ()}
        for severity, route in routes.items():
            where = f"$.monitoring.{severity}"
            needed = endpoints.get(route.route, ())
            for field_name in needed:
                if not getattr(route, field_name):
                    self.problem(f"{where}.{field_name}", f"is required with route {route.route!r} (where alerts go)")
            for field_name in ("email", "slack_workspace_id", "slack_channel_id"):
                if getattr(route, field_name) and field_name not in needed:
                    self.problem(
                        f"{where}.{field_name}",
                        f"is not used by route {route.route!r}: remove it, or set the route that delivers to it",
                    )
        if name in PRODUCTION_ENVIRONMENTS and routes["critical"].route != "pagerduty":
            self.problem(
                "$.monitoring.critical.route",
                f"must be 'pagerduty' in {name}: critical alerts page the on-call engineer (design document)",
            )
        if monitoring.datapoints_to_alarm > monitoring.evaluation_periods:
            self.problem(
                "$.monitoring.datapoints_to_alarm",
                f"{monitoring.datapoints_to_alarm} exceeds evaluation_periods {monitoring.evaluation_periods} "
                "(an alarm needs M of the last N periods breaching, M <= N)",
            )
        if thresholds.redis_memory_critical_percent <= thresholds.memory_percent:
            self.problem(
                "$.monitoring.thresholds.redis_memory_critical_percent",
                f"{thresholds.redis_memory_critical_percent} must exceed memory_percent {thresholds.memory_percent} "
                "(the warning comes first, then the page)",
            )
        return monitoring

    def _ci(self, name: str, raw: dict[str, Any]) -> CiConfig:
        ci = CiConfig(**{**_schema_defaults(self.schema["properties"]["ci"]), **raw})
        if ci.github_environment is not None and ci.github_repository is None:
            self.problem(
                "$.ci.github_environment",
                "needs github_repository: without it no pipeline role exists to trust that environment",
            )
        return replace(ci, github_environment=ci.github_environment or name)

    def _check_domain(self, where: str, domain: str | None, zone: str | None, zone_used_for: str) -> None:
        """A configured domain name needs its public hosted zone, and lies in it (its apex included)."""
        if domain and not zone:
            self.problem(f"{where}.hosted_zone_name", f"is required with domain_name ({zone_used_for})")
        if domain and zone and not in_zone(domain, zone):
            self.problem(f"{where}.domain_name", f"{domain} is not in the zone {zone}")

    def _check_load_balancer(self, name: str, region: str, lb: LoadBalancerConfig) -> None:
        where = "$.compute.load_balancer"
        if lb.certificate_arn and lb.domain_name:
            self.problem(f"{where}.domain_name", "give either certificate_arn or domain_name, not both")
        self._check_domain(where, lb.domain_name, lb.hosted_zone_name, "the certificate's DNS validation")
        if lb.certificate_arn and lb.certificate_arn.split(":")[3] != region:
            self.problem(
                f"{where}.certificate_arn",
                f"is in {lb.certificate_arn.split(':')[3]}: a load balancer's certificate must be in {region}",
            )
        if lb.plain_http and lb.https:
            self.problem(f"{where}.plain_http", "must be false when a certificate is configured (HTTPS only)")
        if lb.plain_http and name not in DISPOSABLE_ENVIRONMENTS:
            self.problem(
                f"{where}.plain_http",
                f"must be false in {name}: the API is never served over plain HTTP outside "
                f"{', '.join(sorted(DISPOSABLE_ENVIRONMENTS))}",
            )
        if not lb.https and not lb.plain_http:
            self.problem(
                where,
                "needs certificate_arn or domain_name (HTTPS), or plain_http: true in a disposable environment",
            )

    @staticmethod
    def _security(raw: dict[str, Any]) -> SecurityConfig:
        return SecurityConfig(**{**raw, "security_hub_standards": tuple(raw["security_hub_standards"])})

    def _storage(self, name: str, raw: dict[str, Any]) -> StorageConfig:
        bucket_schema = self.schema["properties"]["storage"]["properties"]["buckets"]["additionalProperties"]
        buckets = {
            bucket: BucketConfig(**{**_schema_defaults(bucket_schema), **spec})
            for bucket, spec in raw["buckets"].items()
        }
        storage = StorageConfig(**{**raw, "buckets": MappingProxyType(buckets)})
        if storage.noncurrent_expiration_days <= storage.noncurrent_glacier_days:
            self.problem(
                "$.storage.noncurrent_expiration_days",
                f"{storage.noncurrent_expiration_days} must be greater than noncurrent_glacier_days "
                f"{storage.noncurrent_glacier_days} (S3 rejects an expiration before the transition)",
            )
        if storage.force_destroy and name not in DISPOSABLE_ENVIRONMENTS:
            self.problem(
                "$.storage.force_destroy",
                f"must be false in {name}: only {', '.join(sorted(DISPOSABLE_ENVIRONMENTS))} may empty buckets "
                "on destroy",
            )
        return storage

    def _check_database(self, db: DatabaseConfig) -> None:
        if db.max_allocated_storage_gb < db.allocated_storage_gb:
            self.problem(
                "$.database.max_allocated_storage_gb",
                f"{db.max_allocated_storage_gb} is less than allocated_storage_gb {db.allocated_storage_gb}",
            )
        if "." in db.engine_version:
            self.problem(
                "$.database.engine_version",
                f"{db.engine_version!r} pins a minor version: give the major version only "
                f"({db.engine_version.split('.')[0]!r}), minor versions are upgraded automatically",
            )
        retention = db.performance_insights_retention_days
        if retention != PERFORMANCE_INSIGHTS_FREE_DAYS and retention % 31:
            self.problem(
                "$.database.performance_insights_retention_days",
                f"{retention} is neither {PERFORMANCE_INSIGHTS_FREE_DAYS} nor a multiple of 31 "
                "(Performance Insights retention)",
            )
        if db.proxy_max_idle_connections_percent > db.proxy_max_connections_percent:
            self.problem(
                "$.database.proxy_max_idle_connections_percent",
                f"{db.proxy_max_idle_connections_percent} exceeds proxy_max_connections_percent "
                f"{db.proxy_max_connections_percent}",
            )
        if windows_overlap(daily_window_minutes(db.backup_window), weekly_window_minutes(db.maintenance_window)):
            self.problem(
                "$.database.maintenance_window",
                f"{db.maintenance_window} overlaps backup_window {db.backup_window} (RDS rejects overlapping windows)",
            )
        if _duration(daily_window_minutes(db.backup_window)[0]) < MIN_WINDOW_MINUTES:
            self.problem("$.database.backup_window", f"{db.backup_window} is shorter than {MIN_WINDOW_MINUTES} minutes")

    def _check_zones(self, where: str, zone_ids: Sequence[str], region: str) -> None:
        """Each AZ ID is one AWS lists for the region (a zone of another region fails only at apply)."""
        zones = aws_data("az_ids")
        known = zones["regions"].get(region)
        if known is None:
            self.problem(
                where,
                f"no AZ IDs of {region} in roi_tf/data/az_ids.json (AWS's list, read {zones['read']}): "
                f"add the region's from {zones['source']}, or check the region",
            )
            return
        for n, zone in enumerate(zone_ids):
            if zone not in known:
                self.problem(f"{where}[{n}]", f"{zone!r} is not an AZ ID of {region} (AWS lists {', '.join(known)})")

    def _check_classes(self, db: DatabaseConfig, cache: CacheConfig) -> None:
        """Sizes AWS offers for the engine, and the features they support (roi_tf/data/instance_classes.json)."""
        classes = aws_data("instance_classes")
        offered = classes["rds_postgres"]["classes"]
        if db.instance_class not in offered:
            self.problem(
                "$.database.instance_class",
                f"{db.instance_class!r} is not a DB instance class RDS for PostgreSQL offers "
                f"(AWS's list, read {classes['read']}: {classes['rds_postgres']['source']})",
            )
        nodes = classes["elasticache_node_types"]
        if cache.node_type not in nodes["node_types"]:
            self.problem(
                "$.cache.node_type",
                f"{cache.node_type!r} is not a node type ElastiCache offers (AWS's list, read {classes['read']}: "
                f"{nodes['source']})",
            )

    def _check_versions(self, db: DatabaseConfig, cache: CacheConfig, gpu: GpuTrainingConfig) -> None:
        """Engine versions and GPU instance types AWS offers (roi_tf/data/engines.json, its sources inside). For
        PostgreSQL the major version (RDS picks the minor); the list was read second-hand (docs/VALIDATION.md)."""
        engines = aws_data("engines")
        offered = [
            ("$.database.engine_version", db.engine_version.split(".")[0], "rds_postgres_major_versions",
             "a PostgreSQL major version RDS offers for new instances"),
            ("$.cache.engine_version", cache.engine_version, "elasticache_redis_versions",
             "a Redis OSS version ElastiCache offers"),
        ]  # fmt: skip
        if gpu.enabled:
            offered.append(
                ("$.compute.gpu_training.instance_type", gpu.instance_type, "ec2_gpu_instance_types",
                 "a GPU instance type EC2 offers")
            )  # fmt: skip
        for where, value, key, what in offered:
            data = engines[key]
            known = data.get("versions", data.get("instance_types"))
            if value not in known:
                self.problem(
                    where,
                    f"{value!r} is not {what} (AWS's list, read {engines['read']}: {', '.join(known)}; "
                    f"{data['source']})",
                )

    def _check_cache(self, cache: CacheConfig) -> None:
        if windows_overlap(
            daily_window_minutes(cache.snapshot_window), weekly_window_minutes(cache.maintenance_window)
        ):
            self.problem(
                "$.cache.maintenance_window",
                f"{cache.maintenance_window} overlaps snapshot_window {cache.snapshot_window} "
                "(ElastiCache rejects overlapping windows)",
            )
        if _duration(daily_window_minutes(cache.snapshot_window)[0]) < MIN_WINDOW_MINUTES:
            self.problem(
                "$.cache.snapshot_window", f"{cache.snapshot_window} is shorter than {MIN_WINDOW_MINUTES} minutes"
            )

    def _check_protection(self, protection: ProtectionConfig, db: DatabaseConfig, sessions: SessionsConfig) -> None:
        """Where Terraform refuses to destroy data, AWS must refuse too (a console or CLI delete)."""
        if not protection.prevent_destroy:
            return
        if not db.deletion_protection:
            self.problem(
                "$.database.deletion_protection",
                "must be true when protection.prevent_destroy is: AWS must refuse a delete Terraform refuses",
            )
        if sessions.enabled and not sessions.deletion_protection:
            self.problem(
                "$.sessions.deletion_protection",
                "must be true when protection.prevent_destroy is: AWS must refuse a delete Terraform refuses",
            )

    def _check_disposable(self, name: str, security: SecurityConfig) -> None:
        if security.secret_recovery_window_days == 0 and name not in DISPOSABLE_ENVIRONMENTS:
            self.problem(
                "$.security.secret_recovery_window_days",
                f"0 (delete at once) is for disposable environments ({', '.join(sorted(DISPOSABLE_ENVIRONMENTS))}); "
                f"{name} keeps deleted secrets restorable for 7 to 30 days",
            )

    def _check_production(
        self,
        name: str,
        protection: ProtectionConfig,
        net: NetworkingConfig | None,
        db: DatabaseConfig,
        cache: CacheConfig,
        sessions: SessionsConfig,
        security: SecurityConfig,
        storage: StorageConfig,
    ) -> None:
        if name not in PRODUCTION_ENVIRONMENTS:
            return
        if not protection.prevent_destroy:
            self.problem(
                "$.protection.prevent_destroy",
                f"must be true in {name}: nothing that holds data or audit history may be destroyed by accident",
            )
        if security.owns_account_services and security.enable_guardduty and not security.enable_guardduty_in_dr_region:
            self.problem(
                "$.security.enable_guardduty_in_dr_region",
                f"must be true in {name}: the DR region holds copies of customer data",
            )
        if not security.operators_require_mfa:
            self.problem(
                "$.security.operators_require_mfa",
                f"must be true in {name}: MFA is required for production access",
            )
        if not storage.buckets["documents"].replicate:
            self.problem(
                "$.storage.buckets.documents.replicate",
                f"must be true in {name}: documents are replicated to the DR region",
            )
        if not db.multi_az:
            self.problem("$.database.multi_az", f"must be true in {name}: production databases are Multi-AZ")
        if db.backup_retention_days < PRODUCTION_MIN_BACKUP_RETENTION_DAYS:
            self.problem(
                "$.database.backup_retention_days",
                f"{db.backup_retention_days} is less than the production minimum of "
                f"{PRODUCTION_MIN_BACKUP_RETENTION_DAYS} days",
            )
        if db.read_replicas < 1:
            self.problem(
                "$.database.read_replicas",
                f"must be at least 1 in {name}: production reads scale out to a replica",
            )
        if not db.cross_region_backups:
            self.problem(
                "$.database.cross_region_backups",
                f"must be true in {name}: backups are replicated to the DR region",
            )
        if cache.replicas_per_shard < 1:
            self.problem(
                "$.cache.replicas_per_shard",
                f"must be at least 1 in {name}: every shard needs a replica to fail over to",
            )
        if net is not None and net.nat_gateway_count != net.az_count:
            self.problem(
                "$.networking.nat_gateway_count",
                f"must equal az_count ({net.az_count}) in {name}: one NAT gateway per AZ (HA)",
            )


def load_schema(environments_dir: Path = DEFAULT_ENVIRONMENTS_DIR) -> dict[str, Any]:
    path = environments_dir / "schema.json"
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{display_path(path)}: file not found"]) from None
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{display_path(path)}: invalid JSON at line {exc.lineno}: {exc.msg}"]) from None
    # Not checked against the metaschema here: it ships with the code and tests/test_config.py checks it (about
    # 0.1 s each load, paid by every synth and every configuration-reading helper of the scripts).
    return schema


def load_environments(
    names: Iterable[str] | None = None, environments_dir: Path = DEFAULT_ENVIRONMENTS_DIR
) -> dict[str, EnvironmentConfig]:
    """Load and validate the named environments (default: all); raise ConfigError listing every problem."""
    requested = tuple(names) if names else ENVIRONMENTS
    unknown = [name for name in requested if name not in ENVIRONMENTS]
    if unknown:
        raise ConfigError(
            f"unknown environment {name!r}: expected one of {', '.join(ENVIRONMENTS)}" for name in unknown
        )
    schema = load_schema(environments_dir)
    loaders: dict[str, _Loader] = {}
    configs: dict[str, EnvironmentConfig] = {}
    state_names: dict[str, dict[str, tuple[str, str]]] = {}
    for name in dict.fromkeys(requested):
        loader = loaders[name] = _Loader(environments_dir / f"{name}.json", schema)
        data = loader.read()
        if isinstance(data, Mapping):
            state_names[name] = _state_names(data)
        if data is not None:
            loader.validate_schema(data)
            if not loader.problems:
                config = loader.build(data, name)
                if config is not None:
                    configs[name] = config
    _check_shared_accounts(configs, loaders)
    _check_unique_state_names(state_names, loaders, _state_names_of_others(requested, environments_dir))
    problems = [problem for loader in loaders.values() for problem in loader.problems]
    if problems:
        raise ConfigError(problems)
    return configs


# What one environment per account may own: (whether it does, the JSON path to report, what it owns, the remedy).
ACCOUNT_SINGLETONS: tuple[tuple[Callable[[EnvironmentConfig], bool], str, str, str], ...] = (
    (
        lambda config: config.security.owns_account_services,
        "$.security.owns_account_services",
        "which owns its account services already (GuardDuty, Security Hub, AWS Config, the password policy)",
        "set this false to reference them",
    ),
    # ECR's replication configuration is one per registry (account and region): one pilot light may own it.
    (
        lambda config: config.dr.enabled,
        "$.dr",
        "whose pilot light owns the account's ECR replication already (one per account and region)",
        "give this environment its own account",
    ),
)


def _check_shared_accounts(configs: Mapping[str, EnvironmentConfig], loaders: Mapping[str, _Loader]) -> None:
    """Across files: at most one environment per known account owns each once-per-account thing."""
    for owns, where, owned, remedy in ACCOUNT_SINGLETONS:
        owners: dict[str, list[str]] = {}
        for name, config in configs.items():
            if owns(config):
                for account in config.allowed_account_ids:
                    owners.setdefault(account, []).append(name)
        for account, names in owners.items():
            for name in names[1:]:
                loaders[name].problem(where, f"account {account} is shared with {names[0]}, {owned}: {remedy}")


# Where each environment keeps its state: S3 bucket names are global, and two environments sharing a lock table or a
# bucket would share the other's state, or one's state stack would take over the other's bucket.
STATE_NAMES = {("state", "bucket"): "bucket", ("dr", "state_bucket"): "bucket", ("state", "lock_table"): "table"}


def _state_names(data: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """JSON path -> (namespace, name) of every state location an environment file names."""
    names = {}
    for (section, key), namespace in STATE_NAMES.items():
        value = data.get(section, {}).get(key) if isinstance(data.get(section), Mapping) else None
        if isinstance(value, str):
            names[f"$.{section}.{key}"] = (namespace, value)
    return names


def _state_names_of_others(requested: Sequence[str], environments_dir: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """The state names of the environments not being loaded (``--env``), read leniently: their own problems are
    reported when they are loaded; a name they take is still taken."""
    others = {}
    for name in ENVIRONMENTS:
        if name in requested:
            continue
        try:
            data = json.loads((environments_dir / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, Mapping):
            others[name] = _state_names(data)
    return others


def _check_unique_state_names(
    names: Mapping[str, Mapping[str, tuple[str, str]]],
    loaders: Mapping[str, _Loader],
    others: Mapping[str, Mapping[str, tuple[str, str]]],
) -> None:
    """Across files: no two environments name the same state bucket (or DR copy) or lock table. The names come from
    the files as written (a file with other problems still takes its names); the environments not being loaded
    (``--env``) take theirs first."""
    taken: dict[tuple[str, str], str] = {}
    for name, found in [*others.items(), *names.items()]:
        for where, key in found.items():
            owner = taken.setdefault(key, name)
            if owner != name and name in loaders:
                why = "S3 bucket names are global" if key[0] == "bucket" else "a shared lock table shares the locks"
                loaders[name].problem(
                    where, f"{key[1]!r} is {owner}'s already: every environment keeps its state apart ({why})"
                )

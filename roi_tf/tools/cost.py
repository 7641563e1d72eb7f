"""Monthly cost estimate of an environment, priced from its synthesized stack (``python -m roi_tf cost``).

What is deployed (task sizes and counts, instance classes, Multi-AZ, replicas, node types, load balancers, NAT
gateways, endpoints, keys, alarms, web ACL rules) is read from the stack's JSON; how much it is used (requests, GB
transferred and stored, events) from the environment's ``usage`` section; the rates from
``roi_tf/tools/data/aws_prices.json`` (on-demand, USD, 730 hours a month, each rate with its source and date).
Free tiers are not subtracted. What is billed by usage we do not model is listed as not priced, never as $0.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from roi_tf.config import DEFAULT_ENVIRONMENTS_DIR, ENVIRONMENTS, EnvironmentConfig, UsageConfig

DATA = Path(__file__).resolve().parent / "data"
PRICES = DATA / "aws_prices.json"
SCHEMA = DATA / "cost_estimate.schema.json"
HOURS = 730  # AWS's monthly hours
SECONDS = HOURS * 3600
# The services of the design document's "Monthly Cost Breakdown (Production)", then the others, in this order.
SERVICES = (
    "ECS Fargate",
    "RDS PostgreSQL",
    "ElastiCache",
    "S3 + CloudFront",
    "ALB",
    "NAT Gateway",
    "CloudWatch + X-Ray",
    "Secrets Manager",
    "VPC endpoints",
    "Public IPv4",
    "KMS",
    "WAF",
    "DynamoDB",
    "Lambda + SQS",
    "CloudTrail",
    "Security Hub + Config",
    "ECR",
    "EC2 (GPU training)",
)
# Billed by usage we do not model: named in every estimate instead of counted as nothing.
NOT_PRICED = {
    "aws_guardduty_detector": "GuardDuty: billed per event analysed (CloudTrail, flow logs, DNS); see its console",
    "aws_cloudfront_monitoring_subscription": "CloudFront additional metrics: billed as CloudWatch metrics",
    "aws_budgets_budget": "AWS Budgets: the first two budgets of an account are free",
    "aws_sns_topic": "SNS: notifications are billed per million, negligible at alert volumes",
    "aws_s3_bucket_replication_configuration": "S3 replication: inter-region transfer per GB replicated",
    "aws_db_instance_automated_backups_replication": "RDS cross-region backups: transfer and storage in the DR region",
}
# What the estimate prices (with the usage it reads, where a resource alone does not say).
PRICED = frozenset(
    {
        "aws_ecs_service", "aws_ecs_task_definition", "aws_db_instance", "aws_db_proxy",
        "aws_elasticache_replication_group", "aws_s3_bucket", "aws_cloudfront_distribution", "aws_lb",
        "aws_nat_gateway", "aws_eip", "aws_vpc_endpoint", "aws_cloudwatch_metric_alarm", "aws_cloudwatch_dashboard",
        "aws_cloudwatch_log_metric_filter", "aws_cloudwatch_log_group", "aws_xray_sampling_rule",
        "aws_secretsmanager_secret", "aws_kms_key", "aws_wafv2_web_acl", "aws_cloudtrail", "aws_securityhub_account",
        "aws_config_configuration_recorder", "aws_dynamodb_table", "aws_lambda_function", "aws_sqs_queue",
        "aws_ecr_repository", "aws_autoscaling_group", "aws_launch_template", "aws_route53_health_check",
    }
)  # fmt: skip
# Resources AWS does not charge for by themselves (configuration of something priced, or free): a resource type
# in none of PRICED, NOT_PRICED and NO_CHARGE fails the tests, so every new type is looked at.
NO_CHARGE = frozenset(
    {
        # networking configuration (the VPC, subnets, routes, ACLs, security groups and flow-log settings are free;
        # flow logs' delivery is log ingestion)
        "aws_vpc", "aws_subnet", "aws_route_table", "aws_route", "aws_route_table_association", "aws_internet_gateway",
        "aws_default_network_acl", "aws_default_route_table", "aws_default_security_group", "aws_network_acl",
        "aws_network_acl_rule", "aws_security_group", "aws_vpc_security_group_ingress_rule",
        "aws_vpc_security_group_egress_rule", "aws_flow_log", "aws_db_subnet_group", "aws_elasticache_subnet_group",
        # configuration of priced resources
        "aws_s3_bucket_lifecycle_configuration", "aws_s3_bucket_logging", "aws_s3_bucket_notification",
        "aws_s3_bucket_ownership_controls", "aws_s3_bucket_policy", "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_versioning", "aws_db_parameter_group",
        "aws_db_proxy_default_target_group", "aws_db_proxy_target", "aws_elasticache_parameter_group",
        "aws_elasticache_user", "aws_elasticache_user_group", "aws_kms_alias", "aws_secretsmanager_secret_version",
        "aws_ecs_cluster", "aws_ecs_cluster_capacity_providers", "aws_ecs_capacity_provider", "aws_lb_listener",
        "aws_lb_target_group", "aws_appautoscaling_target", "aws_appautoscaling_policy", "aws_ecr_lifecycle_policy",
        "aws_ecr_replication_configuration",
        "aws_lambda_event_source_mapping", "aws_sqs_queue_policy", "aws_sqs_queue_redrive_allow_policy",
        "aws_cloudfront_cache_policy", "aws_cloudfront_origin_access_control", "aws_cloudfront_origin_request_policy",
        "aws_cloudfront_response_headers_policy", "aws_cloudfront_function", "aws_wafv2_web_acl_association",
        "aws_wafv2_web_acl_logging_configuration", "aws_cloudwatch_log_delivery", "aws_cloudwatch_log_delivery_source",
        "aws_cloudwatch_log_delivery_destination", "aws_sns_topic_policy", "aws_sns_topic_subscription",
        "aws_xray_group", "aws_guardduty_detector_feature", "aws_securityhub_standards_subscription",
        "aws_config_configuration_recorder_status", "aws_config_delivery_channel",
        # free: IAM, certificates (public ACM), DNS records in an existing zone (queries to alias records are free),
        # EventBridge rules on AWS service events, Cost Anomaly Detection, Chatbot
        "aws_iam_role", "aws_iam_role_policy", "aws_iam_role_policy_attachment", "aws_iam_group",
        "aws_iam_group_policy", "aws_iam_instance_profile", "aws_iam_account_password_policy",
        "aws_iam_service_linked_role", "aws_iam_openid_connect_provider", "aws_acm_certificate",
        "aws_acm_certificate_validation", "aws_route53_record", "aws_cloudwatch_event_rule",
        "aws_cloudwatch_event_target", "aws_ce_anomaly_monitor", "aws_ce_anomaly_subscription",
        "aws_chatbot_slack_channel_configuration",
    }
)  # fmt: skip
# vCPUs of an RDS instance class by its size (AWS's naming: large = 2, xlarge = 4, 2xlarge = 8, ...); RDS Proxy
# bills per vCPU of the database, at least 2.
_SIZE_VCPUS = {"micro": 2, "small": 2, "medium": 2, "large": 2, "xlarge": 4}


class PriceError(Exception):
    """A rate the estimate needs is not in the price file."""


@dataclass(frozen=True)
class Prices:
    rates: Mapping[str, Mapping[str, Any]]
    read: str

    @classmethod
    def load(cls, path: Path = PRICES) -> Prices:
        data = json.loads(path.read_text())
        return cls(data["prices"], data["read"])

    def rate(self, key: str, region: str) -> tuple[float, str | None]:
        """The rate of ``key`` in ``region``; where the file has only us-east-1's, that one and a note saying so."""
        entry = self.rates.get(key)
        if entry is None:
            raise PriceError(f"no rate for {key} in {PRICES.name}")
        notes = []
        if entry.get("verified") is False:
            notes.append(f"{key}: unverified rate (no source readable offline); confirm at {entry['aws_page']}")
        if region in entry:
            value = entry[region]
        elif "us-east-1" in entry:
            value = entry["us-east-1"]
            notes.append(f"{key}: no {region} rate in the price file, us-east-1's used")
        else:
            raise PriceError(f"no rate for {key} in {region} (nor us-east-1) in {PRICES.name}")
        return float(value), "; ".join(notes) or None


@dataclass(frozen=True)
class Line:
    service: str
    item: str
    monthly_usd: float
    region: str
    rates: tuple[str, ...]


@dataclass
class Estimate:
    environment: str
    region: str
    budget_usd: int
    lines: list[Line] = field(default_factory=list)
    not_priced: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total_usd(self) -> float:
        return round(sum(line.monthly_usd for line in self.lines), 2)

    @property
    def within_budget(self) -> bool:
        return self.total_usd <= self.budget_usd

    def by_service(self) -> list[tuple[str, float, list[Line]]]:
        grouped = [(s, [line for line in self.lines if line.service == s]) for s in SERVICES]
        return [(s, round(sum(line.monthly_usd for line in lines), 2), lines) for s, lines in grouped if lines]


class _Pricer:
    """Walks one environment stack and prices it."""

    def __init__(self, stack: Mapping[str, Any], config: EnvironmentConfig, prices: Prices) -> None:
        self.stack, self.config, self.prices, self.usage = stack, config, prices, config.usage
        self.resources = stack.get("resource", {})
        providers = stack.get("provider", {}).get("aws", [])
        self.regions = {p.get("alias"): p["region"] for p in providers}
        self.estimate = Estimate(config.name, config.region, config.budget.monthly_usd)

    # --- helpers ---------------------------------------------------------------------------------------------

    def of(self, rtype: str) -> list[Mapping[str, Any]]:
        return list(self.resources.get(rtype, {}).values())

    def region_of(self, body: Mapping[str, Any]) -> str:
        provider = body.get("provider")
        return self.regions[provider.removeprefix("aws.") if provider else None]

    def referenced(self, reference: str) -> Mapping[str, Any]:
        match = re.fullmatch(r"\$\{(\w+)\.(\w+)\.\w+\}", reference)
        if not match:
            raise PriceError(f"cannot follow {reference!r}")
        return self.resources[match.group(1)][match.group(2)]

    def standing_by(self, body: Mapping[str, Any]) -> bool:
        """In the DR region while the pilot light idles: it exists (and bills by the hour) but serves no traffic."""
        return self.region_of(body) == self.config.dr_region and not self.config.dr.active

    def rate(self, key: str, region: str) -> float:
        value, note = self.prices.rate(key, region)
        if note and note not in self.estimate.notes:
            self.estimate.notes.append(note)
        return value

    def add(self, service: str, item: str, monthly: float, region: str, *rates: str) -> None:
        self.estimate.lines.append(Line(service, item, round(monthly, 2), region, rates))

    def add_metered(self, service: str, item: str, quantity: float, region: str, key: str) -> None:
        """A line billed at one rate: ``quantity`` units of ``key``'s price a month."""
        self.add(service, item, quantity * self.rate(key, region), region, key)

    # --- services --------------------------------------------------------------------------------------------

    def fargate(self) -> None:
        for service in self.of("aws_ecs_service"):
            task = self.referenced(service["task_definition"])
            region = self.region_of(service)
            vcpu, gb = int(task["cpu"]) / 1024, int(task["memory"]) / 1024
            per_task = (
                vcpu * self.rate("fargate.vcpu_hour", region) + gb * self.rate("fargate.gb_hour", region)
            ) * HOURS
            count = service["desired_count"]
            spot = _spot_tasks(count, service.get("capacity_provider_strategy", []))
            discount = self.rate("fargate.spot_discount", region)
            monthly = (count - spot) * per_task + spot * per_task * (1 - discount)
            name = task["family"].rsplit("-", 1)[-1]
            self.add(
                "ECS Fargate",
                f"{name}: {vcpu:g} vCPU / {gb:g} GB x {count} ({spot:g} on Spot)",
                monthly,
                region,
                "fargate.vcpu_hour",
                "fargate.gb_hour",
                "fargate.spot_discount",
            )

    def rds(self) -> None:
        instances = self.of("aws_db_instance")
        by_identifier = {db["identifier"]: db for db in instances}
        for db in instances:
            region = self.region_of(db)
            source = db.get("replicate_source_db")
            primary = db if not source else self._source(source, by_identifier)
            role = "replica" if source else "primary"
            if "allocated_storage" not in primary:  # a promoted replica (dr.active): the storage it copied
                (primary,) = [other for other in instances if "allocated_storage" in other]
                role = "promoted replica"
            copies = 2 if db.get("multi_az") else 1
            instance = f"rds.postgres.{db['instance_class']}"
            hours = self.rate(instance, region) * copies * HOURS
            storage_gb = primary["allocated_storage"]
            storage = storage_gb * self.rate("rds.gp3_gb_month", region) * copies
            where = f" ({region})" if region != self.config.region else ""
            self.add(
                "RDS PostgreSQL",
                f"{db['instance_class']}{' Multi-AZ' if copies == 2 else ''} {role}{where}",
                hours,
                region,
                instance,
            )
            self.add("RDS PostgreSQL", f"{storage_gb} GB gp3 ({role}{where})", storage, region, "rds.gp3_gb_month")
            if not source and self.usage.database_backup_gb_beyond_free:
                backup = self.usage.database_backup_gb_beyond_free * self.rate("rds.backup_gb_month", region)
                self.add(
                    "RDS PostgreSQL",
                    f"{self.usage.database_backup_gb_beyond_free:g} GB backups beyond free",
                    backup,
                    region,
                    "rds.backup_gb_month",
                )
        for proxy in self.of("aws_db_proxy"):
            region = self.region_of(proxy)
            primary = next(db for db in instances if not db.get("replicate_source_db") and self.region_of(db) == region)
            vcpus = max(2, _vcpus(primary["instance_class"]))
            self.add(
                "RDS PostgreSQL",
                f"RDS Proxy ({vcpus} vCPUs of {primary['instance_class']})",
                vcpus * self.rate("rds.proxy_vcpu_hour", region) * HOURS,
                region,
                "rds.proxy_vcpu_hour",
            )

    def _source(self, reference: str, by_identifier: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
        """The primary a replica copies (``replicate_source_db``: its identifier or ARN reference)."""
        return self.referenced(reference) if reference.startswith("${") else by_identifier[reference]

    def elasticache(self) -> None:
        for group in self.of("aws_elasticache_replication_group"):
            region, shape = self.region_of(group), group
            if "global_replication_group_id" in group:  # a Global Datastore secondary: the primary's type and shards
                datastore = self.referenced(group["global_replication_group_id"])
                shape = self.referenced(datastore["primary_replication_group_id"])
            shards = shape.get("num_node_groups", 1)
            nodes = group.get("num_cache_clusters") or shards * (group["replicas_per_node_group"] + 1)
            key = f"elasticache.{shape['node_type']}"
            where = f" (Global Datastore secondary in {region})" if shape is not group else ""
            self.add(
                "ElastiCache",
                f"{shape['node_type']} x {nodes}{where}",
                nodes * self.rate(key, region) * HOURS,
                region,
                key,
            )

    def storage_and_cdn(self) -> None:
        u, region = self.usage, self.config.region
        if self.of("aws_s3_bucket"):
            self.add_metered(
                "S3 + CloudFront",
                f"S3 Standard {u.s3_storage_gb:g} GB",
                u.s3_storage_gb,
                region,
                "s3.standard_gb_month",
            )
            requests = u.s3_put_thousands * self.rate("s3.put_per_1000", region)
            requests += u.s3_get_thousands * self.rate("s3.get_per_1000", region)
            self.add(
                "S3 + CloudFront",
                f"S3 requests ({u.s3_put_thousands:g}k PUT, {u.s3_get_thousands:g}k GET)",
                requests,
                region,
                "s3.put_per_1000",
                "s3.get_per_1000",
            )
        for _ in self.of("aws_cloudfront_distribution"):
            transfer = u.cdn_transfer_gb * self.rate("cloudfront.transfer_gb", region)
            self.add(
                "S3 + CloudFront",
                f"CloudFront {u.cdn_transfer_gb:g} GB to viewers",
                transfer,
                region,
                "cloudfront.transfer_gb",
            )
            requests = u.api_requests_millions * 100 * self.rate("cloudfront.https_requests_per_10000", region)
            self.add(
                "S3 + CloudFront",
                f"CloudFront {u.api_requests_millions:g} M HTTPS requests",
                requests,
                region,
                "cloudfront.https_requests_per_10000",
            )

    def network(self) -> None:
        u = self.usage
        for lb in self.of("aws_lb"):
            region = self.region_of(lb)
            hours = self.rate("alb.hour", region) * HOURS
            used = 0 if self.standing_by(lb) else u.load_balancer_lcus  # the pilot light's: no traffic
            lcus = used * self.rate("alb.lcu_hour", region) * HOURS
            kind = "internal" if lb.get("internal") else "internet-facing"
            where = f", {region}" if region != self.config.region else ""
            self.add("ALB", f"{kind} ({used:g} LCU{where})", hours + lcus, region, "alb.hour", "alb.lcu_hour")
        gateways = self.of("aws_nat_gateway")
        if gateways:
            region = self.region_of(gateways[0])
            hours = len(gateways) * self.rate("nat.hour", region) * HOURS
            data = u.nat_processed_gb * self.rate("nat.gb_processed", region)
            self.add(
                "NAT Gateway",
                f"{len(gateways)} gateways, {u.nat_processed_gb:g} GB processed",
                hours + data,
                region,
                "nat.hour",
                "nat.gb_processed",
            )
        # Every region's, priced at the primary's rate (one line).
        addresses = len(self.of("aws_eip")) + sum(
            len(lb["subnets"]) for lb in self.of("aws_lb") if not lb.get("internal")
        )
        if addresses:
            region = self.config.region
            self.add(
                "Public IPv4",
                f"{addresses} addresses (NAT gateways, internet-facing load balancers)",
                addresses * self.rate("public_ipv4.hour", region) * HOURS,
                region,
                "public_ipv4.hour",
            )
        interface = [e for e in self.of("aws_vpc_endpoint") if e.get("vpc_endpoint_type") == "Interface"]
        if interface:
            region = self.region_of(interface[0])
            enis = sum(len(e["subnet_ids"]) for e in interface)
            hours = enis * self.rate("vpc_endpoint.interface_hour", region) * HOURS
            data = u.endpoint_processed_gb * self.rate("vpc_endpoint.gb_processed", region)
            self.add(
                "VPC endpoints",
                f"{len(interface)} interface endpoints in {enis} AZ-subnets, {u.endpoint_processed_gb:g} GB",
                hours + data,
                region,
                "vpc_endpoint.interface_hour",
                "vpc_endpoint.gb_processed",
            )

    def observability(self) -> None:
        u, region = self.usage, self.config.region
        alarms = self.of("aws_cloudwatch_metric_alarm")
        metrics = sum(_alarm_metrics(alarm) for alarm in alarms)
        if alarms:
            self.add_metered(
                "CloudWatch + X-Ray",
                f"{len(alarms)} alarms ({metrics} metrics)",
                metrics,
                region,
                "cloudwatch.alarm_month",
            )
        checks = self.of("aws_route53_health_check")
        if checks:
            self.add_metered(
                "CloudWatch + X-Ray",
                f"{len(checks)} Route 53 health checks (the API's failover)",
                len(checks),
                region,
                "route53.health_check_month",
            )
        dashboards = self.of("aws_cloudwatch_dashboard")
        if dashboards:
            self.add_metered(
                "CloudWatch + X-Ray",
                f"{len(dashboards)} dashboards",
                len(dashboards),
                region,
                "cloudwatch.dashboard_month",
            )
        filters = self.of("aws_cloudwatch_log_metric_filter")
        if filters:
            self.add_metered(
                "CloudWatch + X-Ray",
                f"{len(filters)} custom metrics (log metric filters)",
                len(filters),
                region,
                "cloudwatch.custom_metric_month",
            )
        logs = u.log_ingestion_gb * self.rate("cloudwatch.logs_ingest_gb", region)
        logs += u.log_storage_gb * self.rate("cloudwatch.logs_storage_gb_month", region)
        self.add(
            "CloudWatch + X-Ray",
            f"logs: {u.log_ingestion_gb:g} GB ingested, {u.log_storage_gb:g} GB stored",
            logs,
            region,
            "cloudwatch.logs_ingest_gb",
            "cloudwatch.logs_storage_gb_month",
        )
        for rule in self.of("aws_xray_sampling_rule"):
            requests = u.api_requests_millions * 1e6
            traces = min(requests, rule["reservoir_size"] * SECONDS + (requests * rule["fixed_rate"]))
            self.add_metered(
                "CloudWatch + X-Ray",
                f"X-Ray: {traces / 1e6:.2f} M traces ({rule['fixed_rate']:g} sampled, "
                f"{rule['reservoir_size']}/s reservoir)",
                traces / 1e6,
                region,
                "xray.traces_recorded_per_million",
            )

    def security(self) -> None:
        u, region = self.usage, self.config.region
        secrets = self.of("aws_secretsmanager_secret")
        if secrets:
            monthly = len(secrets) * self.rate("secretsmanager.secret_month", region)
            monthly += u.secret_api_calls_thousands / 10 * self.rate("secretsmanager.api_per_10000", region)
            self.add(
                "Secrets Manager",
                f"{len(secrets)} secrets, {u.secret_api_calls_thousands:g}k API calls",
                monthly,
                region,
                "secretsmanager.secret_month",
                "secretsmanager.api_per_10000",
            )
        # A replica is billed as a secret of its own, in its region (the DR pilot light).
        replicas: dict[str, int] = {}
        for secret in secrets:
            for replica in secret.get("replica", []):
                replicas[replica["region"]] = replicas.get(replica["region"], 0) + 1
        for replica_region, count in replicas.items():
            self.add_metered(
                "Secrets Manager",
                f"{count} secret replicas in {replica_region}",
                count,
                replica_region,
                "secretsmanager.secret_month",
            )
        keys_by_region: dict[str, int] = {}
        for key in self.of("aws_kms_key"):
            keys_by_region[self.region_of(key)] = keys_by_region.get(self.region_of(key), 0) + 1
        for key_region, keys in keys_by_region.items():
            monthly = keys * self.rate("kms.key_month", key_region)
            requests = u.kms_requests_thousands if key_region == region else 0  # the requests: the primary's keys
            if requests:
                monthly += requests / 10 * self.rate("kms.requests_per_10000", key_region)
            self.add(
                "KMS",
                f"{keys} keys in {key_region}" + (f", {requests:g}k requests" if requests else ""),
                monthly,
                key_region,
                "kms.key_month",
                *(["kms.requests_per_10000"] if requests else []),
            )
        for acl in self.of("aws_wafv2_web_acl"):
            acl_region = self.region_of(acl)
            rules = len(acl.get("rule", []))
            monthly = self.rate("waf.web_acl_month", acl_region) + rules * self.rate("waf.rule_month", acl_region)
            requests = 0 if self.standing_by(acl) else u.api_requests_millions
            monthly += requests * self.rate("waf.requests_per_million", acl_region)
            self.add(
                "WAF",
                f"{acl['scope'].lower()} web ACL ({acl_region}), {rules} rules, {requests:g} M requests",
                monthly,
                acl_region,
                "waf.web_acl_month",
                "waf.rule_month",
                "waf.requests_per_million",
            )
        if self.of("aws_cloudtrail"):
            self.add_metered(
                "CloudTrail",
                f"{u.cloudtrail_data_events_millions:g} M data events (management events: the "
                "first trail's copy is free)",
                u.cloudtrail_data_events_millions * 10,
                region,
                "cloudtrail.data_events_per_100000",
            )
        if self.of("aws_securityhub_account"):
            self.add_metered(
                "Security Hub + Config",
                f"Security Hub {u.security_hub_checks_thousands:g}k checks",
                u.security_hub_checks_thousands / 10,
                region,
                "securityhub.checks_per_10000",
            )
        if self.of("aws_config_configuration_recorder"):
            self.add_metered(
                "Security Hub + Config",
                f"AWS Config {u.config_items_thousands:g}k items recorded",
                u.config_items_thousands * 1000,
                region,
                "config.item_recorded",
            )

    def application(self) -> None:
        u, region = self.usage, self.config.region
        for table in self.of("aws_dynamodb_table"):
            monthly = u.sessions_reads_millions * self.rate("dynamodb.read_request_per_million", region)
            monthly += u.sessions_writes_millions * self.rate("dynamodb.write_request_per_million", region)
            monthly += u.sessions_storage_gb * self.rate("dynamodb.storage_gb_month", region)
            if table.get("point_in_time_recovery", {}).get("enabled"):
                monthly += u.sessions_storage_gb * self.rate("dynamodb.pitr_gb_month", region)
            self.add(
                "DynamoDB",
                f"{table['name']}: {u.sessions_reads_millions:g} M reads, "
                f"{u.sessions_writes_millions:g} M writes, {u.sessions_storage_gb:g} GB",
                monthly,
                region,
                "dynamodb.read_request_per_million",
                "dynamodb.write_request_per_million",
                "dynamodb.storage_gb_month",
                "dynamodb.pitr_gb_month",
            )
            for replica in table.get("replica", []):  # a global table: every write is written again there
                where = replica["region_name"]
                monthly = u.sessions_writes_millions * self.rate("dynamodb.write_request_per_million", where)
                monthly += u.sessions_storage_gb * self.rate("dynamodb.storage_gb_month", where)
                if replica.get("point_in_time_recovery"):
                    monthly += u.sessions_storage_gb * self.rate("dynamodb.pitr_gb_month", where)
                self.add(
                    "DynamoDB",
                    f"{table['name']} replica in {where}: {u.sessions_writes_millions:g} M replicated writes, "
                    f"{u.sessions_storage_gb:g} GB",
                    monthly,
                    where,
                    "dynamodb.write_request_per_million",
                    "dynamodb.storage_gb_month",
                    "dynamodb.pitr_gb_month",
                )
        for function in self.of("aws_lambda_function"):
            invocations = u.events_millions
            gb_seconds = invocations * 1e6 * function["memory_size"] / 1024 * u.event_duration_ms / 1000
            monthly = invocations * self.rate("lambda.requests_per_million", region)
            monthly += gb_seconds * self.rate("lambda.gb_second", region)
            self.add(
                "Lambda + SQS",
                f"{function['function_name']}: {invocations:g} M invocations x "
                f"{u.event_duration_ms} ms at {function['memory_size']} MB",
                monthly,
                region,
                "lambda.requests_per_million",
                "lambda.gb_second",
            )
        if self.of("aws_sqs_queue"):
            requests = 3 * u.events_millions  # send, receive, delete
            self.add_metered(
                "Lambda + SQS",
                f"SQS {requests:g} M requests",
                requests,
                region,
                "sqs.requests_per_million",
            )
        for repository_region in sorted({self.region_of(r) for r in self.of("aws_ecr_repository")}):
            copies = "" if repository_region == region else " (copies; their cross-region transfer is not priced)"
            self.add_metered(
                "ECR",
                f"{u.ecr_storage_gb:g} GB of images in {repository_region}{copies}",
                u.ecr_storage_gb,
                repository_region,
                "ecr.storage_gb_month",
            )
        for group in self.of("aws_autoscaling_group"):
            policy = group["mixed_instances_policy"]["launch_template"]["launch_template_specification"]
            instance_type = self.referenced(policy["launch_template_id"])["instance_type"]
            key = f"ec2.{instance_type}"
            rate = self.rate(key, region)
            self.add(
                "EC2 (GPU training)",
                f"{instance_type} x {group['desired_capacity']} (scales "
                f"{group['min_size']}-{group['max_size']}; ${rate:g} per instance-hour while running)",
                group["desired_capacity"] * rate * HOURS,
                region,
                key,
            )

    def run(self) -> Estimate:
        for price in (
            self.fargate,
            self.rds,
            self.elasticache,
            self.storage_and_cdn,
            self.network,
            self.observability,
            self.security,
            self.application,
        ):
            price()
        self.estimate.not_priced = [about for rtype, about in NOT_PRICED.items() if self.of(rtype)]
        return self.estimate


def _spot_tasks(count: int, strategy: Sequence[Mapping[str, Any]]) -> float:
    """Tasks ECS places on FARGATE_SPOT, on average: after each provider's base, the rest by weight."""
    if not strategy:
        return 0.0
    base = sum(s.get("base", 0) for s in strategy)
    spot_base = sum(s.get("base", 0) for s in strategy if s["capacity_provider"] == "FARGATE_SPOT")
    weights = sum(s.get("weight", 0) for s in strategy)
    spot_weight = sum(s.get("weight", 0) for s in strategy if s["capacity_provider"] == "FARGATE_SPOT")
    rest = max(0, count - base)
    return min(count, spot_base) + (rest * spot_weight / weights if weights else 0.0)


def _vcpus(instance_class: str) -> int:
    size = instance_class.rsplit(".", 1)[-1]
    if size in _SIZE_VCPUS:
        return _SIZE_VCPUS[size]
    match = re.fullmatch(r"(\d+)xlarge", size)
    if not match:
        raise PriceError(f"unknown size of {instance_class}")
    return 4 * int(match.group(1))


def _alarm_metrics(alarm: Mapping[str, Any]) -> int:
    """CloudWatch bills a metric-math alarm per metric it reads."""
    queries = alarm.get("metric_query") or []
    return max(1, sum(1 for q in queries if q.get("metric"))) if queries else 1


def estimate(stack: Mapping[str, Any], config: EnvironmentConfig, prices: Prices | None = None) -> Estimate:
    """The monthly cost of one synthesized environment stack."""
    return _Pricer(stack, config, prices or Prices.load()).run()


# --- output ------------------------------------------------------------------------------------------------------


def _money(value: float) -> str:
    return f"${value:,.2f}"


def as_json(estimates: Iterable[Estimate], prices: Prices) -> dict[str, Any]:
    return {
        "prices": {"file": f"roi_tf/tools/data/{PRICES.name}", "read": prices.read, "hours_per_month": HOURS},
        "environments": [
            {
                "environment": e.environment,
                "region": e.region,
                "budget_usd": e.budget_usd,
                "total_usd": e.total_usd,
                "within_budget": e.within_budget,
                "services": [
                    {
                        "service": s,
                        "monthly_usd": total,
                        "items": [
                            {k: v for k, v in asdict(line).items() if k != "service"} | {"rates": list(line.rates)}
                            for line in lines
                        ],
                    }
                    for s, total, lines in e.by_service()
                ],
                "not_priced": e.not_priced,
                "notes": e.notes,
            }
            for e in estimates
        ],
    }


def as_table(e: Estimate) -> str:
    rows = [(s, "; ".join(line.item for line in lines), _money(total)) for s, total, lines in e.by_service()]
    rows.append(("Total", "", _money(e.total_usd)))
    widths = [max(len(r[i]) for r in [("Service", "Configuration", "Monthly"), *rows]) for i in range(3)]
    widths[1] = min(widths[1], 90)
    out = [f"{e.environment} ({e.region}): estimated monthly cost"]
    for service, about, money in [("Service", "Configuration", "Monthly"), *rows]:
        about = about if len(about) <= widths[1] else about[: widths[1] - 3] + "..."
        out.append(f"  {service:<{widths[0]}}  {about:<{widths[1]}}  {money:>{widths[2]}}")
    verdict = "within" if e.within_budget else "OVER"
    share = e.total_usd / e.budget_usd * 100
    out.append(f"  budget {_money(e.budget_usd)}: {verdict} ({share:.0f}% of it)")
    out.extend(f"  not priced: {about}" for about in e.not_priced)
    out.extend(f"  note: {note}" for note in e.notes)
    return "\n".join(out)


def as_markdown(estimates: Sequence[Estimate], prices: Prices, usage: Mapping[str, UsageConfig]) -> str:
    """docs/COST_ESTIMATION.md (``make docs`` writes it; a test fails when the committed file is stale)."""
    out = [
        "# Cost estimation",
        "",
        "<!-- Generated by `python -m roi_tf cost --format markdown` (`make docs`); do not edit by hand. -->",
        "",
        "Monthly estimates of what each environment's synthesized stack deploys, priced by `roi_tf/tools/cost.py` "
        f"from `roi_tf/tools/data/{PRICES.name}` (on-demand USD rates, {HOURS} hours a month, read {prices.read}; "
        "each rate names its source and date) and the usage assumptions in each `environments/<env>.json` "
        "(`usage`). Free tiers are not subtracted. Run `python -m roi_tf cost` for the current figures, "
        "`--format json` for machines, `--fail-over-budget` in CI.",
        "",
        "| Environment | Estimate | Budget | |",
        "|---|---:|---:|---|",
    ]
    for e in estimates:
        verdict = "within budget" if e.within_budget else "**over budget**"
        out.append(f"| {e.environment} | {_money(e.total_usd)} | {_money(e.budget_usd)} | {verdict} |")
    for e in estimates:
        out += ["", f"## {e.environment} ({e.region})", "", "| Service | Configuration | Monthly |", "|---|---|---:|"]
        for service, total, lines in e.by_service():
            out.append(f"| {service} | {'; '.join(line.item for line in lines)} | {_money(total)} |")
        out.append(f"| **Total** | | **{_money(e.total_usd)}** |")
        out += ["", "Usage assumed (`usage` in the configuration):", ""]
        out += [f"- `{name}`: {value:g}" for name, value in asdict(usage[e.environment]).items()]
        if e.not_priced:
            out += ["", "Not priced (billed by usage this estimate does not model):", ""]
            out += [f"- {about}" for about in e.not_priced]
        if e.notes:
            out += ["", "Notes:", ""] + [f"- {note}" for note in e.notes]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m roi_tf cost", description=__doc__.splitlines()[0])
    parser.add_argument(
        "environments",
        nargs="*",
        metavar="ENV",
        help=f"environments to price (default: all of {', '.join(ENVIRONMENTS)})",
    )
    parser.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    parser.add_argument("--fail-over-budget", action="store_true", help="exit 1 when an estimate exceeds its budget")
    parser.add_argument("--outdir", type=Path, default=Path("cdktf.out"), help="where the synthesized stacks live")
    parser.add_argument("--environments-dir", type=Path, default=DEFAULT_ENVIRONMENTS_DIR)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.environments) - set(ENVIRONMENTS))
    if unknown:
        parser.error(f"unknown environment(s) {', '.join(unknown)}: choose from {', '.join(ENVIRONMENTS)}")
    envs = [env for env in ENVIRONMENTS if env in (args.environments or ENVIRONMENTS)]
    from roi_tf.tools import synthesized

    loaded = synthesized.load_for_command(envs, outdir=args.outdir, environments_dir=args.environments_dir)
    if loaded is None:
        return 2
    configs, stacks = loaded
    try:
        prices = Prices.load()
        estimates = [estimate(stacks[env], configs[env], prices) for env in envs]
    except PriceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(as_json(estimates, prices), indent=2))
    elif args.format == "markdown":
        print(as_markdown(estimates, prices, {env: configs[env].usage for env in envs}), end="")
    else:
        print("\n\n".join(as_table(e) for e in estimates))
    over = [e.environment for e in estimates if not e.within_budget]
    if over and args.fail_over_budget:
        print(f"error: over budget: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

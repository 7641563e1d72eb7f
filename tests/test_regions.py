"""Every reference stays inside its region, except the few links that cross to the DR region on purpose.

A resource configured through the wrong provider (a DR bucket's public-access block or encryption applied in
us-east-1, a key alias created where its key does not exist, access logs sent to a bucket in another region) is
accepted by ``terraform validate`` and fails, or silently protects nothing, at apply. Here every ``${...}``
reference between two regional things must join things of the same region, unless the link is one of the
deliberate cross-region ones below.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from conftest import Stack

# Things without a region: IAM is global, and these data sources answer the same everywhere.
REGIONLESS = {"aws_caller_identity", "aws_partition"}
REGIONLESS_PREFIXES = ("aws_iam_",)
# (referring type, its top-level attribute, referenced type): links that cross regions by design.
CROSS_REGION = {
    # S3 replication names its destination bucket and that bucket's key, in the DR region.
    ("aws_s3_bucket_replication_configuration", "rule", "aws_s3_bucket"),
    ("aws_s3_bucket_replication_configuration", "rule", "aws_kms_key"),
    # The cross-region read replica and the backup copies name their source instance by ARN.
    ("aws_db_instance", "replicate_source_db", "aws_db_instance"),
    ("aws_db_instance_automated_backups_replication", "source_db_instance_arn", "aws_db_instance"),
    # CloudFront lives in us-east-1 and reads the assets bucket of the environment's region; its access logs are
    # delivered from us-east-1 to the logs bucket; the assets key (regional) admits the distribution by its ARN.
    ("aws_cloudfront_distribution", "origin", "aws_s3_bucket"),
    ("aws_cloudwatch_log_delivery_destination", "delivery_destination_configuration", "aws_s3_bucket"),
    ("aws_kms_key", "policy", "aws_cloudfront_distribution"),
    # Dashboards show metrics of other regions, each widget or line naming its region: CloudFront's (us-east-1)
    # and the DR replica's lag. AWS Chatbot's configuration (in a Chatbot region) subscribes to the warning topics.
    ("aws_cloudwatch_dashboard", "dashboard_body", "aws_cloudfront_distribution"),
    ("aws_cloudwatch_dashboard", "dashboard_body", "aws_db_instance"),
    ("aws_chatbot_slack_channel_configuration", "sns_topic_arns", "aws_sns_topic"),
    # The pilot light's replicas (secrets, the sessions global table) are encrypted with the DR region's key.
    ("aws_secretsmanager_secret", "replica", "aws_kms_key"),
    ("aws_dynamodb_table", "replica", "aws_kms_key"),
    # S3 publishes replication latency in the destination's region, naming the source bucket.
    ("aws_cloudwatch_metric_alarm", "dimensions", "aws_s3_bucket"),
    # A Global Datastore's secondary joins the global group, created from the primary in the primary region.
    ("aws_elasticache_replication_group", "global_replication_group_id", "aws_elasticache_global_replication_group"),
    # Failed over (dr.active): the promoted database's proxy reads the credentials' replica, whose ARN is the
    # secret's own with the region swapped.
    ("aws_db_proxy", "auth", "aws_secretsmanager_secret"),
    # The pilot light's compute module: its tasks inject the JWT secret's replica (the same ARN form); its
    # certificate is proven by the primary's validation records (one record per name for every region), and its
    # DNS names join the primary's in the zone (Route 53 is global). The primary's Route 53 check reads an alarm
    # in each region, naming the alarm's region.
    ("aws_ecs_task_definition", "container_definitions", "aws_secretsmanager_secret"),
    ("aws_acm_certificate_validation", "validation_record_fqdns", "aws_route53_record"),
    ("aws_route53_record", "zone_id", "aws_route53_zone"),
    ("aws_route53_health_check", "cloudwatch_alarm_name", "aws_cloudwatch_metric_alarm"),
}
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
_ADDRESS = re.compile(r"\b(data\.)?(aws_[a-z0-9_]+)\.([A-Za-z0-9_]+)\b")

Address = tuple[str, str, str]  # (block, type, name)


def regionless(rtype: str) -> bool:
    return rtype in REGIONLESS or rtype.startswith(REGIONLESS_PREFIXES)


def references(value: Any, attribute: str | None = None) -> Iterator[tuple[str, Address]]:
    """(top-level attribute, referenced address) of every reference inside a resource body."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in ("//", "provider", "depends_on", "lifecycle"):
                yield from references(item, key if attribute is None else attribute)
    elif isinstance(value, list):
        for item in value:
            yield from references(item, attribute)
    elif isinstance(value, str):
        for interpolation in _INTERPOLATION.finditer(value):
            for found in _ADDRESS.finditer(interpolation.group(1)):
                yield attribute or "", ("data" if found.group(1) else "resource", found.group(2), found.group(3))


def region_crossings(stack: Stack) -> set[tuple[str, str, str, str, str]]:
    """(type, attribute, referenced type, its region, referenced region) of every reference crossing regions."""
    bodies = {
        (block, rtype, name): body
        for block in ("resource", "data")
        for rtype, items in stack.json.get(block, {}).items()
        for name, body in items.items()
    }
    crossings = set()
    for (_, rtype, _), body in bodies.items():
        if regionless(rtype):
            continue
        for attribute, target in references(body):
            if target not in bodies or regionless(target[1]):
                continue
            here, there = stack.region_of(body), stack.region_of(bodies[target])
            if here != there:
                crossings.add((rtype, attribute, target[1], here, there))
    return crossings


def test_references_cross_regions_only_where_designed_to(stacks: dict[str, Stack], canary, failed_over) -> None:
    """Over every stack, the canary's, whose regions are not us-east-1 (where the global provider differs), and
    prod failed over."""
    checked = 0
    for stack in [*stacks.values(), *canary[1].values(), failed_over]:
        unexpected = {c for c in region_crossings(stack) if c[:3] not in CROSS_REGION}
        assert unexpected == set(), stack.name
        checked += sum(1 for items in stack.json.get("resource", {}).values() for _ in items)
    assert checked > 500


def test_the_designed_crossings_really_happen(stacks: dict[str, Stack], canary, failed_over) -> None:
    """Every allowed crossing occurs in prod, prod failed over or the canary (outside us-east-1, where CloudFront's
    resources are in another region than the assets and logs buckets): the list holds no stale entry that could
    hide a mistake."""
    _, canary_stacks = canary
    shapes = (stacks["prod"], failed_over, canary_stacks["canary"])
    found = {c[:3] for stack in shapes for c in region_crossings(stack)}
    assert found == CROSS_REGION


def test_the_region_check_notices_a_dr_bucket_configured_from_the_primary_region(stacks: dict[str, Stack]) -> None:
    """Control: a DR bucket's public-access block created through the primary provider is reported."""
    prod = stacks["prod"]
    replica = prod.bucket_named("documents-replica")
    (name,) = [n for n, b in prod.resources("aws_s3_bucket_public_access_block").items()
               if b["bucket"] == Stack.ref("aws_s3_bucket", replica)]  # fmt: skip
    broken = {**prod.json, "resource": {**prod.json["resource"]}}
    blocks = dict(broken["resource"]["aws_s3_bucket_public_access_block"])
    blocks[name] = {k: v for k, v in blocks[name].items() if k != "provider"}
    broken["resource"]["aws_s3_bucket_public_access_block"] = blocks
    crossings = region_crossings(Stack(prod.name, prod.path, broken))
    assert ("aws_s3_bucket_public_access_block", "bucket", "aws_s3_bucket", "us-east-1", "us-west-2") in crossings

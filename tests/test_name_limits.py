"""Every name the stacks give AWS fits AWS's length limit, with room for the longest environment name the schema
admits: a longer name fails here (or, through the schema's environment name pattern, at synth), never at apply.

Lengths are taken at their worst: an interpolated account ID counts 12 characters, any other interpolation 20.
"""

from __future__ import annotations

import re
from typing import Any

from conftest import Stack
from roi_tf.config import ENVIRONMENTS, load_schema
from roi_tf.naming import resource_name

# (resource type, attribute) -> AWS's maximum length of that name.
LIMITS = {
    ("aws_iam_role", "name"): 64,
    ("aws_iam_role_policy", "name"): 128,
    ("aws_iam_group", "name"): 128,
    ("aws_iam_group_policy", "name"): 128,
    ("aws_iam_instance_profile", "name"): 128,
    ("aws_cloudwatch_log_group", "name"): 512,
    ("aws_cloudwatch_log_metric_filter", "name"): 512,
    ("aws_cloudwatch_log_delivery_source", "name"): 60,
    ("aws_cloudwatch_log_delivery_destination", "name"): 60,
    ("aws_s3_bucket", "bucket"): 63,
    ("aws_lb", "name"): 32,
    ("aws_lb_target_group", "name"): 32,
    ("aws_sqs_queue", "name"): 80,
    ("aws_lambda_function", "function_name"): 64,
    ("aws_db_instance", "identifier"): 63,
    ("aws_db_proxy", "name"): 60,
    ("aws_db_subnet_group", "name"): 255,
    ("aws_db_parameter_group", "name"): 255,
    ("aws_elasticache_replication_group", "replication_group_id"): 40,
    ("aws_elasticache_user", "user_id"): 40,
    ("aws_elasticache_user_group", "user_group_id"): 40,
    ("aws_elasticache_subnet_group", "name"): 255,
    ("aws_elasticache_parameter_group", "name"): 255,
    ("aws_kms_alias", "name"): 256,
    ("aws_secretsmanager_secret", "name"): 512,
    ("aws_ecs_cluster", "name"): 255,
    ("aws_ecs_service", "name"): 255,
    ("aws_ecs_task_definition", "family"): 255,
    ("aws_ecs_capacity_provider", "name"): 255,
    ("aws_ecr_repository", "name"): 256,
    ("aws_sns_topic", "name"): 256,
    ("aws_cloudwatch_metric_alarm", "alarm_name"): 255,
    ("aws_cloudwatch_dashboard", "dashboard_name"): 255,
    ("aws_cloudwatch_event_rule", "name"): 64,
    ("aws_wafv2_web_acl", "name"): 128,
    ("aws_dynamodb_table", "name"): 255,
    ("aws_security_group", "name"): 255,
    ("aws_cloudtrail", "name"): 128,
    ("aws_xray_group", "group_name"): 32,
    ("aws_xray_sampling_rule", "rule_name"): 32,
    ("aws_launch_template", "name"): 128,
    ("aws_autoscaling_group", "name"): 255,
    ("aws_appautoscaling_policy", "name"): 256,
    ("aws_budgets_budget", "name"): 100,
    ("aws_ce_anomaly_monitor", "name"): 1024,
    ("aws_ce_anomaly_subscription", "name"): 1024,
    ("aws_cloudfront_cache_policy", "name"): 128,
    ("aws_cloudfront_origin_request_policy", "name"): 128,
    ("aws_cloudfront_response_headers_policy", "name"): 128,
    ("aws_cloudfront_function", "name"): 64,
    ("aws_cloudfront_origin_access_control", "name"): 64,
    ("aws_config_configuration_recorder", "name"): 256,
    ("aws_config_delivery_channel", "name"): 256,
    ("aws_route53_record", "name"): 255,
}
# Name-like attributes that are not names we choose: references to another resource's name, fixed values.
NOT_OUR_NAMES = {
    ("aws_db_parameter_group", "family"),  # the engine family (postgres16)
    ("aws_elasticache_parameter_group", "family"),
    ("aws_db_proxy_target", "db_proxy_name"),  # the proxy's own name, checked above
    ("aws_db_proxy_default_target_group", "db_proxy_name"),
    ("aws_lambda_event_source_mapping", "function_name"),  # the function's, checked above
    ("aws_config_configuration_recorder_status", "name"),  # the recorder's
    ("aws_guardduty_detector_feature", "name"),  # an AWS feature name
    ("aws_elasticache_user", "user_name"),  # the Redis user name ("app"), no documented maximum
}
NAME_ATTRIBUTES = {"name", "bucket", "identifier", "function_name", "replication_group_id", "user_id",
                   "user_group_id", "alarm_name", "dashboard_name", "family", "group_name", "rule_name",
                   "db_proxy_name", "user_name"}  # fmt: skip


# Kinds whose names resource_name shortens with a hash past their limit, by its kind.
HASHED = {("aws_lb", "name"): "load_balancer", ("aws_lb_target_group", "name"): "target_group"}


def worst_length(name: str) -> int:
    name = re.sub(r"\$\{[^}]*account_id\}", "1" * 12, name)
    return len(re.sub(r"\$\{[^}]*\}", "x" * 20, name))


def longest_environment_name() -> int:
    pattern = load_schema()["$defs"]["environment_name"]["pattern"]
    match = re.fullmatch(r"\^\[a-z\]\[a-z0-9\]\{1,(\d+)\}\$", pattern)
    assert match, pattern
    return 1 + int(match.group(1))


def named(stack: Stack) -> list[tuple[str, str, str, str]]:
    found = []
    for rtype, resources in stack.json["resource"].items():
        for logical, body in resources.items():
            for attribute in NAME_ATTRIBUTES:
                value: Any = body.get(attribute)
                # A bare reference names another resource, which is checked where it is defined.
                reference = isinstance(value, str) and re.fullmatch(r"\$\{[^}]*\}", value)
                if isinstance(value, str) and not reference and (rtype, attribute) not in NOT_OUR_NAMES:
                    found.append((rtype, attribute, logical, value))
    return found


def test_every_name_fits_its_limit_even_for_the_longest_environment_name(
    stacks: dict[str, Stack], failed_over: Stack
) -> None:
    """Every environment's stack, and prod failed over (the promoted database's proxy and its group)."""
    longest = longest_environment_name()
    assert longest == 10
    checked, tightest = 0, 1000
    for env, stack in [*((env, stacks[env]) for env in ENVIRONMENTS), ("prod", failed_over)]:
        room = longest - len(env)  # what a longer environment name would add, where the name contains it
        for rtype, attribute, logical, name in named(stack):
            assert (rtype, attribute) in LIMITS, f"{rtype}.{attribute}: add its AWS limit (or say why it is none)"
            length = worst_length(name) + (room if env in name else 0)
            if (rtype, attribute) in HASHED and f"-{env}-dr-" in name and length > LIMITS[(rtype, attribute)]:
                # The pilot light's copies (<env>-dr) of the tightest names: past the limit, resource_name keeps
                # them within it by a stable hash. Measured on the name such an environment would really get.
                longer = resource_name("x" * longest + "-dr", *name.split(f"-{env}-dr-", 1)[1].split("-"),
                                       kind=HASHED[(rtype, attribute)])  # fmt: skip
                assert len(longer) <= LIMITS[(rtype, attribute)] and longer.startswith(f"roi-systems-{'x' * 10}-")
                length = worst_length(name)
            assert length <= LIMITS[(rtype, attribute)], (env, rtype, logical, name, length)
            checked += 1
            tightest = min(tightest, LIMITS[(rtype, attribute)] - length)
    assert checked > 300
    assert tightest <= 10  # the load balancers' and target groups' 32 characters leave little room: really measured


def test_the_check_sees_a_name_over_its_limit() -> None:
    long = "roi-systems-prod-" + "x" * 20  # 37 characters: over a load balancer's 32
    stack = Stack("prod", None, {"resource": {"aws_lb": {"public": {"name": long}}}})  # type: ignore[arg-type]
    ((rtype, attribute, _, name),) = named(stack)
    assert worst_length(name) > LIMITS[(rtype, attribute)]
    account = "roi-systems-prod-logs-${data.aws_caller_identity.current.account_id}"
    assert worst_length(account) == len("roi-systems-prod-logs-") + 12

"""Every output of every environment stack: exactly the names config calls for, each naming the right resource.

The expected value of each output is found by the identity of what it describes (a Name tag, a secret's name, a
WAF scope, an RDS identifier, the source of a replica, a KMS alias), never by its logical id, so an output wired
to another resource of the same type (the public subnets for the private ones, the CloudFront ACL for the
regional one, the primary for a replica) fails, and so does an attribute mix-up (``endpoint`` for ``address``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from conftest import Stack, iter_strings
from roi_tf.config import EnvironmentConfig

# Outputs every environment stack has, whatever its configuration.
ALWAYS = frozenset(
    {
        "vpc_id",
        "vpc_cidr_block",
        "public_subnet_ids",
        "private_subnet_ids",
        "database_subnet_ids",
        "database_subnet_group_name",
        "elasticache_subnet_group_name",
        "nat_gateway_ids",
        "nat_public_ips",
        "application_security_group_id",
        "logs_bucket_name",
        "jwt_secret_arn",
        "operators_role_arn",
        "regional_web_acl_arn",
        "cloudfront_web_acl_arn",
        "data_kms_key_arn",
        "storage_kms_key_arn",
        "logs_kms_key_arn",
        "database_proxy_endpoint",
        "database_endpoint",
        "database_replica_endpoints",
        "database_port",
        "database_name",
        "database_credentials_secret_arn",
        "cache_configuration_endpoint",
        "cache_port",
        "cache_user_name",
        "ecs_cluster_name",
        "cdn_distribution_id",
        "cdn_domain_name",
        "cdn_url",
        "api_service_name",
        "ml_service_name",
        "api_task_definition_arn",
        "ml_task_definition_arn",
        "api_repository_url",
        "ml_repository_url",
        "event_processor_repository_url",
        "api_load_balancer_dns_name",
        "api_load_balancer_zone_id",
        "ml_service_url",
        "events_queue_url",
        "events_dead_letter_queue_name",
        "event_processor_function_name",
        "critical_alerts_topic_arn",
        "warning_alerts_topic_arn",
        "dashboard_names",
    }
)


def expected_names(config: EnvironmentConfig) -> set[str]:
    names = set(ALWAYS) | {f"{bucket.replace('-', '_')}_bucket_name" for bucket in config.storage.buckets}
    if config.database.cross_region_replica:
        names.add("database_dr_replica_endpoint")
    if config.dr.enabled:  # the pilot light's application tier: its event queues stand ready
        names |= {"dr_events_queue_url", "dr_events_dead_letter_queue_name"}
    if config.sessions.enabled:
        names.add("sessions_table_name")
    if config.compute.gpu_training.enabled:
        names.add("gpu_capacity_provider_name")
    if config.ci.enabled:
        names |= {"ci_plan_role_arn", "ci_apply_role_arn"}
    return names


def only(stack: Stack, rtype: str, what: str, keep: Callable[[dict[str, Any]], bool]) -> tuple[str, dict[str, Any]]:
    """The one resource of a type that ``keep`` selects."""
    found = [(n, b) for n, b in stack.resources(rtype).items() if keep(b)]
    assert len(found) == 1, f"{stack.name}: expected one {rtype} ({what}), found {[n for n, _ in found]}"
    return found[0]


def target(reference: str) -> tuple[str, str, str]:
    """``${type.name.attribute}`` -> (type, name, attribute)."""
    assert reference.startswith("${") and reference.endswith("}"), reference
    rtype, name, attribute = reference[2:-1].split(".")
    return rtype, name, attribute


def expected_outputs(stack: Stack, config: EnvironmentConfig) -> dict[str, Any]:
    """What each output must be, found by what it describes."""
    env, name, region = config.name, f"roi-systems-{config.name}", config.region
    zones = list(config.networking.availability_zone_ids)

    def here(body: dict[str, Any]) -> bool:
        return stack.region_of(body) == region

    vpc, _ = only(stack, "aws_vpc", f"Name {name}", lambda b: b["tags"]["Name"] == name and here(b))
    vpc_ref = Stack.ref("aws_vpc", vpc)

    def tier(tier_name: str) -> list[tuple[str, dict[str, Any]]]:
        """The primary VPC's subnets of a tier, in AZ order."""
        subnets = [
            (n, s)
            for n, s in stack.resources("aws_subnet").items()
            if s["vpc_id"] == vpc_ref and s["tags"]["Tier"] == tier_name
        ]
        assert sorted(s["availability_zone_id"] for _, s in subnets) == sorted(zones), (stack.name, tier_name)
        return sorted(subnets, key=lambda ns: zones.index(ns[1]["availability_zone_id"]))

    def ids(subnets: list[tuple[str, dict[str, Any]]]) -> list[str]:
        return [Stack.ref("aws_subnet", n) for n, _ in subnets]

    public = tier("public")
    zone_of = {Stack.ref("aws_subnet", n): zones.index(s["availability_zone_id"]) for n, s in public}
    nats = sorted(
        ((n, g) for n, g in stack.resources("aws_nat_gateway").items() if g["subnet_id"] in zone_of),
        key=lambda ng: zone_of[ng[1]["subnet_id"]],
    )
    assert len(nats) == config.networking.nat_gateway_count, stack.name
    eips = []
    for _, nat in nats:
        rtype, eip, attribute = target(nat["allocation_id"])
        assert (rtype, attribute) == ("aws_eip", "id") and eip in stack.resources("aws_eip")
        eips.append(Stack.ref("aws_eip", eip, "public_ip"))

    app_sg, _ = only(stack, "aws_security_group", f"{name}-app", lambda b: b["name"] == f"{name}-app")
    db_subnets, _ = only(stack, "aws_db_subnet_group", "database", lambda b: b["name"] == f"{name}-database")
    cache_subnets, _ = only(
        stack, "aws_elasticache_subnet_group", "elasticache", lambda b: b["name"] == f"{name}-elasticache"
    )

    def bucket(short: str) -> str:
        """``roi-systems-<env>-<short>-<account id>`` in the primary region."""
        found, _ = only(
            stack,
            "aws_s3_bucket",
            f"{name}-{short}-<account>",
            lambda b: b["bucket"].rsplit("-${", 1)[0] == f"{name}-{short}" and here(b),
        )
        return Stack.ref("aws_s3_bucket", found, "bucket")

    def secret(secret_name: str) -> str:
        found, _ = only(stack, "aws_secretsmanager_secret", secret_name, lambda b: b["name"] == secret_name)
        return Stack.ref("aws_secretsmanager_secret", found, "arn")

    def web_acl(scope: str) -> str:
        found, _ = only(stack, "aws_wafv2_web_acl", scope, lambda b: b["scope"] == scope)
        return Stack.ref("aws_wafv2_web_acl", found, "arn")

    def key(purpose: str) -> str:
        return Stack.ref("aws_kms_key", stack.kms_key(f"alias/{name}-{purpose}")[0], "arn")

    role, _ = only(stack, "aws_iam_role", f"{name}-operators", lambda b: b["name"] == f"{name}-operators")

    primary, primary_body = only(
        stack,
        "aws_db_instance",
        f"{name}-postgres",
        lambda b: b["identifier"] == f"{name}-postgres" and "replicate_source_db" not in b and here(b),
    )
    same_region_replicas = sorted(
        (
            (n, b)
            for n, b in stack.resources("aws_db_instance").items()
            if b.get("replicate_source_db") == Stack.ref("aws_db_instance", primary, "identifier") and here(b)
        ),
        key=lambda nb: int(nb[1]["identifier"].removeprefix(f"{name}-postgres-replica-")),
    )
    assert len(same_region_replicas) == config.database.read_replicas, stack.name
    proxy, _ = only(stack, "aws_db_proxy", f"{name}-postgres", lambda b: b["name"] == f"{name}-postgres")
    redis, redis_body = only(
        stack,
        "aws_elasticache_replication_group",
        f"{name}-redis",
        lambda b: b["replication_group_id"] == f"{name}-redis",
    )
    app_user, _ = only(
        stack, "aws_elasticache_user", "the IAM-authenticated user", lambda b: b["authentication_mode"]["type"] == "iam"
    )

    expected: dict[str, Any] = {
        "vpc_id": vpc_ref,
        "vpc_cidr_block": Stack.ref("aws_vpc", vpc, "cidr_block"),
        "public_subnet_ids": ids(public),
        "private_subnet_ids": ids(tier("private")),
        "database_subnet_ids": ids(tier("isolated")),
        "database_subnet_group_name": Stack.ref("aws_db_subnet_group", db_subnets, "name"),
        "elasticache_subnet_group_name": Stack.ref("aws_elasticache_subnet_group", cache_subnets, "name"),
        "nat_gateway_ids": [Stack.ref("aws_nat_gateway", n) for n, _ in nats],
        "nat_public_ips": eips,
        "application_security_group_id": Stack.ref("aws_security_group", app_sg),
        "logs_bucket_name": bucket("logs"),
        "jwt_secret_arn": secret(f"roi-systems/{env}/api/jwt-secret"),
        "database_credentials_secret_arn": secret(f"roi-systems/{env}/database/master"),
        "operators_role_arn": Stack.ref("aws_iam_role", role, "arn"),
        "regional_web_acl_arn": web_acl("REGIONAL"),
        "cloudfront_web_acl_arn": web_acl("CLOUDFRONT"),
        "data_kms_key_arn": key("data"),
        "storage_kms_key_arn": key("storage"),
        "logs_kms_key_arn": key("logs"),
        "database_proxy_endpoint": Stack.ref("aws_db_proxy", proxy, "endpoint"),
        "database_endpoint": Stack.ref("aws_db_instance", primary, "address"),
        "database_replica_endpoints": [Stack.ref("aws_db_instance", n, "address") for n, _ in same_region_replicas],
        "database_port": primary_body["port"],
        "database_name": primary_body["db_name"],
        "cache_configuration_endpoint": Stack.ref(
            "aws_elasticache_replication_group", redis, "configuration_endpoint_address"
        ),
        "cache_port": redis_body["port"],
        "cache_user_name": Stack.ref("aws_elasticache_user", app_user, "user_name"),
    }
    # The literals behind the ports and the name are the documented ones, not whatever the resource says.
    assert (expected["database_port"], expected["cache_port"]) == (5432, 6379)
    assert expected["database_name"] == config.database.database_name
    for short in config.storage.buckets:
        expected[f"{short.replace('-', '_')}_bucket_name"] = bucket(short)
    if config.database.cross_region_replica:
        dr_replica, _ = only(
            stack,
            "aws_db_instance",
            f"{name}-postgres-dr",
            lambda b: (
                b.get("replicate_source_db") == Stack.ref("aws_db_instance", primary, "arn")
                and b["identifier"] == f"{name}-postgres-dr"
                and stack.region_of(b) == config.dr_region
            ),
        )
        expected["database_dr_replica_endpoint"] = Stack.ref("aws_db_instance", dr_replica, "address")
    if config.dr.enabled:
        for output, suffix, attribute in (("dr_events_queue_url", "", "url"),
                                          ("dr_events_dead_letter_queue_name", "-dlq", "name")):  # fmt: skip
            queue, _ = only(stack, "aws_sqs_queue", output, lambda b, s=suffix: b["name"] == f"{name}-dr-events{s}")
            expected[output] = Stack.ref("aws_sqs_queue", queue, attribute)
    if config.sessions.enabled:
        table, _ = only(stack, "aws_dynamodb_table", f"{name}-sessions", lambda b: b["name"] == f"{name}-sessions")
        expected["sessions_table_name"] = Stack.ref("aws_dynamodb_table", table, "name")
    expected |= compute_outputs(stack, config, only)
    (distribution,) = stack.resources("aws_cloudfront_distribution")
    expected |= {
        "cdn_distribution_id": Stack.ref("aws_cloudfront_distribution", distribution, "id"),
        "cdn_domain_name": Stack.ref("aws_cloudfront_distribution", distribution, "domain_name"),
        # Users hit the configured name, or CloudFront's own where none is configured (dev).
        "cdn_url": f"https://{config.cdn.domain_name}"
        if config.cdn.domain_name
        else f"https://{Stack.ref('aws_cloudfront_distribution', distribution, 'domain_name')}",
    }
    name = f"roi-systems-{config.name}"
    for severity in ("critical", "warning"):
        topic, _ = only(stack, "aws_sns_topic", f"{name}-{severity}", lambda b, s=severity: b["name"] == f"{name}-{s}")
        expected[f"{severity}_alerts_topic_arn"] = Stack.ref("aws_sns_topic", topic, "arn")
    # The overview first (the design document's `aws cloudwatch get-dashboard --dashboard-name roi-systems-<env>`).
    expected["dashboard_names"] = [name, *(f"{name}-{d}" for d in ("backend-api", "ml-service", "database", "cost"))]
    return expected


def compute_outputs(stack: Stack, config: EnvironmentConfig, only: Any) -> dict[str, Any]:
    """The compute module's outputs, each found by the name of what it describes."""
    name = f"roi-systems-{config.name}"

    def by_name(rtype: str, wanted: str, attribute: str, key: str = "name") -> str:
        # In the primary region: the pilot light's copies (repositories) in the DR region are not the outputs'.
        found, _ = only(stack, rtype, wanted, lambda b: b.get(key) == wanted and "provider" not in b)
        return Stack.ref(rtype, found, attribute)

    public_lb, _ = only(stack, "aws_lb", "the public load balancer", lambda b: b["internal"] is False)
    internal_lb, _ = only(stack, "aws_lb", "the internal load balancer", lambda b: b["internal"] is True)
    lb = config.compute.load_balancer
    ml_host = f"ml.{lb.domain_name}" if lb.domain_name else Stack.ref("aws_lb", internal_lb, "dns_name")
    outputs = {
        "ecs_cluster_name": by_name("aws_ecs_cluster", f"{name}-cluster", "name"),
        "api_service_name": by_name("aws_ecs_service", f"{name}-api", "name"),
        "ml_service_name": by_name("aws_ecs_service", f"{name}-ml", "name"),
        "api_task_definition_arn": by_name("aws_ecs_task_definition", f"{name}-api", "arn", key="family"),
        "ml_task_definition_arn": by_name("aws_ecs_task_definition", f"{name}-ml", "arn", key="family"),
        "api_repository_url": by_name("aws_ecr_repository", f"{name}-apps/api", "repository_url"),
        "ml_repository_url": by_name("aws_ecr_repository", f"{name}-apps/ml", "repository_url"),
        "event_processor_repository_url": by_name(
            "aws_ecr_repository", f"{name}-apps/event-processor", "repository_url"
        ),
        "api_load_balancer_dns_name": Stack.ref("aws_lb", public_lb, "dns_name"),
        "api_load_balancer_zone_id": Stack.ref("aws_lb", public_lb, "zone_id"),
        "ml_service_url": f"{'https' if lb.https else 'http'}://{ml_host}",
        "events_queue_url": by_name("aws_sqs_queue", f"{name}-events", "url"),
        "events_dead_letter_queue_name": by_name("aws_sqs_queue", f"{name}-events-dlq", "name"),
        "event_processor_function_name": by_name(
            "aws_lambda_function", f"{name}-events", "function_name", key="function_name"
        ),
    }
    if config.compute.gpu_training.enabled:
        outputs["gpu_capacity_provider_name"] = by_name("aws_ecs_capacity_provider", f"{name}-gpu", "name")
    if config.ci.enabled:
        for role in ("plan", "apply"):
            outputs[f"ci_{role}_role_arn"] = by_name("aws_iam_role", f"{name}-ci-{role}", "arn")
    return outputs


def test_output_names_are_exactly_those_config_calls_for(stack: Stack, config: EnvironmentConfig) -> None:
    """Guards against an output removed or renamed, or one present where config says there is nothing to name."""
    assert set(stack.json["output"]) == expected_names(config)


def test_every_output_value_names_the_resource_it_describes(stack: Stack, config: EnvironmentConfig) -> None:
    """Guards against an output wired to the wrong resource of the right type, or to the wrong attribute."""
    expected = expected_outputs(stack, config)
    assert set(expected) == expected_names(config), "the expectation covers every expected output"
    actual = {name: output["value"] for name, output in stack.json["output"].items()}
    wrong = {
        name: {"actual": actual.get(name, "<missing>"), "expected": value}
        for name, value in expected.items()
        if actual.get(name, "<missing>") != value
    }
    assert wrong == {}, f"{stack.name}: outputs that name the wrong thing"


def test_every_output_is_described_and_exposes_no_secret(stack: Stack) -> None:
    """Guards against an undocumented output, and one that passes a (sensitive, ephemeral) variable through."""
    for name, output in stack.json["output"].items():
        assert isinstance(output.get("description"), str) and output["description"].strip(), name
        assert output.get("sensitive") is not True, f"{name}: outputs are for other stacks and humans to read"
        assert not [s for s in iter_strings(output["value"]) if "var." in s], f"{name}: references a variable"


def test_an_output_exported_twice_is_refused_and_each_lands_once() -> None:
    """Outputs are collected per stack and written at synthesis as one override (roi_tf/modules/exports.py): what
    is exported appears, described, and a name given twice is an error rather than a silent overwrite."""
    from cdktf import TerraformStack, Testing
    from constructs import Construct

    from roi_tf.modules.exports import export

    stack = TerraformStack(Testing.app(), "outputs")
    module = Construct(stack, "module")
    export(module, {"first": ("a", "the first"), "second": ("b", "the second")})
    with pytest.raises(ValueError, match="output 'first' is exported twice in outputs"):
        export(Construct(stack, "other"), {"first": ("c", "again")})
    outputs = json.loads(Testing.synth(stack))["output"]
    assert outputs == {"first": {"value": "a", "description": "the first"},
                       "second": {"value": "b", "description": "the second"}}  # fmt: skip

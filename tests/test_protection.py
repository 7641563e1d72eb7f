"""Nothing that holds data or audit history can be destroyed by accident where protection is on; dev stays disposable.

Every resource type in every stack is classified: it holds data (``roi_tf.modules.protection.DATA_HOLDING``, which
the stacks protect) or it is listed below as holding nothing. A type in neither list fails the suite, so a new
module cannot bring a bucket, table or log group that nobody thought about protecting.
"""

from __future__ import annotations

import pytest

from conftest import Stack
from roi_tf.modules.protection import DATA_HOLDING, DELETION_PROTECTION

# Types whose destruction loses nothing that cannot be re-created from this code (configuration, wiring, access).
HOLDS_NOTHING = {
    # networking: re-created identically from config
    "aws_vpc", "aws_subnet", "aws_route_table", "aws_route", "aws_route_table_association", "aws_internet_gateway",
    "aws_nat_gateway", "aws_eip", "aws_network_acl", "aws_network_acl_rule", "aws_default_network_acl",
    "aws_default_route_table", "aws_default_security_group", "aws_security_group",
    "aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule", "aws_vpc_endpoint", "aws_flow_log",
    "aws_db_subnet_group", "aws_elasticache_subnet_group",
    # configuration of data holders (the holders themselves are protected)
    "aws_s3_bucket_lifecycle_configuration", "aws_s3_bucket_logging", "aws_s3_bucket_notification",
    "aws_s3_bucket_ownership_controls", "aws_s3_bucket_policy", "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_replication_configuration", "aws_s3_bucket_server_side_encryption_configuration",
    "aws_db_parameter_group", "aws_elasticache_parameter_group", "aws_kms_alias",
    # the value lives in the (protected) secret; a version resource is only its current label
    "aws_secretsmanager_secret_version",
    # connections and access: no data of their own
    "aws_db_proxy", "aws_db_proxy_default_target_group", "aws_db_proxy_target", "aws_elasticache_user",
    "aws_elasticache_user_group", "aws_iam_role", "aws_iam_role_policy", "aws_iam_role_policy_attachment",
    "aws_iam_group", "aws_iam_group_policy", "aws_iam_account_password_policy", "aws_iam_service_linked_role",
    "aws_iam_openid_connect_provider",
    # detection settings (the findings live in the protected detector and hub accounts)
    "aws_guardduty_detector_feature", "aws_securityhub_standards_subscription",
    "aws_config_configuration_recorder_status", "aws_config_delivery_channel",
    "aws_wafv2_web_acl", "aws_wafv2_web_acl_logging_configuration", "aws_wafv2_web_acl_association",
    # compute: re-created from code and config (images live in the protected repositories, events in the queues)
    "aws_ecs_cluster", "aws_ecs_cluster_capacity_providers", "aws_ecs_service", "aws_ecs_task_definition",
    "aws_ecr_lifecycle_policy", "aws_ecr_repository_policy", "aws_lb", "aws_lb_listener", "aws_lb_target_group",
    "aws_acm_certificate", "aws_acm_certificate_validation", "aws_route53_record", "aws_route53_health_check",
    "aws_appautoscaling_target",
    "aws_appautoscaling_policy", "aws_lambda_function", "aws_lambda_event_source_mapping", "aws_sqs_queue_policy",
    "aws_sqs_queue_redrive_allow_policy", "aws_launch_template", "aws_autoscaling_group", "aws_ecs_capacity_provider",
    "aws_iam_instance_profile", "aws_ecr_replication_configuration",
    # cdn: the distribution and its policies are re-created from code (the assets live in their protected bucket,
    # the access logs in the logs bucket)
    "aws_cloudfront_distribution", "aws_cloudfront_origin_access_control", "aws_cloudfront_cache_policy",
    "aws_cloudfront_origin_request_policy", "aws_cloudfront_response_headers_policy", "aws_cloudfront_function",
    "aws_cloudwatch_log_delivery", "aws_cloudwatch_log_delivery_source", "aws_cloudwatch_log_delivery_destination",
    # monitoring: re-created from code and config; alarm history, traces and cost history live in the AWS services,
    # and the metrics a filter or alarm reads are kept by CloudWatch whatever happens to them
    "aws_sns_topic", "aws_sns_topic_policy", "aws_sns_topic_subscription", "aws_cloudwatch_metric_alarm",
    "aws_cloudwatch_dashboard", "aws_cloudwatch_event_rule", "aws_cloudwatch_event_target",
    "aws_cloudwatch_log_metric_filter", "aws_budgets_budget", "aws_ce_anomaly_monitor", "aws_ce_anomaly_subscription",
    "aws_xray_sampling_rule", "aws_xray_group", "aws_cloudfront_monitoring_subscription",
    "aws_chatbot_slack_channel_configuration",
}  # fmt: skip


def protected(stack: Stack, config) -> bool:
    return stack.name.startswith("state-") or config.protection.prevent_destroy


@pytest.fixture(params=["env", "state"])
def any_stack(request: pytest.FixtureRequest, stacks: dict[str, Stack], env: str) -> Stack:
    return stacks[env if request.param == "env" else f"state-{env}"]


def test_every_resource_type_is_classified_as_holding_data_or_not(stacks: dict[str, Stack]) -> None:
    """A new type must be classified here before it can ship: unprotected data never appears unnoticed."""
    assert not DATA_HOLDING.keys() & HOLDS_NOTHING
    present = {rtype for stack in stacks.values() for rtype in stack.json.get("resource", {})}
    assert present - DATA_HOLDING.keys() - HOLDS_NOTHING == set()
    assert {"aws_kms_key", "aws_s3_bucket", "aws_db_instance", "aws_dynamodb_table"} <= present


def test_every_data_holding_resource_refuses_destroy_where_protection_is_on(any_stack: Stack, config) -> None:
    """prod and staging (config) and every state stack: Terraform refuses a plan that destroys or replaces them."""
    on = protected(any_stack, config)
    checked = 0
    for rtype in DATA_HOLDING:
        for name, body in any_stack.resources(rtype).items():
            checked += 1
            assert body.get("lifecycle", {}).get("prevent_destroy", False) is on, f"{any_stack.name}: {rtype}.{name}"
            if rtype in DELETION_PROTECTION:
                assert body.get(DELETION_PROTECTION[rtype], False) is on, f"{any_stack.name}: {rtype}.{name}"
    assert checked >= 3


def test_nothing_else_is_locked(stacks: dict[str, Stack]) -> None:
    """prevent_destroy on wiring would block harmless replacements (a renamed rule, a new subnet)."""
    for stack in stacks.values():
        for rtype, resources in stack.json.get("resource", {}).items():
            if rtype not in DATA_HOLDING:
                for name, body in resources.items():
                    assert "prevent_destroy" not in body.get("lifecycle", {}), f"{stack.name}: {rtype}.{name}"


@pytest.mark.parametrize(("env", "on"), [("dev", False), ("staging", True), ("prod", True)], indirect=["env"])
def test_protection_is_on_in_prod_and_staging_and_off_in_dev(config, on: bool) -> None:
    assert config.protection.prevent_destroy is on


def test_databases_and_tables_are_deletion_protected_by_aws_too_where_protection_is_on(stack: Stack, config) -> None:
    """Terraform's guard does not stop a console or CLI delete; AWS's own deletion protection does."""
    on = config.protection.prevent_destroy
    for name, instance in stack.resources("aws_db_instance").items():
        assert instance["deletion_protection"] is on, name
    for name, table in stack.resources("aws_dynamodb_table").items():
        assert table["deletion_protection_enabled"] is on, name


def test_final_snapshot_names_are_unique_per_incarnation(stack: Stack, config) -> None:
    """A fixed name ("<id>-final") fails the second deletion with SnapshotAlreadyExists; the creation time makes it
    unique, and ignore_changes keeps it from changing on every plan."""
    holders = [
        *((n, b) for n, b in stack.resources("aws_db_instance").items() if "replicate_source_db" not in b),
        *stack.resources("aws_elasticache_replication_group").items(),
    ]
    assert len(holders) == 2
    for name, body in holders:
        identifier = body.get("identifier") or body["replication_group_id"]
        final = body.get("final_snapshot_identifier")
        wanted = config.database.deletion_protection if "identifier" in body else config.cache.final_snapshot
        if not wanted:
            assert final is None, name
            continue
        assert final == f'{identifier}-final-${{formatdate("YYYYMMDDhhmmss", timestamp())}}', name
        assert body["lifecycle"]["ignore_changes"] == ["final_snapshot_identifier"], name


@pytest.mark.parametrize("env", ["dev"], indirect=True)
def test_dev_can_be_destroyed_and_re_created_the_same_day(stack: Stack, config) -> None:
    """Nothing in dev outlives a destroy under a name a re-create needs: secrets are deleted at once, buckets emptied,
    and no final snapshot or retained backup is left behind."""
    assert all(s["recovery_window_in_days"] == 0 for s in stack.resources("aws_secretsmanager_secret").values())
    assert all(b["force_destroy"] is True for b in stack.resources("aws_s3_bucket").values())
    for instance in stack.resources("aws_db_instance").values():
        assert instance["skip_final_snapshot"] is True and instance.get("delete_automated_backups", True) is True
    for group in stack.resources("aws_elasticache_replication_group").values():
        assert "final_snapshot_identifier" not in group


def test_protection_covers_resources_added_later_and_asks_a_plain_resource_its_type() -> None:
    """Applied at synthesis to the whole scope; plain TerraformResources (one class) each name their own type."""
    import json

    from cdktf import TerraformResource, TerraformStack, Testing
    from constructs import Construct

    from roi_tf.modules.protection import protect_data

    stack = TerraformStack(Testing.app(), "plain")
    TerraformResource(stack, "db", terraform_resource_type="aws_db_instance")
    protect_data(stack)
    # Added after the call, and deeper in the tree: the protection applies at synthesis, to the whole scope.
    TerraformResource(stack, "net", terraform_resource_type="aws_vpc")
    TerraformResource(Construct(stack, "module"), "table", terraform_resource_type="aws_dynamodb_table")
    resources = json.loads(Testing.synth(stack))["resource"]
    assert resources["aws_db_instance"]["db"]["lifecycle"] == {"prevent_destroy": True}
    assert "lifecycle" not in resources["aws_vpc"]["net"]
    ((table_name, table),) = resources["aws_dynamodb_table"].items()
    assert table_name.startswith("module_table") and table["lifecycle"] == {"prevent_destroy": True}


def test_a_generated_resource_class_synthesizes_the_type_its_submodule_is_named_after(stacks) -> None:
    """protection.py reads a generated class's resource type from its submodule's name (no round trip to jsii):
    checked against what jsii says, for every class of every submodule that defines a resource type in our stacks."""
    import importlib
    import inspect

    from roi_tf.modules.protection import PROVIDER_PACKAGE, generated_resource_type

    types = {rtype for stack in stacks.values() for rtype in stack.json.get("resource", {})}
    data = {f"data_{dtype}" for stack in stacks.values() for dtype in stack.json.get("data", {})}
    checked = 0
    for named in sorted(types | data):
        module = importlib.import_module(PROVIDER_PACKAGE + named.removeprefix("aws_"))
        rtype = named.removeprefix("data_")  # a data source's module is data_aws_<type>
        classes = [c for _, c in inspect.getmembers(module, inspect.isclass) if "TF_RESOURCE_TYPE" in vars(c)]
        assert classes, rtype
        for cls in classes:
            assert generated_resource_type(cls) == cls.TF_RESOURCE_TYPE == rtype, cls
            checked += 1
    assert checked >= len(types) + len(data) >= 100
    # Anything else is asked: our own classes, and a plain TerraformResource.
    from cdktf import TerraformResource

    assert generated_resource_type(TerraformResource) is None
    assert generated_resource_type(type("Sub", (module.__dict__[classes[0].__name__],), {})) is None

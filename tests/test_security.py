"""The security module: keys, secrets, IAM (least privilege, MFA), CloudTrail, Security Hub, GuardDuty, WAF."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from conftest import Stack
from roi_tf.config import EnvironmentConfig

PURPOSES = ("data", "storage", "logs", "alerts", "dr-data", "dr-storage")
GITHUB = "token.actions.githubusercontent.com"
GITHUB_PROVIDER = "${aws_iam_openid_connect_provider.pipeline_github_oidc_E4CF0214.arn}"
GITHUB_LOOKUP = "${data.aws_iam_openid_connect_provider.pipeline_github_oidc_E4CF0214.arn}"
PIPELINE_SERVICES_SIDS = {
    "ManageTheStacksServicesInItsRegions",
    "ManageEnvironmentS3Resources",
    "ManageEnvironmentDynamodbResources",
}
ACCOUNT_ROOT = "arn:${data.aws_partition.partition.partition}:iam::${data.aws_caller_identity.current.account_id}:root"


def key_policy(stack: Stack, alias: str) -> dict[str, dict[str, Any]]:
    _, key = stack.kms_key(alias)
    return {s["Sid"]: s for s in json.loads(key["policy"])["Statement"]}


def document(stack: Stack, ref: str) -> dict[str, Any]:
    """The aws_iam_policy_document a ``${data.aws_iam_policy_document.x.json}`` reference points at."""
    return stack.data("aws_iam_policy_document")[ref.split(".")[2]]


# --- KMS ----------------------------------------------------------------------------------------


def test_one_rotated_key_per_purpose_with_the_configured_deletion_window(stack: Stack, config: EnvironmentConfig):
    for purpose in PURPOSES:
        _, key = stack.kms_key(f"alias/roi-systems-{config.name}-{purpose}")
        assert key["enable_key_rotation"] is True
        assert key["deletion_window_in_days"] == config.security.kms_deletion_window_days
        assert key["customer_master_key_spec"] == "SYMMETRIC_DEFAULT"
        # DR keys live in the DR region, for the replicas and backup copies kept there.
        assert key.get("provider") == ("aws.dr" if purpose.startswith("dr-") else None), purpose


def expected_key_policy(stack: Stack, config: EnvironmentConfig, alias: str) -> dict[str, tuple[dict, list, dict]]:
    """Sid -> (principal, actions, conditions) that the key behind ``alias`` must carry, and nothing else."""
    account = "${data.aws_caller_identity.current.account_id}"
    partition = "${data.aws_partition.partition.partition}"
    env = config.name
    statements = {"AccountRootAdministers": ({"AWS": ACCOUNT_ROOT}, ["kms:*"], {})}
    purpose = alias.removeprefix(f"alias/roi-systems-{env}-")
    if purpose in ("logs", "dr-logs"):
        region = config.dr_region if purpose == "dr-logs" else config.region
        patterns = [
            f"/roi-systems/{env}/*",
            f"/aws/rds/instance/roi-systems-{env}-*",
            f"/aws/rds/proxy/roi-systems-{env}-*",
            f"aws-waf-logs-roi-systems-{env}-*",
        ]
        arns = [f"arn:{partition}:logs:{region}:{account}:log-group:{p}" for p in patterns]
        statements["CloudWatchLogsUse"] = (
            {"Service": f"logs.{region}.amazonaws.com"},
            ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
            {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": arns}},
        )
    if purpose == "logs" and config.security.records_configuration:
        statements["ConfigEncryptDeliveries"] = (
            {"Service": "config.amazonaws.com"},
            ["kms:Decrypt", "kms:GenerateDataKey"],
            {"StringEquals": {"aws:SourceAccount": account}},
        )
    if purpose == "logs":
        trail = f"arn:{partition}:cloudtrail:{config.region}:{account}:trail/roi-systems-{env}"
        statements["CloudTrailEncryptLogs"] = (
            {"Service": "cloudtrail.amazonaws.com"},
            ["kms:GenerateDataKey*"],
            {
                "StringLike": {
                    "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:{partition}:cloudtrail:*:{account}:trail/*"
                },
                "StringEquals": {"aws:SourceArn": trail},
            },
        )
        statements["CloudTrailDescribeKey"] = (
            {"Service": "cloudtrail.amazonaws.com"},
            ["kms:DescribeKey"],
            {"StringEquals": {"aws:SourceArn": trail}},
        )
    publishers = {
        # CloudWatch alarms and EventBridge rules publish to the topics of the environment's region, Budgets and
        # Cost Anomaly Detection to one in us-east-1 (this key where that is the environment's region), and only
        # CloudWatch to the DR region's topic (the cross-region replica's alarm).
        "alerts": [
            "cloudwatch.amazonaws.com",
            "events.amazonaws.com",
            *(["budgets.amazonaws.com", "costalerts.amazonaws.com"] if config.region == "us-east-1" else []),
        ],
        "cost-alerts": ["budgets.amazonaws.com", "costalerts.amazonaws.com"],
        "dr-alerts": ["cloudwatch.amazonaws.com"],
    }
    if purpose in publishers:
        services = publishers[purpose]
        statements["AlertPublishersUse"] = (
            {"Service": services if len(services) > 1 else services[0]},
            ["kms:Decrypt", "kms:GenerateDataKey*"],
            {"StringEquals": {"aws:SourceAccount": account}},
        )
    if purpose == "assets":
        # CloudFront may decrypt the assets for this environment's distribution only (Origin Access Control).
        (distribution,) = stack.resources("aws_cloudfront_distribution")
        statements["CloudFrontDecryptsAssets"] = (
            {"Service": "cloudfront.amazonaws.com"},
            ["kms:Decrypt"],
            {"StringEquals": {"aws:SourceArn": Stack.ref("aws_cloudfront_distribution", distribution, "arn")}},
        )
    return statements


@pytest.mark.parametrize("kind", ["env", "state"])
def test_every_key_policy_admits_exactly_the_intended_principals_for_the_intended_actions(stacks, config, kind) -> None:
    """Who each key admits, for what and under which conditions, over every key of every stack (the state key too).

    Guards against a widened principal or action, a dropped condition, or a grant added to the wrong key.
    """
    stack = stacks[config.name if kind == "env" else f"state-{config.name}"]
    aliases = {a["target_key_id"].split(".")[1]: a["name"] for a in stack.resources("aws_kms_alias").values()}
    assert sorted(aliases) == sorted(stack.resources("aws_kms_key")), "every key has exactly one alias"
    for name, key in stack.resources("aws_kms_key").items():
        alias = aliases[name]
        actual = {
            s["Sid"]: (
                s["Principal"],
                s["Action"] if isinstance(s["Action"], list) else [s["Action"]],
                s.get("Condition", {}),
            )
            for s in json.loads(key["policy"])["Statement"]
        }
        assert all(s["Effect"] == "Allow" and s["Resource"] == "*" for s in json.loads(key["policy"])["Statement"])
        assert actual == expected_key_policy(stack, config, alias), alias


def test_logs_key_lets_cloudtrail_encrypt_only_for_this_environments_trail(stack: Stack, config: EnvironmentConfig):
    statements = key_policy(stack, f"alias/roi-systems-{config.name}-logs")
    (trail,) = stack.resources("aws_cloudtrail").values()
    for sid in ("CloudTrailEncryptLogs", "CloudTrailDescribeKey"):
        statement = statements[sid]
        assert statement["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
        source_arn = statement["Condition"]["StringEquals"]["aws:SourceArn"]
        assert source_arn.endswith(f":cloudtrail:{config.region}:${{data.aws_caller_identity.current.account_id}}"
                                   f":trail/{trail['name']}")  # fmt: skip
    assert statements["CloudTrailEncryptLogs"]["Action"] == "kms:GenerateDataKey*"


def region_of(config: EnvironmentConfig, resource: dict[str, Any]) -> str:
    return {None: config.region, "aws.dr": config.dr_region, "aws.us_east_1": "us-east-1"}[resource.get("provider")]


def test_every_log_group_is_encrypted_by_a_key_whose_policy_admits_it(stack: Stack, config: EnvironmentConfig):
    """A log group outside the logs key's conditions fails at apply time with AccessDenied: catch it here."""
    keys = stack.resources("aws_kms_key")
    assert stack.count("aws_cloudwatch_log_group") >= 4
    for name, group in stack.resources("aws_cloudwatch_log_group").items():
        assert group.get("retention_in_days"), f"{name} keeps logs forever"
        key_name = group["kms_key_id"].split(".")[1]
        (statement,) = [s for s in json.loads(keys[key_name]["policy"])["Statement"] if s["Sid"] == "CloudWatchLogsUse"]
        patterns = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
        patterns = [patterns] if isinstance(patterns, str) else patterns
        region = statement["Principal"]["Service"].split(".")[1]
        assert region_of(config, keys[key_name]) == region_of(config, group) == region, f"{name}: key in another region"
        assert all(p.split(":")[3] == region for p in patterns)
        assert any(fnmatch.fnmatchcase(group["name"], p.split(":log-group:")[1]) for p in patterns), group["name"]


# --- Secrets Manager ----------------------------------------------------------------------------


def test_secrets_are_encrypted_with_the_data_key_and_filled_from_the_sensitive_variables(stack: Stack, config):
    data_key, _ = stack.kms_key(f"alias/roi-systems-{config.name}-data")
    secrets = stack.resources("aws_secretsmanager_secret")
    assert {s["name"] for s in secrets.values()} >= {
        f"roi-systems/{config.name}/database/master",
        f"roi-systems/{config.name}/api/jwt-secret",
    }
    for secret in secrets.values():
        assert secret["kms_key_id"] == Stack.ref("aws_kms_key", data_key, "arn")
        assert secret["recovery_window_in_days"] == config.security.secret_recovery_window_days
    versions = {
        secrets[v["secret_id"].split(".")[1]]["name"]: v
        for v in stack.resources("aws_secretsmanager_secret_version").values()
    }
    jwt = versions[f"roi-systems/{config.name}/api/jwt-secret"]
    assert (jwt["secret_string_wo"], jwt["secret_string_wo_version"]) == (
        "${var.jwt_secret}",
        config.security.jwt_secret_version,
    )
    credentials = versions[f"roi-systems/{config.name}/database/master"]
    assert credentials["secret_string_wo"] == (
        f'${{jsonencode({{"username" = "{config.database.master_username}", "password" = var.db_password}})}}'
    )
    assert credentials["secret_string_wo_version"] == config.security.db_password_version
    assert all("secret_string" not in v for v in versions.values()), "only the write-only argument"


# --- IAM ----------------------------------------------------------------------------------------


# The only actions an Allow may grant on Resource "*": AWS accepts nothing narrower for them (tests/test_iam_grants.py
# checks each against AWS's service authorization data), each with why the role needs it.
ANY_RESOURCE_ACTIONS = {
    "ecr:GetAuthorizationToken": "ECS pulls images: the registry login token",
    "xray:PutTraceSegments": "X-Ray daemon and Lambda active tracing",
    "xray:PutTelemetryRecords": "X-Ray daemon and Lambda active tracing",
    "xray:GetSamplingRules": "X-Ray SDK sampling",
    "xray:GetSamplingTargets": "X-Ray SDK sampling",
    "xray:GetSamplingStatisticSummaries": "X-Ray SDK sampling",
    "ssmmessages:CreateControlChannel": "ECS Exec sessions (where enabled)",
    "ssmmessages:CreateDataChannel": "ECS Exec sessions (where enabled)",
    "ssmmessages:OpenControlChannel": "ECS Exec sessions (where enabled)",
    "ssmmessages:OpenDataChannel": "ECS Exec sessions (where enabled)",
    "logs:DescribeLogGroups": "the ECS Exec agent checks its log group",
    "ec2:DescribeNetworkInterfaces": "Lambda in a VPC manages its network interfaces",
    "ec2:DescribeSubnets": "Lambda in a VPC manages its network interfaces",
    "iam:ListOpenIDConnectProviders": "the CI apply role finds the account's GitHub OIDC provider",
    "iam:GetAccountPasswordPolicy": "the CI apply role of the account's owner manages its password policy",
    "iam:UpdateAccountPasswordPolicy": "the CI apply role of the account's owner manages its password policy",
    "iam:DeleteAccountPasswordPolicy": "the CI apply role of the account's owner manages its password policy",
}


def test_no_policy_allows_every_action_and_resource_star_only_where_aws_accepts_nothing_else(stacks) -> None:
    """Least privilege in every stack: no Allow of "*" or "service:*" actions, and Resource "*" only for the named
    actions above (a grant widened to "*" on anything else fails)."""
    checked = 0
    for stack in stacks.values():
        trusts = {r["assume_role_policy"].split(".")[2] for r in stack.resources("aws_iam_role").values()}
        for name, doc in stack.data("aws_iam_policy_document").items():
            for statement in doc["statement"]:
                if statement.get("effect", "Allow") != "Allow":
                    continue
                where = f"{stack.name}: {name}: {statement.get('sid')}"
                assert "*" not in statement["actions"], where
                if name in trusts or statement.get("principals"):
                    continue  # trust and resource policies: the resource is the role or bucket itself
                checked += 1
                if statement.get("sid") in PIPELINE_SERVICES_SIDS:
                    # The one exception: the CI apply role manages whole services, those of its stack, in its
                    # regions or on its names (tests/test_pipeline.py checks which; pipeline.py says why).
                    (user,) = [r for r in stack.resources("aws_iam_role_policy").values() if name in r["policy"]]
                    assert user["role"].startswith("${aws_iam_role.pipeline_apply_role"), where
                    if statement["resources"] == ["*"]:
                        assert [c["variable"] for c in statement["condition"]] == ["aws:RequestedRegion"], where
                    else:
                        assert all(f":roi-systems-{stack.name}-*" in r or f"/roi-systems-{stack.name}-*" in r
                                   for r in statement["resources"]), where  # fmt: skip
                    continue
                assert not any(a.endswith(":*") for a in statement["actions"]), where
                if "*" in statement["resources"]:
                    assert statement["resources"] == ["*"], where
                    assert set(statement["actions"]) <= ANY_RESOURCE_ACTIONS.keys(), where
    assert checked >= 30


def test_every_role_trust_names_one_principal_kind_and_services_are_scoped_to_this_account(
    stack: Stack, config: EnvironmentConfig
) -> None:
    for name, role in stack.resources("aws_iam_role").items():
        for statement in document(stack, role["assume_role_policy"])["statement"]:
            (principal,) = statement["principals"]
            if principal["type"] == "Federated":
                # Only GitHub's OIDC tokens, for this audience and exact subjects of the configured repository.
                assert principal["identifiers"] in ([GITHUB_PROVIDER], [GITHUB_LOOKUP]), name
                assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"], name
                conditions = {(c["test"], c["variable"]): c["values"] for c in statement["condition"]}
                assert set(conditions) == {("StringEquals", f"{GITHUB}:aud"), ("StringEquals", f"{GITHUB}:sub")}, name
                assert conditions[("StringEquals", f"{GITHUB}:aud")] == ["sts.amazonaws.com"], name
                for subject in conditions[("StringEquals", f"{GITHUB}:sub")]:
                    assert subject.startswith(f"repo:{config.ci.github_repository}:"), name
                    assert not set(subject) & set("*?"), name
                continue
            assert statement["actions"] == ["sts:AssumeRole"], name
            if principal["type"] == "Service":
                variables = {c["variable"] for c in statement.get("condition", [])}
                assert variables & {"aws:SourceAccount", "aws:SourceArn"}, name
            else:
                assert principal["identifiers"] == [ACCOUNT_ROOT], name


@pytest.fixture
def operators_role(stack: Stack, config: EnvironmentConfig) -> tuple[str, dict[str, Any]]:
    return stack.one("aws_iam_role", name=f"roi-systems-{config.name}-operators")


def test_operators_role_requires_recent_mfa(stack: Stack, config: EnvironmentConfig, operators_role) -> None:
    assert config.security.operators_require_mfa  # every environment, and enforced in prod by config.py
    name, role = operators_role
    assert role["max_session_duration"] == config.security.operators_max_session_hours * 3600
    (statement,) = document(stack, role["assume_role_policy"])["statement"]
    conditions = {(c["test"], c["variable"]): c["values"] for c in statement["condition"]}
    assert conditions[("Bool", "aws:MultiFactorAuthPresent")] == ["true"]
    assert conditions[("NumericLessThan", "aws:MultiFactorAuthAge")] == [
        str(config.security.operators_max_session_hours * 3600)
    ]
    (policy,) = [p for p in stack.resources("aws_iam_role_policy").values() if name in p["role"]]
    statements = {s["sid"]: s for s in document(stack, policy["policy"])["statement"]}
    deny = statements["DenyEverythingWithoutMfa"]
    assert deny["effect"] == "Deny" and deny["actions"] == ["*"]
    assert deny["condition"] == [
        {"test": "BoolIfExists", "variable": "aws:MultiFactorAuthPresent", "values": ["false"]}
    ]


def test_operators_see_configuration_but_not_data_and_act_only_on_this_environment(stack, config, operators_role):
    name, _ = operators_role
    (attachment,) = [a for a in stack.resources("aws_iam_role_policy_attachment").values() if name in a["role"]]
    assert attachment["policy_arn"].endswith(":iam::aws:policy/job-function/ViewOnlyAccess")
    (policy,) = [p for p in stack.resources("aws_iam_role_policy").values() if name in p["role"]]
    statements = document(stack, policy["policy"])["statement"]
    for statement in statements:
        if statement["effect"] == "Allow":
            own = (f"roi-systems-{config.name}", f"/roi-systems/{config.name}/")
            assert all(any(o in r for o in own) for r in statement["resources"]), statement["sid"]
    # Exactly these operations: anything more (rds:ModifyDBInstance, say) could switch deletion protection off.
    assert {s["sid"]: sorted(s["actions"]) for s in statements if s["effect"] == "Allow"} == {
        "RedeployAndStopServiceTasks": ["ecs:StopTask", "ecs:UpdateService"],
        "SnapshotAndRebootDatabases": ["rds:CreateDBSnapshot", "rds:RebootDBInstance"],
        "ReadEnvironmentLogs": ["logs:FilterLogEvents", "logs:GetLogEvents", "logs:StartQuery"],
    }


def test_operators_group_may_assume_the_role_only_with_mfa(stack: Stack, config: EnvironmentConfig, operators_role):
    role_name, _ = operators_role
    group_name, _ = stack.one("aws_iam_group", name=f"roi-systems-{config.name}-operators")
    (policy,) = [p for p in stack.resources("aws_iam_group_policy").values() if group_name in p["group"]]
    (statement,) = document(stack, policy["policy"])["statement"]
    assert statement["actions"] == ["sts:AssumeRole"]
    assert statement["resources"] == [Stack.ref("aws_iam_role", role_name, "arn")]
    assert statement["condition"] == [{"test": "Bool", "variable": "aws:MultiFactorAuthPresent", "values": ["true"]}]


# --- CloudTrail (the account-level services: tests/test_account_services.py) ------------------------------


def test_trail_is_multi_region_validated_encrypted_and_delivers_to_s3_and_cloudwatch(stack: Stack, config) -> None:
    (trail,) = stack.resources("aws_cloudtrail").values()
    assert trail["is_multi_region_trail"] is True
    assert trail["include_global_service_events"] is True
    assert trail["enable_log_file_validation"] is True
    logs_key, _ = stack.kms_key(f"alias/roi-systems-{config.name}-logs")
    assert trail["kms_key_id"] == Stack.ref("aws_kms_key", logs_key, "arn")
    logs_bucket = stack.bucket_named("logs")
    assert trail["s3_bucket_name"] == Stack.ref("aws_s3_bucket", logs_bucket, "bucket")
    assert trail["s3_key_prefix"] == "cloudtrail"
    policy = [
        n
        for n, p in stack.resources("aws_s3_bucket_policy").items()
        if p["bucket"] == Stack.ref("aws_s3_bucket", logs_bucket)
    ]
    assert trail["depends_on"] == [f"aws_s3_bucket_policy.{policy[0]}"]
    group_name, group = stack.one("aws_cloudwatch_log_group", name=f"/roi-systems/{config.name}/cloudtrail")
    assert trail["cloud_watch_logs_group_arn"] == Stack.ref("aws_cloudwatch_log_group", group_name, "arn") + ":*"
    assert group["retention_in_days"] == config.security.cloudtrail_log_retention_days
    role_name = trail["cloud_watch_logs_role_arn"].split(".")[1]
    (policy,) = [p for p in stack.resources("aws_iam_role_policy").values() if role_name in p["role"]]
    (grant,) = document(stack, policy["policy"])["statement"]
    assert grant["actions"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert grant["resources"] == [Stack.ref("aws_cloudwatch_log_group", group_name, "arn") + ":log-stream:*"]


def test_trail_records_object_access_to_the_critical_buckets_and_the_state(stack: Stack, config) -> None:
    (trail,) = stack.resources("aws_cloudtrail").values()
    (selector,) = trail["event_selector"]
    assert selector["read_write_type"] == "All" and selector["include_management_events"] is True
    (data,) = selector["data_resource"]
    assert data["type"] == "AWS::S3::Object"
    critical = [stack.bucket_named(name) for name, bucket in config.storage.buckets.items() if bucket.replicate]
    assert critical, "the documents at least"
    state = f"arn:${{data.aws_partition.partition.partition}}:s3:::{config.state.bucket}/"
    # Who read the state matters: it holds the secrets' values.
    assert data["values"] == [*(Stack.ref("aws_s3_bucket", bucket, "arn") + "/" for bucket in critical), state]


# --- WAF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["REGIONAL", "CLOUDFRONT"])
def test_web_acl_blocks_with_managed_rules_and_rate_limit_and_logs_encrypted(stack: Stack, config, scope) -> None:
    """The primary region's and CloudFront's (the pilot light's copy: tests/test_dr_compute.py)."""
    stack = stack.without_standby()
    name, acl = stack.one("aws_wafv2_web_acl", scope=scope)
    # CloudFront-scope resources exist only in us-east-1.
    assert acl.get("provider") == (None if scope == "REGIONAL" else "aws.us_east_1")
    assert acl["default_action"] == {"allow": {}}
    rules = {r["name"]: r for r in acl["rule"]}
    managed = {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesSQLiRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesAnonymousIpList",
    }
    uploads = config.compute.load_balancer.upload_path_prefixes
    # Only these rules count (and label) instead of blocking; every other rule of every group blocks.
    counted = {
        "AWSManagedRulesCommonRuleSet": ["SizeRestrictions_BODY"] if uploads else [],  # uploads pass, see below
        "AWSManagedRulesAnonymousIpList": ["HostingProviderIPList"],  # integrations call from cloud hosts
    }
    for group in managed:
        statement = {"name": group, "vendor_name": "AWS"}
        if counted.get(group):
            statement["rule_action_override"] = [
                {"name": rule, "action_to_use": {"count": {}}} for rule in counted[group]
            ]
        assert rules[group]["statement"] == {"managed_rule_group_statement": statement}
        assert rules[group]["override_action"] == {"none": {}}  # the groups block; nothing else is set to count
    rate = rules["rate-limit-per-ip"]
    assert rate["action"] == {"block": {}}
    assert rate["statement"] == {
        "rate_based_statement": {"limit": config.security.waf_rate_limit, "aggregate_key_type": "IP"}
    }
    # ... and the labelled large bodies are blocked after the group, except under the upload prefixes.
    large = rules["large-bodies-only-for-uploads"]
    assert large["action"] == {"block": {}} and large["priority"] > rules["AWSManagedRulesCommonRuleSet"]["priority"]
    (label, outside) = large["statement"]["and_statement"]["statement"]
    assert label == {
        "label_match_statement": {"scope": "LABEL", "key": "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"}
    }
    (upload,) = outside["not_statement"]["statement"]
    matches = upload["or_statement"]["statement"] if "or_statement" in upload else [upload]
    assert [m["byte_match_statement"]["search_string"] for m in matches] == list(uploads)
    assert all(m["byte_match_statement"]["positional_constraint"] == "STARTS_WITH" for m in matches)
    assert all(m["byte_match_statement"]["field_to_match"] == {"uri_path": {}} for m in matches)
    assert len({r["priority"] for r in acl["rule"]}) == len(acl["rule"]) == len(managed) + 2
    assert all(r["visibility_config"]["cloudwatch_metrics_enabled"] for r in acl["rule"])
    # The ACL's own metrics are what alarms watch (blocked requests).
    assert acl["visibility_config"] == {
        "cloudwatch_metrics_enabled": True,
        "metric_name": f"roi-systems-{config.name}-{scope.lower()}",
        "sampled_requests_enabled": True,
    }

    (logging,) = [c for c in stack.resources("aws_wafv2_web_acl_logging_configuration").values()
                  if c["resource_arn"] == Stack.ref("aws_wafv2_web_acl", name, "arn")]  # fmt: skip
    (destination,) = logging["log_destination_configs"]
    group_name = destination.split(".")[1]
    group = stack.resources("aws_cloudwatch_log_group")[group_name]
    assert group["name"] == f"aws-waf-logs-roi-systems-{config.name}-{scope.lower()}"
    assert group["retention_in_days"] == config.security.waf_log_retention_days
    assert group.get("provider") == acl.get("provider")
    redacted = {f["single_header"]["name"] for f in logging["redacted_fields"]}
    assert redacted == {"authorization", "cookie"}


def test_stack_outputs_expose_arns_and_names_never_values(stack: Stack, config: EnvironmentConfig) -> None:
    outputs = stack.json["output"]
    for name in ("jwt_secret_arn", "operators_role_arn", "regional_web_acl_arn", "cloudfront_web_acl_arn",
                 "data_kms_key_arn", "storage_kms_key_arn", "logs_kms_key_arn", "logs_bucket_name"):  # fmt: skip
        assert outputs[name]["description"], name
    assert outputs["jwt_secret_arn"]["value"].endswith(".arn}")
    assert all(f"{b.replace('-', '_')}_bucket_name" in outputs for b in config.storage.buckets)
    assert not any("var." in str(o["value"]) for o in outputs.values())

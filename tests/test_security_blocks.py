"""The security building blocks refuse what is never least privilege, and grant exactly what they say."""

from __future__ import annotations

import json

import pytest

from roi_tf.modules.security import (
    KmsKey,
    KmsKeyProps,
    Secret,
    SecretProps,
    Statement,
    WebAcl,
    WebAclProps,
    WriteOnly,
    key_statement,
)
from roi_tf.modules.security.policy import policy_json


def test_statement_refuses_allow_of_every_action() -> None:
    with pytest.raises(ValueError, match="Action '\\*'"):
        Statement(sid="All", actions=["*"], resources=["arn:aws:s3:::b"])


def test_statement_refuses_allow_on_every_resource_without_a_reason() -> None:
    with pytest.raises(ValueError, match="any_resource_reason"):
        Statement(sid="Any", actions=["s3:GetObject"], resources=["*"])
    reasoned = Statement(sid="Any", actions=["ec2:DescribeRegions"], resources=["*"], any_resource_reason="no ARN")
    assert reasoned.to_json()["Resource"] == "*"


def test_deny_may_cover_everything() -> None:
    deny = Statement(sid="NoMfa", effect="Deny", actions=["*"], resources=["*"])
    assert deny.to_json() == {"Sid": "NoMfa", "Effect": "Deny", "Action": "*", "Resource": "*"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"effect": "Maybe"}, "effect must be Allow or Deny"),
        ({"actions": []}, "at least one action"),
        ({"resources": []}, "needs at least one resource"),
    ],
)
def test_statement_refuses_malformed_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Statement(**{"sid": "S", "actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::b/*"], **kwargs})


def test_trust_statement_needs_no_resource_and_renders_iam_json() -> None:
    trust = Statement(
        sid="Assume",
        actions=["sts:AssumeRole"],
        resources=[],
        principals={"Service": ["s3.amazonaws.com"]},
        conditions={("StringEquals", "aws:SourceAccount"): ["123456789012"]},
    )
    assert json.loads(policy_json([trust])) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Assume",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
            }
        ],
    }


def test_key_grants_to_services_must_be_conditioned() -> None:
    with pytest.raises(ValueError, match="must carry conditions"):
        key_statement(
            sid="Logs", actions=["kms:Decrypt"], principals={"Service": ["logs.amazonaws.com"]}, conditions={}
        )


# --- constructs, synthesized in a throwaway stack -------------------------------------------------


@pytest.fixture
def scratch():
    from cdktf import TerraformStack, Testing
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    stack = TerraformStack(Testing.app(), "scratch")
    AwsProvider(stack, "aws", region="us-east-1")
    return stack


def synth(stack) -> dict:
    from cdktf import Testing

    return json.loads(Testing.synth(stack))


def key(stack) -> KmsKey:
    return KmsKey(
        stack, "key", props=KmsKeyProps(alias="alias/test-data", description="test", account_id="123456789012")
    )


def test_write_only_values_refuse_literals_and_versions_below_one() -> None:
    """A literal would land in the JSON (and git); version 0 would never be written (write-only versions start at 1)."""
    with pytest.raises(ValueError, match="must come from an ephemeral variable"):
        WriteOnly("plain-text", 1)
    with pytest.raises(ValueError, match="start at 1"):
        WriteOnly("${var.x}", 0)
    assert WriteOnly("${var.x}", 3).version == 3


def test_secret_value_is_write_only_and_can_wait_for_another_resource(scratch) -> None:
    """The value reaches Secrets Manager only through secret_string_wo, and rotation order is expressible."""
    from cdktf import TerraformVariable
    from cdktf_cdktf_provider_aws.iam_role import IamRole

    value = TerraformVariable(scratch, "token", type="string", sensitive=True)
    secret = Secret(
        scratch,
        "secret",
        props=SecretProps(name="t/s", description="d", value=WriteOnly(value.string_value, 4), region="eu-west-1"),
        key=key(scratch),
    )
    first = IamRole(scratch, "first", name="first", assume_role_policy="{}")
    secret.written_after(first)
    (version,) = synth(scratch)["resource"]["aws_secretsmanager_secret_version"].values()
    assert version["secret_string_wo"] == "${var.token}" and version["secret_string_wo_version"] == 4
    assert "secret_string" not in version
    assert version["depends_on"] == ["aws_iam_role.first"]


def test_grant_read_allows_exactly_this_secret_and_decryption_through_secrets_manager(scratch) -> None:
    from cdktf import TerraformVariable
    from cdktf_cdktf_provider_aws.iam_role import IamRole

    value = TerraformVariable(scratch, "token", type="string", sensitive=True)
    secret = Secret(
        scratch,
        "secret",
        props=SecretProps(name="t/s", description="d", value=WriteOnly(value.string_value, 1), region="eu-west-1"),
        key=key(scratch),
    )
    role = IamRole(scratch, "reader", name="reader", assume_role_policy="{}")
    secret.grant_read(role)
    out = synth(scratch)
    (policy,) = out["resource"]["aws_iam_role_policy"].values()
    assert policy["role"] == "${aws_iam_role.reader.name}"
    document = out["data"]["aws_iam_policy_document"][policy["policy"].split(".")[2]]
    read, decrypt = document["statement"]
    assert read["actions"] == ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    (secret_name,) = out["resource"]["aws_secretsmanager_secret"]
    assert read["resources"] == [f"${{aws_secretsmanager_secret.{secret_name}.arn}}"]
    assert decrypt["actions"] == ["kms:Decrypt"]
    assert decrypt["condition"] == [
        {"test": "StringEquals", "variable": "kms:ViaService", "values": ["secretsmanager.eu-west-1.amazonaws.com"]}
    ]


@pytest.mark.parametrize(
    ("scope", "log_group", "message"),
    [("GLOBAL", "aws-waf-logs-x", "scope must be one of"), ("REGIONAL", "/waf/x", "aws-waf-logs-")],
)
def test_web_acl_refuses_unknown_scopes_and_log_groups_waf_cannot_write(scratch, scope, log_group, message) -> None:
    with pytest.raises(ValueError, match=message):
        WebAcl(
            scratch, "acl", props=WebAclProps(name="x", scope=scope, log_group_name=log_group), logs_key=key(scratch)
        )


def upload_rule_for(scratch, prefixes: tuple[str, ...]) -> tuple[dict, dict | None]:
    """(the common rule set's statement, the large-bodies rule or None) of a web ACL with these upload prefixes."""
    WebAcl(
        scratch,
        "acl",
        props=WebAclProps(
            name="x", scope="REGIONAL", log_group_name="aws-waf-logs-x", large_body_path_prefixes=prefixes
        ),
        logs_key=key(scratch),
    )
    (acl,) = synth(scratch)["resource"]["aws_wafv2_web_acl"].values()
    rules = {r["name"]: r for r in acl["rule"]}
    common = rules["AWSManagedRulesCommonRuleSet"]["statement"]["managed_rule_group_statement"]
    return common, rules.get("large-bodies-only-for-uploads")


def test_web_acl_without_upload_prefixes_blocks_large_bodies_everywhere(scratch) -> None:
    """No prefix: the common rule set's body-size rule blocks (nothing counts it), and no exception rule exists."""
    common, large = upload_rule_for(scratch, ())
    assert "rule_action_override" not in common
    assert large is None


@pytest.mark.parametrize("prefixes", [("/api/documents",), ("/api/documents", "/api/imports"), ("/a", "/b", "/c")])
def test_web_acl_upload_prefixes_form_a_statement_waf_accepts(scratch, prefixes) -> None:
    """WAF requires two or more statements in an or_statement: one prefix is matched bare, several through an or."""
    common, large = upload_rule_for(scratch, prefixes)
    assert common["rule_action_override"] == [{"name": "SizeRestrictions_BODY", "action_to_use": {"count": {}}}]
    assert large is not None and large["action"] == {"block": {}}
    (_, outside) = large["statement"]["and_statement"]["statement"]
    (upload,) = outside["not_statement"]["statement"]
    if len(prefixes) == 1:
        assert set(upload) == {"byte_match_statement"}
        matches = [upload]
    else:
        assert set(upload) == {"or_statement"}
        matches = upload["or_statement"]["statement"]
    assert [m["byte_match_statement"]["search_string"] for m in matches] == list(prefixes)


def test_a_grant_added_to_a_key_later_must_be_conditioned_and_lands_in_its_policy(scratch) -> None:
    """KmsKey.grant (for grantees created after the key): unconditioned service grants are refused; a conditioned
    one is rendered into the key's policy."""
    kms = key(scratch)
    with pytest.raises(ValueError, match="must carry conditions"):
        kms.grant([Statement(sid="Open", actions=["kms:Decrypt"], resources=["*"], any_resource_reason="key policy",
                             principals={"Service": ["cloudfront.amazonaws.com"]})])  # fmt: skip
    distribution = "arn:aws:cloudfront::123456789012:distribution/E1"
    kms.grant(
        [key_statement(sid="Scoped", actions=["kms:Decrypt"], principals={"Service": ["cloudfront.amazonaws.com"]},
                       conditions={("StringEquals", "aws:SourceArn"): [distribution]})]
    )  # fmt: skip
    (body,) = synth(scratch)["resource"]["aws_kms_key"].values()
    assert [s["Sid"] for s in json.loads(body["policy"])["Statement"]] == ["AccountRootAdministers", "Scoped"]


def test_sse_s3_bucket_needs_a_reason(scratch) -> None:
    from roi_tf.modules.bucket import SecureBucket, SecureBucketProps

    with pytest.raises(ValueError, match="needs sse_s3_reason"):
        SecureBucket(scratch, "b", props=SecureBucketProps(name="b", kms_key_arn=None))

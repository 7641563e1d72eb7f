"""Every bucket and key policy, simulated: each Allow admits a real request and refuses its negative twins.

The requests are the ones AWS services really make (log delivery, CloudTrail, CloudWatch Logs encrypting a log
group of this stack, the account's own roles). Each scenario is one request that must be allowed plus its
*twins*: the same request changed in one way (another account, trail, source bucket, prefix, region, no TLS)
that must be denied, with the kind of denial stated. Because the allowed request is allowed, a twin's denial
proves that the one thing changed is what the policy checks.

Two coverage tests make this general rather than a list of examples: every Allow statement of every bucket and
key policy in every stack must be what allows some scenario, and every Deny must be what refuses some twin. A new
statement without a simulated request fails the suite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from conftest import Stack
from policy_sim import (
    ACCOUNT,
    ELB_ACCOUNT_ARN,
    OTHER_ACCOUNT,
    Request,
    Statement,
    decide,
    from_document,
    from_json,
    resolver,
)
from roi_tf.config import ENVIRONMENTS

TLS = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.2"}
OWNER_FULL_CONTROL = {"s3:x-amz-acl": "bucket-owner-full-control"}
ALL_STACKS = [*ENVIRONMENTS, *(f"state-{e}" for e in ENVIRONMENTS)]


@dataclass(frozen=True)
class Policy:
    kind: str  # "bucket", "key" or "topic"
    label: str  # bucket name, key alias or topic name, for messages
    name: str  # logical name of the bucket, key or topic
    region: str
    statements: list[Statement]

    @property
    def service(self) -> str:
        return {"bucket": "s3", "key": "kms", "topic": "sns"}[self.kind]


@dataclass(frozen=True)
class Scenario:
    policy: Policy
    what: str
    request: Request  # must be allowed
    twins: tuple[tuple[str, Request, str], ...]  # (what differs, request, "implicit-deny" or "explicit-deny")


def policies(stack: Stack) -> dict[str, Policy]:
    """Every bucket policy and key policy of a stack, by the logical name of its bucket or key."""
    resolve = resolver(stack.json)
    found: dict[str, Policy] = {}
    buckets = stack.resources("aws_s3_bucket")
    for attachment in stack.resources("aws_s3_bucket_policy").values():
        name = attachment["bucket"].split(".")[1]
        document = stack.data("aws_iam_policy_document")[attachment["policy"].split(".")[2]]
        found[name] = Policy(
            "bucket", resolve(buckets[name]["bucket"]), name, stack.region_of(buckets[name]), from_document(document)
        )
    aliases = {a["target_key_id"].split(".")[1]: a["name"] for a in stack.resources("aws_kms_alias").values()}
    for name, key in stack.resources("aws_kms_key").items():
        found[name] = Policy("key", aliases[name], name, stack.region_of(key), from_json(key["policy"]))
    topics = stack.resources("aws_sns_topic")
    for attachment in stack.resources("aws_sns_topic_policy").values():
        name = attachment["arn"].split(".")[1]
        document = stack.data("aws_iam_policy_document")[attachment["policy"].split(".")[2]]
        found[name] = Policy(
            "topic", topics[name]["name"], name, stack.region_of(topics[name]), from_document(document)
        )
    return found


def role(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def trail_arn(stack: Stack, account: str = ACCOUNT, name: str | None = None) -> str:
    (trail,) = stack.resources("aws_cloudtrail").values()
    return f"arn:aws:cloudtrail:{stack.region_of(trail)}:{account}:trail/{name or trail['name']}"


def other_environment(stack: Stack) -> str:
    env = stack.name.removeprefix("state-")
    return next(e for e in ENVIRONMENTS if e != env)


# --- scenarios -----------------------------------------------------------------------------------


def bucket_scenarios(stack: Stack, found: dict[str, Policy]) -> Iterator[Scenario]:
    resolve = resolver(stack.json)
    for policy in (p for p in found.values() if p.kind == "bucket"):
        arn = f"arn:aws:s3:::{policy.label}"
        # The account's own roles reach every bucket through their identity policies, over TLS only.
        # (Guards against a TLS deny that is missing or never matches: the request is allowed with TLS.)
        read = Request("AWS", role("roi-systems-app"), "s3:GetObject", f"{arn}/x", TLS, identity_allows=True)
        yield Scenario(
            policy,
            "the account's roles over TLS",
            read,
            (
                (
                    "read without TLS",
                    read.but(context={"aws:SecureTransport": "false", "s3:TlsVersion": None}),
                    "explicit-deny",
                ),
                ("read over TLS 1.1", read.but(context={"s3:TlsVersion": "1.1"}), "explicit-deny"),
                ("read over TLS 1.3", read.but(context={"s3:TlsVersion": "1.3"}), "allow"),
                (
                    "write without TLS",
                    read.but(action="s3:PutObject", context={"aws:SecureTransport": "false"}),
                    "explicit-deny",
                ),
                ("another account's role", read.but(principal=role("roi-systems-app", OTHER_ACCOUNT)), "implicit-deny"),
            ),
        )

    # S3 server access logs: each source bucket delivers into its target bucket, under its own prefix.
    for logging in stack.resources("aws_s3_bucket_logging").values():
        target = found[logging["target_bucket"].split(".")[1]]
        source = f"arn:aws:s3:::{resolve(logging['bucket'])}"
        key = f"{resolve(logging['target_prefix'])}2026-11-25-00-00-00-ABCDEF"
        write = Request(
            "Service",
            "logging.s3.amazonaws.com",
            "s3:PutObject",
            f"arn:aws:s3:::{target.label}/{key}",
            {**TLS, "aws:SourceAccount": ACCOUNT, "aws:SourceArn": source},
        )
        yield Scenario(
            target,
            f"server access logs of {source}",
            write,
            (
                (
                    "a bucket of someone else",
                    write.but(context={"aws:SourceArn": "arn:aws:s3:::someone-elses"}),
                    "implicit-deny",
                ),
                ("another account", write.but(context={"aws:SourceAccount": OTHER_ACCOUNT}), "implicit-deny"),
                (
                    "outside the s3/ prefix",
                    write.but(resource=f"arn:aws:s3:::{target.label}/alb/{key}"),
                    "implicit-deny",
                ),
                ("without TLS", write.but(context={"aws:SecureTransport": "false"}), "explicit-deny"),
            ),
        )

    # The trail: ACL check and writes under its prefix, for this trail only.
    for trail in stack.resources("aws_cloudtrail").values():
        bucket = found[trail["s3_bucket_name"].split(".")[1]]
        context = {**TLS, "aws:SourceArn": trail_arn(stack)}
        foreign = {"aws:SourceArn": trail_arn(stack, name="another-trail")}
        foreign_account = {"aws:SourceArn": trail_arn(stack, account=OTHER_ACCOUNT)}
        acl = Request("Service", "cloudtrail.amazonaws.com", "s3:GetBucketAcl", f"arn:aws:s3:::{bucket.label}", context)
        yield Scenario(
            bucket,
            "CloudTrail checks the bucket ACL",
            acl,
            (
                ("another trail", acl.but(context=foreign), "implicit-deny"),
                ("the same trail name in another account", acl.but(context=foreign_account), "implicit-deny"),
            ),
        )
        key = f"{trail['s3_key_prefix']}/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/25/file.json.gz"
        write = Request(
            "Service",
            "cloudtrail.amazonaws.com",
            "s3:PutObject",
            f"arn:aws:s3:::{bucket.label}/{key}",
            {**context, **OWNER_FULL_CONTROL},
        )
        yield Scenario(
            bucket,
            "CloudTrail delivers its log files",
            write,
            (
                ("another trail", write.but(context=foreign), "implicit-deny"),
                ("without bucket-owner-full-control", write.but(context={"s3:x-amz-acl": None}), "implicit-deny"),
                (
                    "under the ALB prefix",
                    write.but(resource=f"arn:aws:s3:::{bucket.label}/alb/AWSLogs/{ACCOUNT}/x"),
                    "implicit-deny",
                ),
                ("without TLS", write.but(context={"aws:SecureTransport": "false"}), "explicit-deny"),
            ),
        )

    yield from _log_delivery_scenarios(stack, found)
    yield from _config_scenarios(stack, found)
    yield from _cdn_scenarios(stack, found)


def _cdn_scenarios(stack: Stack, found: dict[str, Policy]) -> Iterator[Scenario]:
    """CloudFront reads the assets through Origin Access Control, and has them decrypted: this distribution only."""
    resolve = resolver(stack.json)
    for name in stack.resources("aws_cloudfront_distribution"):
        own = resolve(Stack.ref("aws_cloudfront_distribution", name, "arn"))
        other = f"arn:aws:cloudfront::{ACCOUNT}:distribution/EOTHERDISTRIB1"
        foreign = f"arn:aws:cloudfront::{OTHER_ACCOUNT}:distribution/EOTHERDISTRIB1"
        assets = found[stack.bucket_named("assets")]
        context = {**TLS, "aws:SourceArn": own, "aws:SourceAccount": ACCOUNT}
        read = Request("Service", "cloudfront.amazonaws.com", "s3:GetObject", f"arn:aws:s3:::{assets.label}/app.js",
                       context)  # fmt: skip
        yield Scenario(
            assets,
            "CloudFront reads the assets (Origin Access Control)",
            read,
            (
                (
                    "for another distribution of this account",
                    read.but(context={"aws:SourceArn": other}),
                    "implicit-deny",
                ),
                (
                    "for another account's distribution",
                    read.but(context={"aws:SourceArn": foreign, "aws:SourceAccount": OTHER_ACCOUNT}),
                    "implicit-deny",
                ),
                ("a write", read.but(action="s3:PutObject"), "implicit-deny"),
                (
                    "a listing",
                    read.but(action="s3:ListBucket", resource=f"arn:aws:s3:::{assets.label}"),
                    "implicit-deny",
                ),
                ("without TLS", read.but(context={"aws:SecureTransport": "false"}), "explicit-deny"),
            ),
        )
        (key,) = [p for p in found.values() if p.kind == "key" and p.label.endswith("-assets")]
        decrypt = Request(
            "Service",
            "cloudfront.amazonaws.com",
            "kms:Decrypt",
            f"arn:aws:kms:{key.region}:{ACCOUNT}:key/{key.name}",
            {"aws:SourceArn": own, "aws:SourceAccount": ACCOUNT},
        )
        yield Scenario(
            key,
            "CloudFront decrypts the assets it reads",
            decrypt,
            (
                ("for another distribution", decrypt.but(context={"aws:SourceArn": other}), "implicit-deny"),
                (
                    "for another account's distribution",
                    decrypt.but(context={"aws:SourceArn": foreign}),
                    "implicit-deny",
                ),
                ("to encrypt", decrypt.but(action="kms:Encrypt"), "implicit-deny"),
                ("to create data keys", decrypt.but(action="kms:GenerateDataKey"), "implicit-deny"),
            ),
        )


def _config_scenarios(stack: Stack, found: dict[str, Policy]) -> Iterator[Scenario]:
    """AWS Config checks the bucket, delivers under its prefix, and encrypts with the key the channel names."""
    for channel in stack.resources("aws_config_delivery_channel").values():
        bucket = found[channel["s3_bucket_name"].split(".")[1]]
        key = found[channel["s3_kms_key_arn"].split(".")[1]]
        account = {"aws:SourceAccount": ACCOUNT}
        other = {"aws:SourceAccount": OTHER_ACCOUNT}
        for action in ("s3:GetBucketAcl", "s3:ListBucket"):
            check = Request(
                "Service", "config.amazonaws.com", action, f"arn:aws:s3:::{bucket.label}", {**TLS, **account}
            )
            yield Scenario(bucket, f"AWS Config: {action}", check, (("for another account", check.but(context=other),
                                                                     "implicit-deny"),))  # fmt: skip
        key_name = f"{channel['s3_key_prefix']}/AWSLogs/{ACCOUNT}/Config/us-east-1/2026/11/25/snapshot.json.gz"
        deliver = Request(
            "Service",
            "config.amazonaws.com",
            "s3:PutObject",
            f"arn:aws:s3:::{bucket.label}/{key_name}",
            {**TLS, **OWNER_FULL_CONTROL, **account},
        )
        yield Scenario(
            bucket,
            "AWS Config delivers snapshots and history",
            deliver,
            (
                ("for another account", deliver.but(context=other), "implicit-deny"),
                ("without bucket-owner-full-control", deliver.but(context={"s3:x-amz-acl": None}), "implicit-deny"),
                ("under the CloudTrail prefix",
                 deliver.but(resource=f"arn:aws:s3:::{bucket.label}/cloudtrail/AWSLogs/{ACCOUNT}/x"), "implicit-deny"),
                ("without TLS", deliver.but(context={"aws:SecureTransport": "false"}), "explicit-deny"),
            ),
        )  # fmt: skip
        encrypt = Request(
            "Service",
            "config.amazonaws.com",
            "kms:GenerateDataKey",
            f"arn:aws:kms:{key.region}:{ACCOUNT}:key/x",
            account,
        )
        yield Scenario(
            key, "AWS Config encrypts its deliveries", encrypt, (("for another account", encrypt.but(context=other),
                                                                  "implicit-deny"),)
        )  # fmt: skip


def _log_delivery_scenarios(stack: Stack, found: dict[str, Policy]) -> Iterator[Scenario]:
    """ALB access logs and CloudFront standard logs (v2) into the primary region's logs bucket; ALB access logs
    into the DR region's, where the pilot light has load balancers."""
    logs = found[stack.bucket_named("logs")] if stack.resources("aws_cloudtrail") else None
    if logs is None:
        return
    yield from _alb_log_scenarios(logs)
    if stack.under("dr_compute").resources("aws_lb"):
        (dr_region,) = {b["provider"] for b in stack.under("dr_compute").resources("aws_lb").values()}
        (dr_logs,) = [
            found[name]
            for name, bucket in stack.resources("aws_s3_bucket").items()
            if bucket.get("provider") == dr_region and "-logs-" in bucket["bucket"]
        ]
        yield from _alb_log_scenarios(dr_logs)
    yield from _cloudfront_log_scenarios(logs)


def _alb_log_scenarios(logs: Policy) -> Iterator[Scenario]:
    alb_key = f"alb/AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2026/11/25/file.log.gz"
    elb = Request("AWS", ELB_ACCOUNT_ARN, "s3:PutObject", f"arn:aws:s3:::{logs.label}/{alb_key}", TLS)
    yield Scenario(
        logs,
        "ALB access logs, delivered by the region's ELB account",
        elb,
        (
            (
                "under the CloudTrail prefix",
                elb.but(resource=f"arn:aws:s3:::{logs.label}/cloudtrail/AWSLogs/x"),
                "implicit-deny",
            ),
            (
                "for another account's load balancers",
                elb.but(resource=f"arn:aws:s3:::{logs.label}/alb/AWSLogs/{OTHER_ACCOUNT}/x"),
                "implicit-deny",
            ),
            ("without TLS", elb.but(context={"aws:SecureTransport": "false"}), "explicit-deny"),
        ),
    )
    service = Request(
        "Service",
        "logdelivery.elasticloadbalancing.amazonaws.com",
        "s3:PutObject",
        f"arn:aws:s3:::{logs.label}/{alb_key}",
        {**TLS, "aws:SourceAccount": ACCOUNT},
    )
    yield Scenario(
        logs,
        "ALB access logs, delivered by the log delivery service",
        service,
        (
            ("for another account", service.but(context={"aws:SourceAccount": OTHER_ACCOUNT}), "implicit-deny"),
            ("outside the ALB prefix", service.but(resource=f"arn:aws:s3:::{logs.label}/s3/x"), "implicit-deny"),
        ),
    )


def _cloudfront_log_scenarios(logs: Policy) -> Iterator[Scenario]:
    cloudfront = Request(
        "Service",
        "delivery.logs.amazonaws.com",
        "s3:PutObject",
        f"arn:aws:s3:::{logs.label}/cloudfront/AWSLogs/{ACCOUNT}/CloudFront/E123/2026/11/25/file.gz",
        {
            **TLS,
            **OWNER_FULL_CONTROL,
            "aws:SourceAccount": ACCOUNT,
            "aws:SourceArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:delivery-source:cdn",
        },
    )
    yield Scenario(
        logs,
        "CloudFront standard logs (v2)",
        cloudfront,
        (
            ("for another account", cloudfront.but(context={"aws:SourceAccount": OTHER_ACCOUNT}), "implicit-deny"),
            (
                "from another account's delivery source",
                cloudfront.but(context={"aws:SourceArn": f"arn:aws:logs:us-east-1:{OTHER_ACCOUNT}:delivery-source:x"}),
                "implicit-deny",
            ),
            ("without bucket-owner-full-control", cloudfront.but(context={"s3:x-amz-acl": None}), "implicit-deny"),
            (
                "under the ALB prefix",
                cloudfront.but(resource=f"arn:aws:s3:::{logs.label}/alb/AWSLogs/{ACCOUNT}/x"),
                "implicit-deny",
            ),
        ),
    )


def key_scenarios(stack: Stack, found: dict[str, Policy]) -> Iterator[Scenario]:
    keys = {p.name: p for p in found.values() if p.kind == "key"}
    for key in keys.values():
        arn = f"arn:aws:kms:{key.region}:{ACCOUNT}:key/{key.name}"
        admin = Request("AWS", f"arn:aws:iam::{ACCOUNT}:root", "kms:ScheduleKeyDeletion", arn)
        use = Request("AWS", role("roi-systems-app"), "kms:Decrypt", arn, identity_allows=True)
        yield Scenario(
            key,
            "the account administers the key",
            admin,
            (("another account", admin.but(principal=f"arn:aws:iam::{OTHER_ACCOUNT}:root"), "implicit-deny"),),
        )
        yield Scenario(
            key,
            "the account's roles use it through their identity policies",
            use,
            (
                ("a role whose policy does not allow it", use.but(identity_allows=False), "implicit-deny"),
                ("another account's role", use.but(principal=role("roi-systems-app", OTHER_ACCOUNT)), "implicit-deny"),
            ),
        )

    # CloudWatch Logs encrypts each log group of this stack with the key the group names, in the group's region.
    other = other_environment(stack)
    env = stack.name.removeprefix("state-")
    for group in stack.resources("aws_cloudwatch_log_group").values():
        key = keys[group["kms_key_id"].split(".")[1]]
        region = stack.region_of(group)
        context_key = "kms:EncryptionContext:aws:logs:arn"
        group_arn = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{group['name']}"
        encrypt = Request(
            "Service",
            f"logs.{region}.amazonaws.com",
            "kms:GenerateDataKey",
            f"arn:aws:kms:{key.region}:{ACCOUNT}:key/{key.name}",
            {context_key: group_arn},
        )
        other_env_group = group_arn.replace(f"roi-systems/{env}/", f"roi-systems/{other}/").replace(
            f"roi-systems-{env}-", f"roi-systems-{other}-"
        )
        assert other_env_group != group_arn, group["name"]
        yield Scenario(
            key,
            f"CloudWatch Logs encrypts {group['name']}",
            encrypt,
            (
                (
                    "the same group of another environment",
                    encrypt.but(context={context_key: other_env_group}),
                    "implicit-deny",
                ),
                (
                    "the same group in another account",
                    encrypt.but(context={context_key: group_arn.replace(ACCOUNT, OTHER_ACCOUNT)}),
                    "implicit-deny",
                ),
                (
                    "CloudWatch Logs of another region",
                    encrypt.but(principal="logs.ap-southeast-2.amazonaws.com"),
                    "implicit-deny",
                ),
                (
                    "a log group outside the environment",
                    encrypt.but(context={context_key: f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/other/app"}),
                    "implicit-deny",
                ),
            ),
        )

    # CloudTrail encrypts its files with the key the trail names, for this trail only.
    for trail in stack.resources("aws_cloudtrail").values():
        key = keys[trail["kms_key_id"].split(".")[1]]
        arn = f"arn:aws:kms:{key.region}:{ACCOUNT}:key/{key.name}"
        context = {"aws:SourceArn": trail_arn(stack), "kms:EncryptionContext:aws:cloudtrail:arn": trail_arn(stack)}
        encrypt = Request("Service", "cloudtrail.amazonaws.com", "kms:GenerateDataKey", arn, context)
        describe = Request("Service", "cloudtrail.amazonaws.com", "kms:DescribeKey", arn, context)
        for what, request in (("CloudTrail encrypts its files", encrypt), ("CloudTrail describes the key", describe)):
            yield Scenario(
                key,
                what,
                request,
                (
                    (
                        "another trail",
                        request.but(context={"aws:SourceArn": trail_arn(stack, name="x")}),
                        "implicit-deny",
                    ),
                    (
                        "another account's trail",
                        request.but(context={"aws:SourceArn": trail_arn(stack, account=OTHER_ACCOUNT)}),
                        "implicit-deny",
                    ),
                ),
            )
        other_context = {"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn(stack, account=OTHER_ACCOUNT)}
        yield Scenario(
            key,
            "CloudTrail encrypts only files of this account's trails",
            encrypt,
            (("files of another account's trail", encrypt.but(context=other_context), "implicit-deny"),),
        )


def topic_scenarios(stack: Stack, found: dict[str, Policy]) -> Iterator[Scenario]:
    """The alert topics: the account manages them, its publishing services reach them (and their key) for it only."""
    topics = stack.resources("aws_sns_topic")
    for name, body in topics.items():
        topic = found[name]
        arn = f"arn:aws:sns:{topic.region}:{ACCOUNT}:{topic.label}"
        manage = Request("AWS", role("roi-systems-ops"), "sns:Subscribe", arn, {"aws:SecureTransport": "true"}, True)
        yield Scenario(
            topic,
            "the account's roles manage the topic through their identity policies",
            manage,
            (
                (
                    "another account's role",
                    manage.but(principal=role("roi-systems-ops", OTHER_ACCOUNT)),
                    "implicit-deny",
                ),
                ("over plain HTTP", manage.but(context={"aws:SecureTransport": "false"}), "explicit-deny"),
            ),
        )
        root = Request("AWS", f"arn:aws:iam::{ACCOUNT}:root", "sns:SetTopicAttributes", arn)
        yield Scenario(
            topic,
            "the account administers the topic",
            root,
            (("another account", root.but(principal=f"arn:aws:iam::{OTHER_ACCOUNT}:root"), "implicit-deny"),),
        )
        (publish,) = [s for s in topic.statements if s.sid == "ServicesPublishForThisAccount"]
        (services,) = [ids for kind, ids in publish.principals if kind == "Service"]
        key = found[body["kms_master_key_id"].split(".")[1]]
        key_arn = f"arn:aws:kms:{key.region}:{ACCOUNT}:key/{key.name}"
        assert key.region == topic.region, f"{topic.label}: its key is in another region"
        for service in services:
            context = {"aws:SourceAccount": ACCOUNT, "aws:SecureTransport": "true"}
            request = Request("Service", service, "sns:Publish", arn, context)
            yield Scenario(
                topic,
                f"{service} publishes for this account",
                request,
                (
                    ("for another account", request.but(context={"aws:SourceAccount": OTHER_ACCOUNT}), "implicit-deny"),
                    ("over plain HTTP", request.but(context={"aws:SecureTransport": "false"}), "explicit-deny"),
                    ("another service", request.but(principal="s3.amazonaws.com"), "implicit-deny"),
                ),
            )
            # SNS encrypts the message with the topic's key on the publisher's behalf: the key must admit it too.
            encrypt = Request("Service", service, "kms:GenerateDataKey", key_arn, {"aws:SourceAccount": ACCOUNT})
            yield Scenario(
                key,
                f"{service} has {topic.label}'s messages encrypted",
                encrypt,
                (
                    ("for another account", encrypt.but(context={"aws:SourceAccount": OTHER_ACCOUNT}), "implicit-deny"),
                    ("another service", encrypt.but(principal="s3.amazonaws.com"), "implicit-deny"),
                ),
            )


def scenarios(stack: Stack) -> tuple[dict[str, Policy], list[Scenario]]:
    found = policies(stack)
    return found, [*bucket_scenarios(stack, found), *key_scenarios(stack, found), *topic_scenarios(stack, found)]


# --- the tests ------------------------------------------------------------------------------------


@pytest.fixture(params=[*ALL_STACKS, "canary", "state-canary"])
def any_stack(request: pytest.FixtureRequest, stacks: dict[str, Stack]) -> Stack:
    """Every stack, and the canary's (other regions: a separate us-east-1 logs key for the CloudFront WAF)."""
    if "canary" in request.param:
        _, canary_stacks = request.getfixturevalue("canary")
        return canary_stacks[request.param]
    return stacks[request.param]


def test_every_scenario_is_allowed_and_every_twin_denied_for_the_stated_reason(any_stack: Stack) -> None:
    """Guards against over-broad grants (a twin allowed) and against conditions that never match (denied)."""
    resolve = resolver(any_stack.json)
    _, cases = scenarios(any_stack)
    assert cases
    for case in cases:
        where = f"{any_stack.name}: {case.policy.label}: {case.what}"
        decision = decide(case.policy.statements, case.request, resolve, service=case.policy.service)
        assert decision.allowed, f"{where}: denied ({decision})"
        for differs, twin, expected in case.twins:
            denial = decide(case.policy.statements, twin, resolve, service=case.policy.service)
            assert denial.effect == expected, f"{where}, but {differs}: {denial}"


def test_every_allow_statement_is_what_allows_some_real_request(any_stack: Stack) -> None:
    """A statement nothing exercises is either dead weight or untested: both fail here."""
    resolve = resolver(any_stack.json)
    found, cases = scenarios(any_stack)
    exercised = {
        (case.policy.name, sid)
        for case in cases
        for sid in decide(case.policy.statements, case.request, resolve, service=case.policy.service).sids
    }
    missing = [
        f"{policy.label}: {s.sid}"
        for policy in found.values()
        for s in policy.statements
        if s.effect == "Allow" and (policy.name, s.sid) not in exercised
    ]
    assert missing == [], f"{any_stack.name}: Allow statements with no simulated request"


def test_every_deny_statement_is_what_refuses_some_twin(any_stack: Stack) -> None:
    resolve = resolver(any_stack.json)
    found, cases = scenarios(any_stack)
    refused = {
        (case.policy.name, sid)
        for case in cases
        for _, twin, _ in case.twins
        for sid in decide(case.policy.statements, twin, resolve, service=case.policy.service).sids
    }
    missing = [
        f"{policy.label}: {s.sid}"
        for policy in found.values()
        for s in policy.statements
        if s.effect == "Deny" and (policy.name, s.sid) not in refused
    ]
    assert missing == [], f"{any_stack.name}: Deny statements no simulated request reaches"
    assert any(p.kind == "bucket" for p in found.values()) and any(p.kind == "key" for p in found.values())


def test_no_resource_policy_admits_anyone_or_an_unconditioned_service(any_stack: Stack) -> None:
    """Anonymous access, or a service grant usable on behalf of any account (confused deputy), is never allowed."""
    for policy in policies(any_stack).values():
        for statement in policy.statements:
            if statement.effect != "Allow":
                continue
            kinds = {kind for kind, _ in statement.principals}
            assert "*" not in kinds, f"{policy.label}: {statement.sid}"
            if "Service" in kinds:
                keys = {key for _, key, _ in statement.conditions}
                assert keys & {"aws:SourceArn", "aws:SourceAccount", "kms:EncryptionContext:aws:logs:arn"}, (
                    f"{policy.label}: {statement.sid} admits the service for any account"
                )


def test_the_simulator_tells_explicit_from_implicit_denial() -> None:
    """Control for the simulator itself: an Allow and a Deny on the same request."""
    allow = Statement("A", "Allow", (("Service", ("svc",)),), ("s3:PutObject",), ("arn:aws:s3:::b/*",), ())
    deny = Statement(
        "D", "Deny", (("*", ("*",)),), ("s3:*",), ("arn:aws:s3:::b/*",), (("Bool", "aws:SecureTransport", ("false",)),)
    )
    request = Request("Service", "svc", "s3:PutObject", "arn:aws:s3:::b/k", TLS)
    assert decide([allow, deny], request, str).sids == ("A",)
    assert decide([allow, deny], request.but(context={"aws:SecureTransport": "false"}), str).effect == "explicit-deny"
    assert decide([allow], request.but(principal="other"), str).effect == "implicit-deny"
    assert decide([deny], request, str).effect == "implicit-deny"
    root = Statement("R", "Allow", (("AWS", (f"arn:aws:iam::{ACCOUNT}:root",)),), ("kms:*",), ("*",), ())
    user = Request("AWS", role("x"), "kms:Decrypt", "k", identity_allows=True)
    assert decide([root], user, str, service="kms").allowed
    assert not decide([root], user.but(identity_allows=False), str, service="kms").allowed
    assert not decide([], user, str, service="kms").allowed
    assert decide([], Request("AWS", role("x"), "s3:GetObject", "o", identity_allows=True), str).allowed
    json_policy = json.dumps({"Statement": [{"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": "a:B",
                                             "Resource": "*"}]})  # fmt: skip
    assert from_json(json_policy)[0].principals == (("*", ("*",)),)

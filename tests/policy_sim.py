"""A small evaluator of synthesized resource policies (bucket and key policies): would AWS allow this request?

It follows IAM's evaluation logic for the parts our policies use: an explicit Deny wins, then an Allow from the
resource policy; ``*``/``?`` wildcards in actions, resources and the Like operators; Bool, String*, Arn* and
Numeric* conditions, with ``...IfExists``. Terraform interpolations are resolved to concrete strings first, so
``${aws_s3_bucket.x.arn}`` and ``arn:${partition}:s3:::name`` compare equal. Two facts of AWS are modelled
because tests would be blind without them:

- S3: a principal of the bucket's own account is allowed by its identity policy alone (``identity_allows``),
  unless the bucket policy denies it. So "denied without TLS" means something only for a request that is
  *allowed* with TLS; the decision's ``effect`` tells an explicit deny from an implicit one.
- KMS: a key policy naming the account root delegates to IAM: it admits principals of that account whose
  identity policy allows the action (``identity_allows``). Unlike S3, nothing gets in without the key policy.

A ``Decision`` names the statements that decided it, so a test can assert *why* a request was allowed or denied.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "999999999999"
PARTITION = "aws"
ELB_ACCOUNT_ARN = "arn:aws:iam::127311923021:root"  # the ELB account of us-east-1

_REF = re.compile(r"\$\{([^}]+)\}")
Resolve = Callable[[str], str]


def resolver(stack_json: Mapping[str, Any]) -> Resolve:
    """A function turning interpolated strings of this stack into concrete ones."""
    buckets = stack_json.get("resource", {}).get("aws_s3_bucket", {})
    topics = stack_json.get("resource", {}).get("aws_sns_topic", {})
    regions = {p.get("alias"): p["region"] for p in stack_json.get("provider", {}).get("aws", [])}

    def resolve(value: str) -> str:
        def one(match: re.Match[str]) -> str:
            ref = match.group(1)
            if ref == "data.aws_caller_identity.current.account_id":
                return ACCOUNT
            if ref == "data.aws_partition.partition.partition":
                return PARTITION
            if ref.startswith("data.aws_elb_service_account."):
                return ELB_ACCOUNT_ARN
            kind, name, attribute = ref.split(".")
            if kind == "aws_s3_bucket":
                bucket = resolve(buckets[name]["bucket"])
                return {"arn": f"arn:{PARTITION}:s3:::{bucket}", "id": bucket, "bucket": bucket}[attribute]
            if kind == "aws_sns_topic":
                topic = topics[name]
                region = regions[topic["provider"].removeprefix("aws.") if "provider" in topic else None]
                arn = f"arn:{PARTITION}:sns:{region}:{ACCOUNT}:{resolve(topic['name'])}"
                return {"arn": arn, "id": arn}[attribute]
            if kind == "aws_cloudfront_distribution":
                distribution_id = "E" + name.upper().replace("_", "")[-13:]  # global: no region in the ARN
                return {"arn": f"arn:{PARTITION}:cloudfront::{ACCOUNT}:distribution/{distribution_id}",
                        "id": distribution_id}[attribute]  # fmt: skip
            return f"<{ref}>"  # anything else stays symbolic (and never matches a concrete request)

        return _REF.sub(one, value)

    return resolve


@dataclass(frozen=True)
class Statement:
    """One statement of a resource policy, in a form common to both grammars we synthesize."""

    sid: str
    effect: str
    principals: tuple[tuple[str, tuple[str, ...]], ...]  # (type, identifiers); ("*", ("*",)) is anyone
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...]  # (operator, key, values)


def from_document(document: Mapping[str, Any]) -> list[Statement]:
    """Statements of a synthesized ``aws_iam_policy_document`` data source."""
    return [
        Statement(
            sid=s.get("sid", ""),
            effect=s.get("effect", "Allow"),
            principals=tuple((p["type"], tuple(p["identifiers"])) for p in s.get("principals", [])),
            actions=tuple(s["actions"]),
            resources=tuple(s.get("resources", ())),
            conditions=tuple((c["test"], c["variable"], tuple(c["values"])) for c in s.get("condition", [])),
        )
        for s in document["statement"]
    ]


def _many(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def from_json(policy: str) -> list[Statement]:
    """Statements of a policy in IAM's JSON grammar (our KMS key policies)."""
    statements = []
    for s in json.loads(policy)["Statement"]:
        principal = s.get("Principal", {})
        principals = (("*", ("*",)),) if principal == "*" else tuple((k, _many(v)) for k, v in principal.items())
        statements.append(
            Statement(
                sid=s.get("Sid", ""),
                effect=s["Effect"],
                principals=principals,
                actions=_many(s["Action"]),
                resources=_many(s.get("Resource", ())),
                conditions=tuple(
                    (test, key, _many(values))
                    for test, keys in s.get("Condition", {}).items()
                    for key, values in keys.items()
                ),
            )
        )
    return statements


@dataclass(frozen=True)
class Request:
    principal_type: str  # "Service", "AWS", "*", or "identity-policy" (evaluating a role's own policies)
    principal: str
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys -> request values
    # The principal's own identity policy allows the action (same-account IAM principals only).
    identity_allows: bool = False

    def but(self, *, context: Mapping[str, str | None] | None = None, **changes: Any) -> Request:
        """The same request with some fields changed; ``context`` entries are merged (None removes a key)."""
        merged = dict(self.context)
        for key, value in (context or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return replace(self, context=merged, **changes)


@dataclass(frozen=True)
class Decision:
    effect: Literal["allow", "explicit-deny", "implicit-deny"]
    sids: tuple[str, ...] = ()  # the statements that decided it ("identity-policy" for S3's same-account rule)

    @property
    def allowed(self) -> bool:
        return self.effect == "allow"


def _like(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def _condition_holds(test: str, variable: str, values: Sequence[str], context: Mapping[str, str]) -> bool:
    if test == "Null":  # "true": the key is absent from the request; "false": present
        return (variable not in context) == (values == ["true"])
    if test.endswith("IfExists") and variable not in context:
        return True
    test = test.removesuffix("IfExists")
    if test == "StringNotEquals":  # a negated operator holds when the key is absent
        return variable not in context or context[variable] not in values
    test = test.removeprefix("ForAnyValue:")  # one value per key in these requests
    if variable not in context:
        return False
    actual = context[variable]
    if test in ("StringEquals", "ArnEquals", "Bool"):
        return actual in values
    if test in ("StringLike", "ArnLike"):
        return any(_like(v, actual) for v in values)
    if test == "NumericLessThan":
        return any(float(actual) < float(v) for v in values)
    if test == "NumericLessThanEquals":
        return any(float(actual) <= float(v) for v in values)
    raise AssertionError(f"condition operator {test} is not simulated")


def account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def _principal_matches(statement: Statement, request: Request, resolve: Resolve) -> bool:
    if request.principal_type == "identity-policy":
        return not statement.principals  # the role's own policy: it applies to whoever holds the role
    for kind, identifiers in statement.principals:
        if kind == "*" and "*" in identifiers:
            return True
        if kind != request.principal_type:
            continue
        for identifier in map(resolve, identifiers):
            if identifier == request.principal:
                return True
            # An account root delegates to IAM: principals of that account whose identity policy allows it.
            if (
                kind == "AWS"
                and identifier.endswith(":root")
                and request.identity_allows
                and account_of(identifier) == account_of(request.principal)
            ):
                return True
    return False


def _statement_matches(statement: Statement, request: Request, resolve: Resolve) -> bool:
    return (
        _principal_matches(statement, request, resolve)
        and any(_like(a, request.action) for a in statement.actions)
        and any(_like(resolve(r), request.resource) for r in statement.resources)
        and all(
            _condition_holds(test, key, [resolve(v) for v in values], request.context)
            for test, key, values in statement.conditions
        )
    )


def decide(statements: Iterable[Statement], request: Request, resolve: Resolve, *, service: str = "s3") -> Decision:
    """How AWS decides ``request`` against a bucket (``s3``), key (``kms``) or topic (``sns``) policy of ``ACCOUNT``."""
    statements = list(statements)
    denies = tuple(s.sid for s in statements if s.effect == "Deny" and _statement_matches(s, request, resolve))
    if denies:
        return Decision("explicit-deny", denies)
    allows = tuple(s.sid for s in statements if s.effect == "Allow" and _statement_matches(s, request, resolve))
    if allows:
        return Decision("allow", allows)
    # S3 and SNS, unlike KMS, let the resource's own account in on its identity policies alone.
    same_account = request.principal_type == "AWS" and account_of(request.principal) == ACCOUNT
    if service in ("s3", "sns") and request.identity_allows and same_account:
        return Decision("allow", ("identity-policy",))
    return Decision("implicit-deny")


def identity_decision(statements: Iterable[Statement], action: str, resource: str, resolve: Resolve,
                      context: Mapping[str, str] | None = None) -> Decision:  # fmt: skip
    """How a role's own (identity) policies decide ``action`` on ``resource``: an explicit Deny wins, then an Allow."""
    request = Request("identity-policy", "", action, resource, dict(context or {}))
    return decide(statements, request, resolve, service="iam")


def allowed(policy_document: Mapping[str, Any], request: Request, resolve: Resolve) -> bool:
    """True if the bucket policy (an ``aws_iam_policy_document``) allows the request."""
    return decide(from_document(policy_document), request, resolve).allowed

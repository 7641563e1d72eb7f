"""A small evaluator of synthesized bucket policies: would S3 allow this principal to do this?

It follows IAM's resource-policy logic for the parts our policies use (explicit Deny wins, then any
Allow; ``*``/``?`` wildcards in resources and ArnLike/StringLike; Bool/StringEquals/ArnEquals
conditions). Terraform interpolations are resolved to concrete strings first, so ``${aws_s3_bucket.x.arn}``
and ``arn:${partition}:s3:::name`` compare equal. It answers the question that causes "Access Denied
for bucket" at apply time, without an AWS account.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
PARTITION = "aws"
ELB_ACCOUNT_ARN = "arn:aws:iam::127311923021:root"  # the ELB account of us-east-1

_REF = re.compile(r"\$\{([^}]+)\}")


def resolver(stack_json: Mapping[str, Any]) -> Any:
    """A function turning interpolated strings of this stack into concrete ones."""
    buckets = stack_json.get("resource", {}).get("aws_s3_bucket", {})

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
            return f"<{ref}>"  # anything else stays symbolic (and never matches a concrete request)

        return _REF.sub(one, value)

    return resolve


@dataclass(frozen=True)
class Request:
    principal_type: str  # "Service", "AWS" or "*"
    principal: str
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys -> request values


def _like(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def _condition_holds(test: str, variable: str, values: list[str], context: Mapping[str, str]) -> bool:
    if test.endswith("IfExists") and variable not in context:
        return True
    test = test.removesuffix("IfExists")
    if variable not in context:
        return False
    actual = context[variable]
    if test in ("StringEquals", "ArnEquals", "Bool"):
        return actual in values
    if test in ("StringLike", "ArnLike"):
        return any(_like(v, actual) for v in values)
    raise AssertionError(f"condition operator {test} is not simulated")


def _statement_matches(statement: Mapping[str, Any], request: Request, resolve: Any) -> bool:
    principals = statement.get("principals", [])
    if not any(
        (p["type"] == "*" and "*" in p["identifiers"])
        or (p["type"] == request.principal_type and request.principal in [resolve(i) for i in p["identifiers"]])
        for p in principals
    ):
        return False
    if not any(_like(a, request.action) for a in statement["actions"]):
        return False
    if not any(_like(resolve(r), request.resource) for r in statement["resources"]):
        return False
    return all(
        _condition_holds(c["test"], c["variable"], [resolve(v) for v in c["values"]], request.context)
        for c in statement.get("condition", [])
    )


def allowed(policy_document: Mapping[str, Any], request: Request, resolve: Any) -> bool:
    """True if the bucket policy allows the request (resource policy alone: services have no identity policy)."""
    statements = policy_document["statement"]
    if any(s.get("effect") == "Deny" and _statement_matches(s, request, resolve) for s in statements):
        return False
    return any(s.get("effect", "Allow") == "Allow" and _statement_matches(s, request, resolve) for s in statements)

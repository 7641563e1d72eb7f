"""Least-privilege policy documents: typed statements rendered as JSON or ``aws_iam_policy_document``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import (
    DataAwsIamPolicyDocument,
    DataAwsIamPolicyDocumentStatement,
    DataAwsIamPolicyDocumentStatementCondition,
    DataAwsIamPolicyDocumentStatementPrincipals,
)
from constructs import Construct


@dataclass(frozen=True, kw_only=True)
class Statement:
    """One IAM policy statement, scoped to explicit actions and resources."""

    sid: str
    actions: Sequence[str]
    resources: Sequence[str]
    effect: str = "Allow"
    # Principal type -> identifiers; only for resource policies (bucket, key, trust).
    principals: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # (test, variable) -> values, e.g. {("Bool", "aws:SecureTransport"): ["false"]}.
    conditions: Mapping[tuple[str, str], Sequence[str]] = field(default_factory=dict)
    # Why an Allow may name Resource "*": only where AWS offers nothing narrower (default: it may not).
    any_resource_reason: str = ""

    def __post_init__(self) -> None:
        if self.effect not in ("Allow", "Deny"):
            raise ValueError(f"statement {self.sid}: effect must be Allow or Deny, not {self.effect!r}")
        if not self.actions:
            raise ValueError(f"statement {self.sid}: needs at least one action")
        if not self.resources and not self.principals:
            # Only a trust policy (which has principals) names no resource: the role is the resource.
            raise ValueError(f"statement {self.sid}: an identity-policy statement needs at least one resource")
        if self.effect == "Allow" and "*" in self.actions:
            raise ValueError(f"statement {self.sid}: Allow with Action '*' is never least privilege")
        if self.effect == "Allow" and "*" in self.resources and not self.any_resource_reason:
            raise ValueError(
                f"statement {self.sid}: Allow on Resource '*' needs any_resource_reason (why nothing narrower exists)"
            )

    def to_json(self) -> dict[str, Any]:
        """The statement in IAM's JSON grammar (for resource policies kept as JSON)."""
        statement: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect}
        if self.principals:
            statement["Principal"] = {kind: _one_or_many(ids) for kind, ids in self.principals.items()}
        statement["Action"] = _one_or_many(self.actions)
        if self.resources:
            statement["Resource"] = _one_or_many(self.resources)
        if self.conditions:
            by_test: dict[str, dict[str, Any]] = {}
            for (test, variable), values in self.conditions.items():
                by_test.setdefault(test, {})[variable] = _one_or_many(values)
            statement["Condition"] = by_test
        return statement


def _one_or_many(values: Sequence[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


def policy_json(statements: Sequence[Statement]) -> str:
    """A policy document as a JSON string; cdktf resolves the tokens inside it."""
    return json.dumps({"Version": "2012-10-17", "Statement": [s.to_json() for s in statements]})


def policy_document(scope: Construct, id: str, statements: Sequence[Statement]) -> DataAwsIamPolicyDocument:
    """An ``aws_iam_policy_document`` data source built from typed statements."""
    return DataAwsIamPolicyDocument(scope, id, statement=document_statements(statements))


def document_statements(statements: Sequence[Statement]) -> list[DataAwsIamPolicyDocumentStatement]:
    """Typed statements as the blocks of an ``aws_iam_policy_document`` (for put_statement on an existing one)."""
    return [
        DataAwsIamPolicyDocumentStatement(
            sid=s.sid,
            effect=s.effect,
            actions=list(s.actions),
            resources=list(s.resources) or None,
            principals=[
                DataAwsIamPolicyDocumentStatementPrincipals(type=kind, identifiers=list(ids))
                for kind, ids in s.principals.items()
            ]
            or None,
            condition=[
                DataAwsIamPolicyDocumentStatementCondition(test=test, variable=variable, values=list(values))
                for (test, variable), values in s.conditions.items()
            ]
            or None,
        )
        for s in statements
    ]


# The oldest TLS version a bucket accepts. Not 1.3: the AWS services that write into our buckets (log delivery,
# CloudTrail, AWS Config, replication, CloudFront origin requests) are documented to use TLS 1.2, and requiring 1.3
# would break them (docs/ARCHITECTURE.md, "TLS in transit").
MIN_TLS_VERSION = "1.2"


def deny_insecure_transport(bucket_arn: str) -> list[Statement]:
    """Bucket-policy statements refusing every request not made over TLS, or over a TLS older than 1.2."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return [
        Statement(
            sid="DenyInsecureTransport",
            effect="Deny",
            actions=["s3:*"],
            resources=resources,
            principals={"*": ["*"]},
            conditions={("Bool", "aws:SecureTransport"): ["false"]},
        ),
        Statement(
            sid="DenyOutdatedTls",
            effect="Deny",
            actions=["s3:*"],
            resources=resources,
            principals={"*": ["*"]},
            conditions={("NumericLessThan", "s3:TlsVersion"): [MIN_TLS_VERSION]},
        ),
    ]

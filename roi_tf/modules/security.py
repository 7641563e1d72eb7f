"""Security building blocks: least-privilege policy documents and customer-managed KMS keys."""

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
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey as _KmsKey
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

    def __post_init__(self) -> None:
        if self.effect == "Allow" and "*" in self.actions:
            raise ValueError(f"statement {self.sid}: Allow with Action '*' is never least privilege")

    def to_json(self) -> dict[str, Any]:
        """The statement in IAM's JSON grammar (for resource policies kept as JSON)."""
        statement: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect}
        if self.principals:
            statement["Principal"] = {kind: _one_or_many(ids) for kind, ids in self.principals.items()}
        statement["Action"] = _one_or_many(self.actions)
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
    return DataAwsIamPolicyDocument(
        scope,
        id,
        statement=[
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
        ],
    )


def deny_insecure_transport(bucket_arn: str) -> Statement:
    """Bucket-policy statement refusing every request not made over TLS."""
    return Statement(
        sid="DenyInsecureTransport",
        effect="Deny",
        actions=["s3:*"],
        resources=[bucket_arn, f"{bucket_arn}/*"],
        principals={"*": ["*"]},
        conditions={("Bool", "aws:SecureTransport"): ["false"]},
    )


@dataclass(frozen=True, kw_only=True)
class KmsKeyProps:
    """Inputs of a customer-managed KMS key."""

    alias: str  # "alias/roi-systems-<env>-<purpose>"
    description: str
    account_id: str
    partition: str = "aws"
    deletion_window_days: int = 30  # default: the longest window, to recover from mistakes
    # Service principal grants, each with its own conditions (never unconditional).
    service_statements: Sequence[Statement] = ()


class KmsKey(Construct):
    """A symmetric customer-managed key with rotation, an alias, and a key policy we own."""

    # Key policies must name the key itself as "*": the policy is attached to exactly one key.
    KEY_SELF = "*"

    def __init__(self, scope: Construct, id: str, *, props: KmsKeyProps) -> None:
        super().__init__(scope, id)
        root = f"arn:{props.partition}:iam::{props.account_id}:root"
        # The account root administers the key, so IAM policies can delegate and the key
        # can never become unmanageable (AWS's default key policy).
        statements = [
            Statement(
                sid="AccountRootAdministers",
                actions=["kms:*"],
                resources=[self.KEY_SELF],
                principals={"AWS": [root]},
            ),
            *props.service_statements,
        ]
        # A key policy is a resource policy whose Resource "*" means "this key"; it is kept as JSON
        # rather than an aws_iam_policy_document, whose checks are written for identity policies.
        self.key = _KmsKey(
            self,
            "key",
            description=props.description,
            enable_key_rotation=True,
            deletion_window_in_days=props.deletion_window_days,
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            policy=policy_json(statements),
        )
        KmsAlias(self, "alias", name=props.alias, target_key_id=self.key.key_id)
        self.alias = props.alias
        self.arn = self.key.arn
        self.key_id = self.key.key_id

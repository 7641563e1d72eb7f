"""Customer-managed KMS keys: one per purpose, rotated, with key policies we own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey as _KmsKey
from constructs import Construct

from roi_tf.modules.exports import export
from roi_tf.modules.security.policy import Statement, policy_json
from roi_tf.naming import kms_alias

# A key policy is attached to exactly one key, and IAM spells "this key" as Resource "*".
KEY_SELF = "*"
KEY_SELF_REASON = "key policy: Resource '*' is the key the policy is attached to"

# What a service needs to encrypt and decrypt with a key it is granted (conditioned on the encryption context, which
# DescribeKey requests do not carry: it would never be granted here).
KEY_USE_ACTIONS = ("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*")


def key_statement(
    *,
    sid: str,
    actions: Sequence[str],
    principals: dict[str, Sequence[str]],
    conditions: dict[tuple[str, str], Sequence[str]],
) -> Statement:
    """A key-policy grant to a principal; conditions are required, so no grant is unconditional."""
    statement = Statement(
        sid=sid,
        actions=actions,
        resources=[KEY_SELF],
        principals=principals,
        conditions=conditions,
        any_resource_reason=KEY_SELF_REASON,
    )
    _require_conditions(statement)
    return statement


def _require_conditions(statement: Statement) -> None:
    """No key-policy grant to a service is unconditional (key_statement, KmsKey.grant)."""
    if statement.effect == "Allow" and not statement.conditions:
        raise ValueError(f"key statement {statement.sid}: grants to services must carry conditions")


@dataclass(frozen=True, kw_only=True)
class KmsKeyProps:
    """Inputs of a customer-managed KMS key."""

    alias: str  # "alias/roi-systems-<env>-<purpose>"
    description: str
    account_id: str
    partition: str = "aws"
    deletion_window_days: int = 30  # default: the longest window, to recover from mistakes
    # Grants to AWS services (see key_statement); default: only the account administers and uses the key.
    service_statements: Sequence[Statement] = ()


class KmsKey(Construct):
    """A symmetric customer-managed key with rotation, an alias, and a key policy we own."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: KmsKeyProps,
        provider: TerraformProvider | None = None,  # default: the stack's default (primary-region) provider
    ) -> None:
        super().__init__(scope, id)
        root = f"arn:{props.partition}:iam::{props.account_id}:root"
        # The account root administers the key, so IAM policies can delegate and the key can never
        # become unmanageable (AWS's default key policy). Service grants follow, each conditioned.
        self._statements = [
            Statement(
                sid="AccountRootAdministers",
                actions=["kms:*"],
                resources=[KEY_SELF],
                principals={"AWS": [root]},
                any_resource_reason=KEY_SELF_REASON,
            ),
            *props.service_statements,
        ]
        # Kept as JSON rather than an aws_iam_policy_document, whose checks are written for identity policies.
        self.key = _KmsKey(
            self,
            "key",
            description=props.description,
            enable_key_rotation=True,
            deletion_window_in_days=props.deletion_window_days,
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            policy=policy_json(self._statements),
            provider=provider,
        )
        self.key_id = self.key.key_id  # attribute reads are round trips to jsii: each is read once
        KmsAlias(self, "alias", name=props.alias, target_key_id=self.key_id, provider=provider)
        self.alias = props.alias
        self.arn = self.key.arn

    def grant(self, statements: Sequence[Statement]) -> None:
        """Add key-policy grants to services for a resource created after the key (a CloudFront distribution)."""
        for statement in statements:
            _require_conditions(statement)
        self._statements.extend(statements)
        self.key.policy = policy_json(self._statements)


@dataclass(frozen=True, kw_only=True)
class EncryptionKeysProps:
    """Inputs of the per-purpose keys of one environment."""

    env: str
    region: str
    dr_region: str
    global_region: str = "us-east-1"  # where CloudFront-scope WAF logs live
    account_id: str
    partition: str = "aws"
    deletion_window_days: int = 30
    # Log group name patterns ("/roi-systems/dev/*") whose logs the logs key may encrypt.
    log_group_patterns: Sequence[str]
    # Same, for log groups in global_region (CloudFront WAF logs).
    global_log_group_patterns: Sequence[str] = ()
    # The trail (ARN) allowed to encrypt its log files with the logs key.
    trail_arn: str
    # A logs key in the DR region, for a standby VPC's log groups; default: none (nothing logs there).
    create_dr_logs_key: bool = False
    # AWS Config of this account encrypts its deliveries with the logs key; default: no Config recorder here.
    config_deliveries: bool = False
    # Service principals that publish to the alert topics (monitoring module), per region of a topic; a key is
    # created where a region has publishers: the primary region, global_region (cost alerts), the DR region.
    alert_publishers: Sequence[str] = ()
    cost_alert_publishers: Sequence[str] = ()  # only used when the primary region is not global_region
    dr_alert_publishers: Sequence[str] = ()  # default: no alert topic in the DR region


class EncryptionKeys(Construct):
    """The keys of an environment: data, storage, assets, logs, and in the DR region dr_data, dr_storage (dr_logs).

    ``data`` encrypts RDS, ElastiCache, DynamoDB and Secrets Manager; ``storage`` the S3 buckets but one, whose
    public web assets ``assets`` encrypts (the one key CloudFront may use); ``logs``
    CloudWatch Logs and CloudTrail. AWS services that use a key on a caller's behalf (RDS, S3, Secrets
    Manager, ...) need no key-policy grant: the account root statement delegates to IAM, and each role's
    policy names the key. Services that write on their own (CloudWatch Logs, CloudTrail) are granted in
    the key policy, conditioned on the resources they may write for.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: EncryptionKeysProps,
        dr_provider: TerraformProvider,
        global_provider: TerraformProvider,
    ) -> None:
        super().__init__(scope, id)
        p = self._props = props

        def key(
            purpose: str,
            description: str,
            statements: Sequence[Statement] = (),
            provider: TerraformProvider | None = None,
        ) -> KmsKey:
            return KmsKey(
                self,
                purpose,
                props=KmsKeyProps(
                    alias=kms_alias(p.env, purpose.replace("_", "-")),
                    description=f"roi-systems {p.env}: {description}",
                    account_id=p.account_id,
                    partition=p.partition,
                    deletion_window_days=p.deletion_window_days,
                    service_statements=statements,
                ),
                provider=provider,
            )

        self.data = key("data", "RDS, ElastiCache, DynamoDB and Secrets Manager")
        self.storage = key("storage", "S3 buckets")
        # The public web assets have a key of their own: CloudFront is granted this one (for its distribution
        # only, by the cdn module) and can never decrypt what the storage key protects (documents, models).
        self.assets = key("assets", "S3 web assets (served through CloudFront)")
        self.logs = key(
            "logs",
            "CloudWatch Logs and CloudTrail",
            [
                self._logs_statement(p.region, p.log_group_patterns),
                *self._cloudtrail_statements(),
                *([self._config_statement()] if p.config_deliveries else []),
            ],
        )
        self.dr_data = key(
            "dr_data",
            f"RDS backups and replicas, Secrets Manager and DynamoDB replicas in {p.dr_region}",
            provider=dr_provider,
        )
        self.dr_storage = key("dr_storage", f"S3 and ECR replicas in {p.dr_region}", provider=dr_provider)
        self.dr_logs = (
            key(
                "dr_logs",
                f"CloudWatch Logs in {p.dr_region} (standby VPC, database replica)",
                [self._logs_statement(p.dr_region, p.log_group_patterns)],
                provider=dr_provider,
            )
            if p.create_dr_logs_key
            else None
        )
        export(
            self,
            {
                "data_kms_key_arn": (self.data.arn, "KMS key for RDS, ElastiCache, DynamoDB, Secrets Manager"),
                "storage_kms_key_arn": (self.storage.arn, "KMS key for the S3 buckets"),
                "logs_kms_key_arn": (self.logs.arn, "KMS key for CloudWatch Logs and CloudTrail"),
            },
        )
        if p.region == p.global_region:
            self.global_logs = self.logs
        else:
            self.global_logs = key(
                "global_logs",
                f"CloudWatch Logs in {p.global_region} (CloudFront WAF)",
                [self._logs_statement(p.global_region, p.global_log_group_patterns)],
                provider=global_provider,
            )
        self.alerts = key("alerts", "SNS alert topics", [self._alerts_statement(p.alert_publishers)])
        self.cost_alerts = (
            self.alerts
            if p.region == p.global_region
            else key(
                "cost_alerts",
                f"SNS cost alert topic in {p.global_region}",
                [self._alerts_statement(p.cost_alert_publishers)],
                provider=global_provider,
            )
        )
        self.dr_alerts = (
            key(
                "dr_alerts",
                f"SNS alert topic in {p.dr_region}",
                [self._alerts_statement(p.dr_alert_publishers)],
                provider=dr_provider,
            )
            if p.dr_alert_publishers
            else None
        )

    def _alerts_statement(self, publishers: Sequence[str]) -> Statement:
        """Services publishing to an encrypted topic need the key (SNS encrypts on their behalf), for this account."""
        return key_statement(
            sid="AlertPublishersUse",
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            principals={"Service": list(publishers)},
            conditions={("StringEquals", "aws:SourceAccount"): [self._props.account_id]},
        )

    def _logs_statement(self, region: str, patterns: Sequence[str]) -> Statement:
        p = self._props
        return key_statement(
            sid="CloudWatchLogsUse",
            actions=KEY_USE_ACTIONS,
            principals={"Service": [f"logs.{region}.amazonaws.com"]},
            # Only for this environment's log groups, in this account and region.
            conditions={
                ("ArnLike", "kms:EncryptionContext:aws:logs:arn"): [
                    f"arn:{p.partition}:logs:{region}:{p.account_id}:log-group:{pattern}" for pattern in patterns
                ]
            },
        )

    def _cloudtrail_statements(self) -> list[Statement]:
        p = self._props
        trail_context = f"arn:{p.partition}:cloudtrail:*:{p.account_id}:trail/*"
        return [
            key_statement(
                sid="CloudTrailEncryptLogs",
                actions=["kms:GenerateDataKey*"],
                principals={"Service": ["cloudtrail.amazonaws.com"]},
                conditions={
                    ("StringLike", "kms:EncryptionContext:aws:cloudtrail:arn"): [trail_context],
                    ("StringEquals", "aws:SourceArn"): [p.trail_arn],
                },
            ),
            key_statement(
                sid="CloudTrailDescribeKey",
                actions=["kms:DescribeKey"],
                principals={"Service": ["cloudtrail.amazonaws.com"]},
                conditions={("StringEquals", "aws:SourceArn"): [p.trail_arn]},
            ),
        ]

    def _config_statement(self) -> Statement:
        """AWS Config encrypts the snapshots and history it delivers (AWS's documented grant to its principal)."""
        return key_statement(
            sid="ConfigEncryptDeliveries",
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            principals={"Service": ["config.amazonaws.com"]},
            conditions={("StringEquals", "aws:SourceAccount"): [self._props.account_id]},
        )

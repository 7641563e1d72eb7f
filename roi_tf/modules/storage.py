"""The storage module: S3 buckets for logs, assets, documents, ... with lifecycle and cross-region replication."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cdktf import TerraformProvider, TerraformResource
from cdktf_cdktf_provider_aws.data_aws_elb_service_account import DataAwsElbServiceAccount
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionTransition,
    S3BucketLifecycleConfigurationRuleTransition,
)
from cdktf_cdktf_provider_aws.s3_bucket_replication_configuration import S3BucketReplicationConfigurationA
from constructs import Construct

from roi_tf.config import BucketConfig, StorageConfig
from roi_tf.modules.bucket import SecureBucket, SecureBucketProps
from roi_tf.modules.exports import export
from roi_tf.modules.replication import replicate_bucket
from roi_tf.modules.security import KmsKey, Statement

# Where each kind of log lands in the logs bucket (the services are configured with these prefixes).
S3_ACCESS_LOG_PREFIX = "s3/"
ALB_LOG_PREFIX = "alb"
CLOUDFRONT_LOG_PREFIX = "cloudfront"
CLOUDTRAIL_LOG_PREFIX = "cloudtrail"
CONFIG_LOG_PREFIX = "config"
# The bucket CloudFront serves (schema: always configured).
ASSETS = "assets"
# Why the log buckets use SSE-S3 rather than SSE-KMS: AWS does not support KMS there.
LOG_BUCKET_SSE_S3_REASON = (
    "ALB access logs and S3 server access logs can only be delivered to buckets whose default encryption "
    "is SSE-S3; CloudTrail still encrypts its own files with the logs KMS key"
)


@dataclass(frozen=True, kw_only=True)
class StorageOutputs:
    """Bucket names and ARNs, and the log-bucket prefixes other modules configure their services with."""

    bucket_names: dict[str, str]
    bucket_arns: dict[str, str]
    replica_bucket_arns: dict[str, str]
    logs_bucket_name: str
    logs_bucket_arn: str
    # What lets the services deliver there: a load balancer is created only after it (ELB checks at creation).
    logs_bucket_policy: TerraformResource
    alb_log_prefix: str
    cloudfront_log_prefix: str
    cloudtrail_log_prefix: str
    config_log_prefix: str


class Storage(Construct):
    """Application buckets (SSE-KMS), a logs bucket per region, and replicas in the DR region."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: StorageConfig,
        name_prefix: str,  # "roi-systems-<env>"
        region: str,
        dr_region: str,
        global_region: str,  # where CloudFront delivers its standard logs from
        account_id: str,
        partition: str,
        trail_arn: str,  # the CloudTrail trail that may write to the logs bucket
        config_deliveries: bool,  # AWS Config of this account delivers to the logs bucket
        key: KmsKey,
        assets_key: KmsKey,  # the assets bucket's own key (CloudFront may decrypt with it)
        dr_key: KmsKey,
        dr_provider: TerraformProvider,
        dr_load_balancer_logs: bool = False,  # the DR logs bucket takes load balancer logs (the pilot light's)
    ) -> None:
        super().__init__(scope, id)
        self._config = config
        self._name_prefix = name_prefix
        self._region = region
        self._dr_region = dr_region
        self._global_region = global_region
        self._account_id = account_id
        self._partition = partition
        self._trail_arn = trail_arn
        self._config_deliveries = config_deliveries
        prefix, account = name_prefix, account_id
        self.logs = self._logs_bucket("logs", f"{prefix}-logs-{account}", self._log_delivery_statements)
        self.dr_logs = self._logs_bucket(
            "dr_logs",
            f"{prefix}-logs-{dr_region}-{account}",
            (lambda arn: self._alb_log_statements(arn, "dr_", dr_provider))
            if dr_load_balancer_logs
            else (lambda arn: []),
            provider=dr_provider,
        )

        self.buckets: dict[str, SecureBucket] = {}
        self.replicas: dict[str, SecureBucket] = {}
        for bucket_name, spec in config.buckets.items():
            construct_id = bucket_name.replace("-", "_")
            bucket_key = assets_key if bucket_name == ASSETS else key
            bucket = self._bucket(construct_id, f"{prefix}-{bucket_name}-{account}", spec, bucket_key, self.logs)
            self.buckets[bucket_name] = bucket
            if spec.replicate:
                replica = self._bucket(
                    f"{construct_id}_replica",
                    f"{prefix}-{bucket_name}-replica-{account}",
                    spec,
                    dr_key,
                    self.dr_logs,
                    provider=dr_provider,
                )
                self.replicas[bucket_name] = replica
                self._replicate(construct_id, bucket, replica, bucket_key, dr_key)

        self.outputs = self._outputs(self.buckets, self.logs, replicas=self.replicas)
        # The DR region's view: the replicas under their buckets' names, and the DR logs bucket.
        self.dr_outputs = self._outputs(self.replicas, self.dr_logs, replicas={})
        export(
            self,
            {
                **{
                    f"{name.replace('-', '_')}_bucket_name": (bucket, f"S3 bucket: {name}")
                    for name, bucket in self.outputs.bucket_names.items()
                },
                "logs_bucket_name": (self.logs.name, "S3 bucket for ALB (alb/), CloudFront (cloudfront/) logs"),
            },
        )

    def _outputs(
        self, buckets: dict[str, SecureBucket], logs: SecureBucket, *, replicas: dict[str, SecureBucket]
    ) -> StorageOutputs:
        return StorageOutputs(
            bucket_names={name: b.name for name, b in buckets.items()},
            bucket_arns={name: b.arn for name, b in buckets.items()},
            replica_bucket_arns={name: b.arn for name, b in replicas.items()},
            logs_bucket_name=logs.name,
            logs_bucket_arn=logs.arn,
            logs_bucket_policy=logs.policy,
            alb_log_prefix=ALB_LOG_PREFIX,
            cloudfront_log_prefix=CLOUDFRONT_LOG_PREFIX,
            cloudtrail_log_prefix=CLOUDTRAIL_LOG_PREFIX,
            config_log_prefix=CONFIG_LOG_PREFIX,
        )

    # --- buckets -------------------------------------------------------------------------------

    def _bucket(
        self,
        id: str,
        name: str,
        spec: BucketConfig,
        key: KmsKey,
        log_bucket: SecureBucket,
        provider: TerraformProvider | None = None,
    ) -> SecureBucket:
        current = []
        if self._config.intelligent_tiering:
            current.append(S3BucketLifecycleConfigurationRuleTransition(days=0, storage_class="INTELLIGENT_TIERING"))
        if spec.archive_after_days is not None:
            current.append(
                S3BucketLifecycleConfigurationRuleTransition(days=spec.archive_after_days, storage_class="GLACIER")
            )
        rules = [self._noncurrent_rule(), self._abort_multipart_rule()]
        if current:
            rules.insert(0, _rule("current-objects", transition=current))
        return SecureBucket(
            self,
            id,
            props=SecureBucketProps(
                name=name,
                kms_key_arn=key.arn,
                force_destroy=self._config.force_destroy,
                access_log_bucket=log_bucket.name,
                access_log_prefix=f"{S3_ACCESS_LOG_PREFIX}{name}/",
                lifecycle_rules=rules,
            ),
            provider=provider,
        )

    def _logs_bucket(
        self,
        id: str,
        name: str,
        statements: Callable[[str], list[Statement]],  # bucket ARN -> who may deliver logs here
        provider: TerraformProvider | None = None,
    ) -> SecureBucket:
        bucket_arn = f"arn:{self._partition}:s3:::{name}"
        return SecureBucket(
            self,
            id,
            props=SecureBucketProps(
                name=name,
                kms_key_arn=None,
                sse_s3_reason=LOG_BUCKET_SSE_S3_REASON,
                force_destroy=self._config.force_destroy,
                lifecycle_rules=[
                    _rule(
                        "expire-logs",
                        expiration=[
                            S3BucketLifecycleConfigurationRuleExpiration(days=self._config.access_log_expiration_days)
                        ],
                    ),
                    self._noncurrent_rule(),
                    self._abort_multipart_rule(),
                ],
                policy_statements=[self._server_access_log_statement(bucket_arn), *statements(bucket_arn)],
            ),
            provider=provider,
        )

    def _noncurrent_rule(self) -> S3BucketLifecycleConfigurationRule:
        return _rule(
            "noncurrent-versions",
            noncurrent_version_transition=[
                S3BucketLifecycleConfigurationRuleNoncurrentVersionTransition(
                    noncurrent_days=self._config.noncurrent_glacier_days, storage_class="GLACIER"
                )
            ],
            noncurrent_version_expiration=[
                S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=self._config.noncurrent_expiration_days
                )
            ],
        )

    def _abort_multipart_rule(self) -> S3BucketLifecycleConfigurationRule:
        return _rule(
            "abort-incomplete-multipart-uploads",
            abort_incomplete_multipart_upload=[
                S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                    days_after_initiation=self._config.abort_incomplete_multipart_days
                )
            ],
            # Delete markers left with no version behind them only slow down listings.
            expiration=[S3BucketLifecycleConfigurationRuleExpiration(expired_object_delete_marker=True)],
        )

    # --- log delivery policies -----------------------------------------------------------------

    def _server_access_log_statement(self, bucket_arn: str) -> Statement:
        return Statement(
            sid="S3ServerAccessLogs",
            actions=["s3:PutObject"],
            resources=[f"{bucket_arn}/{S3_ACCESS_LOG_PREFIX}*"],
            principals={"Service": ["logging.s3.amazonaws.com"]},
            # Only for this environment's buckets, in this account.
            conditions={
                ("StringEquals", "aws:SourceAccount"): [self._account_id],
                ("ArnLike", "aws:SourceArn"): [f"arn:{self._partition}:s3:::{self._name_prefix}-*"],
            },
        )

    def _alb_log_statements(
        self, bucket_arn: str, id_prefix: str = "", provider: TerraformProvider | None = None
    ) -> list[Statement]:
        """What the load balancers of the bucket's region (its provider's) need to write their access logs under
        alb/."""
        elb_account = DataAwsElbServiceAccount(self, f"{id_prefix}elb_service_account", provider=provider)
        logs = f"{bucket_arn}/{ALB_LOG_PREFIX}/AWSLogs/{self._account_id}/*"
        return [
            # Regions opened before August 2022 deliver as the regional ELB account, newer ones as the service.
            Statement(
                sid="AlbAccessLogsElbAccount",
                actions=["s3:PutObject"],
                resources=[logs],
                principals={"AWS": [elb_account.arn]},
            ),
            Statement(
                sid="AlbAccessLogsDeliveryService",
                actions=["s3:PutObject"],
                resources=[logs],
                principals={"Service": ["logdelivery.elasticloadbalancing.amazonaws.com"]},
                conditions={("StringEquals", "aws:SourceAccount"): [self._account_id]},
            ),
        ]

    def _log_delivery_statements(self, bucket_arn: str) -> list[Statement]:
        """What ALB, CloudFront and CloudTrail need to write here (each under its own prefix)."""

        def under(prefix: str) -> str:
            return f"{bucket_arn}/{prefix}/AWSLogs/{self._account_id}/*"

        owner_full_control = {("StringEquals", "s3:x-amz-acl"): ["bucket-owner-full-control"]}
        this_account = {("StringEquals", "aws:SourceAccount"): [self._account_id]}
        config = [
            # AWS Config checks the bucket's ACL and existence, then delivers under its prefix (AWS's policy).
            Statement(
                sid="ConfigBucketChecks",
                actions=["s3:GetBucketAcl", "s3:ListBucket"],
                resources=[bucket_arn],
                principals={"Service": ["config.amazonaws.com"]},
                conditions=this_account,
            ),
            Statement(
                sid="ConfigDelivery",
                actions=["s3:PutObject"],
                resources=[f"{bucket_arn}/{CONFIG_LOG_PREFIX}/AWSLogs/{self._account_id}/Config/*"],
                principals={"Service": ["config.amazonaws.com"]},
                conditions={**owner_full_control, **this_account},
            ),
        ]
        return [
            *(config if self._config_deliveries else []),
            *self._alb_log_statements(bucket_arn),
            # CloudFront standard logging (v2) delivers through CloudWatch Logs' delivery service;
            # the legacy, ACL-based logging cannot write to a bucket that has ACLs disabled.
            Statement(
                sid="CloudFrontStandardLogs",
                actions=["s3:PutObject"],
                resources=[under(CLOUDFRONT_LOG_PREFIX)],
                principals={"Service": ["delivery.logs.amazonaws.com"]},
                conditions={
                    **owner_full_control,
                    ("StringEquals", "aws:SourceAccount"): [self._account_id],
                    ("ArnLike", "aws:SourceArn"): [
                        f"arn:{self._partition}:logs:{self._global_region}:{self._account_id}:delivery-source:*"
                    ],
                },
            ),
            Statement(
                sid="CloudTrailAclCheck",
                actions=["s3:GetBucketAcl"],
                resources=[bucket_arn],
                principals={"Service": ["cloudtrail.amazonaws.com"]},
                conditions={("StringEquals", "aws:SourceArn"): [self._trail_arn]},
            ),
            Statement(
                sid="CloudTrailWrite",
                actions=["s3:PutObject"],
                resources=[under(CLOUDTRAIL_LOG_PREFIX)],
                principals={"Service": ["cloudtrail.amazonaws.com"]},
                conditions={**owner_full_control, ("StringEquals", "aws:SourceArn"): [self._trail_arn]},
            ),
        ]

    # --- replication ---------------------------------------------------------------------------

    def _replicate(
        self, id: str, source: SecureBucket, replica: SecureBucket, key: KmsKey, dr_key: KmsKey
    ) -> S3BucketReplicationConfigurationA:
        return replicate_bucket(
            self,
            id,
            source=source,
            replica=replica,
            source_key_arn=key.arn,
            replica_key_arn=dr_key.arn,
            role_name=f"{self._name_prefix}-{id.replace('_', '-')}-replication",
            region=self._region,
            dr_region=self._dr_region,
            account_id=self._account_id,
            time_control=self._config.replication_time_control,
        )


def _rule(id: str, **actions: object) -> S3BucketLifecycleConfigurationRule:
    """An enabled lifecycle rule for the whole bucket."""
    return S3BucketLifecycleConfigurationRule(
        id=id,
        status="Enabled",
        filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
        **actions,  # type: ignore[arg-type]
    )

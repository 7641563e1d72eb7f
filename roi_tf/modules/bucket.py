"""``SecureBucket``: one S3 bucket with every protection we require, so no bucket can miss one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from constructs import Construct

from roi_tf.modules.security import Statement, deny_insecure_transport, policy_document
from roi_tf.modules.security.policy import document_statements


@dataclass(frozen=True, kw_only=True)
class SecureBucketProps:
    """Inputs of a bucket; everything not listed here is fixed (public access blocked, owner-enforced, TLS only)."""

    name: str
    # SSE-KMS with this key and S3 bucket keys; None means SSE-S3, allowed only with sse_s3_reason.
    kms_key_arn: str | None
    sse_s3_reason: str = ""
    force_destroy: bool = False  # default: terraform refuses to delete a bucket that still holds objects
    # Server access logs go to this bucket (its name) under this prefix; None only for a log bucket itself.
    access_log_bucket: str | None = None
    access_log_prefix: str = ""
    lifecycle_rules: Sequence[S3BucketLifecycleConfigurationRule] = ()
    # Resource-policy statements besides the TLS-only deny every bucket gets.
    policy_statements: Sequence[Statement] = ()


class SecureBucket(Construct):
    """A versioned, encrypted, private bucket with a TLS-only policy, access logging and a lifecycle."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: SecureBucketProps,
        provider: TerraformProvider | None = None,  # default: the stack's primary-region provider
    ) -> None:
        super().__init__(scope, id)
        if props.kms_key_arn is None and not props.sse_s3_reason:
            raise ValueError(f"bucket {props.name}: SSE-S3 instead of SSE-KMS needs sse_s3_reason")
        self.bucket = S3Bucket(self, "bucket", bucket=props.name, force_destroy=props.force_destroy, provider=provider)
        bucket_id = self.bucket.id
        self.id = bucket_id
        self.arn = self.bucket.arn
        self.name = self.bucket.bucket

        S3BucketPublicAccessBlock(
            self,
            "public_access_block",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            provider=provider,
        )
        # ACLs off: the bucket owner owns every object, and access is decided by policies alone.
        S3BucketOwnershipControls(
            self,
            "ownership",
            bucket=bucket_id,
            rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
            provider=provider,
        )
        by_default = (
            S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                sse_algorithm="aws:kms", kms_master_key_id=props.kms_key_arn
            )
            if props.kms_key_arn
            else S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                sse_algorithm="AES256"
            )
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=bucket_id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=by_default,
                    # Bucket keys cut KMS requests (and cost) by orders of magnitude.
                    bucket_key_enabled=bool(props.kms_key_arn),
                )
            ],
            provider=provider,
        )
        self.versioning = S3BucketVersioningA(
            self,
            "versioning",
            bucket=bucket_id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
            provider=provider,
        )
        self._statements = [*deny_insecure_transport(self.arn), *props.policy_statements]
        document = policy_document(self, "policy_document", self._statements)
        document.provider = provider
        self._document = document
        self.policy = S3BucketPolicy(self, "policy", bucket=bucket_id, policy=document.json, provider=provider)
        # Object events go to EventBridge (free for AWS service events), so monitoring can subscribe.
        S3BucketNotification(self, "notifications", bucket=bucket_id, eventbridge=True, provider=provider)
        if props.access_log_bucket is not None:
            S3BucketLoggingA(
                self,
                "logging",
                bucket=bucket_id,
                target_bucket=props.access_log_bucket,
                target_prefix=props.access_log_prefix,
                provider=provider,
            )
        if props.lifecycle_rules:
            S3BucketLifecycleConfiguration(
                self,
                "lifecycle",
                bucket=bucket_id,
                rule=list(props.lifecycle_rules),
                # A lifecycle on noncurrent versions needs versioning in place first.
                depends_on=[self.versioning],
                provider=provider,
            )

    def allow(self, statements: Sequence[Statement]) -> None:
        """Add bucket-policy statements for a grantee that exists only after the bucket (a CloudFront distribution)."""
        self._statements.extend(statements)
        self._document.put_statement(document_statements(self._statements))

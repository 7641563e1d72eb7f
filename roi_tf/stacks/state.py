"""``state-<env>``: the bucket, lock table and key that ``<env>``'s S3 backend names; its own state lives there too.

The first ``scripts/init.sh <env>`` applies it on a local state file (the bucket does not exist yet) and then moves
that state into the bucket, under ``state-<env>/terraform.tfstate``, so nothing lives only on one laptop.
"""

from __future__ import annotations

from cdktf import TerraformOutput, TerraformProvider, TerraformStack
from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
)
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from constructs import Construct

from roi_tf.config import EnvironmentConfig
from roi_tf.modules.bucket import SecureBucket, SecureBucketProps
from roi_tf.modules.protection import protect_data
from roi_tf.modules.replication import replicate_bucket
from roi_tf.modules.security import KmsKey, KmsKeyProps
from roi_tf.naming import kms_alias, resource_name
from roi_tf.stacks.common import aws_provider, bootstrap_state_key, identity, remote_state, state_stack_name

# Noncurrent state versions are how a broken state is rolled back: keep them for a year.
STATE_NONCURRENT_VERSION_DAYS = 365
STATE_ABORT_MULTIPART_DAYS = 7


class StateBackendStack(TerraformStack):
    """``state-<env>``: on local state, creates exactly the bucket and lock table ``<env>`` uses."""

    def __init__(self, scope: Construct, config: EnvironmentConfig) -> None:
        super().__init__(scope, state_stack_name(config.name))
        env, state = config.name, config.state
        self._config = config
        # The state of every environment, and its history, is never destroyed by Terraform (dev's included).
        protect_data(self)
        # In the bucket this stack creates (scripts/init.sh bootstraps on local state, then migrates it there).
        remote_state(self, config, bootstrap_state_key(env))
        aws_provider(self, config, config.region)

        account_id, partition = identity(self)
        key, bucket = self._bucket("state", state.bucket, account_id, partition)
        if config.dr.state_bucket is not None:
            # The state's copy in the DR region: when the primary region is lost, python main.py --state dr points
            # <env> at it, locking with S3 lock files there (docs/DEPLOYMENT.md, "Regional failover").
            dr_provider = aws_provider(self, config, config.dr_region, alias="dr")
            dr_key, dr_bucket = self._bucket("dr_state", config.dr.state_bucket, account_id, partition, dr_provider)
            replicate_bucket(
                self,
                "state",
                source=bucket,
                replica=dr_bucket,
                source_key_arn=key.arn,
                replica_key_arn=dr_key.arn,
                role_name=resource_name(env, "tfstate-replication", kind="iam_role"),
                region=config.region,
                dr_region=config.dr_region,
                account_id=account_id,
                time_control=True,
            )
            TerraformOutput(self, "dr_bucket_name", value=dr_bucket.name, description="Copy of <env>'s state in DR")

        table = DynamodbTable(
            self,
            "lock_table",
            name=state.lock_table,
            billing_mode="PAY_PER_REQUEST",
            hash_key="LockID",
            attribute=[DynamodbTableAttribute(name="LockID", type="S")],
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=key.arn),
            deletion_protection_enabled=True,
        )

        TerraformOutput(self, "bucket_name", value=bucket.name, description="S3 bucket of <env>'s state")
        TerraformOutput(self, "lock_table_name", value=table.name, description="DynamoDB lock table of <env>'s state")
        TerraformOutput(self, "kms_key_arn", value=key.arn, description="KMS key encrypting the state")

    def _bucket(
        self, id: str, name: str, account_id: str, partition: str, provider: TerraformProvider | None = None
    ) -> tuple[KmsKey, SecureBucket]:
        """A state bucket and its key (the same alias in each region, so one backend setting names either)."""
        state = self._config.state
        key = KmsKey(
            self,
            f"{id}_key",
            props=KmsKeyProps(
                alias=kms_alias(self._config.name, "tfstate"),
                description=f"roi-systems {self._config.name}: Terraform state and locks",
                account_id=account_id,
                partition=partition,
                deletion_window_days=state.kms_deletion_window_days,
            ),
            provider=provider,
        )
        # No access logging: the logs bucket lives in <env>, which cannot exist before its state does.
        bucket = SecureBucket(
            self,
            f"{id}_bucket",
            props=SecureBucketProps(
                name=name,
                kms_key_arn=key.arn,
                lifecycle_rules=[
                    S3BucketLifecycleConfigurationRule(
                        id="expire-old-state-versions",
                        status="Enabled",
                        filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                        noncurrent_version_expiration=[
                            S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                                noncurrent_days=STATE_NONCURRENT_VERSION_DAYS
                            )
                        ],
                        abort_incomplete_multipart_upload=[
                            S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                                days_after_initiation=STATE_ABORT_MULTIPART_DAYS
                            )
                        ],
                    )
                ],
            ),
            provider=provider,
        )
        return key, bucket

"""What both stacks share: the providers, the caller's identity, and the names of the state stack and key."""

from __future__ import annotations

from cdktf import S3Backend
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from roi_tf.config import STATE_LOCATIONS, EnvironmentConfig
from roi_tf.naming import kms_alias

# CloudFront, its ACM certificates and CLOUDFRONT-scope WAF must live in us-east-1.
GLOBAL_REGION = "us-east-1"


def state_stack_name(env: str) -> str:
    return f"state-{env}"


def bootstrap_state_key(env: str) -> str:
    """Where ``state-<env>`` keeps its own state once it is bootstrapped: in the bucket it created."""
    return f"{state_stack_name(env)}/terraform.tfstate"


def remote_state(scope: Construct, config: EnvironmentConfig, key: str, location: str = "primary") -> S3Backend:
    """The environment's S3 backend: its state bucket and lock table, encrypted with its state key.

    ``location="dr"``: the state bucket's replica in the DR region, locked with S3 lock files in that bucket (the
    DynamoDB lock table lives in the primary region only), encrypted with the DR state key under the same alias.
    """
    env = config.name
    if location not in STATE_LOCATIONS:
        raise ValueError(f"state location {location!r} is none of {', '.join(STATE_LOCATIONS)}")
    if location == "dr" and config.dr.state_bucket is None:
        raise ValueError(f"{env} has no dr.state_bucket: its state has no copy in {config.dr_region}")
    primary = location == "primary"
    backend = S3Backend(
        scope,
        bucket=config.state.bucket if primary else config.dr.state_bucket,
        key=key,
        region=config.region if primary else config.dr_region,
        dynamodb_table=config.state.lock_table if primary else None,
        encrypt=True,
        # Without a key id the backend asks S3 for AES256, bypassing the bucket's KMS default.
        kms_key_id=kms_alias(env, "tfstate"),
    )
    if config.state.use_lockfile or not primary:
        # S3-native locking (Terraform >= 1.10; the DR copy's only lock); the cdktf 0.21 backend class predates it.
        backend.add_override("use_lockfile", True)
    return backend


def aws_provider(scope: Construct, config: EnvironmentConfig, region: str, alias: str | None = None) -> AwsProvider:
    """The AWS provider for ``region``: pinned to the configured accounts, tagging every resource."""
    return AwsProvider(
        scope,
        f"aws_{alias}" if alias else "aws",
        region=region,
        alias=alias,
        allowed_account_ids=list(config.allowed_account_ids) or None,
        default_tags=[AwsProviderDefaultTags(tags=dict(config.default_tags))],
    )


def identity(scope: Construct) -> tuple[str, str]:
    """Account ID and partition of the credentials Terraform runs with (never hard-coded)."""
    return DataAwsCallerIdentity(scope, "current").account_id, DataAwsPartition(scope, "partition").partition

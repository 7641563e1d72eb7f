"""Services that exist once per account and region: GuardDuty, Security Hub fed by AWS Config, the password policy.

Exactly one environment per account owns them (``security.owns_account_services``; ``config.py`` refuses two
owners of a known account). The owner creates them; the others reference what they need, so applying a second
environment to a shared account does not fail, and destroying it does not delete the account's detector and
findings.
"""

from __future__ import annotations

from cdktf import ITerraformDependable, TerraformProvider
from cdktf_cdktf_provider_aws.config_configuration_recorder import (
    ConfigConfigurationRecorder,
    ConfigConfigurationRecorderRecordingGroup,
)
from cdktf_cdktf_provider_aws.config_configuration_recorder_status import ConfigConfigurationRecorderStatus
from cdktf_cdktf_provider_aws.config_delivery_channel import (
    ConfigDeliveryChannel,
    ConfigDeliveryChannelSnapshotDeliveryProperties,
)
from cdktf_cdktf_provider_aws.data_aws_guardduty_detector import DataAwsGuarddutyDetector
from cdktf_cdktf_provider_aws.guardduty_detector import GuarddutyDetector
from cdktf_cdktf_provider_aws.guardduty_detector_feature import GuarddutyDetectorFeature
from cdktf_cdktf_provider_aws.iam_account_password_policy import IamAccountPasswordPolicy
from cdktf_cdktf_provider_aws.iam_service_linked_role import IamServiceLinkedRole
from cdktf_cdktf_provider_aws.securityhub_account import SecurityhubAccount
from cdktf_cdktf_provider_aws.securityhub_standards_subscription import SecurityhubStandardsSubscription
from constructs import Construct

from roi_tf.config import ACCOUNT_SCOPE, SecurityConfig

# Security Hub standard -> its ARN path (current versions; CIS 3.0.0 supersedes 1.2.0/1.4.0).
SECURITY_HUB_STANDARDS = {
    "aws-foundational-security-best-practices": "standards/aws-foundational-security-best-practices/v/1.0.0",
    "cis-aws-foundations-benchmark": "standards/cis-aws-foundations-benchmark/v/3.0.0",
}
# GuardDuty protections beyond the foundational sources (CloudTrail, VPC flow logs, DNS).
GUARDDUTY_FEATURES = ("S3_DATA_EVENTS", "RDS_LOGIN_EVENTS")
# CIS AWS Foundations 1.8-1.9 and AWS FSBP IAM.7.
PASSWORD_POLICY = {
    "minimum_password_length": 14,
    "require_lowercase_characters": True,
    "require_uppercase_characters": True,
    "require_numbers": True,
    "require_symbols": True,
    "allow_users_to_change_password": True,
    "max_password_age": 90,
    "password_reuse_prevention": 24,
}
CONFIG_SNAPSHOT_FREQUENCY = "TwentyFour_Hours"


class AccountServices(Construct):
    """GuardDuty (and its DR-region detector), Security Hub with AWS Config, the IAM password policy."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: SecurityConfig,
        name: str,  # "roi-systems-<env>": names the recorder and delivery channel
        region: str,
        partition: str,
        config_bucket_name: str,  # AWS Config delivers snapshots and history here (the logs bucket) ...
        config_bucket_prefix: str,  # ... under its own prefix
        config_kms_key_arn: str,  # ... encrypted with this key
        config_bucket_policy: ITerraformDependable,  # Config checks that it may write when the channel is created
        dr_provider: TerraformProvider,
    ) -> None:
        super().__init__(scope, id)
        p = self._config = config
        self._name = name
        self._region = region
        self._partition = partition
        self._delivery = (config_bucket_name, config_bucket_prefix, config_kms_key_arn)
        self.guardduty_detector_id: str | None = None
        if not p.owns_account_services:
            if p.enable_guardduty:
                # A reference, so the plan fails loudly if the owning environment has not created it yet.
                self.guardduty_detector_id = DataAwsGuarddutyDetector(self, "guardduty").id
            return
        if p.enable_guardduty:
            self.guardduty_detector_id = self._guardduty("guardduty")
            if p.enable_guardduty_in_dr_region:
                self._guardduty("dr_guardduty", dr_provider)
        if p.enable_security_hub:
            self._security_hub(self._config_recorder(config_bucket_policy))
        if p.enable_password_policy:
            IamAccountPasswordPolicy(self, "password_policy", **PASSWORD_POLICY)

    def _guardduty(self, id: str, provider: TerraformProvider | None = None) -> str:
        detector = GuarddutyDetector(
            self,
            id,
            enable=True,
            finding_publishing_frequency="FIFTEEN_MINUTES",
            # The other environments of the account look it up: the tag says it is no single environment's.
            tags={"Environment": ACCOUNT_SCOPE},
            provider=provider,
        )
        for feature in GUARDDUTY_FEATURES:
            GuarddutyDetectorFeature(
                self,
                f"{id}_{feature.lower()}",
                detector_id=detector.id,
                name=feature,
                status="ENABLED",
                provider=provider,
            )
        return detector.id

    def _config_recorder(self, bucket_policy: ITerraformDependable) -> ConfigConfigurationRecorderStatus:
        """AWS Config records every supported resource (global ones too, here only) through its service-linked role."""
        bucket, prefix, key = self._delivery
        role = IamServiceLinkedRole(self, "config_role", aws_service_name="config.amazonaws.com")
        recorder = ConfigConfigurationRecorder(
            self,
            "config_recorder",
            name=self._name,
            role_arn=role.arn,
            recording_group=ConfigConfigurationRecorderRecordingGroup(
                all_supported=True, include_global_resource_types=True
            ),
        )
        channel = ConfigDeliveryChannel(
            self,
            "config_delivery_channel",
            name=self._name,
            s3_bucket_name=bucket,
            s3_key_prefix=prefix,
            s3_kms_key_arn=key,
            snapshot_delivery_properties=ConfigDeliveryChannelSnapshotDeliveryProperties(
                delivery_frequency=CONFIG_SNAPSHOT_FREQUENCY
            ),
            depends_on=[recorder, bucket_policy],
        )
        return ConfigConfigurationRecorderStatus(
            self, "config_recorder_status", name=recorder.name, is_enabled=True, depends_on=[channel]
        )

    def _security_hub(self, recording: ConfigConfigurationRecorderStatus) -> None:
        p = self._config
        hub = SecurityhubAccount(
            self,
            "security_hub",
            # Subscribe to exactly the standards in config, with consolidated control findings.
            enable_default_standards=False,
            control_finding_generator="SECURITY_CONTROL",
            auto_enable_controls=True,
            depends_on=[recording],
        )
        for standard in p.security_hub_standards:
            SecurityhubStandardsSubscription(
                self,
                f"standard_{standard.replace('-', '_')}",
                standards_arn=f"arn:{self._partition}:securityhub:{self._region}::{SECURITY_HUB_STANDARDS[standard]}",
                depends_on=[hub],
            )

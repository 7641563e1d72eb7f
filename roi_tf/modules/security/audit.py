"""Audit and threat detection: a multi-region CloudTrail trail, Security Hub standards, GuardDuty."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.cloudtrail import Cloudtrail, CloudtrailEventSelector, CloudtrailEventSelectorDataResource
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.guardduty_detector import GuarddutyDetector
from cdktf_cdktf_provider_aws.guardduty_detector_feature import GuarddutyDetectorFeature
from cdktf_cdktf_provider_aws.securityhub_account import SecurityhubAccount
from cdktf_cdktf_provider_aws.securityhub_standards_subscription import SecurityhubStandardsSubscription
from constructs import Construct

from roi_tf.modules.security.iam import ServiceRole, ServiceRoleProps
from roi_tf.modules.security.kms import KmsKey
from roi_tf.modules.security.policy import Statement

# Security Hub standard -> its ARN path (current versions; CIS 3.0.0 supersedes 1.2.0/1.4.0).
SECURITY_HUB_STANDARDS = {
    "aws-foundational-security-best-practices": "standards/aws-foundational-security-best-practices/v/1.0.0",
    "cis-aws-foundations-benchmark": "standards/cis-aws-foundations-benchmark/v/3.0.0",
}
# GuardDuty protections beyond the foundational sources (CloudTrail, VPC flow logs, DNS).
GUARDDUTY_FEATURES = ("S3_DATA_EVENTS", "RDS_LOGIN_EVENTS")


@dataclass(frozen=True, kw_only=True)
class AuditProps:
    """Inputs of the audit construct."""

    trail_name: str
    region: str
    account_id: str
    partition: str = "aws"
    log_group_name: str  # "/roi-systems/<env>/cloudtrail"
    log_retention_days: int = 365
    logs_bucket_name: str
    logs_bucket_prefix: str  # CloudTrail writes under <prefix>/AWSLogs/<account>/
    # Buckets whose object-level reads and writes are recorded (data events cost per event).
    data_event_bucket_arns: Sequence[str] = ()
    role_name: str
    enable_security_hub: bool = True
    security_hub_standards: Sequence[str] = tuple(SECURITY_HUB_STANDARDS)
    enable_guardduty: bool = True


class Audit(Construct):
    """Who did what (CloudTrail, to S3 and CloudWatch Logs) and what looks wrong (Security Hub, GuardDuty)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: AuditProps,
        logs_key: KmsKey,
        logs_bucket_policy: ITerraformDependable,
    ) -> None:
        super().__init__(scope, id)
        p = props
        self.log_group = CloudwatchLogGroup(
            self,
            "trail_log_group",
            name=p.log_group_name,
            retention_in_days=p.log_retention_days,
            kms_key_id=logs_key.arn,
        )
        role = ServiceRole(
            self,
            "trail_logs_role",
            props=ServiceRoleProps(
                name=p.role_name,
                description=f"CloudTrail {p.trail_name} writes to {p.log_group_name}",
                service="cloudtrail.amazonaws.com",
                account_id=p.account_id,
                policy_name="write-trail-logs",
                statements=[
                    Statement(
                        sid="WriteTrailLogStreams",
                        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                        resources=[f"{self.log_group.arn}:log-stream:*"],
                    )
                ],
            ),
        )

        selectors = [
            CloudtrailEventSelector(
                read_write_type="All",
                include_management_events=True,
                data_resource=[
                    CloudtrailEventSelectorDataResource(
                        type="AWS::S3::Object", values=[f"{arn}/" for arn in p.data_event_bucket_arns]
                    )
                ]
                if p.data_event_bucket_arns
                else None,
            )
        ]
        self.trail = Cloudtrail(
            self,
            "trail",
            name=p.trail_name,
            s3_bucket_name=p.logs_bucket_name,
            s3_key_prefix=p.logs_bucket_prefix,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            enable_logging=True,
            kms_key_id=logs_key.arn,
            cloud_watch_logs_group_arn=f"{self.log_group.arn}:*",
            cloud_watch_logs_role_arn=role.arn,
            event_selector=selectors,
            # CloudTrail checks that it may write to the bucket when the trail is created.
            depends_on=[logs_bucket_policy],
        )

        if p.enable_security_hub:
            hub = SecurityhubAccount(
                self,
                "security_hub",
                # Subscribe to exactly the standards in config, with consolidated control findings.
                enable_default_standards=False,
                control_finding_generator="SECURITY_CONTROL",
                auto_enable_controls=True,
            )
            for standard in p.security_hub_standards:
                SecurityhubStandardsSubscription(
                    self,
                    f"standard_{standard.replace('-', '_')}",
                    standards_arn=f"arn:{p.partition}:securityhub:{p.region}::{SECURITY_HUB_STANDARDS[standard]}",
                    depends_on=[hub],
                )

        if p.enable_guardduty:
            detector = GuarddutyDetector(self, "guardduty", enable=True, finding_publishing_frequency="FIFTEEN_MINUTES")
            for feature in GUARDDUTY_FEATURES:
                GuarddutyDetectorFeature(
                    self, f"guardduty_{feature.lower()}", detector_id=detector.id, name=feature, status="ENABLED"
                )

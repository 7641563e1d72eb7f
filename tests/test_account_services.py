"""Once-per-account services: created by the owning environment only, referenced by the others; Security Hub fed.

GuardDuty (and, in prod, its detector in the DR region, where copies of customer data live), Security Hub with
the AWS Config recorder its controls evaluate, and the IAM password policy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Stack

ACCOUNT_LEVEL = (
    "aws_guardduty_detector",
    "aws_guardduty_detector_feature",
    "aws_securityhub_account",
    "aws_securityhub_standards_subscription",
    "aws_config_configuration_recorder",
    "aws_config_configuration_recorder_status",
    "aws_config_delivery_channel",
    "aws_iam_service_linked_role",
    "aws_iam_account_password_policy",
)


def dependencies(body: dict) -> set[str]:
    return set(body.get("depends_on", []))


def test_every_environment_owns_its_account_services_by_default(configs) -> None:
    """The design assumes one account per environment; sharing one means setting the others' flag to false."""
    assert all(c.security.owns_account_services for c in configs.values())


def test_guardduty_runs_where_configured_with_s3_and_rds_protection(stack: Stack, config) -> None:
    sec = config.security
    detectors = stack.resources("aws_guardduty_detector")
    regions = sorted(stack.region_of(d) for d in detectors.values())
    expected = ([config.region] if sec.enable_guardduty else []) + (
        [config.dr_region] if sec.enable_guardduty and sec.enable_guardduty_in_dr_region else []
    )
    assert regions == sorted(expected)
    for name, detector in detectors.items():
        # Findings every 15 minutes (the slowest setting is 6 hours).
        assert {k: v for k, v in detector.items() if k not in ("//", "provider", "lifecycle")} == {
            "enable": True,
            "finding_publishing_frequency": "FIFTEEN_MINUTES",
            "tags": {"Environment": "shared-account"},  # read by the account's other environments (test_pipeline.py)
        }, name
        features = {
            f["name"]: f["status"]
            for f in stack.resources("aws_guardduty_detector_feature").values()
            if f["detector_id"] == Stack.ref("aws_guardduty_detector", name)
            and stack.region_of(f) == stack.region_of(detector)
        }
        assert features == {"S3_DATA_EVENTS": "ENABLED", "RDS_LOGIN_EVENTS": "ENABLED"}, name


@pytest.mark.parametrize("env", ["prod"], indirect=True)
def test_prod_watches_the_dr_region_that_holds_copies_of_its_data(stack: Stack, config) -> None:
    assert any(stack.region_of(d) == "us-west-2" for d in stack.resources("aws_guardduty_detector").values())


def test_security_hub_subscribes_to_the_configured_standards_once_config_records(stack: Stack, config) -> None:
    accounts = stack.resources("aws_securityhub_account")
    subscriptions = list(stack.resources("aws_securityhub_standards_subscription").values())
    if not config.security.enable_security_hub:
        assert accounts == {} and subscriptions == []
        return
    ((_, account),) = accounts.items()
    # Exactly the configured standards, consolidated findings, and controls AWS adds later enabled too.
    assert account["enable_default_standards"] is False
    assert account["control_finding_generator"] == "SECURITY_CONTROL"
    assert account["auto_enable_controls"] is True
    (status,) = stack.resources("aws_config_configuration_recorder_status")
    assert dependencies(account) == {f"aws_config_configuration_recorder_status.{status}"}
    arns = sorted(s["standards_arn"].split("::", 1)[1] for s in subscriptions)
    assert arns == [
        "standards/aws-foundational-security-best-practices/v/1.0.0",
        "standards/cis-aws-foundations-benchmark/v/3.0.0",
    ]
    assert all(f":securityhub:{config.region}::" in s["standards_arn"] for s in subscriptions)


def test_aws_config_records_everything_and_delivers_encrypted_to_the_logs_bucket(stack: Stack, config) -> None:
    """Security Hub's controls are evaluated from AWS Config: without a recorder it produces no findings."""
    recorders = stack.resources("aws_config_configuration_recorder")
    assert len(recorders) == int(config.security.records_configuration)
    if not recorders:
        assert stack.resources("aws_config_delivery_channel") == {}
        return
    ((recorder_name, recorder),) = recorders.items()
    assert recorder["recording_group"] == {"all_supported": True, "include_global_resource_types": True}
    role_name, _ = stack.one("aws_iam_service_linked_role", aws_service_name="config.amazonaws.com")
    assert recorder["role_arn"] == Stack.ref("aws_iam_service_linked_role", role_name, "arn")
    ((channel_name, channel),) = stack.resources("aws_config_delivery_channel").items()
    logs = stack.bucket_named("logs")
    assert channel["s3_bucket_name"] == Stack.ref("aws_s3_bucket", logs, "bucket")
    assert channel["s3_key_prefix"] == "config"
    logs_key, _ = stack.kms_key(f"alias/roi-systems-{config.name}-logs")
    assert channel["s3_kms_key_arn"] == Stack.ref("aws_kms_key", logs_key, "arn")
    (policy,) = [n for n, p in stack.resources("aws_s3_bucket_policy").items()
                 if p["bucket"] == Stack.ref("aws_s3_bucket", logs)]  # fmt: skip
    assert dependencies(channel) == {
        f"aws_config_configuration_recorder.{recorder_name}",
        f"aws_s3_bucket_policy.{policy}",
    }
    ((_, status),) = stack.resources("aws_config_configuration_recorder_status").items()
    assert status["is_enabled"] is True
    assert status["name"] == Stack.ref("aws_config_configuration_recorder", recorder_name, "name")
    assert dependencies(status) == {f"aws_config_delivery_channel.{channel_name}"}


def test_password_policy_follows_cis_when_enabled(stack: Stack, config) -> None:
    policies = list(stack.resources("aws_iam_account_password_policy").values())
    assert len(policies) == int(config.security.enable_password_policy)
    for policy in policies:
        # CIS AWS Foundations 1.8-1.9: users may change their own password (or expiry locks them out).
        assert {k: v for k, v in policy.items() if k not in ("//", "lifecycle")} == {
            "minimum_password_length": 14,
            "require_lowercase_characters": True,
            "require_uppercase_characters": True,
            "require_numbers": True,
            "require_symbols": True,
            "allow_users_to_change_password": True,
            "max_password_age": 90,
            "password_reuse_prevention": 24,
        }


def test_an_environment_sharing_the_account_references_instead_of_creating(referencing_dev: Stack) -> None:
    """Creating them twice fails the second apply; destroying a second copy would delete the account's findings."""
    for rtype in ACCOUNT_LEVEL:
        assert referencing_dev.resources(rtype) == {}, rtype
    (detector,) = referencing_dev.data("aws_guardduty_detector").values()
    assert "provider" not in detector
    # ... and neither the logs bucket's policy nor the logs key admits the deliveries it will never make.
    assert "config.amazonaws.com" not in Path(referencing_dev.path).read_text()


def test_the_owner_creates_them_and_references_nothing(stack: Stack) -> None:
    assert stack.data("aws_guardduty_detector") == {}
    assert stack.resources("aws_guardduty_detector")

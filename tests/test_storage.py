"""The storage module: every bucket hardened, lifecycle from config, replication, log-delivery policies."""

from __future__ import annotations

from typing import Any

from conftest import Stack
from roi_tf.config import EnvironmentConfig

# Every bucket's companion resources, by type, keyed on the bucket they configure.
COMPANIONS = (
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_notification",
)


def companion(stack: Stack, rtype: str, bucket: str) -> dict[str, Any] | None:
    found = [b for b in stack.resources(rtype).values() if b["bucket"] == Stack.ref("aws_s3_bucket", bucket)]
    assert len(found) <= 1, f"{bucket}: {len(found)} {rtype}"
    return found[0] if found else None


def policy_of(stack: Stack, bucket: str) -> dict[str, Any]:
    policy = companion(stack, "aws_s3_bucket_policy", bucket)
    assert policy is not None
    return stack.data("aws_iam_policy_document")[policy["policy"].split(".")[2]]


def key_ref(stack: Stack, alias: str) -> str:
    name, _ = stack.kms_key(alias)
    return Stack.ref("aws_kms_key", name, "arn")


def log_buckets(config: EnvironmentConfig) -> set[str]:
    return {"logs", f"logs-{config.dr_region}"}


def test_the_buckets_are_the_configured_ones_plus_logs_and_replicas(stack: Stack, config: EnvironmentConfig) -> None:
    names = {b["bucket"] for b in stack.resources("aws_s3_bucket").values()}
    expected = {f"roi-systems-{config.name}-{n}" for n in config.storage.buckets} | {
        f"roi-systems-{config.name}-{n}-replica" for n, b in config.storage.buckets.items() if b.replicate
    }
    expected |= {f"roi-systems-{config.name}-{n}" for n in log_buckets(config)}
    # Bucket names are global: the account ID makes them unique without guessing.
    assert {n.removesuffix("-${data.aws_caller_identity.current.account_id}") for n in names} == expected


def test_every_bucket_is_private_owner_enforced_versioned_tls_only_and_has_a_lifecycle(stack: Stack) -> None:
    assert stack.count("aws_s3_bucket") >= 6
    for name in stack.resources("aws_s3_bucket"):
        for rtype in COMPANIONS:
            assert companion(stack, rtype, name) is not None, f"{name} has no {rtype}"
        block = companion(stack, "aws_s3_bucket_public_access_block", name)
        assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                               "restrict_public_buckets")), name  # fmt: skip
        assert companion(stack, "aws_s3_bucket_ownership_controls", name)["rule"] == {
            "object_ownership": "BucketOwnerEnforced"
        }
        assert companion(stack, "aws_s3_bucket_versioning", name)["versioning_configuration"]["status"] == "Enabled"
        deny = [s for s in policy_of(stack, name)["statement"] if s["sid"] == "DenyInsecureTransport"]
        assert deny and deny[0]["effect"] == "Deny" and deny[0]["actions"] == ["s3:*"]
        assert deny[0]["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
        arn = Stack.ref("aws_s3_bucket", name, "arn")
        assert deny[0]["resources"] == [arn, f"{arn}/*"]
        (outdated,) = [s for s in policy_of(stack, name)["statement"] if s["sid"] == "DenyOutdatedTls"]
        assert outdated["effect"] == "Deny" and outdated["resources"] == [arn, f"{arn}/*"]
        assert outdated["condition"] == [{"test": "NumericLessThan", "variable": "s3:TlsVersion", "values": ["1.2"]}]
        assert companion(stack, "aws_s3_bucket_notification", name)["eventbridge"] is True


def test_application_buckets_use_the_storage_key_and_log_buckets_sse_s3(stack: Stack, config: EnvironmentConfig):
    """The assets bucket alone uses the assets key (the one key CloudFront may decrypt with), its replica the DR
    storage key, every other application bucket the storage key (never reachable by CloudFront)."""
    storage_key = key_ref(stack, f"alias/roi-systems-{config.name}-storage")
    assets_key = key_ref(stack, f"alias/roi-systems-{config.name}-assets")
    dr_key = key_ref(stack, f"alias/roi-systems-{config.name}-dr-storage")
    seen_assets = False
    for name, bucket in stack.resources("aws_s3_bucket").items():
        (rule,) = companion(stack, "aws_s3_bucket_server_side_encryption_configuration", name)["rule"]
        default = rule["apply_server_side_encryption_by_default"]
        short = bucket["bucket"].removeprefix(f"roi-systems-{config.name}-").rsplit("-${", 1)[0]
        if short in log_buckets(config):
            # ALB and S3 server access logs can only be delivered to SSE-S3 buckets.
            assert default == {"sse_algorithm": "AES256"}, name
        else:
            expected_key = dr_key if short.endswith("-replica") else assets_key if short == "assets" else storage_key
            seen_assets |= short == "assets"
            assert default == {"sse_algorithm": "aws:kms", "kms_master_key_id": expected_key}, name
            assert rule["bucket_key_enabled"] is True
    assert seen_assets


def test_every_bucket_but_the_log_buckets_logs_access_to_the_log_bucket_of_its_region(stack: Stack, config):
    logs, dr_logs = stack.bucket_named("logs"), stack.bucket_named(f"logs-{config.dr_region}")
    for name, bucket in stack.resources("aws_s3_bucket").items():
        logging = companion(stack, "aws_s3_bucket_logging", name)
        if name in (logs, dr_logs):
            assert logging is None  # a log bucket logging to itself would log its own log writes forever
            continue
        in_dr = bucket.get("provider") == "aws.dr"
        assert logging["target_bucket"] == Stack.ref("aws_s3_bucket", dr_logs if in_dr else logs, "bucket")
        assert logging["target_prefix"] == f"s3/{bucket['bucket']}/"


def test_force_destroy_only_in_dev(stack: Stack, config: EnvironmentConfig) -> None:
    for bucket in stack.resources("aws_s3_bucket").values():
        assert bucket["force_destroy"] is (config.name == "dev")


def test_lifecycle_tiers_archives_and_expires_with_the_configured_days(stack: Stack, config: EnvironmentConfig):
    s = config.storage
    for short, spec in s.buckets.items():
        name = stack.bucket_named(short)
        rules = {r["id"]: r for r in companion(stack, "aws_s3_bucket_lifecycle_configuration", name)["rule"]}
        assert all(r["status"] == "Enabled" and r["filter"] == [{"prefix": ""}] for r in rules.values())
        expected = [{"days": 0, "storage_class": "INTELLIGENT_TIERING"}] if s.intelligent_tiering else []
        if spec.archive_after_days is not None:
            expected.append({"days": spec.archive_after_days, "storage_class": "GLACIER"})
        assert rules["current-objects"]["transition"] == expected
        noncurrent = rules["noncurrent-versions"]
        assert noncurrent["noncurrent_version_transition"] == [
            {"noncurrent_days": s.noncurrent_glacier_days, "storage_class": "GLACIER"}
        ]
        assert noncurrent["noncurrent_version_expiration"] == [{"noncurrent_days": s.noncurrent_expiration_days}]
        multipart = rules["abort-incomplete-multipart-uploads"]
        assert multipart["abort_incomplete_multipart_upload"] == [
            {"days_after_initiation": s.abort_incomplete_multipart_days}
        ]


def test_design_document_lifecycle_30_days_to_glacier_and_90_day_archival(configs) -> None:
    for config in configs.values():
        assert config.storage.noncurrent_glacier_days == 30
        assert config.storage.buckets["documents"].archive_after_days == 90
        assert config.storage.buckets["backups"].archive_after_days == 90
        assert config.storage.intelligent_tiering


def test_log_buckets_expire_logs_after_the_configured_days(stack: Stack, config: EnvironmentConfig) -> None:
    for short in log_buckets(config):
        rules = companion(stack, "aws_s3_bucket_lifecycle_configuration", stack.bucket_named(short))["rule"]
        (expire,) = [r for r in rules if r["id"] == "expire-logs"]
        assert expire["expiration"] == [{"days": config.storage.access_log_expiration_days}]


def test_lifecycle_waits_for_versioning(stack: Stack) -> None:
    for name in stack.resources("aws_s3_bucket"):
        lifecycle = companion(stack, "aws_s3_bucket_lifecycle_configuration", name)
        versioning = [n for n, v in stack.resources("aws_s3_bucket_versioning").items()
                      if v["bucket"] == Stack.ref("aws_s3_bucket", name)]  # fmt: skip
        assert lifecycle["depends_on"] == [f"aws_s3_bucket_versioning.{versioning[0]}"]


# --- replication ---------------------------------------------------------------------------------


def test_documents_replicate_to_a_dr_region_replica_with_delete_markers(stack: Stack, config: EnvironmentConfig):
    replicated = [n for n, b in config.storage.buckets.items() if b.replicate]
    assert "documents" in replicated
    assert stack.count("aws_s3_bucket_replication_configuration") == len(replicated)
    dr_key = key_ref(stack, f"alias/roi-systems-{config.name}-dr-storage")
    for short in replicated:
        source, replica = stack.bucket_named(short), stack.bucket_named(f"{short}-replica")
        assert stack.resources("aws_s3_bucket")[replica]["provider"] == "aws.dr"
        assert "provider" not in stack.resources("aws_s3_bucket")[source]
        (replication,) = [
            r for r in stack.resources("aws_s3_bucket_replication_configuration").values()
            if r["bucket"] == Stack.ref("aws_s3_bucket", source)
        ]  # fmt: skip
        (rule,) = replication["rule"]
        assert rule["status"] == "Enabled"
        assert rule["filter"] == {"prefix": ""}
        assert rule["delete_marker_replication"] == {"status": "Enabled"}
        assert rule["source_selection_criteria"] == {"sse_kms_encrypted_objects": {"status": "Enabled"}}
        destination = rule["destination"]
        assert destination["bucket"] == Stack.ref("aws_s3_bucket", replica, "arn")
        # The DR copy must be readable at once (Glacier would take hours: no RTO of 1 hour).
        assert destination["storage_class"] == "STANDARD"
        assert destination["encryption_configuration"] == {"replica_kms_key_id": dr_key}
        if config.storage.replication_time_control:
            assert destination["replication_time"] == {"status": "Enabled", "time": {"minutes": 15}}
            assert destination["metrics"] == {"status": "Enabled", "event_threshold": {"minutes": 15}}
        else:
            assert "replication_time" not in destination
        versionings = {
            f"aws_s3_bucket_versioning.{n}"
            for n, v in stack.resources("aws_s3_bucket_versioning").items()
            if v["bucket"] in (Stack.ref("aws_s3_bucket", source), Stack.ref("aws_s3_bucket", replica))
        }
        assert set(replication["depends_on"]) == versionings and len(versionings) == 2


def test_prod_has_replication_time_control(configs) -> None:
    assert configs["prod"].storage.replication_time_control
    assert configs["prod"].storage.buckets["documents"].replicate


def test_replication_role_can_do_only_replication(stack: Stack, config: EnvironmentConfig) -> None:
    """Every replicated bucket's own role (prod's pilot light replicates the documents, the ML artifacts and the
    deployment artifacts), and nothing replicated that config does not mark."""
    replicated = [name for name, bucket in config.storage.buckets.items() if bucket.replicate]
    replications = stack.resources("aws_s3_bucket_replication_configuration")
    assert len(replications) == len(replicated)
    for name in replicated:
        source = stack.bucket_named(name)
        (replication,) = [r for r in replications.values() if r["bucket"] == Stack.ref("aws_s3_bucket", source, "id")]
        _check_replication_role(stack, config, replication, source, stack.bucket_named(f"{name}-replica"))


def _check_replication_role(
    stack: Stack, config: EnvironmentConfig, replication: dict, documents: str, replica: str
) -> None:
    role_name = replication["role"].split(".")[1]
    role = stack.resources("aws_iam_role")[role_name]
    trust = stack.data("aws_iam_policy_document")[role["assume_role_policy"].split(".")[2]]
    (statement,) = trust["statement"]
    assert statement["principals"] == [{"type": "Service", "identifiers": ["s3.amazonaws.com"]}]
    assert statement["condition"][0]["variable"] == "aws:SourceAccount"
    (policy,) = [p for p in stack.resources("aws_iam_role_policy").values() if role_name in p["role"]]
    grants = {s["sid"]: s for s in stack.data("aws_iam_policy_document")[policy["policy"].split(".")[2]]["statement"]}
    src, dst = Stack.ref("aws_s3_bucket", documents, "arn"), Stack.ref("aws_s3_bucket", replica, "arn")
    assert grants["ReadReplicationConfiguration"]["resources"] == [src]
    assert grants["ReadSourceVersions"]["resources"] == [f"{src}/*"]
    assert grants["WriteReplica"]["resources"] == [f"{dst}/*"]
    # Exactly the replication actions: s3:GetObject* would let the role read every object for any purpose.
    assert {sid: sorted(g["actions"]) for sid, g in grants.items()} == {
        "ReadReplicationConfiguration": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
        "ReadSourceVersions": [
            "s3:GetObjectVersionAcl",
            "s3:GetObjectVersionForReplication",
            "s3:GetObjectVersionTagging",
        ],
        "WriteReplica": ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"],
        "DecryptSource": ["kms:Decrypt"],
        "EncryptReplica": ["kms:Encrypt", "kms:GenerateDataKey"],
    }
    assert grants["DecryptSource"]["resources"] == [key_ref(stack, f"alias/roi-systems-{config.name}-storage")]
    assert grants["EncryptReplica"]["resources"] == [key_ref(stack, f"alias/roi-systems-{config.name}-dr-storage")]
    for sid, region, bucket in (("DecryptSource", config.region, src), ("EncryptReplica", config.dr_region, dst)):
        conditions = {c["variable"]: c["values"] for c in grants[sid]["condition"]}
        assert conditions["kms:ViaService"] == [f"s3.{region}.amazonaws.com"]
        # The buckets use S3 Bucket Keys, whose encryption context is the bucket ARN (not the object's).
        assert conditions["kms:EncryptionContext:aws:s3:arn"] == [bucket, f"{bucket}/*"]
    for grant in grants.values():
        assert "*" not in grant["resources"] and not any(a.endswith(":*") for a in grant["actions"])


# Who may write into which bucket (log delivery, CloudTrail, TLS only) is simulated, with negative twins for
# every statement, in tests/test_resource_policies.py.


def test_every_replication_decrypts_with_its_source_buckets_key_and_encrypts_with_its_replicas(deployed) -> None:
    """Over every replicated bucket (the canary replicates the assets, whose key is not the storage key): the role
    may decrypt exactly the key the source bucket encrypts with, and encrypt with the replica's."""
    stack, _ = deployed

    def sse_key(bucket: str) -> str:
        (rule,) = companion(stack, "aws_s3_bucket_server_side_encryption_configuration", bucket)["rule"]
        return rule["apply_server_side_encryption_by_default"]["kms_master_key_id"]

    replications = stack.resources("aws_s3_bucket_replication_configuration").values()
    assert replications
    for replication in replications:
        source = replication["bucket"].split(".")[1]
        (rule,) = replication["rule"]
        replica = rule["destination"]["bucket"].split(".")[1]
        assert rule["destination"]["encryption_configuration"]["replica_kms_key_id"] == sse_key(replica)
        role_name = replication["role"].split(".")[1]
        (policy,) = [p for p in stack.resources("aws_iam_role_policy").values() if role_name in p["role"]]
        document = stack.data("aws_iam_policy_document")[policy["policy"].split(".")[2]]
        grants = {s["sid"]: s for s in document["statement"]}
        assert grants["DecryptSource"]["resources"] == [sse_key(source)], source
        assert grants["EncryptReplica"]["resources"] == [sse_key(replica)], replica

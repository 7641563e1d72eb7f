"""The DynamoDB sessions table: on demand, expiring items, point-in-time recovery, the data key."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableReplica,
    DynamodbTableServerSideEncryption,
    DynamodbTableTtl,
)
from constructs import Construct

from roi_tf.config import SessionsConfig
from roi_tf.modules.security import KmsKey

HASH_KEY = "session_id"


class SessionsTable(Construct):
    """Sessions keyed by ``session_id``, billed per request, recoverable to any second of the last 35 days."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: SessionsConfig,
        name: str,
        key: KmsKey,
        replica_region: str | None = None,  # a global table with a replica there (the DR pilot light); default: none
        replica_key: KmsKey | None = None,  # the replica's key, in replica_region
    ) -> None:
        super().__init__(scope, id)
        if (replica_region is None) != (replica_key is None):
            raise ValueError(f"table {name}: a replica region needs a key in that region, and only then")
        # A global table (version 2019.11.21): DynamoDB copies every write to the replica, usually within a second;
        # the replica is as recoverable and as protected as the table, encrypted with its own region's key.
        replicas = (
            [
                DynamodbTableReplica(
                    region_name=replica_region,
                    kms_key_arn=replica_key.arn,
                    point_in_time_recovery=True,
                    propagate_tags=True,
                    deletion_protection_enabled=config.deletion_protection,
                )
            ]
            if replica_region is not None and replica_key is not None
            else None
        )
        self.table = DynamodbTable(
            self,
            "table",
            name=name,
            # Sessions follow traffic: on demand costs nothing when idle and never throttles a burst.
            billing_mode="PAY_PER_REQUEST",
            hash_key=HASH_KEY,
            attribute=[DynamodbTableAttribute(name=HASH_KEY, type="S")],
            ttl=DynamodbTableTtl(attribute_name=config.ttl_attribute, enabled=True),
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=key.arn),
            deletion_protection_enabled=config.deletion_protection,
            # Replication reads the table's stream; DynamoDB turns it on for a replica, so config says so too.
            stream_enabled=True if replicas else None,
            stream_view_type="NEW_AND_OLD_IMAGES" if replicas else None,
            replica=replicas,
            tags={"Name": name},
        )
        self.name = self.table.name
        self.arn = self.table.arn

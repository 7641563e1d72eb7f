"""The DynamoDB sessions table: on demand, expiring items, point-in-time recovery, the data key."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
    DynamodbTableTtl,
)
from constructs import Construct

from roi_tf.modules.security import KmsKey

HASH_KEY = "session_id"


@dataclass(frozen=True, kw_only=True)
class SessionsTableProps:
    """Inputs of the sessions table."""

    name: str  # "roi-systems-<env>-sessions"
    ttl_attribute: str = "expires_at"  # epoch seconds; DynamoDB deletes expired sessions for free
    deletion_protection: bool = True  # default: the table cannot be deleted by accident


class SessionsTable(Construct):
    """Sessions keyed by ``session_id``, billed per request, recoverable to any second of the last 35 days."""

    def __init__(self, scope: Construct, id: str, *, props: SessionsTableProps, key: KmsKey) -> None:
        super().__init__(scope, id)
        self.table = DynamodbTable(
            self,
            "table",
            name=props.name,
            # Sessions follow traffic: on demand costs nothing when idle and never throttles a burst.
            billing_mode="PAY_PER_REQUEST",
            hash_key=HASH_KEY,
            attribute=[DynamodbTableAttribute(name=HASH_KEY, type="S")],
            ttl=DynamodbTableTtl(attribute_name=props.ttl_attribute, enabled=True),
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=key.arn),
            deletion_protection_enabled=props.deletion_protection,
            tags={"Name": props.name},
        )
        self.name = self.table.name
        self.arn = self.table.arn

"""ElastiCache Redis in cluster mode: encrypted, IAM-authenticated users, logs in CloudWatch, app-only access.

Mirrors terraform-aws-modules/elasticache. Clients authenticate as the ``<id>-app`` user with an IAM token
(RBAC, no password anywhere); the mandatory ``default`` user is switched off.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformProvider, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.elasticache_global_replication_group import ElasticacheGlobalReplicationGroup
from cdktf_cdktf_provider_aws.elasticache_parameter_group import (
    ElasticacheParameterGroup,
    ElasticacheParameterGroupParameter,
)
from cdktf_cdktf_provider_aws.elasticache_replication_group import (
    ElasticacheReplicationGroup,
    ElasticacheReplicationGroupLogDeliveryConfiguration,
)
from cdktf_cdktf_provider_aws.elasticache_user import ElasticacheUser, ElasticacheUserAuthenticationMode
from cdktf_cdktf_provider_aws.elasticache_user_group import ElasticacheUserGroup
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from constructs import Construct

from roi_tf.config import CacheConfig
from roi_tf.modules.firewall import admitting_group
from roi_tf.modules.networking import NetworkOutputs
from roi_tf.modules.regional import use_provider
from roi_tf.modules.security import KmsKey
from roi_tf.naming import final_snapshot_name

REDIS_PORT = 6379
LOG_TYPES = ("slow-log", "engine-log")
# What a cache-and-queue client needs: data commands, pub/sub, transactions, Lua scripts (queue libraries), the
# cluster topology and INFO; nothing @dangerous (FLUSHALL, FLUSHDB, KEYS, SORT, MIGRATE, RESTORE, CLIENT KILL, ...).
APP_COMMAND_RULES = (
    "-@all",
    "+@connection",
    "+@read",
    "+@write",
    "+@pubsub",
    "+@transaction",
    "+@scripting",
    "-@dangerous",
    "+info",  # clients read the server version (queue libraries refuse to start without it)
    "+cluster|slots",  # topology discovery of cluster-mode clients
    "+cluster|shards",
    "+cluster|nodes",
    "+cluster|info",
    "+cluster|myid",
    "+cluster|keyslot",
)
APP_ACCESS_STRING = " ".join(("on", "~*", "&*", *APP_COMMAND_RULES))
# Every user group must hold a user named "default"; this one can do nothing.
DISABLED_ACCESS_STRING = "off -@all"


DR_SUFFIX = "-dr"


def app_user_id(replication_group_id: str) -> str:
    """The application's user (ID and name: IAM authentication requires them equal), the same in every region."""
    return f"{replication_group_id.removesuffix(DR_SUFFIX)}-app"


@dataclass(frozen=True)
class CacheReplica:
    """Where the cache's Global Datastore secondary stands: the DR region, its provider, standby VPC and keys."""

    region: str
    provider: TerraformProvider
    network: NetworkOutputs
    data_key: KmsKey
    logs_key: KmsKey


def cache_log_groups(
    scope: Construct, name: str, log_group_prefix: str, retention_days: int, logs_key: KmsKey
) -> dict[str, CloudwatchLogGroup]:
    """The groups a cache ``name`` delivers its logs to, by log type, in ``scope``'s region. The DR region's cache
    made by a failover has its groups stand with the pilot light (Database): a failback forgets the cache but must
    not leave its logs behind for the next failover to collide with."""
    return {
        log_type: CloudwatchLogGroup(
            scope,
            f"{log_type.replace('-', '_')}_group",
            name=f"{log_group_prefix}/{log_type}",
            retention_in_days=retention_days,
            kms_key_id=logs_key.arn,
            tags={"Name": f"{name}-{log_type}"},
        )
        for log_type in LOG_TYPES
    }


class Cache(Construct):
    """Redis in cluster mode, encrypted at rest and in transit, reachable only from the app."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: CacheConfig,
        replication_group_id: str,  # "roi-systems-<env>-redis"; users and groups are named after it
        log_group_prefix: str,  # "/roi-systems/<env>/elasticache/redis"
        network: NetworkOutputs,
        data_key: KmsKey,
        logs_key: KmsKey,
        replica: CacheReplica | None = None,  # default: the cache lives in its region only
    ) -> None:
        super().__init__(scope, id)
        p = self._config = config
        name = replication_group_id
        self._log_group_prefix = log_group_prefix

        self.security_group, user_group, self.app_user, log_groups = self._members(
            self, name, network, logs_key, log_group_prefix
        )

        family = f"redis{p.engine_version.split('.')[0]}"
        parameter_group = ElasticacheParameterGroup(
            self,
            "parameter_group",
            name=f"{name}-{family}-cluster",
            family=family,
            description=f"{name}: cluster mode",
            parameter=[ElasticacheParameterGroupParameter(name="cluster-enabled", value="yes")],
            tags={"Name": f"{name}-{family}-cluster"},
            # An engine upgrade brings a new family: the new group must exist before the old one goes.
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )

        multi_az = p.replicas_per_shard > 0
        self.replication_group = ElasticacheReplicationGroup(
            self,
            "replication_group",
            replication_group_id=name,
            description=f"{name}: cache and queues (cluster mode)",
            engine="redis",
            engine_version=p.engine_version,
            node_type=p.node_type,
            port=REDIS_PORT,
            parameter_group_name=parameter_group.name,
            subnet_group_name=network.elasticache_subnet_group_name,
            security_group_ids=[self.security_group.id],
            cluster_mode="enabled",
            num_node_groups=p.shards,
            replicas_per_node_group=p.replicas_per_shard,
            # Cluster mode requires automatic failover; without replicas there is simply nothing to promote.
            automatic_failover_enabled=True,
            multi_az_enabled=multi_az,
            at_rest_encryption_enabled="true",  # this provider version types these two as strings
            kms_key_id=data_key.arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            final_snapshot_identifier=final_snapshot_name(name) if p.final_snapshot else None,
            **self._member_settings(user_group, log_groups),
            tags={"Name": name},
            # The final snapshot's name is fixed when the group is created (see final_snapshot_name). In a Global
            # Datastore the engine version is the global group's to change (it upgrades every member).
            lifecycle=TerraformResourceLifecycle(
                ignore_changes=["final_snapshot_identifier", *(["engine_version"] if replica else [])]
            ),
        )
        self.dr_replication_group = self._replicate(replica, name) if replica else None
        self.configuration_endpoint = self.replication_group.configuration_endpoint_address
        # Cluster mode names its nodes <group>-<shard 0001...>-<node 001...>: CloudWatch's CacheClusterId of each.
        self.node_ids = [
            f"{self.replication_group.id}-{shard:04d}-{node:03d}"
            for shard in range(1, p.shards + 1)
            for node in range(1, p.replicas_per_shard + 2)
        ]
        self.port = REDIS_PORT
        self.app_user_name = self.app_user.user_name

    def _members(
        self, scope: Construct, name: str, network: NetworkOutputs, logs_key: KmsKey, log_group_prefix: str
    ) -> tuple[SecurityGroup, ElasticacheUserGroup, ElasticacheUser, dict[str, CloudwatchLogGroup]]:
        """What each member of the cache has in its region: the security group admitting the application, the
        users (users and groups are regional: a secondary has its own, with the same names), the log groups."""
        security_group = admitting_group(
            scope,
            "",
            name=name,
            description=f"{name}: Redis from the application only",
            vpc_id=network.vpc_id,
            source=network.application_security_group_id,
            port=REDIS_PORT,
            rule="app_to_cache",
            rule_description="Redis: application to the cache",
        )
        users = name.removesuffix(DR_SUFFIX)  # the same user names in every region (the application's REDIS_USER)
        default_user = ElasticacheUser(
            scope,
            "default_user",
            user_id=f"{users}-default",
            user_name="default",
            engine="redis",
            access_string=DISABLED_ACCESS_STRING,
            authentication_mode=ElasticacheUserAuthenticationMode(type="no-password-required"),
            tags={"Name": f"{users}-default"},
        )
        app_user = ElasticacheUser(
            scope,
            "app_user",
            user_id=app_user_id(name),
            user_name=app_user_id(name),
            engine="redis",
            access_string=APP_ACCESS_STRING,
            authentication_mode=ElasticacheUserAuthenticationMode(type="iam"),
            tags={"Name": f"{users}-app"},
        )
        user_group = ElasticacheUserGroup(
            scope,
            "user_group",
            user_group_id=f"{users}-users",
            engine="redis",
            user_ids=[default_user.user_id, app_user.user_id],
            tags={"Name": f"{users}-users"},
        )
        log_groups = cache_log_groups(scope, name, log_group_prefix, self._config.log_retention_days, logs_key)
        return security_group, user_group, app_user, log_groups

    def _member_settings(
        self, user_group: ElasticacheUserGroup, log_groups: dict[str, CloudwatchLogGroup]
    ) -> dict[str, object]:
        """What every member of the cache shares: its users, backups, maintenance and logs."""
        p = self._config
        return {
            "user_group_ids": [user_group.user_group_id],
            "snapshot_retention_limit": p.snapshot_retention_days,
            "snapshot_window": p.snapshot_window,
            "maintenance_window": p.maintenance_window,
            "auto_minor_version_upgrade": "true",
            "apply_immediately": False,
            "log_delivery_configuration": [
                ElasticacheReplicationGroupLogDeliveryConfiguration(
                    destination=group.name,
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type=log_type,
                )
                for log_type, group in log_groups.items()
            ],
        }

    def _replicate(self, replica: CacheReplica, name: str) -> ElasticacheReplicationGroup:
        """A Global Datastore: the primary replicates to a secondary in the DR region (typically under a second),
        which failover promotes (aws elasticache failover-global-replication-group). The secondary has one node per
        shard while it stands by (the node type is the primary's: AWS requires it); add replicas after failover."""
        p = self._config
        self.global_datastore = ElasticacheGlobalReplicationGroup(
            self,
            "global_datastore",
            global_replication_group_id_suffix=name,
            global_replication_group_description=f"{name}: cache and queues, copied to {replica.region}",
            primary_replication_group_id=self.replication_group.id,
            engine_version=p.engine_version,
        )
        dr = Construct(self, "dr")
        use_provider(dr, replica.provider)
        dr_name = f"{name}{DR_SUFFIX}"
        security_group, user_group, _, log_groups = self._members(
            dr, dr_name, replica.network, replica.logs_key, self._log_group_prefix
        )
        # Engine, version, node type, shards, parameter group and encryption settings come from the Global
        # Datastore: AWS refuses them on a secondary.
        return ElasticacheReplicationGroup(
            dr,
            "replication_group",
            replication_group_id=dr_name,
            description=f"{dr_name}: the cache's secondary in {replica.region} (Global Datastore)",
            global_replication_group_id=self.global_datastore.global_replication_group_id,
            replicas_per_node_group=0,
            automatic_failover_enabled=True,
            multi_az_enabled=False,
            port=REDIS_PORT,
            subnet_group_name=replica.network.elasticache_subnet_group_name,
            security_group_ids=[security_group.id],
            kms_key_id=replica.data_key.arn,
            **self._member_settings(user_group, log_groups),
            tags={"Name": dr_name},
        )

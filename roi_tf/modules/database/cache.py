"""ElastiCache Redis in cluster mode: encrypted, IAM-authenticated users, logs in CloudWatch, app-only access.

Mirrors terraform-aws-modules/elasticache. Clients authenticate as the ``<id>-app`` user with an IAM token
(RBAC, no password anywhere); the mandatory ``default`` user is switched off.
"""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
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
from roi_tf.modules.firewall import allow
from roi_tf.modules.networking import NetworkOutputs
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
    ) -> None:
        super().__init__(scope, id)
        p = config
        name = replication_group_id

        self.security_group = SecurityGroup(
            self,
            "security_group",
            name=name,
            description=f"{name}: Redis from the application only",
            vpc_id=network.vpc_id,
            tags={"Name": name},
        )
        allow(
            self,
            "app_to_cache",
            source=network.application_security_group_id,
            destination=self.security_group.id,
            port=REDIS_PORT,
            description="Redis: application to the cache",
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

        default_user = ElasticacheUser(
            self,
            "default_user",
            user_id=f"{name}-default",
            user_name="default",
            engine="redis",
            access_string=DISABLED_ACCESS_STRING,
            authentication_mode=ElasticacheUserAuthenticationMode(type="no-password-required"),
            tags={"Name": f"{name}-default"},
        )
        # IAM authentication requires user_id == user_name.
        self.app_user = ElasticacheUser(
            self,
            "app_user",
            user_id=f"{name}-app",
            user_name=f"{name}-app",
            engine="redis",
            access_string=APP_ACCESS_STRING,
            authentication_mode=ElasticacheUserAuthenticationMode(type="iam"),
            tags={"Name": f"{name}-app"},
        )
        user_group = ElasticacheUserGroup(
            self,
            "user_group",
            user_group_id=f"{name}-users",
            engine="redis",
            user_ids=[default_user.user_id, self.app_user.user_id],
            tags={"Name": f"{name}-users"},
        )

        log_groups = {
            log_type: CloudwatchLogGroup(
                self,
                f"{log_type.replace('-', '_')}_group",
                name=f"{log_group_prefix}/{log_type}",
                retention_in_days=p.log_retention_days,
                kms_key_id=logs_key.arn,
                tags={"Name": f"{name}-{log_type}"},
            )
            for log_type in LOG_TYPES
        }
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
            user_group_ids=[user_group.user_group_id],
            snapshot_retention_limit=p.snapshot_retention_days,
            snapshot_window=p.snapshot_window,
            maintenance_window=p.maintenance_window,
            final_snapshot_identifier=final_snapshot_name(name) if p.final_snapshot else None,
            auto_minor_version_upgrade="true",
            apply_immediately=False,
            log_delivery_configuration=[
                ElasticacheReplicationGroupLogDeliveryConfiguration(
                    destination=group.name,
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type=log_type,
                )
                for log_type, group in log_groups.items()
            ],
            tags={"Name": name},
            # The final snapshot's name is fixed when the group is created (see final_snapshot_name).
            lifecycle=TerraformResourceLifecycle(ignore_changes=["final_snapshot_identifier"]),
        )
        self.configuration_endpoint = self.replication_group.configuration_endpoint_address
        # Cluster mode names its nodes <group>-<shard 0001...>-<node 001...>: CloudWatch's CacheClusterId of each.
        self.node_ids = [
            f"{self.replication_group.id}-{shard:04d}-{node:03d}"
            for shard in range(1, p.shards + 1)
            for node in range(1, p.replicas_per_shard + 2)
        ]
        self.port = REDIS_PORT
        self.app_user_name = self.app_user.user_name

"""The database module: RDS PostgreSQL behind RDS Proxy, ElastiCache Redis, and the DynamoDB sessions table.

Everything lives in the isolated subnets (DynamoDB through the VPC's gateway endpoint), is encrypted with the
environment's data key, and admits only the application security group (PostgreSQL also the proxy).
"""

from __future__ import annotations

from cdktf import TerraformProvider
from constructs import Construct

from roi_tf.config import CacheConfig, DatabaseConfig, SessionsConfig
from roi_tf.modules.database.cache import DR_SUFFIX, Cache, CacheReplica, cache_log_groups
from roi_tf.modules.database.postgres import Postgres
from roi_tf.modules.database.sessions import SessionsTable
from roi_tf.modules.exports import export
from roi_tf.modules.networking import NetworkOutputs
from roi_tf.modules.regional import use_provider
from roi_tf.modules.security import EncryptionKeys, Secret, WriteOnly
from roi_tf.naming import log_group_prefix, resource_name


class Database(Construct):
    """PostgreSQL (``postgres``), Redis (``cache``) and, where configured, the sessions table (``sessions``)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        env: str,  # names every resource: roi-systems-<env>-postgres, -redis, -sessions
        database: DatabaseConfig,
        cache: CacheConfig,
        sessions: SessionsConfig,
        account_id: str,
        partition: str,
        network: NetworkOutputs,
        keys: EncryptionKeys,
        credentials: Secret,  # the master credentials secret, read by RDS Proxy
        password: WriteOnly,  # the master password (ephemeral db_password variable)
        dr_region: str,
        dr_provider: TerraformProvider,
        dr_network: NetworkOutputs | None = None,  # the standby VPC in the DR region, if any
        pilot_light: bool = False,  # replicas in the DR region of what the service cannot lose (dr section)
        cache_replica: bool = False,  # the cache as a Global Datastore with a secondary in the standby VPC
        dr_active: bool = False,  # failed over: the DR replica promoted, behind its own RDS Proxy (dr.active)
        failback_replica: bool = False,  # failing back: the primary replicates from the promoted database
    ) -> None:
        super().__init__(scope, id)
        self.postgres = Postgres(
            self,
            "postgres",
            config=database,
            identifier=resource_name(env, "postgres"),
            account_id=account_id,
            partition=partition,
            network=network,
            data_key=keys.data,
            logs_key=keys.logs,
            dr_data_key=keys.dr_data,
            dr_provider=dr_provider,
            password=password,
            credentials=credentials,
            dr_network=dr_network,
            dr_logs_key=keys.dr_logs,
            pilot_light=pilot_light,
            dr_active=dr_active,
            failback_replica=failback_replica,
        )
        self.cache = Cache(
            self,
            "cache",
            config=cache,
            replication_group_id=resource_name(env, "redis"),
            log_group_prefix=f"{log_group_prefix(env)}/elasticache/redis",
            network=network,
            data_key=keys.data,
            logs_key=keys.logs,
            replica=CacheReplica(dr_region, dr_provider, dr_network, keys.dr_data, keys.dr_logs)
            if cache_replica and dr_network is not None and keys.dr_logs is not None
            else None,
        )
        # Failed over without a Global Datastore: a new, empty cache in the standby VPC (the application rebuilds
        # what it caches; see docs/DEPLOYMENT.md for what the queues in it lose).
        # Its log groups stand with the pilot light (cache_log_groups says why), at the same addresses.
        self.dr_cache: Cache | None = None
        if pilot_light and not cache_replica and dr_network is not None and keys.dr_logs is not None:
            dr = Construct(self, "dr")
            use_provider(dr, dr_provider)
            dr_name, logs = f"{resource_name(env, 'redis')}{DR_SUFFIX}", f"{log_group_prefix(env)}/elasticache/redis"
            if dr_active:
                self.dr_cache = Cache(
                    dr,
                    "cache",
                    config=cache,
                    replication_group_id=dr_name,
                    log_group_prefix=logs,
                    network=dr_network,
                    data_key=keys.dr_data,
                    logs_key=keys.dr_logs,
                )
            else:
                cache_log_groups(Construct(dr, "cache"), dr_name, logs, cache.log_retention_days, keys.dr_logs)
        self.sessions = (
            SessionsTable(
                self,
                "sessions",
                config=sessions,
                name=resource_name(env, "sessions"),
                key=keys.data,
                replica_region=dr_region if pilot_light else None,
                replica_key=keys.dr_data if pilot_light else None,
            )
            if sessions.enabled
            else None
        )
        self._export(database, credentials, dr_region)

    def _export(self, database: DatabaseConfig, credentials: Secret, dr_region: str) -> None:
        pg, redis = self.postgres, self.cache
        described = {
            "database_proxy_endpoint": (pg.proxy_endpoint, "RDS Proxy endpoint: the application's PostgreSQL host"),
            "database_endpoint": (pg.endpoint, "Primary instance address (migrations, administration)"),
            "database_replica_endpoints": (pg.replica_endpoints, "Addresses of the read replicas"),
            "database_port": (pg.port, "PostgreSQL port"),
            "database_name": (database.database_name, "Database created with the instance"),
            "database_credentials_secret_arn": (credentials.arn, "Master credentials secret"),
            "cache_configuration_endpoint": (redis.configuration_endpoint, "Redis cluster configuration endpoint"),
            "cache_port": (redis.port, "Redis port (TLS)"),
            "cache_user_name": (redis.app_user_name, "Redis user the application authenticates as (IAM)"),
        }
        if pg.dr_replica is not None:
            described["database_dr_replica_endpoint"] = (
                pg.dr_replica.address,
                f"Address of the replica in {dr_region} (promote it to fail over)"
                if pg.dr_proxy is None
                else f"Address of the promoted database in {dr_region} (migrations, administration)",
            )
        if pg.dr_proxy is not None:
            described["database_dr_proxy_endpoint"] = (
                pg.dr_proxy.endpoint,
                f"RDS Proxy endpoint of the promoted database in {dr_region}: the application's PostgreSQL host there",
            )
        if self.sessions is not None:
            described["sessions_table_name"] = (self.sessions.name, "DynamoDB sessions table")
        export(self, described)


__all__ = ["Cache", "Database", "Postgres", "SessionsTable"]

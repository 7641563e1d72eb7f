"""RDS PostgreSQL: a Multi-AZ primary, read replicas, backups replicated to the DR region, and RDS Proxy.

Mirrors terraform-aws-modules/rds (names of inputs and outputs) with secure defaults: encrypted with the
data key, reachable only from the application and the proxy, TLS and IAM authentication, every log exported.
"""

from __future__ import annotations

from cdktf import TerraformProvider, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.db_instance import DbInstance
from cdktf_cdktf_provider_aws.db_instance_automated_backups_replication import (
    DbInstanceAutomatedBackupsReplication,
)
from cdktf_cdktf_provider_aws.db_parameter_group import DbParameterGroup, DbParameterGroupParameter
from cdktf_cdktf_provider_aws.db_proxy import DbProxy, DbProxyAuth
from cdktf_cdktf_provider_aws.db_proxy_default_target_group import (
    DbProxyDefaultTargetGroup,
    DbProxyDefaultTargetGroupConnectionPoolConfig,
)
from cdktf_cdktf_provider_aws.db_proxy_target import DbProxyTarget
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from constructs import Construct

from roi_tf.config import DatabaseConfig
from roi_tf.modules.firewall import admitting_group, allow
from roi_tf.modules.networking import NetworkOutputs
from roi_tf.modules.regional import use_provider
from roi_tf.modules.security import KmsKey, Secret, ServiceRole, ServiceRoleProps, WriteOnly
from roi_tf.naming import final_snapshot_name

POSTGRES_PORT = 5432
MIN_TLS_VERSION = "TLSv1.2"
LOG_EXPORTS = ("postgresql", "upgrade")
# The current RSA 2048 CA (the default CA of new instances since 2024; rds-ca-2019 has expired).
CA_CERTIFICATE = "rds-ca-rsa2048-g1"
# AWS's policy for Enhanced Monitoring: it writes only to the RDSOSMetrics log group.
ENHANCED_MONITORING_POLICY = "service-role/AmazonRDSEnhancedMonitoringRole"


class Postgres(Construct):
    """PostgreSQL in the isolated subnets, reachable on 5432 only from the application and RDS Proxy."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DatabaseConfig,
        # "roi-systems-<env>-postgres": the primary; replicas, log groups, proxy and roles are named after it.
        identifier: str,
        account_id: str,
        partition: str,
        network: NetworkOutputs,
        data_key: KmsKey,
        logs_key: KmsKey,
        dr_data_key: KmsKey,  # encrypts the automated backups replicated to the DR region
        dr_provider: TerraformProvider,
        password: WriteOnly,  # the master password, from the ephemeral db_password variable
        credentials: Secret,  # {"username", "password"} of the master user, for RDS Proxy
        dr_network: NetworkOutputs | None = None,  # the standby VPC; required for cross_region_replica
        dr_logs_key: KmsKey | None = None,  # encrypts the replica's log groups in the DR region
        # The pilot light (dr section): the replica's RDS Proxy role exists while idle, since IAM's control plane
        # lives in us-east-1 and may be what is lost; it reads the credentials' replica in the DR region.
        pilot_light: bool = False,
        dr_active: bool = False,  # failed over: the replica is promoted and gets its own RDS Proxy
        # Failing back (with dr_active): the primary is a replica of the promoted database, catching up.
        failback_replica: bool = False,
    ) -> None:
        super().__init__(scope, id)
        p = self._config = config
        self._identifier = identifier
        self._account_id = account_id
        self._partition = partition
        name = identifier

        self.security_group = SecurityGroup(
            self,
            "security_group",
            name=name,
            description=f"{name}: PostgreSQL from the application and RDS Proxy only",
            vpc_id=network.vpc_id,
            tags={"Name": name},
        )
        self.security_group_id = self.security_group.id  # read once: attribute reads are round trips to jsii
        self.proxy_security_group = SecurityGroup(
            self,
            "proxy_security_group",
            name=f"{name}-proxy",
            description=f"{name} RDS Proxy: PostgreSQL from the application only",
            vpc_id=network.vpc_id,
            tags={"Name": f"{name}-proxy"},
        )
        app = network.application_security_group_id
        # No other rule: the instances and the proxy only answer, and security groups are stateful.
        allow(
            self,
            "app_to_proxy",
            source=app,
            destination=self.proxy_security_group.id,
            port=POSTGRES_PORT,
            description="PostgreSQL: application to RDS Proxy",
        )
        allow(
            self,
            "proxy_to_database",
            source=self.proxy_security_group.id,
            destination=self.security_group_id,
            port=POSTGRES_PORT,
            description="PostgreSQL: RDS Proxy to the database",
        )
        # Direct access stays open for migrations and sessions the proxy would pin anyway.
        allow(
            self,
            "app_to_database",
            source=app,
            destination=self.security_group_id,
            port=POSTGRES_PORT,
            description="PostgreSQL: application to the database (migrations)",
        )

        self.parameter_group = self._parameter_group(self)

        self.monitoring_role = ServiceRole(
            self,
            "monitoring_role",
            props=ServiceRoleProps(
                name=f"{name}-monitoring",
                description=f"Enhanced Monitoring of {name} and its replicas",
                service="monitoring.rds.amazonaws.com",
                account_id=self._account_id,
            ),
        )
        monitoring_policy = IamRolePolicyAttachment(
            self,
            "monitoring_policy",
            role=self.monitoring_role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/{ENHANCED_MONITORING_POLICY}",
        )

        # Failing back (dr.failback_replica): the primary region's instance replicates from the promoted one in the
        # DR region, which must therefore exist first; otherwise the DR replica replicates from the primary.
        if failback_replica and not dr_active:
            raise ValueError(f"{name}: failing back needs the promoted database (dr_active)")

        def build_dr() -> None:
            self._dr(
                monitoring_policy,
                dr_network,
                dr_logs_key,
                dr_data_key,
                dr_provider,
                credentials,
                pilot_light=pilot_light,
                dr_active=dr_active,
            )

        self.dr_replica: DbInstance | None = None
        self.dr_proxy: DbProxy | None = None
        self.dr_proxy_role: ServiceRole | None = None
        role: dict[str, object]
        if failback_replica:
            build_dr()
            assert self.dr_replica is not None
            # A cross-region replica of the promoted database, in this region's subnets and encrypted with this
            # region's key; it inherits the engine, the master user and the password from its source.
            role = {
                "replicate_source_db": self.dr_replica.arn,
                "multi_az": False,
                "skip_final_snapshot": True,  # RDS takes no final snapshot of a replica
                # Named now, as the instance is created: the name is ignored after creation (below), and the
                # promoted primary takes a final snapshot under it.
                "final_snapshot_identifier": f"{name}-final-failback" if p.deletion_protection else None,
            }
        else:
            role = {
                "engine": "postgres",
                "engine_version": p.engine_version,
                "allocated_storage": p.allocated_storage_gb,
                "db_name": p.database_name,
                "username": p.master_username,
                # Write-only: RDS gets the password, the plan and the state never hold it.
                "password_wo": password.value,
                "password_wo_version": password.version,
                "multi_az": p.multi_az,
                "allow_major_version_upgrade": False,
                "skip_final_snapshot": not p.deletion_protection,
                "final_snapshot_identifier": final_snapshot_name(name) if p.deletion_protection else None,
            }
        self.primary = self._instance(
            "primary", name, data_key, logs_key, monitoring_policy, **role, **self._primary_backups(network)
        )
        # Rotation order: RDS accepts the new password before the secret RDS Proxy signs in with changes.
        credentials.written_after(self.primary)
        # Same-region replicas live in the primary's subnet group and VPC (RDS requires it); none while the primary
        # is itself a replica (failing back): the cut-over's apply creates them from the promoted primary.
        self.replicas = [
            self._instance(
                f"replica_{i}",
                f"{name}-replica-{i}",
                data_key,
                logs_key,
                monitoring_policy,
                replicate_source_db=self.primary.identifier,
                # A replica fails over by promotion; the primary's standby is the Multi-AZ copy.
                multi_az=False,
                skip_final_snapshot=True,
            )
            for i in range(0 if failback_replica else p.read_replicas)
        ]
        if failback_replica:  # their log groups stay (protected, and named by the replicas that come back)
            for i in range(p.read_replicas):
                self._log_groups(self, f"replica_{i}", f"{name}-replica-{i}", logs_key)

        self.backup_replication = None
        if p.cross_region_backups and not failback_replica:  # a replica's backups are not the history to keep
            self.backup_replication = DbInstanceAutomatedBackupsReplication(
                self,
                "backup_replication",
                source_db_instance_arn=self.primary.arn,
                kms_key_id=dr_data_key.arn,
                retention_period=p.backup_retention_days,
                provider=dr_provider,
            )

        if not failback_replica:
            build_dr()

        self.proxy_role = self._proxy_role("proxy_role", f"{name}-proxy", name)
        credentials.grant_read(self.proxy_role.role)
        self._proxy_log_group(self, name, logs_key)
        self.proxy = self._proxy(
            self,
            name,
            subnet_ids=network.database_subnet_ids,
            security_group_id=self.proxy_security_group.id,
            role=self.proxy_role,
            secret_arn=credentials.arn,
            # RDS Proxy fronts a writable instance only: none while the primary region's is a replica.
            target=None if failback_replica else self.primary,
        )
        self.master_username = p.master_username  # what IAM-authenticated clients sign in as, through the proxy
        self.database_name = p.database_name
        self.endpoint = self.primary.address
        self.port = POSTGRES_PORT
        self.replica_endpoints = [r.address for r in self.replicas]
        self.proxy_endpoint = self.proxy.endpoint

    def _primary_backups(self, network: NetworkOutputs) -> dict[str, object]:
        """What the primary keeps as a standalone instance and as the replica that fails back alike: its subnets,
        its backups (a replica promoted with none would start without history) and what they outlive."""
        p = self._config
        return {
            "db_subnet_group_name": network.database_subnet_group_name,
            "backup_retention_period": p.backup_retention_days,
            "backup_window": p.backup_window,
            # Where data is protected, its backups outlive an accidental destroy (restorable for their retention).
            "delete_automated_backups": not p.deletion_protection,
            # The final snapshot's name is fixed when the instance is created (see final_snapshot_name).
            "lifecycle": TerraformResourceLifecycle(ignore_changes=["final_snapshot_identifier"]),
        }

    def _dr(
        self,
        monitoring_policy: IamRolePolicyAttachment,
        dr_network: NetworkOutputs | None,
        dr_logs_key: KmsKey | None,
        dr_data_key: KmsKey,
        dr_provider: TerraformProvider,
        credentials: Secret,
        *,
        pilot_light: bool,
        dr_active: bool,
    ) -> None:
        """The cross-region replica in the standby VPC, where configured; with the pilot light, its RDS Proxy's role,
        and failed over (dr_active) the proxy itself in front of the promoted instance."""
        p = self._config
        name = self._identifier
        if (pilot_light or dr_active) and not p.cross_region_replica:
            raise ValueError(f"{name}: a pilot light needs the cross-region replica")
        if not p.cross_region_replica:
            return
        if dr_network is None or dr_logs_key is None:
            raise ValueError(f"{name}: a cross-region replica needs dr_network and dr_logs_key")
        dr = Construct(self, "dr")  # everything in it lives in the DR region
        use_provider(dr, dr_provider)
        # The replica admits only the DR application (and, failed over, its proxy).
        database_group = self._dr_app_group(dr, "", f"{name}-dr", dr_network, "app_to_database", "the DR replica")
        self.dr_replica = self._dr_replica(
            dr, dr_network, database_group, dr_data_key, dr_logs_key, monitoring_policy, promoted=dr_active
        )
        if pilot_light:
            self.dr_proxy_role = self._proxy_role("dr_proxy_role", f"{name}-dr-proxy", f"{name}-dr")
            credentials.grant_read(self.dr_proxy_role.role, replica=True)
            self._proxy_log_group(dr, f"{name}-dr", dr_logs_key)
        if dr_active:
            assert self.dr_proxy_role is not None, "failing over needs the pilot light"
            self.dr_proxy = self._proxy(
                dr,
                f"{name}-dr",
                subnet_ids=dr_network.database_subnet_ids,
                security_group_id=self._dr_proxy_security_group(dr, dr_network, database_group),
                role=self.dr_proxy_role,
                secret_arn=credentials.replica_arn,
                target=self.dr_replica,
            )

    def _dr_replica(
        self,
        dr: Construct,
        network: NetworkOutputs,
        security_group: SecurityGroup,
        key: KmsKey,
        logs_key: KmsKey,
        monitoring_policy: IamRolePolicyAttachment,
        *,
        promoted: bool,
    ) -> DbInstance:
        """A replica in the standby VPC of the DR region: promote it when the primary region is lost.

        ``promoted`` (dr.active): the same instance as the standalone primary failover.sh has made it, with the
        primary's availability and final-snapshot settings. Terraform does not promote it itself: the script does,
        before any plan, and a plan during the outage cannot refresh the source in the lost region, so the source
        argument's removal is ignored (the refreshed state agrees once the region is back).
        """
        p = self._config
        name = f"{self._identifier}-dr"
        role: dict[str, object] = (
            {
                "multi_az": p.multi_az,
                "skip_final_snapshot": not p.deletion_protection,
                # Named once, when the switch is set on an instance that already exists: a timestamp would
                # change on every plan, and ignoring it would leave the promoted instance without one.
                "final_snapshot_identifier": f"{name}-final-promoted" if p.deletion_protection else None,
                "delete_automated_backups": not p.deletion_protection,
                "lifecycle": TerraformResourceLifecycle(ignore_changes=["replicate_source_db"]),
                # Multi-AZ is wanted now, not at the next maintenance window: the conversion is online.
                "apply_immediately": True,
            }
            if promoted
            else {
                # Cross-region sources are named by ARN; the replica is encrypted with the DR region's key.
                "replicate_source_db": self.primary.arn,
                "multi_az": False,
                "skip_final_snapshot": True,  # RDS takes no final snapshot of a replica
            }
        )
        return self._instance(
            "replica",
            name,
            key,
            logs_key,
            monitoring_policy,
            scope=dr,
            security_group=security_group,
            parameter_group=self._parameter_group(dr),
            db_subnet_group_name=network.database_subnet_group_name,
            # Promoted, it becomes the primary: it must already keep backups.
            backup_retention_period=p.backup_retention_days,
            backup_window=p.backup_window,
            **role,
        )

    @staticmethod
    def _dr_app_group(
        dr: Construct, prefix: str, name: str, network: NetworkOutputs, rule: str, what: str
    ) -> SecurityGroup:
        """A security group in the standby VPC that admits PostgreSQL from the DR application group only."""
        return admitting_group(
            dr,
            prefix,
            name=name,
            description=f"{name}: PostgreSQL from the application (DR region) only",
            vpc_id=network.vpc_id,
            source=network.application_security_group_id,
            port=POSTGRES_PORT,
            rule=rule,
            rule_description=f"PostgreSQL: application (DR region) to {what}",
        )

    def _dr_proxy_security_group(self, dr: Construct, network: NetworkOutputs, database: SecurityGroup) -> str:
        """The promoted database's RDS Proxy group in the standby VPC: the DR application in, the database out."""
        group = self._dr_app_group(dr, "proxy_", f"{self._identifier}-dr-proxy", network, "app_to_proxy", "RDS Proxy")
        allow(
            dr,
            "proxy_to_database",
            source=group.id,
            destination=database.id,
            port=POSTGRES_PORT,
            description="PostgreSQL: RDS Proxy (DR region) to the promoted database",
        )
        return group.id

    def _parameter_group(self, scope: Construct) -> DbParameterGroup:
        """TLS only, slow statements and DDL logged; one per region (parameter groups are regional)."""
        p = self._config
        name = self._identifier
        family = f"postgres{p.engine_version.split('.')[0]}"
        return DbParameterGroup(
            scope,
            "parameter_group",
            name=f"{name}-{family}",
            family=family,
            description=f"{name}: TLS only, slow-statement and DDL logging",
            parameter=[
                DbParameterGroupParameter(name="rds.force_ssl", value="1", apply_method="pending-reboot"),
                # TLS 1.2 at least; not 1.3, which RDS Proxy (the pool in front) does not speak to the database.
                DbParameterGroupParameter(name="ssl_min_protocol_version", value=MIN_TLS_VERSION),
                DbParameterGroupParameter(
                    name="log_min_duration_statement", value=str(p.log_min_duration_statement_ms)
                ),
                # DDL only: "all" would write every bind value (personal data) into the logs.
                DbParameterGroupParameter(name="log_statement", value="ddl"),
                DbParameterGroupParameter(name="log_connections", value="1"),
                DbParameterGroupParameter(name="log_disconnections", value="1"),
                DbParameterGroupParameter(name="log_lock_waits", value="1"),
                DbParameterGroupParameter(name="log_temp_files", value="0"),
            ],
            tags={"Name": f"{name}-{family}"},
            # A major upgrade brings a new family: the new group must exist before the old one goes.
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )

    def _log_groups(self, scope: Construct, id: str, identifier: str, logs_key: KmsKey) -> list[CloudwatchLogGroup]:
        """The groups RDS would otherwise create itself, unencrypted and kept forever."""
        return [
            CloudwatchLogGroup(
                scope,
                f"{id}_{export}_log_group",
                name=f"/aws/rds/instance/{identifier}/{export}",
                retention_in_days=self._config.log_retention_days,
                kms_key_id=logs_key.arn,
                tags={"Name": f"{identifier}-{export}"},
            )
            for export in LOG_EXPORTS
        ]

    def _instance(
        self,
        id: str,
        identifier: str,
        data_key: KmsKey,
        logs_key: KmsKey,
        monitoring_policy: IamRolePolicyAttachment,
        *,
        scope: Construct | None = None,  # default: this construct (primary region)
        security_group: SecurityGroup | None = None,  # default: the primary region's database group
        parameter_group: DbParameterGroup | None = None,  # default: the primary region's parameter group
        **specific: object,
    ) -> DbInstance:
        """The settings the primary and every replica share, plus ``specific``."""
        p = self._config
        scope = scope or self
        log_groups = self._log_groups(scope, id, identifier, logs_key)
        return DbInstance(
            scope,
            id,
            identifier=identifier,
            instance_class=p.instance_class,
            storage_type="gp3",
            max_allocated_storage=p.max_allocated_storage_gb,
            storage_encrypted=True,
            kms_key_id=data_key.arn,
            port=POSTGRES_PORT,
            vpc_security_group_ids=[security_group.id if security_group else self.security_group_id],
            publicly_accessible=False,
            parameter_group_name=(parameter_group or self.parameter_group).name,
            iam_database_authentication_enabled=True,
            ca_cert_identifier=CA_CERTIFICATE,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            performance_insights_enabled=True,
            performance_insights_kms_key_id=data_key.arn,
            performance_insights_retention_period=p.performance_insights_retention_days,
            monitoring_interval=p.monitoring_interval_seconds,
            monitoring_role_arn=self.monitoring_role.arn,
            auto_minor_version_upgrade=True,
            copy_tags_to_snapshot=True,
            maintenance_window=p.maintenance_window,
            deletion_protection=p.deletion_protection,
            # Changes wait for the maintenance window unless an operator applies them by hand (or a failover: below).
            **{"apply_immediately": False, **specific},
            tags={"Name": identifier},
            # RDS must find its log groups (encrypted, with retention) and a working monitoring role.
            depends_on=[*log_groups, monitoring_policy],
        )

    def _proxy_role(self, id: str, name: str, proxy_name: str) -> ServiceRole:
        return ServiceRole(
            self,
            id,
            props=ServiceRoleProps(
                name=name,
                description=f"RDS Proxy of {proxy_name} reads the master credentials",
                service="rds.amazonaws.com",
                account_id=self._account_id,
            ),
        )

    def _proxy_log_group(self, scope: Construct, name: str, logs_key: KmsKey) -> CloudwatchLogGroup:
        """The group RDS Proxy ``name`` logs to. The DR region's stands with the pilot light, before its proxy: a
        failback forgets the proxy but must not leave its logs behind for the next failover to collide with."""
        return CloudwatchLogGroup(
            scope,
            "proxy_log_group",
            name=f"/aws/rds/proxy/{name}",
            retention_in_days=self._config.log_retention_days,
            kms_key_id=logs_key.arn,
            tags={"Name": f"{name}-proxy"},
        )

    def _proxy(
        self,
        scope: Construct,
        name: str,
        *,
        subnet_ids: list[str],
        security_group_id: str,
        role: ServiceRole,
        secret_arn: str,  # the master credentials, in the proxy's region
        target: DbInstance | None,  # None: a proxy without a target yet
    ) -> DbProxy:
        """RDS Proxy: TLS and IAM authentication from clients, the master secret towards the database (it logs to
        the group _proxy_log_group makes, made first)."""
        p = self._config
        proxy = DbProxy(
            scope,
            "proxy",
            name=name,
            engine_family="POSTGRESQL",
            role_arn=role.arn,
            vpc_subnet_ids=subnet_ids,
            vpc_security_group_ids=[security_group_id],
            require_tls=True,
            idle_client_timeout=p.proxy_idle_client_timeout_seconds,
            debug_logging=False,  # it would log statements, with their data
            auth=[
                DbProxyAuth(
                    auth_scheme="SECRETS",
                    iam_auth="REQUIRED",
                    secret_arn=secret_arn,
                    description="Master credentials; clients authenticate with IAM tokens",
                )
            ],
            tags={"Name": f"{name}-proxy"},
        )
        target_group = DbProxyDefaultTargetGroup(
            scope,
            "proxy_target_group",
            db_proxy_name=proxy.name,
            connection_pool_config=DbProxyDefaultTargetGroupConnectionPoolConfig(
                max_connections_percent=p.proxy_max_connections_percent,
                max_idle_connections_percent=p.proxy_max_idle_connections_percent,
                connection_borrow_timeout=p.proxy_connection_borrow_timeout_seconds,
            ),
        )
        if target is not None:
            DbProxyTarget(
                scope,
                "proxy_target",
                db_proxy_name=proxy.name,
                target_group_name=target_group.name,
                db_instance_identifier=target.identifier,
            )
        return proxy

"""``<env>``: one environment on its own S3 remote state, composed from the modules in dependency order.

This is the only place that knows every module. Each module gets its slice of the configuration and the few
things it is wired to (keys, network outputs, names); each owns the stack outputs of what it creates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf import Fn, TerraformProvider, TerraformStack, TerraformVariable, TerraformVariableValidationConfig
from constructs import Construct

from roi_tf.config import DISPOSABLE_ENVIRONMENTS, PROJECT, EnvironmentConfig, NetworkingConfig
from roi_tf.modules.cdn import Cdn, CdnLogging, CdnOrigins
from roi_tf.modules.compute import (
    Backends,
    Compute,
    ComputeKeys,
    Failover,
    ImageReplicas,
    ImageTags,
    Standby,
)
from roi_tf.modules.compute.routing import ServingCheck, ServingTargets
from roi_tf.modules.database import Database
from roi_tf.modules.database.cache import DR_SUFFIX, app_user_id
from roi_tf.modules.exports import export
from roi_tf.modules.monitoring import AlertKeys, Monitoring, Regions, Targets, publishers
from roi_tf.modules.monitoring.alarms import ServingTier
from roi_tf.modules.networking import Networking
from roi_tf.modules.protection import protect_data
from roi_tf.modules.replication import replication_rule_id
from roi_tf.modules.security import (
    AccountServices,
    Audit,
    AuditProps,
    EncryptionKeys,
    EncryptionKeysProps,
    Operators,
    OperatorsProps,
    Pipeline,
    PipelineProps,
    Secret,
    SecretProps,
    WebAcl,
    WebAclProps,
    WriteOnly,
    web_acl_log_group,
)
from roi_tf.modules.storage import ASSETS, Storage
from roi_tf.naming import (
    kms_alias,
    log_group_prefix,
    prefix,
    resource_name,
    state_key,
    trail_name,
    waf_log_group_name,
    waf_log_group_prefix,
)
from roi_tf.stacks.common import GLOBAL_REGION, aws_provider, identity, remote_state

# RDS master passwords: 16-128 printable ASCII characters except / ' " @ and space (RE2 syntax, for Terraform).
DB_PASSWORD_PATTERN = "^[!#-&(-.0-?A-~]{16,128}$"  # noqa: S105 (a validation pattern, not a password)
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class SecretVariable:
    """An ephemeral, sensitive input variable: its value is never written to a plan or the state."""

    description: str
    condition: str  # a Terraform expression over var.<name>
    error_message: str


# Deployment inputs CI sets (TF_VAR_*): what to run, never edited in config. Image tags follow ECR's format;
# "latest" is refused, since the repositories are immutable and a deploy must name the image it means.
IMAGE_TAG_CONDITION = 'can(regex("^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$", var.{name})) && var.{name} != "latest"'
DEPLOYMENT_VARIABLES = {
    "api_image_tag": "Tag of the backend API image in its ECR repository (set by CI: TF_VAR_api_image_tag).",
    "ml_image_tag": "Tag of the ML service image in its ECR repository (set by CI: TF_VAR_ml_image_tag).",
    "event_processor_code": (
        "The event processor's code: its S3 key in the artifacts bucket (package_type Zip) or its image tag in "
        "the event-processor repository (Image); set by CI: TF_VAR_event_processor_code."
    ),
}

SECRET_VARIABLES = {
    "db_password": SecretVariable(
        "Master password of the PostgreSQL database (export TF_VAR_db_password).",
        f'${{can(regex("{DB_PASSWORD_PATTERN}", var.db_password))}}',
        "db_password must be 16 to 128 printable ASCII characters, without /, ', \", @ or spaces (what RDS accepts).",
    ),
    "jwt_secret": SecretVariable(
        "Secret that signs the API's JSON Web Tokens (export TF_VAR_jwt_secret).",
        f"${{length(var.jwt_secret) >= {MIN_SECRET_LENGTH}}}",
        f"jwt_secret must be at least {MIN_SECRET_LENGTH} characters long.",
    ),
}


PAGERDUTY_VARIABLE = "pagerduty_integration_url"
PAGERDUTY_URL_PATTERN = "^https://events\\\\.(eu\\\\.)?pagerduty\\\\.com/[A-Za-z0-9/_-]+$"


class EnvironmentStack(TerraformStack):
    """One environment (``dev``, ``staging`` or ``prod``) on its own S3 remote state."""

    def __init__(self, scope: Construct, config: EnvironmentConfig, *, state_location: str = "primary") -> None:
        super().__init__(scope, config.name)
        self.config = config
        self._state_location = state_location  # "dr": on the state's DR copy (a regional outage)
        if config.protection.prevent_destroy:
            protect_data(self)
        aws_provider(self, config, config.region)
        self.dr_provider = aws_provider(self, config, config.dr_region, alias="dr")
        self.global_provider = aws_provider(self, config, GLOBAL_REGION, alias="us_east_1")
        self._backend()
        self.variables = {name: self._secret_variable(name, spec) for name, spec in SECRET_VARIABLES.items()}
        self.pagerduty_url = self._pagerduty_variable() if config.monitoring.critical.route == "pagerduty" else None
        self.deployment = {name: self._deployment_variable(name, about) for name, about in DEPLOYMENT_VARIABLES.items()}
        self.account_id, self.partition = identity(self)
        # Known before the trail exists: the logs key and bucket policies name it.
        self.trail_arn = (
            f"arn:{self.partition}:cloudtrail:{config.region}:{self.account_id}:trail/{trail_name(config.name)}"
        )

        self.keys = self._keys()
        self.secrets = self._secrets()
        self.networking = self._networking("networking", config.networking, config.region)
        self.dr_networking = (
            self._networking("dr_networking", config.dr_networking, config.dr_region, self.dr_provider)
            if config.dr_networking
            else None
        )
        self.database = self._database()
        self.storage = self._storage()
        self._security()
        self.compute = self._compute()
        self.dr_compute = self._dr_compute() if self._standby else None
        self._publish_names()
        self.cdn = self._cdn()
        self.monitoring = self._monitoring()
        self.pipeline = self._pipeline() if config.ci.enabled else None  # last: it reads the stack's resources

    # --- the stack's own parts -------------------------------------------------------------------

    def _backend(self) -> None:
        remote_state(self, self.config, state_key(self.config.name), self._state_location)

    def _secret_variable(self, name: str, spec: SecretVariable) -> TerraformVariable:
        variable = TerraformVariable(
            self,
            name,
            type="string",
            description=spec.description,
            sensitive=True,
            nullable=False,
            validation=[TerraformVariableValidationConfig(condition=spec.condition, error_message=spec.error_message)],
        )
        # Ephemeral (Terraform >= 1.10; write-only arguments need 1.11): usable only in write-only arguments,
        # never stored. cdktf 0.21's variable class predates the argument.
        variable.add_override("ephemeral", True)
        return variable

    def _pagerduty_variable(self) -> TerraformVariable:
        """PagerDuty's integration URL for critical alerts (TF_VAR_pagerduty_integration_url), never in config files.

        Sensitive, so plans and logs redact it, but not ephemeral: an SNS subscription's endpoint has no write-only
        argument, so the URL is stored in the (encrypted) state, as SNS itself shows it to the account's readers.
        Its key only opens incidents on one PagerDuty service; rotate it there and re-apply (docs/DEPLOYMENT.md).
        """
        return TerraformVariable(
            self,
            PAGERDUTY_VARIABLE,
            type="string",
            description="PagerDuty integration URL (Amazon CloudWatch integration) for critical alerts "
            "(export TF_VAR_pagerduty_integration_url).",
            sensitive=True,
            nullable=False,
            validation=[
                TerraformVariableValidationConfig(
                    condition=f'${{can(regex("{PAGERDUTY_URL_PATTERN}", var.{PAGERDUTY_VARIABLE}))}}',
                    error_message=f"{PAGERDUTY_VARIABLE} must be a PagerDuty events URL (https://events.pagerduty.com/...).",
                )
            ],
        )

    def _deployment_variable(self, name: str, description: str) -> TerraformVariable:
        image = self.config.compute.event_processing.package_type == "Image"
        tag = name.endswith("_image_tag") or (name == "event_processor_code" and image)
        return TerraformVariable(
            self,
            name,
            type="string",
            description=description,
            nullable=False,
            validation=[
                TerraformVariableValidationConfig(
                    condition=f"${{{IMAGE_TAG_CONDITION.replace('{name}', name)}}}"
                    if tag
                    else f"${{length(var.{name}) > 0}}",
                    error_message=f"{name} must be an ECR image tag (not latest)." if tag else f"{name} is empty.",
                )
            ],
        )

    def _secrets(self) -> dict[str, Secret]:
        """The application's secrets, their values straight from the ephemeral variables (write-only)."""
        config, sec = self.config, self.config.security
        credentials = Fn.jsonencode(
            # RDS Proxy reads the credentials as JSON with "username" and "password".
            {"username": config.database.master_username, "password": self.variables["db_password"].string_value}
        )
        values = {
            "db_credentials": (
                f"{PROJECT}/{config.name}/database/master",
                "PostgreSQL master credentials (RDS Proxy and migrations)",
                WriteOnly(credentials, sec.db_password_version),
            ),
            "jwt_secret": (
                f"{PROJECT}/{config.name}/api/jwt-secret",
                "Secret that signs the API's JSON Web Tokens",
                WriteOnly(self.variables["jwt_secret"].string_value, sec.jwt_secret_version),
            ),
        }
        secrets = {
            key: Secret(
                self,
                f"{key}_secret",
                props=SecretProps(
                    name=name,
                    description=description,
                    value=value,
                    region=config.region,
                    recovery_window_days=sec.secret_recovery_window_days,
                    replica_region=config.dr_region if config.dr.enabled else None,
                ),
                key=self.keys.data,
                replica_key=self.keys.dr_data if config.dr.enabled else None,
            )
            for key, (name, description, value) in values.items()
        }
        export(self, {"jwt_secret_arn": (secrets["jwt_secret"].arn, "Secret: the API's JWT signing secret")})
        return secrets

    # --- the modules, in dependency order ----------------------------------------------------------

    def _keys(self) -> EncryptionKeys:
        config, env = self.config, self.config.name
        logs, waf_logs = log_group_prefix(env), f"{waf_log_group_prefix(env)}*"
        alerts = publishers(self._regions(), dr_topic=config.database.cross_region_replica)
        return EncryptionKeys(
            self,
            "keys",
            props=EncryptionKeysProps(
                env=env,
                region=config.region,
                dr_region=config.dr_region,
                global_region=GLOBAL_REGION,
                account_id=self.account_id,
                partition=self.partition,
                deletion_window_days=config.security.kms_deletion_window_days,
                # This environment's groups, and those AWS services name themselves (created here first, encrypted).
                log_group_patterns=[
                    f"{logs}/*",
                    f"/aws/rds/instance/{prefix(env)}-*",
                    f"/aws/rds/proxy/{prefix(env)}-*",
                    waf_logs,
                ],
                global_log_group_patterns=[waf_logs],
                trail_arn=self.trail_arn,
                create_dr_logs_key=config.dr_networking is not None,
                config_deliveries=config.security.records_configuration,
                alert_publishers=alerts["primary"],
                cost_alert_publishers=alerts["cost"],
                dr_alert_publishers=alerts["dr"],
            ),
            dr_provider=self.dr_provider,
            global_provider=self.global_provider,
        )

    def _networking(
        self, id: str, net: NetworkingConfig, region: str, provider: TerraformProvider | None = None
    ) -> Networking:
        """The primary VPC, or the standby VPC in the DR region (no NAT, no endpoints) when ``provider`` is given."""
        env, standby = self.config.name, provider is not None
        key = self.keys.dr_logs if standby else self.keys.logs
        assert key is not None  # a DR logs key exists whenever there is a standby VPC
        return Networking(
            self,
            id,
            config=net,
            name=f"{prefix(env)}-dr" if standby else prefix(env),
            region=region,
            flow_log_group_name=f"{log_group_prefix(env)}{'/dr' if standby else ''}/vpc-flow-logs",
            flow_log_key=key,
            flow_log_role_name=resource_name(env, f"{'dr-' if standby else ''}vpc-flow-logs", kind="iam_role"),
            account_id=self.account_id,
            provider=provider,
            export_outputs=not standby,
        )

    def _database(self) -> Database:
        config = self.config
        return Database(
            self,
            "database",
            env=config.name,
            database=config.database,
            cache=config.cache,
            sessions=config.sessions,
            account_id=self.account_id,
            partition=self.partition,
            network=self.networking.outputs,
            keys=self.keys,
            credentials=self.secrets["db_credentials"],
            password=WriteOnly(self.variables["db_password"].string_value, config.security.db_password_version),
            dr_region=config.dr_region,
            dr_provider=self.dr_provider,
            dr_network=self.dr_networking.outputs if self.dr_networking else None,
            pilot_light=config.dr.enabled,
            cache_replica=config.dr.enabled and config.dr.cache_replica,
            dr_active=config.dr.active,
            failback_replica=config.dr.failback_replica,
        )

    def _storage(self) -> Storage:
        config = self.config
        return Storage(
            self,
            "storage",
            config=config.storage,
            dr_load_balancer_logs=self._standby_serves,
            name_prefix=prefix(config.name),
            region=config.region,
            dr_region=config.dr_region,
            global_region=GLOBAL_REGION,
            account_id=self.account_id,
            partition=self.partition,
            trail_arn=self.trail_arn,
            config_deliveries=config.security.records_configuration,
            key=self.keys.storage,
            assets_key=self.keys.assets,
            dr_key=self.keys.dr_storage,
            dr_provider=self.dr_provider,
        )

    def _security(self) -> None:
        """Audit trail, account-level services (threat detection, Config, password policy), operators, web ACLs."""
        config, env, sec = self.config, self.config.name, self.config.security
        storage = self.storage.outputs
        # Object-level events for the critical (replicated) buckets and for the state (who read or changed it matters).
        audited = [storage.bucket_arns[name] for name, bucket in config.storage.buckets.items() if bucket.replicate]
        audited.append(f"arn:{self.partition}:s3:::{config.state.bucket}")
        self.audit = Audit(
            self,
            "audit",
            props=AuditProps(
                trail_name=trail_name(env),
                region=config.region,
                account_id=self.account_id,
                partition=self.partition,
                log_group_name=f"{log_group_prefix(env)}/cloudtrail",
                log_retention_days=sec.cloudtrail_log_retention_days,
                logs_bucket_name=storage.logs_bucket_name,
                logs_bucket_prefix=storage.cloudtrail_log_prefix,
                data_event_bucket_arns=audited,
                role_name=resource_name(env, "cloudtrail-logs", kind="iam_role"),
            ),
            logs_key=self.keys.logs,
            logs_bucket_policy=self.storage.logs.policy,
        )
        self.account_services = AccountServices(
            self,
            "account_services",
            config=sec,
            name=prefix(env),
            region=config.region,
            partition=self.partition,
            config_bucket_name=storage.logs_bucket_name,
            config_bucket_prefix=storage.config_log_prefix,
            config_kms_key_arn=self.keys.logs.arn,
            config_bucket_policy=self.storage.logs.policy,
            dr_provider=self.dr_provider,
        )
        self.operators = Operators(
            self,
            "operators",
            props=OperatorsProps(
                name=resource_name(env, "operators", kind="iam_role"),
                name_prefix=prefix(env),
                log_group_prefix=log_group_prefix(env),
                region=config.region,
                account_id=self.account_id,
                partition=self.partition,
                require_mfa=sec.operators_require_mfa,
                max_session_hours=sec.operators_max_session_hours,
            ),
        )
        # REGIONAL for the load balancers (compute module), CLOUDFRONT for the distribution (cdn module), and
        # DR_REGIONAL for the standby's public load balancer (the same rules, in the DR region), idle or not: a public
        # load balancer is never without one. Where the failover creates that one, its log group stands already.
        placements = {
            "REGIONAL": ("REGIONAL", self.keys.logs, None, ""),
            "CLOUDFRONT": ("CLOUDFRONT", self.keys.global_logs, self.global_provider, ""),
        }
        if self._standby:
            assert self.keys.dr_logs is not None
            placements["DR_REGIONAL"] = ("REGIONAL", self.keys.dr_logs, self.dr_provider, "dr_")
        self.web_acls: dict[str, WebAcl] = {}
        for placement, (scope, logs_key, provider, output_prefix) in placements.items():
            props = WebAclProps(
                name=resource_name(env, scope.lower()),
                scope=scope,
                rate_limit=sec.waf_rate_limit,
                log_group_name=waf_log_group_name(env, scope),
                log_retention_days=sec.waf_log_retention_days,
                output_name=f"{output_prefix}{scope.lower()}_web_acl_arn",
                # Document uploads pass the body-size rule there (both front the same API).
                large_body_path_prefixes=config.compute.load_balancer.upload_path_prefixes,
            )
            id = f"waf_{placement.lower()}"
            if placement == "DR_REGIONAL" and not self._standby_serves:
                web_acl_log_group(Construct(self, id), props, logs_key, provider)
            else:
                self.web_acls[placement] = WebAcl(self, id, props=props, logs_key=logs_key, provider=provider)

    @property
    def _standby(self) -> bool:
        """The pilot light's application tier: the compute module in the standby VPC, at zero tasks until failover."""
        return self.config.dr.enabled and self.config.dr_networking is not None

    @property
    def _standby_serves(self) -> bool:
        """... with its load balancers (and so its services, DNS names and web ACL): idle where dr.standby_compute
        says so, else created by the failover (dr.active)."""
        dr = self.config.dr
        return self._standby and (dr.standby_compute or dr.active)

    def _images(self) -> ImageTags:
        return ImageTags(
            api=self.deployment["api_image_tag"].string_value,
            ml=self.deployment["ml_image_tag"].string_value,
            event_processor=self.deployment["event_processor_code"].string_value,
        )

    def _compute(self) -> Compute:
        config, keys = self.config, self.keys
        jwt_secret = self.secrets["jwt_secret"]
        return Compute(
            self,
            "compute",
            config=config.compute,
            env=config.name,
            region=config.region,
            account_id=self.account_id,
            partition=self.partition,
            log_group_prefix=log_group_prefix(config.name),
            disposable=config.name in DISPOSABLE_ENVIRONMENTS,
            network=self.networking.outputs,
            keys=ComputeKeys(storage=keys.storage, logs=keys.logs, data=keys.data),
            storage=self.storage.outputs,
            backends=self._backends(),
            jwt_secret_arn=jwt_secret.arn,
            jwt_secret_statements=jwt_secret.read_statements(),
            web_acl_arn=self.web_acls["REGIONAL"].arn,
            images=self._images(),
            image_replicas=ImageReplicas(config.dr_region, self.dr_provider, self.keys.dr_storage)
            if config.dr.enabled
            else None,
        )

    def _backends(self) -> Backends:
        """The primary region's: RDS Proxy, the cache, the sessions table."""
        pg, cache, sessions = self.database.postgres, self.database.cache, self.database.sessions
        proxy_id = Fn.element(Fn.split(":", pg.proxy.arn), 6)  # prx-...: the proxy's resource ID
        rds_db = f"arn:{self.partition}:rds-db:{self.config.region}:{self.account_id}"
        return Backends(
            **self._logins(),
            database_host=pg.proxy_endpoint,
            database_connect_arn=f"{rds_db}:dbuser:{proxy_id}/{pg.master_username}",
            redis_host=cache.configuration_endpoint,
            redis_user=cache.app_user_name,
            redis_arns=[cache.replication_group.arn, cache.app_user.arn],
            sessions_table_name=sessions.name if sessions is not None else None,
            sessions_table_arn=sessions.arn if sessions is not None else None,
        )

    def _logins(self) -> dict[str, Any]:
        """What is the same in every region: the database's port, name and user, the cache's port."""
        pg = self.database.postgres
        return {
            "database_port": pg.port,
            "database_name": pg.database_name,
            "database_user": pg.master_username,
            "redis_port": self.database.cache.port,
        }

    def _dr_backends(self) -> Backends:
        """The DR region's: the promoted database's RDS Proxy (idle: the replica itself, which no task reaches), the
        cache's DR group (the Global Datastore's secondary, or the cache created on failover; idle without a
        secondary: none) and the sessions table's replica. The ARNs are built from names: the task role's policy
        is the same idle and failed over."""
        config, pg, database = self.config, self.database.postgres, self.database
        dr, account, partition = config.dr_region, self.account_id, self.partition
        assert pg.dr_replica is not None
        redis_group = f"{resource_name(config.name, 'redis')}{DR_SUFFIX}"
        redis_user = app_user_id(redis_group)
        elasticache = f"arn:{partition}:elasticache:{dr}:{account}"
        cache = database.dr_cache
        secondary = database.cache.dr_replication_group
        redis_host = (
            cache.configuration_endpoint
            if cache is not None
            else secondary.configuration_endpoint_address
            if secondary is not None
            else None
        )
        sessions = resource_name(config.name, "sessions") if database.sessions is not None else None  # a replica
        return Backends(
            **self._logins(),
            database_host=pg.dr_proxy.endpoint if pg.dr_proxy is not None else pg.dr_replica.address,
            # The proxy's resource ID is known only once it exists, on failover: any proxy of this account there.
            database_connect_arn=f"arn:{partition}:rds-db:{dr}:{account}:dbuser:prx-*/{pg.master_username}",
            redis_host=redis_host,
            redis_user=redis_user,
            redis_arns=[f"{elasticache}:replicationgroup:{redis_group}", f"{elasticache}:user:{redis_user}"],
            sessions_table_name=sessions,
            sessions_table_arn=f"arn:{partition}:dynamodb:{dr}:{account}:table/{sessions}" if sessions else None,
        )

    def _dr_compute(self) -> Compute:
        """The application tier of the pilot light: the same module in the standby VPC (dr.active: serving)."""
        config, keys = self.config, self.keys
        assert self.dr_networking is not None and keys.dr_logs is not None
        jwt_secret = self.secrets["jwt_secret"]
        dr_env = f"{config.name}{DR_SUFFIX}"  # IAM names are global: the standby's roles are roi-systems-<env>-dr-*
        return Compute(
            self,
            "dr_compute",
            config=config.compute,
            env=dr_env,
            region=config.dr_region,
            account_id=self.account_id,
            partition=self.partition,
            log_group_prefix=f"{log_group_prefix(config.name)}/dr",
            disposable=False,
            network=self.dr_networking.outputs,
            keys=ComputeKeys(storage=keys.dr_storage, logs=keys.dr_logs, data=keys.dr_data),
            storage=self.storage.dr_outputs,
            backends=self._dr_backends(),
            jwt_secret_arn=jwt_secret.replica_arn,
            jwt_secret_statements=jwt_secret.read_statements(replica=True),
            web_acl_arn=self.web_acls["DR_REGIONAL"].arn if self._standby_serves else None,
            images=self._images(),
            standby=Standby(
                provider=self.dr_provider,
                repositories=self.compute.replica_repositories,
                certificate=self.compute.certificate,
                active=config.dr.active,
                load_balancers=self._standby_serves,
            ),
            output_prefix="dr_",
        )

    def _publish_names(self) -> None:
        """The services' DNS names. With a pilot light, the primary's half of a failover pair (the standby's half
        comes with its compute module), moved by the replica's promotion."""
        postgres, public = self.database.postgres, self.compute.public_lb
        if not self.config.dr.enabled or postgres.dr_replica is None:
            self.compute.publish()
            return
        check = ServingCheck(
            self,
            "serving_check",
            name=prefix(self.config.name),
            targets=ServingTargets(
                region=self.config.region,
                load_balancer=public.arn_suffix,
                target_group=public.target_group_arn_suffix,
                dr_region=self.config.dr_region,
                dr_replica=postgres.dr_replica.identifier,
            ),
            dr_provider=self.dr_provider,
        )
        self.compute.publish(Failover("PRIMARY", self.config.region, check.health_check_id))
        if self.dr_compute is not None:
            self.dr_compute.publish(Failover("SECONDARY", self.config.dr_region, None))  # none without load balancers

    def _cdn(self) -> Cdn:
        config = self.config
        storage = self.storage.outputs
        return Cdn(
            self,
            "cdn",
            config=config.cdn,
            name=prefix(config.name),
            origins=CdnOrigins(
                assets_bucket=self.storage.buckets[ASSETS],
                assets_key=self.keys.assets,
                api_domain_name=config.compute.load_balancer.domain_name if config.cdn.api_origin else None,
            ),
            logging=CdnLogging(bucket_arn=storage.logs_bucket_arn, prefix=storage.cloudfront_log_prefix),
            web_acl_arn=self.web_acls["CLOUDFRONT"].arn,
            provider=self.global_provider,
        )

    def _regions(self) -> Regions:
        return Regions(primary=self.config.region, dr=self.config.dr_region, cost=GLOBAL_REGION)

    def _monitoring(self) -> Monitoring:
        config, compute, database = self.config, self.compute, self.database
        postgres = database.postgres
        gpu = compute.gpu
        chatbot = (
            {"chatbot": aws_provider(self, config, config.monitoring.chatbot_region, alias="chatbot")}
            if config.monitoring.warning.route == "slack"
            else {}
        )
        return Monitoring(
            self,
            "monitoring",
            config=config.monitoring,
            budget=config.budget,
            env=config.name,
            name=prefix(config.name),
            targets=Targets(
                tier=_tier(compute),
                cluster_arn=compute.cluster.arn,
                database=postgres.primary.identifier,
                database_replicas=[replica.identifier for replica in postgres.replicas],
                dr_replica=postgres.dr_replica.identifier if postgres.dr_replica is not None else None,
                dr_promoted=config.dr.active,
                dr_tier=_tier(self.dr_compute) if config.dr.active and self.dr_compute is not None else None,
                redis_nodes=database.cache.node_ids,
                dead_letter_queue=compute.events.dead_letter_queue_name,
                function_name=compute.events.function_name,
                log_metric_namespace=f"{prefix(config.name)}/application",
                distribution_id=self.cdn.distribution.id,
                api_tracing_name=compute.api.tracing_name,
                gpu_auto_scaling_group=gpu.auto_scaling_group_name if gpu is not None else None,
                **self._replication_targets(),
            ),
            regions=self._regions(),
            account_id=self.account_id,
            partition=self.partition,
            keys=AlertKeys(primary=self.keys.alerts, cost=self.keys.cost_alerts, dr=self.keys.dr_alerts),
            pagerduty_url=self.pagerduty_url.string_value if self.pagerduty_url is not None else None,
            providers={"dr": self.dr_provider, "cost": self.global_provider, **chatbot},
        )

    def _replication_targets(self) -> dict[str, Any]:
        """What the pilot light replicates, for the monitoring module's RPO alarms (none without a pilot light)."""
        config = self.config
        if not config.dr.enabled:
            return {}
        storage, sessions = self.storage, self.database.sessions
        return {
            "replicated_buckets": {
                **{name: (storage.buckets[name].name, replica.name) for name, replica in storage.replicas.items()},
                # The state's copy (state-<env> replicates it with the same rule): Terraform's own RPO.
                "terraform-state": (config.state.bucket, config.dr.state_bucket),
            },
            "replication_rule_id": replication_rule_id(config.dr_region),
            "replicated_table": sessions.name if sessions is not None else None,
            "rpo_seconds": config.dr.rpo_minutes * 60,
        }

    def _pipeline(self) -> Pipeline:
        """The CI roles (.github/workflows/infra.yml), trusting only the configured repository."""
        config, env, ci = self.config, self.config.name, self.config.ci
        assert ci.github_repository is not None and ci.github_environment is not None
        monitoring = config.monitoring
        chatbot = (
            [monitoring.chatbot_region] if "slack" in (monitoring.critical.route, monitoring.warning.route) else []
        )
        return Pipeline(
            self,
            "pipeline",
            props=PipelineProps(
                env=env,
                name_prefix=prefix(env),
                plan_role_name=resource_name(env, "ci-plan", kind="iam_role"),
                apply_role_name=resource_name(env, "ci-apply", kind="iam_role"),
                repository=ci.github_repository,
                github_environment=ci.github_environment,
                main_branch=ci.main_branch,
                owns_provider=config.security.owns_account_services,
                regions=sorted({config.region, config.dr_region, GLOBAL_REGION, *chatbot}),
                region=config.region,
                account_id=self.account_id,
                partition=self.partition,
                state_bucket=config.state.bucket,
                state_key=state_key(env),
                lock_table=config.state.lock_table,
                state_key_alias=kms_alias(env, "tfstate"),
                secrets_key_alias=kms_alias(env, "data"),
                secret_name_prefix=f"{PROJECT}/{env}/",
                log_group_prefix=log_group_prefix(env),
            ),
            stack=self,
        )


def _tier(compute: Compute) -> ServingTier:
    """What the monitoring module watches of a region's services (the primary's, or a failed-over DR region's)."""
    return ServingTier(
        cluster_name=compute.cluster.name,
        services={"api": compute.api.name, "ml": compute.ml.name},
        public_lb=compute.public_lb.arn_suffix,
        public_target_group=compute.public_lb.target_group_arn_suffix,
        internal_lb=compute.internal_lb.arn_suffix,
        internal_target_group=compute.internal_lb.target_group_arn_suffix,
        api_log_group=compute.api.log_group.name,
    )

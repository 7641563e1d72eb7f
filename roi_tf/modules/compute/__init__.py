"""The compute module: what serves the product.

- ECR repositories (api, ml, event-processor), immutable and scanned;
- the ECS cluster (Container Insights, audited ECS Exec, Fargate and Fargate Spot, optional GPU capacity);
- the backend API behind the internet-facing ALB (TLS 1.3 policy, WAF) and the ML service behind an internal ALB;
- event processing: SQS with a dead-letter queue feeding a Lambda function.

Traffic: internet (or CloudFront) -> public ALB -> API tasks (the application security group) -> internal ALB ->
ML tasks; the API reaches PostgreSQL through RDS Proxy, Redis and AWS APIs over HTTPS. Nothing else is open.

The same module is the pilot light's application tier in the DR region (``standby``: placed there by the regional
aspect, idle at zero tasks until failed over), and ``publish`` puts both regions' names in DNS as a failover pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.data_aws_ec2_managed_prefix_list import DataAwsEc2ManagedPrefixList
from cdktf_cdktf_provider_aws.ecr_replication_configuration import (
    EcrReplicationConfiguration,
    EcrReplicationConfigurationReplicationConfiguration,
    EcrReplicationConfigurationReplicationConfigurationRule,
    EcrReplicationConfigurationReplicationConfigurationRuleDestination,
    EcrReplicationConfigurationReplicationConfigurationRuleRepositoryFilter,
)
from cdktf_cdktf_provider_aws.route53_record import (
    Route53Record,
    Route53RecordAlias,
    Route53RecordFailoverRoutingPolicy,
)
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from constructs import Construct

from roi_tf.config import ComputeConfig, ServiceConfig
from roi_tf.modules.certificate import Certificate
from roi_tf.modules.compute.cluster import Cluster
from roi_tf.modules.compute.events import EventProcessing
from roi_tf.modules.compute.gpu import GpuCapacity
from roi_tf.modules.compute.load_balancer import LoadBalancer
from roi_tf.modules.compute.registry import Repository
from roi_tf.modules.compute.service import FargateService, Placement
from roi_tf.modules.exports import export
from roi_tf.modules.firewall import ANYWHERE, allow, https_out_group
from roi_tf.modules.networking import NetworkOutputs
from roi_tf.modules.regional import use_provider
from roi_tf.modules.security import KmsKey, Statement
from roi_tf.modules.storage import StorageOutputs
from roi_tf.naming import resource_name

IMAGES = ("api", "ml", "event-processor")
# CloudFront's origin-facing addresses, as AWS maintains them.
CLOUDFRONT_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"


@dataclass(frozen=True)
class ImageReplicas:
    """Where the images are copied to (the DR region's pilot light): the region, its provider and storage key."""

    region: str
    provider: TerraformProvider
    key: KmsKey


@dataclass(frozen=True)
class ComputeKeys:
    """The keys of the compute module's region: storage (S3 objects), logs, data (queues, the sessions table)."""

    storage: KmsKey
    logs: KmsKey
    data: KmsKey


@dataclass(frozen=True)
class Backends:
    """What the API connects to in its region: PostgreSQL through RDS Proxy, Redis, the sessions table.

    The ARNs are what its task role may use; in the DR region they are built from names, so the role's policy is
    complete while the pilot light idles (IAM's control plane is in the region a failover assumes lost).
    """

    database_host: str
    database_port: int
    database_name: str
    database_user: str
    database_connect_arn: str  # rds-db:connect: dbuser:<proxy resource ID>/<user>
    redis_host: str | None  # None: no cache in this region yet (the idle pilot light)
    redis_port: int
    redis_user: str
    redis_arns: Sequence[str]  # elasticache:Connect: the replication group and the application's user
    sessions_table_name: str | None = None  # None: no sessions table
    sessions_table_arn: str | None = None


@dataclass(frozen=True)
class Standby:
    """The compute module as the pilot light's application tier in the DR region (the same module, moved there).

    Idle, the services stand at zero tasks without scaling, and the event processor's function does not exist (its
    queues, role and logs do); ``active`` (failed over), everything runs as configured. No GPU capacity (training
    waits for the primary region), no repositories of its own: it pulls the primary's images, replicated here.
    """

    provider: TerraformProvider
    repositories: Mapping[str, Repository]  # the primary's ECR repositories' replicas in this region
    certificate: Certificate | None  # the primary's: the same names, proven by the same validation records
    active: bool
    # False: no load balancers yet, hence no services, DNS names or web ACL (what costs while idle); the cluster, task
    # definitions, roles, queues, log groups, groups and certificate stand ready (free). The failover creates the rest.
    load_balancers: bool = True


@dataclass(frozen=True)
class Failover:
    """A Route 53 failover role of the module's DNS names: PRIMARY (with the check that it serves) or SECONDARY."""

    role: str  # "PRIMARY" or "SECONDARY"
    region: str  # the records' set identifier
    health_check_id: str | None  # the primary's; the secondary is judged by its load balancers' target health


@dataclass(frozen=True)
class ImageTags:
    """References to the Terraform variables CI sets to deploy an image (never edited in config)."""

    api: str
    ml: str
    event_processor: str


class Compute(Construct):
    """ECR, the cluster, the API and ML services with their load balancers, event processing, GPU capacity."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ComputeConfig,
        env: str,
        region: str,
        account_id: str,
        partition: str,
        log_group_prefix: str,  # "/roi-systems/<env>"
        disposable: bool,  # dev: repositories may be deleted with their images, no deletion protection
        network: NetworkOutputs,
        keys: ComputeKeys,
        storage: StorageOutputs,
        backends: Backends,
        jwt_secret_arn: str,  # the JWT secret (or its replica in this region)
        jwt_secret_statements: Sequence[Statement],  # what reading it takes (ECS injects it)
        web_acl_arn: str | None,  # the REGIONAL web ACL of the module's region (None: no load balancers yet)
        images: ImageTags,
        image_replicas: ImageReplicas | None = None,  # default: images only in the primary region
        standby: Standby | None = None,  # default: the serving region's compute
        output_prefix: str = "",  # the stack outputs' names start with it (the standby's: "dr_")
    ) -> None:
        super().__init__(scope, id)
        self._env, self._region = env, region
        self._account_id, self._partition = account_id, partition
        self._output_prefix = output_prefix
        self.standby = standby
        idle = standby is not None and not standby.active
        self.serving = standby is None or standby.load_balancers  # load balancers, services, DNS names
        if standby is not None:
            use_provider(self, standby.provider)
            # Training waits for the primary region; idle, no task runs and nothing scales.
            config = replace(config, gpu_training=replace(config.gpu_training, enabled=False))
            if idle:
                config = replace(config, api=_at_zero(config.api), ml=_at_zero(config.ml))
        self._config = config

        if standby is not None:
            self.repositories = dict(standby.repositories)
        else:
            self.repositories = {
                image: Repository(
                    self,
                    f"{image.replace('-', '_')}_repository",
                    name=f"{self.repository_prefix}/{image}",
                    keep_count=config.image_keep_count,
                    key=keys.storage,
                    force_delete=disposable,
                )
                for image in IMAGES
            }
        self.replica_repositories = self._replicate_images(image_replicas, disposable) if image_replicas else {}
        self.cluster = Cluster(
            self,
            "cluster",
            name=resource_name(env, "cluster"),
            exec_log_group_name=f"{log_group_prefix}/ecs-exec",
            log_retention_days=config.log_retention_days,
            logs_key=keys.logs,
        )
        self.gpu = (
            GpuCapacity(
                self,
                "gpu",
                config=config.gpu_training,
                name=resource_name(env, "gpu"),
                cluster_name=self.cluster.name,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                account_id=account_id,
                partition=partition,
            )
            if config.gpu_training.enabled
            else None
        )
        self.cluster.use_capacity_providers([self.gpu.capacity_provider_name] if self.gpu else [])

        certificate_arn, self._ml_host = self._certificate()
        if self.serving:
            assert web_acl_arn is not None, "a public load balancer is never without its web ACL"
            ml_url = self._load_balancers(network, storage, certificate_arn, disposable, web_acl_arn)
        else:
            # The name the certificate covers, which the failover's internal load balancer will answer.
            assert self._ml_host is not None, "a standby without load balancers needs the load balancers' domain"
            ml_url = f"https://{self._ml_host}"

        self.events = EventProcessing(
            self,
            "events",
            config=config.event_processing,
            name=resource_name(env, "events", kind="sqs_queue"),
            region=region,
            account_id=account_id,
            partition=partition,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            queue_key=keys.data,
            logs_key=keys.logs,
            log_group_name=f"{log_group_prefix}/lambda/event-processor",
            log_retention_days=config.log_retention_days,
            code=images.event_processor,
            code_bucket=storage.bucket_names["artifacts"],
            repository_url=self.repositories["event-processor"].url,
            repository_arn=self.repositories["event-processor"].arn,
            with_function=not idle,
            output_prefix=output_prefix,
        )
        if config.event_processing.package_type == "Image":
            # Lambda pulls the image with its service principal: the repository must admit it first.
            policy = self.repositories["event-processor"].allow(self.events.repository_policy_statements())
            self.events.deployed_after(policy)

        self.api = self._api(
            network,
            keys,
            storage,
            backends,
            (jwt_secret_arn, jwt_secret_statements),
            images.api,
            ml_url,
            f"{log_group_prefix}/ecs/api",
        )
        self.ml = self._ml(network, keys, storage, images.ml, f"{log_group_prefix}/ecs/ml")
        self._export(ml_url)

    @property
    def repository_prefix(self) -> str:
        """``roi-systems-<env>-apps``: every repository of the environment is named ``<prefix>/<image>``."""
        return resource_name(self._env, "apps")

    def _replicate_images(self, replicas: ImageReplicas, disposable: bool) -> dict[str, Repository]:
        """Every pushed image copied by ECR into a repository of the same name in the DR region, created here with
        the same settings (immutable, scanned, the DR storage key, the same lifecycle) rather than by ECR's
        defaults, so a failed-over service pulls from a repository this code governs."""
        copies = {
            image: Repository(
                self,
                f"{image.replace('-', '_')}_replica_repository",
                name=f"{self.repository_prefix}/{image}",
                keep_count=self._config.image_keep_count,
                key=replicas.key,
                force_delete=disposable,
                provider=replicas.provider,
            )
            for image in IMAGES
        }
        # One configuration per registry (account and region): config refuses two pilot lights in one account.
        EcrReplicationConfiguration(
            self,
            "image_replication",
            replication_configuration=EcrReplicationConfigurationReplicationConfiguration(
                rule=[
                    EcrReplicationConfigurationReplicationConfigurationRule(
                        destination=[
                            EcrReplicationConfigurationReplicationConfigurationRuleDestination(
                                region=replicas.region, registry_id=self._account_id
                            )
                        ],
                        repository_filter=[
                            EcrReplicationConfigurationReplicationConfigurationRuleRepositoryFilter(
                                filter=f"{self.repository_prefix}/", filter_type="PREFIX_MATCH"
                            )
                        ],
                    )
                ]
            ),
            # Replication copies only images pushed after it exists, into repositories that exist by then.
            depends_on=[copy.repository for copy in copies.values()],
        )
        return copies

    # --- certificates and names --------------------------------------------------------------------

    def _certificate(self) -> tuple[str | None, str | None]:
        """(certificate ARN or None for plain HTTP, the ML service's host name under the certificate or None)."""
        lb = self._config.load_balancer
        self.certificate: Certificate | None = None
        if lb.certificate_arn:
            return lb.certificate_arn, None
        if lb.domain_name and lb.hosted_zone_name:
            ml_host = f"ml.{lb.domain_name}"
            self.certificate = Certificate(
                self,
                "certificate",
                names=[lb.domain_name, ml_host],
                zone_name=lb.hosted_zone_name,
                validated_by=self.standby.certificate if self.standby else None,
            )
            return self.certificate.arn, ml_host
        return None, None

    def _load_balancers(
        self,
        network: NetworkOutputs,
        storage: StorageOutputs,
        certificate_arn: str | None,
        disposable: bool,
        web_acl_arn: str,
    ) -> str:
        """Both load balancers and the flows through them; the URL the API calls the ML service at."""
        config = self._config
        self.public_lb = self._load_balancer(
            "public_lb", "api", config.api, network, storage, certificate_arn, disposable, internal=False,
            web_acl_arn=web_acl_arn,
        )  # fmt: skip
        if config.load_balancer.ingress == "cloudfront":
            origin_facing = DataAwsEc2ManagedPrefixList(self, "cloudfront_origin_facing", name=CLOUDFRONT_PREFIX_LIST)
            self.public_lb.admit("from_cloudfront", description="CloudFront only", prefix_list_id=origin_facing.id)
        else:
            self.public_lb.admit("from_internet", description="Clients on the internet", cidr=ANYWHERE)
        self.internal_lb = self._load_balancer(
            "internal_lb", "ml", config.ml, network, storage, certificate_arn, disposable, internal=True
        )
        self.ml_security_group = self._ml_security_group(network.vpc_id)
        app = network.application_security_group_id
        flows = {
            "public_lb_to_api": (self.public_lb.security_group.id, app, config.api.container_port,
                                 "API requests: public load balancer to the API tasks"),
            "api_to_internal_lb": (app, self.internal_lb.security_group.id, self.internal_lb.port,
                                   "ML requests: API tasks to the internal load balancer"),
            "internal_lb_to_ml": (self.internal_lb.security_group.id, self.ml_security_group.id,
                                  config.ml.container_port, "ML requests: internal load balancer to the ML tasks"),
        }  # fmt: skip
        for flow, (source, destination, port, description) in flows.items():
            allow(self, flow, source=source, destination=destination, port=port, description=description)
        return f"{'https' if self.internal_lb.https else 'http'}://{self._ml_host or self.internal_lb.dns_name}"

    def publish(self, failover: Failover | None = None) -> None:
        """The API's and the ML service's names in DNS, on the load balancers (when a certificate covers them).

        The API's name is the one its certificate covers and CloudFront's origin; the ML service's is a public record
        of private addresses. With ``failover``, both are one role of a Route 53 failover pair: the standby's
        region answers while the primary's check fails, so CloudFront follows without a change of its own.
        """
        lb = self._config.load_balancer
        if self.certificate is None or not lb.domain_name or not self._ml_host or not self.serving:
            return
        zone_id = self.certificate.zone_id

        def alias(record: str, name: str, target: LoadBalancer, **routing: object) -> None:
            # An alias, so Route 53 judges the load balancer's target health (no targets: unhealthy).
            Route53Record(
                self,
                record,
                zone_id=zone_id,
                name=name,
                type="A",
                alias=Route53RecordAlias(name=target.dns_name, zone_id=target.zone_id, evaluate_target_health=True),
                **routing,
            )

        if failover is None:
            alias("api_record", lb.domain_name, self.public_lb)
            ml_dns = self.internal_lb.dns_name
            Route53Record(
                self, "ml_record", zone_id=zone_id, name=self._ml_host, type="CNAME", ttl=300, records=[ml_dns]
            )
            return
        routing = {
            "set_identifier": failover.region,
            "failover_routing_policy": Route53RecordFailoverRoutingPolicy(type=failover.role),
            "health_check_id": failover.health_check_id,
        }
        alias("api_record", lb.domain_name, self.public_lb, **routing)
        alias("ml_record", self._ml_host, self.internal_lb, **routing)

    # --- services ----------------------------------------------------------------------------------

    def _load_balancer(
        self,
        id: str,
        component: str,  # "api" (internet-facing) or "ml" (internal): the load balancer's and group's names
        service: ServiceConfig,
        network: NetworkOutputs,
        storage: StorageOutputs,
        certificate_arn: str | None,  # None: plain HTTP (dev)
        disposable: bool,
        *,
        internal: bool,  # in the private subnets; else in the public ones
        web_acl_arn: str | None = None,
    ) -> LoadBalancer:
        """A load balancer in front of one service: the same TLS, protection and logs for both."""
        lb, env = self._config.load_balancer, self._env
        return LoadBalancer(
            self,
            id,
            name=resource_name(env, component, kind="load_balancer"),
            internal=internal,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids if internal else network.public_subnet_ids,
            certificate_arn=certificate_arn,
            ssl_policy=lb.ssl_policy,
            idle_timeout_seconds=lb.idle_timeout_seconds,
            deletion_protection=not disposable,
            access_logs_bucket=storage.logs_bucket_name,
            access_logs_prefix=storage.alb_log_prefix,
            access_logs_policy=storage.logs_bucket_policy,
            target_group_name=resource_name(env, component, str(service.container_port), kind="target_group"),
            target_port=service.container_port,
            health_check_path=service.health_check_path,
            deregistration_delay_seconds=service.deregistration_delay_seconds,
            web_acl_arn=web_acl_arn,
        )

    def _ml_security_group(self, vpc_id: str) -> SecurityGroup:
        name = resource_name(self._env, "ml-tasks")
        return https_out_group(
            self,
            "ml_",
            name=name,
            description=f"{name}: requests from the internal load balancer only",
            vpc_id=vpc_id,
            egress_description="HTTPS to AWS APIs, registries and S3 (NAT gateway or VPC endpoints)",
        )

    def _api(
        self,
        network: NetworkOutputs,
        keys: ComputeKeys,
        storage: StorageOutputs,
        backends: Backends,
        jwt_secret: tuple[str, Sequence[Statement]],  # its ARN, and what reading it takes
        image_tag: str,
        ml_url: str,
        log_group_name: str,
    ) -> FargateService:
        env, region, config, b = self._env, self._region, self._config, backends
        task = [
            Statement(sid="ConnectThroughRdsProxy", actions=["rds-db:connect"], resources=[b.database_connect_arn]),
            Statement(sid="ConnectToRedisAsAppUser", actions=["elasticache:Connect"], resources=list(b.redis_arns)),
            *self._bucket_statements("Documents", storage.bucket_arns["documents"], keys, write=True),
            *self.events.send_statements(),
        ]
        environment = {
            "DATABASE_HOST": b.database_host,
            "DATABASE_PORT": str(b.database_port),
            "DATABASE_NAME": b.database_name,
            "DATABASE_USER": b.database_user,
            "REDIS_PORT": str(b.redis_port),
            "REDIS_USER": b.redis_user,
            "DOCUMENTS_BUCKET": storage.bucket_names["documents"],
            "EVENTS_QUEUE_URL": self.events.queue_url,
            "ML_SERVICE_URL": ml_url,
        }
        if b.redis_host is not None:
            environment["REDIS_HOST"] = b.redis_host
        if b.sessions_table_arn is not None and b.sessions_table_name is not None:
            task += self._table_statements(b.sessions_table_arn, keys)
            environment["SESSIONS_TABLE"] = b.sessions_table_name
        api = FargateService(
            self,
            "api",
            config=config.api,
            name=resource_name(env, "api"),
            cluster=self.cluster,
            repository=self.repositories["api"],
            image_tag=image_tag,
            subnet_ids=network.private_subnet_ids,
            placement=Placement(
                network.application_security_group_id, self.public_lb.target_group_arn, self.public_lb.listener
            )
            if self.serving
            else None,
            environment=environment,
            secrets={"JWT_SECRET": jwt_secret[0]},
            execution_statements=jwt_secret[1],
            task_statements=task,
            log_group_name=log_group_name,
            log_retention_days=config.log_retention_days,
            logs_key=keys.logs,
            enable_execute_command=config.enable_execute_command,
            region=region,
            account_id=self._account_id,
        )
        if config.api.autoscaling.enabled and api.service is not None:
            api.autoscale(
                cluster_name=self.cluster.name,
                request_label=f"{self.public_lb.arn_suffix}/{self.public_lb.target_group_arn_suffix}",
            )
        return api

    def _ml(
        self,
        network: NetworkOutputs,
        keys: ComputeKeys,
        storage: StorageOutputs,
        image_tag: str,
        log_group_name: str,
    ) -> FargateService:
        config = self._config
        ml = FargateService(
            self,
            "ml",
            config=config.ml,
            name=resource_name(self._env, "ml"),
            cluster=self.cluster,
            repository=self.repositories["ml"],
            image_tag=image_tag,
            subnet_ids=network.private_subnet_ids,
            placement=Placement(self.ml_security_group.id, self.internal_lb.target_group_arn, self.internal_lb.listener)
            if self.serving
            else None,
            environment={"MODELS_BUCKET": storage.bucket_names["ml-artifacts"]},
            secrets={},
            execution_statements=[],
            task_statements=self._bucket_statements("Models", storage.bucket_arns["ml-artifacts"], keys, write=False),
            log_group_name=log_group_name,
            log_retention_days=config.log_retention_days,
            logs_key=keys.logs,
            enable_execute_command=config.enable_execute_command,
            region=self._region,
            account_id=self._account_id,
        )
        if config.ml.autoscaling.enabled and ml.service is not None:
            ml.autoscale(
                cluster_name=self.cluster.name,
                request_label=f"{self.internal_lb.arn_suffix}/{self.internal_lb.target_group_arn_suffix}",
            )
        return ml

    def _bucket_statements(self, sid: str, bucket_arn: str, keys: ComputeKeys, *, write: bool) -> list[Statement]:
        """Objects of one bucket (read, or read and write), and its key through S3 only."""
        objects = ["s3:GetObject", *(["s3:PutObject", "s3:DeleteObject"] if write else [])]
        key_use = ["kms:Decrypt", *(["kms:GenerateDataKey"] if write else [])]
        return [
            Statement(sid=f"List{sid}", actions=["s3:ListBucket"], resources=[bucket_arn]),
            Statement(sid=f"{'Use' if write else 'Read'}{sid}", actions=objects, resources=[f"{bucket_arn}/*"]),
            Statement(
                sid=f"{sid}KeyThroughS3",
                actions=key_use,
                resources=[keys.storage.arn],
                conditions={("StringEquals", "kms:ViaService"): [f"s3.{self._region}.amazonaws.com"]},
            ),
        ]

    def _table_statements(self, table_arn: str, keys: ComputeKeys) -> list[Statement]:
        return [
            Statement(
                sid="UseSessions",
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:Query",
                ],
                resources=[table_arn],
            ),
            Statement(
                sid="SessionsKeyThroughDynamoDb",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[keys.data.arn],
                conditions={("StringEquals", "kms:ViaService"): [f"dynamodb.{self._region}.amazonaws.com"]},
            ),
        ]

    def _export(self, ml_url: str) -> None:
        if self.standby is not None:
            self._export_standby(ml_url)
            return
        export(
            self,
            {
                "ecs_cluster_name": (self.cluster.name, "ECS cluster of the services"),
                "api_service_name": (self.api.name, "ECS service of the backend API"),
                "ml_service_name": (self.ml.name, "ECS service of the ML inference service"),
                "api_task_definition_arn": (
                    self.api.task_definition.arn,
                    "Task definition revision of the API image in TF_VAR_api_image_tag (roll out with update-service)",
                ),
                "ml_task_definition_arn": (
                    self.ml.task_definition.arn,
                    "Task definition revision of the ML image in TF_VAR_ml_image_tag (roll out with update-service)",
                ),
                "api_repository_url": (self.repositories["api"].url, "ECR repository of the API image"),
                "ml_repository_url": (self.repositories["ml"].url, "ECR repository of the ML image"),
                "event_processor_repository_url": (
                    self.repositories["event-processor"].url,
                    "ECR repository of the event processor image (package_type Image)",
                ),
                "api_load_balancer_dns_name": (self.public_lb.dns_name, "DNS name of the API's public load balancer"),
                "api_load_balancer_zone_id": (self.public_lb.zone_id, "Hosted zone of the API's load balancer"),
                "ml_service_url": (ml_url, "URL the API calls the ML service at (internal load balancer)"),
            },
        )

    def _export_standby(self, ml_url: str) -> None:
        """What failover.sh starts the standby's services with (prefixed: the stack's other outputs are the
        primary's); nothing before it has services."""
        if not self.serving:
            return
        p = self._output_prefix
        export(
            self,
            {
                f"{p}ecs_cluster_name": (self.cluster.name, f"ECS cluster of the services in {self._region}"),
                f"{p}api_service_name": (self.api.name, f"ECS service of the backend API in {self._region}"),
                f"{p}ml_service_name": (self.ml.name, f"ECS service of the ML inference service in {self._region}"),
                f"{p}api_task_definition_arn": (
                    self.api.task_definition.arn,
                    f"Task definition of the API in {self._region} (failover.sh starts the service on it)",
                ),
                f"{p}ml_task_definition_arn": (
                    self.ml.task_definition.arn,
                    f"Task definition of the ML service in {self._region} (failover.sh starts the service on it)",
                ),
                f"{p}api_load_balancer_dns_name": (
                    self.public_lb.dns_name,
                    f"DNS name of the API's public load balancer in {self._region}",
                ),
                f"{p}ml_service_url": (ml_url, f"URL the API calls the ML service at in {self._region}"),
            },
        )


def _at_zero(service: ServiceConfig) -> ServiceConfig:
    """A service standing by: no task, and no scaling that would start one."""
    return replace(service, desired_count=0, autoscaling=replace(service.autoscaling, enabled=False))


__all__ = ["Backends", "Compute", "ComputeKeys", "Failover", "ImageReplicas", "ImageTags", "Standby"]

"""The compute module: what serves the product.

- ECR repositories (api, ml, event-processor), immutable and scanned;
- the ECS cluster (Container Insights, audited ECS Exec, Fargate and Fargate Spot, optional GPU capacity);
- the backend API behind the internet-facing ALB (TLS 1.3 policy, WAF) and the ML service behind an internal ALB;
- event processing: SQS with a dead-letter queue feeding a Lambda function.

Traffic: internet (or CloudFront) -> public ALB -> API tasks (the application security group) -> internal ALB ->
ML tasks; the API reaches PostgreSQL through RDS Proxy, Redis and AWS APIs over HTTPS. Nothing else is open.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import Fn, TerraformProvider
from cdktf_cdktf_provider_aws.data_aws_ec2_managed_prefix_list import DataAwsEc2ManagedPrefixList
from cdktf_cdktf_provider_aws.ecr_replication_configuration import (
    EcrReplicationConfiguration,
    EcrReplicationConfigurationReplicationConfiguration,
    EcrReplicationConfigurationReplicationConfigurationRule,
    EcrReplicationConfigurationReplicationConfigurationRuleDestination,
    EcrReplicationConfigurationReplicationConfigurationRuleRepositoryFilter,
)
from cdktf_cdktf_provider_aws.route53_record import Route53Record, Route53RecordAlias
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from constructs import Construct

from roi_tf.config import ComputeConfig, ServiceConfig
from roi_tf.modules.certificate import Certificate
from roi_tf.modules.compute.cluster import Cluster
from roi_tf.modules.compute.events import EventProcessing
from roi_tf.modules.compute.gpu import GpuCapacity
from roi_tf.modules.compute.load_balancer import LoadBalancer
from roi_tf.modules.compute.registry import Repository
from roi_tf.modules.compute.service import FargateService
from roi_tf.modules.database import Database
from roi_tf.modules.exports import export
from roi_tf.modules.firewall import ANYWHERE, allow, https_out_group
from roi_tf.modules.networking import NetworkOutputs
from roi_tf.modules.security import EncryptionKeys, KmsKey, Secret, Statement
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
        keys: EncryptionKeys,
        storage: StorageOutputs,
        database: Database,
        jwt_secret: Secret,
        web_acl_arn: str,  # the REGIONAL web ACL, for the public load balancer
        images: ImageTags,
        image_replicas: ImageReplicas | None = None,  # default: images only in the primary region
    ) -> None:
        super().__init__(scope, id)
        self._config, self._env, self._region = config, env, region
        self._account_id, self._partition = account_id, partition

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

        lb = config.load_balancer
        certificate_arn, ml_host = self._certificate()
        self.public_lb = self._load_balancer(
            "public_lb", "api", config.api, network, storage, certificate_arn, disposable, internal=False,
            web_acl_arn=web_acl_arn,
        )  # fmt: skip
        if lb.ingress == "cloudfront":
            origin_facing = DataAwsEc2ManagedPrefixList(self, "cloudfront_origin_facing", name=CLOUDFRONT_PREFIX_LIST)
            self.public_lb.admit("from_cloudfront", description="CloudFront only", prefix_list_id=origin_facing.id)
        else:
            self.public_lb.admit("from_internet", description="Clients on the internet", cidr=ANYWHERE)
        self.internal_lb = self._load_balancer(
            "internal_lb", "ml", config.ml, network, storage, certificate_arn, disposable, internal=True
        )
        if lb.domain_name and self._zone_id:
            # The API's name, on the public load balancer: the name its certificate covers, and CloudFront's origin.
            Route53Record(
                self,
                "api_record",
                zone_id=self._zone_id,
                name=lb.domain_name,
                type="A",
                alias=Route53RecordAlias(
                    name=self.public_lb.dns_name, zone_id=self.public_lb.zone_id, evaluate_target_health=True
                ),
            )
        if ml_host and self._zone_id:
            # The internal load balancer under a name its certificate covers (a public record of private addresses).
            Route53Record(
                self,
                "ml_record",
                zone_id=self._zone_id,
                name=ml_host,
                type="CNAME",
                ttl=300,
                records=[self.internal_lb.dns_name],
            )
        ml_url = f"{'https' if self.internal_lb.https else 'http'}://{ml_host or self.internal_lb.dns_name}"

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
        )
        if config.event_processing.package_type == "Image":
            # Lambda pulls the image with its service principal: the repository must admit it first.
            policy = self.repositories["event-processor"].allow(self.events.repository_policy_statements())
            self.events.deployed_after(policy)

        self.api = self._api(
            network, keys, storage, database, jwt_secret, images.api, ml_url, f"{log_group_prefix}/ecs/api"
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

    # --- certificates ------------------------------------------------------------------------------

    def _certificate(self) -> tuple[str | None, str | None]:
        """(certificate ARN or None for plain HTTP, the ML service's host name under the certificate or None)."""
        lb = self._config.load_balancer
        self._zone_id: str | None = None
        if lb.certificate_arn:
            return lb.certificate_arn, None
        if lb.domain_name and lb.hosted_zone_name:
            ml_host = f"ml.{lb.domain_name}"
            certificate = Certificate(
                self, "certificate", names=[lb.domain_name, ml_host], zone_name=lb.hosted_zone_name
            )
            self._zone_id = certificate.zone_id
            return certificate.arn, ml_host
        return None, None

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
        keys: EncryptionKeys,
        storage: StorageOutputs,
        database: Database,
        jwt_secret: Secret,
        image_tag: str,
        ml_url: str,
        log_group_name: str,
    ) -> FargateService:
        env, region, config = self._env, self._region, self._config
        pg, cache = database.postgres, database.cache
        proxy_id = Fn.element(Fn.split(":", pg.proxy.arn), 6)  # prx-...: the proxy's resource ID
        user = pg.master_username
        task = [
            Statement(
                sid="ConnectThroughRdsProxy",
                actions=["rds-db:connect"],
                resources=[f"arn:{self._partition}:rds-db:{region}:{self._account_id}:dbuser:{proxy_id}/{user}"],
            ),
            Statement(
                sid="ConnectToRedisAsAppUser",
                actions=["elasticache:Connect"],
                resources=[cache.replication_group.arn, cache.app_user.arn],
            ),
            *self._bucket_statements("Documents", storage.bucket_arns["documents"], keys, write=True),
            *self.events.send_statements(),
        ]
        environment = {
            "DATABASE_HOST": pg.proxy_endpoint,
            "DATABASE_PORT": str(pg.port),
            "DATABASE_NAME": pg.database_name,
            "DATABASE_USER": user,
            "REDIS_HOST": cache.configuration_endpoint,
            "REDIS_PORT": str(cache.port),
            "REDIS_USER": cache.app_user_name,
            "DOCUMENTS_BUCKET": storage.bucket_names["documents"],
            "EVENTS_QUEUE_URL": self.events.queue_url,
            "ML_SERVICE_URL": ml_url,
        }
        if database.sessions is not None:
            task += self._table_statements(database.sessions.arn, keys)
            environment["SESSIONS_TABLE"] = database.sessions.name
        api = FargateService(
            self,
            "api",
            config=config.api,
            name=resource_name(env, "api"),
            cluster=self.cluster,
            repository=self.repositories["api"],
            image_tag=image_tag,
            subnet_ids=network.private_subnet_ids,
            security_group_id=network.application_security_group_id,
            target_group_arn=self.public_lb.target_group_arn,
            listener=self.public_lb.listener,
            environment=environment,
            secrets={"JWT_SECRET": jwt_secret.arn},
            execution_statements=jwt_secret.read_statements(),
            task_statements=task,
            log_group_name=log_group_name,
            log_retention_days=config.log_retention_days,
            logs_key=keys.logs,
            enable_execute_command=config.enable_execute_command,
            region=region,
            account_id=self._account_id,
        )
        if config.api.autoscaling.enabled:
            api.autoscale(
                cluster_name=self.cluster.name,
                request_label=f"{self.public_lb.arn_suffix}/{self.public_lb.target_group_arn_suffix}",
            )
        return api

    def _ml(
        self,
        network: NetworkOutputs,
        keys: EncryptionKeys,
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
            security_group_id=self.ml_security_group.id,
            target_group_arn=self.internal_lb.target_group_arn,
            listener=self.internal_lb.listener,
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
        if config.ml.autoscaling.enabled:
            ml.autoscale(
                cluster_name=self.cluster.name,
                request_label=f"{self.internal_lb.arn_suffix}/{self.internal_lb.target_group_arn_suffix}",
            )
        return ml

    def _bucket_statements(self, sid: str, bucket_arn: str, keys: EncryptionKeys, *, write: bool) -> list[Statement]:
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

    def _table_statements(self, table_arn: str, keys: EncryptionKeys) -> list[Statement]:
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


__all__ = ["Compute", "ImageReplicas", "ImageTags"]

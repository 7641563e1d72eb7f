"""A Fargate service: task definition with an X-Ray sidecar, roles, logs, deployment guard rails and scaling."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import TerraformResource, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification,
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.ecs_service import (
    EcsService,
    EcsServiceCapacityProviderStrategy,
    EcsServiceDeploymentCircuitBreaker,
    EcsServiceLoadBalancer,
    EcsServiceNetworkConfiguration,
)
from cdktf_cdktf_provider_aws.ecs_task_definition import (
    EcsTaskDefinition,
    EcsTaskDefinitionRuntimePlatform,
    EcsTaskDefinitionVolume,
)
from constructs import Construct

from roi_tf.config import ServiceConfig
from roi_tf.modules.compute.cluster import FARGATE, FARGATE_SPOT, Cluster
from roi_tf.modules.compute.registry import Repository
from roi_tf.modules.security import KmsKey, ServiceRole, ServiceRoleProps, Statement

# The X-Ray daemon, pinned (public ECR: no registry credentials needed).
XRAY_DAEMON_IMAGE = "public.ecr.aws/xray/aws-xray-daemon:3.3.14"
XRAY_PORT = 2000
# Containers run as this unprivileged user; images must not need root.
APP_USER = "1000:1000"
XRAY_ACTIONS = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
)


def xray_statement() -> Statement:
    return Statement(
        sid="SendTraces",
        actions=list(XRAY_ACTIONS),
        resources=["*"],
        any_resource_reason="the X-Ray trace and sampling actions accept no resource but *",
    )


@dataclass(frozen=True)
class Placement:
    """Where a service's tasks take traffic: their security group, and the target group of the load balancer in
    front with its listener (the target group must be attached before the service registers tasks)."""

    security_group_id: str
    target_group_arn: str
    listener: TerraformResource


class FargateService(Construct):
    """One service of the cluster, in the private subnets, behind its load balancer's target group."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ServiceConfig,
        name: str,  # "roi-systems-<env>-api": family, service, roles, log group
        cluster: Cluster,
        repository: Repository,
        image_tag: str,  # a reference to the Terraform variable CI sets
        subnet_ids: Sequence[str],
        # None: no service yet, only what it will run (the DR region's standby before its load balancers exist)
        placement: Placement | None,
        environment: Mapping[str, str],
        secrets: Mapping[str, str],  # environment variable -> secret ARN (injected by the execution role)
        execution_statements: Sequence[Statement],  # e.g. reading those secrets
        task_statements: Sequence[Statement],  # what the application itself may do
        log_group_name: str,
        log_retention_days: int,
        logs_key: KmsKey,
        enable_execute_command: bool,
        region: str,
        account_id: str,
    ) -> None:
        super().__init__(scope, id)
        self._config = config
        self.log_group = CloudwatchLogGroup(
            self,
            "log_group",
            name=log_group_name,
            retention_in_days=log_retention_days,
            kms_key_id=logs_key.arn,
        )
        write_logs = Statement(
            sid="WriteLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[f"{self.log_group.arn}:*"],
        )
        self.execution_role = ServiceRole(
            self,
            "execution_role",
            props=ServiceRoleProps(
                name=f"{name}-execution",
                description=f"ECS pulls {name}'s images, writes its logs and injects its secrets",
                service="ecs-tasks.amazonaws.com",
                account_id=account_id,
                policy_name="execute",
                statements=[*repository.pull_statements(), write_logs, *execution_statements],
            ),
        )
        self.task_role = ServiceRole(
            self,
            "task_role",
            props=ServiceRoleProps(
                name=f"{name}-task",
                description=f"What {name} itself may do",
                service="ecs-tasks.amazonaws.com",
                account_id=account_id,
                policy_name="run",
                statements=[
                    *task_statements,
                    xray_statement(),
                    *(cluster.exec_statements(region) if enable_execute_command else ()),
                ],
            ),
        )
        self.task_definition = EcsTaskDefinition(
            self,
            "task_definition",
            family=name,
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(config.task_cpu),
            memory=str(config.task_memory_mib),
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            runtime_platform=EcsTaskDefinitionRuntimePlatform(
                operating_system_family="LINUX", cpu_architecture="X86_64"
            ),
            # The read-only root filesystem leaves /tmp writable through this task-scoped volume.
            volume=[EcsTaskDefinitionVolume(name="tmp")],
            container_definitions=json.dumps(
                [
                    self._app_container(name, repository, image_tag, environment, secrets, region),
                    self._xray_container(name, region),
                ]
            ),
            # Old revisions stay registered, so a rollback to a previous image can use them.
            skip_destroy=True,
        )
        self.tracing_name = name  # AWS_XRAY_TRACING_NAME: known at synth, unlike the service's name attribute
        self.scaling: AppautoscalingTarget | None = None
        self.service: EcsService | None = None
        self.name = name
        if placement is None:
            return
        spot = config.fargate_spot_percent
        self.service = EcsService(
            self,
            "service",
            name=name,
            cluster=cluster.arn,
            task_definition=self.task_definition.arn,
            desired_count=config.desired_count,
            capacity_provider_strategy=self._capacity(spot),
            network_configuration=EcsServiceNetworkConfiguration(
                subnets=list(subnet_ids), security_groups=[placement.security_group_id], assign_public_ip=False
            ),
            load_balancer=[
                EcsServiceLoadBalancer(
                    target_group_arn=placement.target_group_arn,
                    container_name="app",
                    container_port=config.container_port,
                )
            ],
            health_check_grace_period_seconds=config.health_check_grace_period_seconds,
            deployment_circuit_breaker=EcsServiceDeploymentCircuitBreaker(enable=True, rollback=True),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            enable_execute_command=enable_execute_command,
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            wait_for_steady_state=False,
            # A changed capacity provider strategy (fargate_spot_percent) is then updated in place, as a rolling
            # deployment; without it the provider replaces the service, an outage.
            force_new_deployment=True,
            depends_on=[placement.listener],
            # CI deploys new task definitions and auto-scaling moves the count: Terraform must not undo either.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["task_definition", "desired_count"]),
        )
        self.name = self.service.name

    @staticmethod
    def _capacity(spot_percent: int) -> list[EcsServiceCapacityProviderStrategy]:
        """On-demand for the share that must not be interrupted (one task at least, unless all is Spot)."""
        strategy = []
        if spot_percent < 100:
            strategy.append(
                EcsServiceCapacityProviderStrategy(capacity_provider=FARGATE, base=1, weight=100 - spot_percent)
            )
        if spot_percent > 0:
            strategy.append(EcsServiceCapacityProviderStrategy(capacity_provider=FARGATE_SPOT, weight=spot_percent))
        return strategy

    def _app_container(
        self,
        name: str,
        repository: Repository,
        image_tag: str,
        environment: Mapping[str, str],
        secrets: Mapping[str, str],
        region: str,
    ) -> dict[str, Any]:
        port, path = self._config.container_port, self._config.health_check_path
        return {
            "name": "app",
            "image": f"{repository.url}:{image_tag}",
            "essential": True,
            "user": APP_USER,
            "readonlyRootFilesystem": True,
            "portMappings": [{"containerPort": port, "protocol": "tcp"}],
            "environment": [
                {"name": key, "value": value}
                for key, value in sorted(
                    {
                        **environment,
                        "AWS_REGION": region,
                        "AWS_XRAY_DAEMON_ADDRESS": f"localhost:{XRAY_PORT}",
                        # The service name its traces carry (the monitoring module's X-Ray group and sampling rule).
                        "AWS_XRAY_TRACING_NAME": name,
                    }.items()
                )
            ],
            "secrets": [{"name": key, "valueFrom": arn} for key, arn in sorted(secrets.items())],
            # The image must ship curl: the container is replaced when its own health endpoint stops answering.
            "healthCheck": {
                "command": ["CMD-SHELL", f"curl -fsS http://localhost:{port}{path} || exit 1"],
                "interval": 30,
                "timeout": 5,
                "retries": 3,
                "startPeriod": 60,
            },
            "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}],  # noqa: S108 (a task volume)
            "linuxParameters": {"initProcessEnabled": True},  # reaps zombies; ECS Exec needs it
            "logConfiguration": self._logs(region, "app"),
        }

    def _xray_container(self, name: str, region: str) -> dict[str, Any]:
        return {
            "name": "xray-daemon",
            "image": XRAY_DAEMON_IMAGE,
            "essential": False,
            "user": "1337",
            "readonlyRootFilesystem": True,
            "cpu": 32,
            "memoryReservation": 256,
            "portMappings": [{"containerPort": XRAY_PORT, "protocol": "udp"}],
            "logConfiguration": self._logs(region, "xray"),
        }

    def _logs(self, region: str, prefix: str) -> dict[str, Any]:
        return {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": self.log_group.name,
                "awslogs-region": region,
                "awslogs-stream-prefix": prefix,
            },
        }

    def autoscale(self, *, cluster_name: str, request_label: str | None) -> None:
        """Target tracking on CPU, memory and requests per task, within the configured bounds."""
        scaling = self._config.autoscaling
        assert scaling.enabled and scaling.min_capacity and scaling.max_capacity  # config.py requires them
        assert self.service is not None, "a service to scale"
        self.scaling = AppautoscalingTarget(
            self,
            "scaling_target",
            service_namespace="ecs",
            resource_id=f"service/{cluster_name}/{self.service.name}",
            scalable_dimension="ecs:service:DesiredCount",
            min_capacity=scaling.min_capacity,
            max_capacity=scaling.max_capacity,
        )
        targets = {
            "cpu": ("ECSServiceAverageCPUUtilization", scaling.target_cpu_percent, None),
            "memory": ("ECSServiceAverageMemoryUtilization", scaling.target_memory_percent, None),
            "requests": ("ALBRequestCountPerTarget", scaling.target_requests_per_target, request_label),
        }
        # Each attribute read is a round trip to jsii: read once, used by every policy.
        service_name, namespace = self.service.name, self.scaling.service_namespace
        resource_id, dimension = self.scaling.resource_id, self.scaling.scalable_dimension
        for metric_id, (metric, target, label) in targets.items():
            if target is None:
                continue
            AppautoscalingPolicy(
                self,
                f"scale_on_{metric_id}",
                name=f"{service_name}-{metric_id}",
                policy_type="TargetTrackingScaling",
                service_namespace=namespace,
                resource_id=resource_id,
                scalable_dimension=dimension,
                target_tracking_scaling_policy_configuration=(
                    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
                        target_value=target,
                        scale_in_cooldown=scaling.scale_in_cooldown_seconds,
                        scale_out_cooldown=scaling.scale_out_cooldown_seconds,
                        predefined_metric_specification=(
                            AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification(
                                predefined_metric_type=metric, resource_label=label
                            )
                        ),
                    )
                ),
            )

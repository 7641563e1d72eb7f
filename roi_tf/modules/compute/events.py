"""Event processing: an SQS queue (with a dead-letter queue) feeding a Lambda function in the private subnets.

The function's code is not in this repository: ``code`` is the value of the Terraform variable
``event_processor_code``, an S3 key in the artifacts bucket (``package_type`` Zip) or an image tag of the
event-processor ECR repository (Image). Messages are encrypted with the environment's data key; the function
reports partial batch failures, and a message that fails ``max_receive_count`` times moves to the dead-letter queue.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from cdktf import TerraformResource
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.lambda_event_source_mapping import (
    LambdaEventSourceMapping,
    LambdaEventSourceMappingScalingConfig,
)
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionLoggingConfig,
    LambdaFunctionTracingConfig,
    LambdaFunctionVpcConfig,
)
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from cdktf_cdktf_provider_aws.sqs_queue_redrive_allow_policy import SqsQueueRedriveAllowPolicy
from constructs import Construct

from roi_tf.config import EventProcessingConfig
from roi_tf.modules.exports import export
from roi_tf.modules.firewall import https_out_group
from roi_tf.modules.security import KmsKey, ServiceRole, ServiceRoleProps, Statement, grant, policy_document

DAY_SECONDS = 86_400
# AWS: the visibility timeout of a Lambda event source queue is at least six times the function's timeout, so a
# message is not delivered again while retries of a throttled or failed batch are still running.
VISIBILITY_TIMEOUT_FACTOR = 6
# How long SQS reuses a data key before asking KMS again (AWS's default): fewer KMS calls, same key.
DATA_KEY_REUSE_SECONDS = 300
# Bounds of an SQS event source's maximum concurrency (Lambda's ScalingConfig).
MIN_EVENT_SOURCE_CONCURRENCY, MAX_EVENT_SOURCE_CONCURRENCY = 2, 1000
CONSUMER_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")
# EC2 offers no resource-level permissions for these; Lambda's execution role needs them (AWSLambdaVPCAccess-
# ExecutionRole v3). DescribeSecurityGroups and DescribeVpcs are the deployer's, not the function's (Lambda guide,
# "Execution role and user permissions"), so the role does not get them.
DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
TRACE_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")


class EventProcessing(Construct):
    """SQS queue -> Lambda function (VPC, X-Ray, JSON logs), with a dead-letter queue and a least-privilege role."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EventProcessingConfig,
        name: str,  # "roi-systems-<env>-events": queue, function, role, security group; the DLQ adds "-dlq"
        region: str,
        account_id: str,
        partition: str,
        vpc_id: str,
        subnet_ids: Sequence[str],  # the private subnets
        queue_key: KmsKey,  # the environment's data key: encrypts both queues
        logs_key: KmsKey,
        log_group_name: str,  # below the prefix the logs key admits ("/roi-systems/<env>/...")
        log_retention_days: int,
        code: str,  # the value of the variable event_processor_code: an S3 key (Zip) or an image tag (Image)
        code_bucket: str | None,  # the artifacts bucket (Zip)
        repository_url: str | None,  # the event-processor ECR repository's URL (Image)
        # Unused: the role needs no ECR permission (Lambda pulls with its service principal, admitted by the
        # repository policy, see repository_policy_statements). Kept so the wiring reads the same for both types.
        repository_arn: str | None,
        # False: the queues, role, group and logs only (the idle pilot light; the function comes with failover, when
        # its code has long been replicated to this region's artifacts bucket).
        with_function: bool = True,
        output_prefix: str = "",  # the stack outputs' names start with it
    ) -> None:
        super().__init__(scope, id)
        p = config
        if p.package_type not in ("Zip", "Image"):
            raise ValueError(f"{name}: package_type must be Zip or Image, not {p.package_type!r}")
        if p.package_type == "Zip" and not code_bucket:
            raise ValueError(f"{name}: package_type Zip needs code_bucket (the bucket holding the key {code!r})")
        if p.package_type == "Image" and not repository_url:
            raise ValueError(f"{name}: package_type Image needs repository_url (the repository tagged {code!r})")
        self._region, self._key_arn = region, queue_key.arn
        arn = f"arn:{partition}"
        ec2 = f"{arn}:ec2:{region}:{account_id}"
        # Built from the name, not the resource's attribute: the repository policy that names it must exist before
        # the function does (Lambda pulls the image while it creates the function).
        self._function_arn = f"{arn}:lambda:{region}:{account_id}:function:{name}"

        self.dead_letter_queue = SqsQueue(
            self,
            "dead_letter_queue",
            name=f"{name}-dlq",
            message_retention_seconds=p.dead_letter_retention_days * DAY_SECONDS,
            kms_master_key_id=queue_key.arn,
            kms_data_key_reuse_period_seconds=DATA_KEY_REUSE_SECONDS,
            tags={"Name": f"{name}-dlq"},
        )
        self.queue = SqsQueue(
            self,
            "queue",
            name=name,
            message_retention_seconds=p.message_retention_days * DAY_SECONDS,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * p.timeout_seconds,
            kms_master_key_id=queue_key.arn,
            kms_data_key_reuse_period_seconds=DATA_KEY_REUSE_SECONDS,
            redrive_policy=json.dumps(
                {"deadLetterTargetArn": self.dead_letter_queue.arn, "maxReceiveCount": p.max_receive_count}
            ),
            tags={"Name": name},
        )
        # A resource of its own: inline, the two queues would each name the other (a dependency cycle).
        SqsQueueRedriveAllowPolicy(
            self,
            "dead_letter_queue_sources",
            queue_url=self.dead_letter_queue.url,
            redrive_allow_policy=json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [self.queue.arn]}),
        )
        for queue_id, queue in (("queue", self.queue), ("dead_letter_queue", self.dead_letter_queue)):
            SqsQueuePolicy(
                self,
                f"{queue_id}_policy",
                queue_url=queue.url,
                policy=policy_document(
                    self,
                    f"{queue_id}_policy_document",
                    [
                        Statement(
                            sid="DenyInsecureTransport",
                            effect="Deny",
                            actions=["sqs:*"],
                            resources=[queue.arn],
                            principals={"*": ["*"]},
                            conditions={("Bool", "aws:SecureTransport"): ["false"]},
                        )
                    ],
                ).json,
            )

        self.log_group = CloudwatchLogGroup(
            self,
            "log_group",
            name=log_group_name,
            retention_in_days=log_retention_days,
            kms_key_id=logs_key.arn,
            tags={"Name": name},
        )

        self.security_group = https_out_group(
            self,
            "",
            name=name,
            description=f"{name}: the event processor; no inbound, HTTPS out only",
            vpc_id=vpc_id,
            egress_description="HTTPS to AWS APIs (NAT gateway or VPC endpoints)",
        )

        self.role = ServiceRole(
            self,
            "role",
            props=ServiceRoleProps(
                name=name,
                description=f"{name}: the event processor reads its queue and writes its logs and traces",
                service="lambda.amazonaws.com",
                account_id=account_id,
            ),
        )
        subnet_arns = [f"{ec2}:subnet/{subnet_id}" for subnet_id in subnet_ids]
        permissions = grant(
            self,
            self.role.role,
            verb="process_events",
            policy_name="process-events",
            statements=[
                Statement(
                    sid="WriteOwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[f"{self.log_group.arn}:*"],
                ),
                Statement(sid="ConsumeEventsQueue", actions=CONSUMER_ACTIONS, resources=[self.queue.arn]),
                Statement(
                    sid="DecryptEventsThroughSqs",
                    actions=["kms:Decrypt"],
                    resources=[queue_key.arn],
                    conditions={("StringEquals", "kms:ViaService"): [f"sqs.{region}.amazonaws.com"]},
                ),
                # An interface only in the private subnets, only in this group (not conditioned on keys of the new
                # interface: Lambda's own creation check has been seen to fail on them).
                Statement(
                    sid="CreateInterfacesInPrivateSubnets",
                    actions=["ec2:CreateNetworkInterface"],
                    resources=[
                        f"{ec2}:network-interface/*",
                        *subnet_arns,
                        f"{ec2}:security-group/{self.security_group.id}",
                    ],
                ),
                Statement(
                    sid="ManageAddressesOfInterfacesInPrivateSubnets",
                    actions=["ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
                    resources=[f"{ec2}:network-interface/*"],
                    conditions={("ArnEquals", "ec2:Subnet"): subnet_arns},
                ),
                # Lambda guide: give DeleteNetworkInterface one interface or all resource IDs ("...:*/*"),
                # else the function may not reach the VPC; the interfaces' IDs are Lambda's, not known here.
                Statement(
                    sid="DeleteInterfaces",
                    actions=["ec2:DeleteNetworkInterface"],
                    resources=[f"{ec2}:*/*"],
                ),
                Statement(
                    sid="DescribeInterfacesAndSubnets",
                    actions=DESCRIBE_ACTIONS,
                    resources=["*"],
                    any_resource_reason="EC2 Describe actions accept no resource but *",
                ),
                Statement(
                    sid="WriteTraces",
                    actions=TRACE_ACTIONS,
                    resources=["*"],
                    any_resource_reason="X-Ray's trace actions accept no resource but *",
                ),
            ],
        )

        self.queue_arn = self.queue.arn
        self.queue_url = self.queue.url
        self.dead_letter_queue_arn = self.dead_letter_queue.arn
        self.dead_letter_queue_name = self.dead_letter_queue.name
        self.log_group_name = self.log_group.name
        self.security_group_id = self.security_group.id
        self.role_arn = self.role.arn
        self.function: LambdaFunction | None = None
        self.function_name = name  # the function's, once it exists (its attribute, then)
        self.function_arn: str | None = None
        described = {
            f"{output_prefix}events_queue_url": (self.queue_url, "URL of the events queue (producers send here)"),
            f"{output_prefix}events_dead_letter_queue_name": (
                self.dead_letter_queue_name,
                "Dead-letter queue of events that failed processing max_receive_count times",
            ),
        }
        if with_function:
            self.function = self._function(p, name, code, code_bucket, repository_url, subnet_ids, permissions)
            self.function_name = self.function.function_name
            self.function_arn = self.function.arn
            described[f"{output_prefix}event_processor_function_name"] = (
                self.function.function_name,
                "Lambda function that processes the events",
            )
        export(self, described)

    def _function(
        self,
        p: EventProcessingConfig,
        name: str,
        code: str,
        code_bucket: str | None,
        repository_url: str | None,
        subnet_ids: Sequence[str],
        permissions: TerraformResource,
    ) -> LambdaFunction:
        code_settings = (
            {"s3_bucket": code_bucket, "s3_key": code, "runtime": p.runtime, "handler": p.handler}
            if p.package_type == "Zip"
            else {"image_uri": f"{repository_url}:{code}"}
        )
        function = LambdaFunction(
            self,
            "function",
            function_name=name,
            description=f"{name}: processes the events of its SQS queue",
            role=self.role.arn,
            package_type=p.package_type,
            **code_settings,
            memory_size=p.memory_mb,
            timeout=p.timeout_seconds,
            reserved_concurrent_executions=p.reserved_concurrency,
            vpc_config=LambdaFunctionVpcConfig(
                subnet_ids=list(subnet_ids), security_group_ids=[self.security_group.id]
            ),
            tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            logging_config=LambdaFunctionLoggingConfig(log_format="JSON", log_group=self.log_group.name),
            tags={"Name": name},
            # The group exists (encrypted, with its retention) before Lambda would create one; Lambda checks the
            # role's network permissions while it creates the function, and on destroy they outlive it.
            depends_on=[self.log_group, permissions],
        )
        LambdaEventSourceMapping(
            self,
            "event_source",
            event_source_arn=self.queue.arn,
            function_name=function.arn,
            batch_size=p.batch_size,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=LambdaEventSourceMappingScalingConfig(
                maximum_concurrency=max(
                    MIN_EVENT_SOURCE_CONCURRENCY, min(p.reserved_concurrency, MAX_EVENT_SOURCE_CONCURRENCY)
                )
            ),
        )
        return function

    def deployed_after(self, resource: TerraformResource) -> None:
        """Create the function only once ``resource`` exists: the repository policy that lets Lambda pull its image
        (Lambda pulls while it creates the function). Nothing to order without a function."""
        if self.function is None:
            return
        # depends_on needs a static address: the resource's fqn token would render as an interpolation.
        address = f"{resource.terraform_resource_type}.{resource.friendly_unique_id}"
        self.function.depends_on = [*(self.function.depends_on or []), address]

    def send_statements(self) -> list[Statement]:
        """What a producer needs to send to the events queue (and encrypt through SQS with the data key)."""
        return [
            Statement(sid="SendToEventsQueue", actions=["sqs:SendMessage"], resources=[self.queue.arn]),
            Statement(
                sid="EncryptEventsThroughSqs",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self._key_arn],
                conditions={("StringEquals", "kms:ViaService"): [f"sqs.{self._region}.amazonaws.com"]},
            ),
        ]

    def repository_policy_statements(self) -> list[Statement]:
        """The event-processor repository's policy: Lambda pulls this function's image (Image only).

        No Resource: ECR rejects a repository policy that names one (the policy's repository is the resource).
        """
        return [
            Statement(
                sid="LambdaPullsEventProcessorImage",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[],
                principals={"Service": ["lambda.amazonaws.com"]},
                conditions={("ArnLike", "aws:SourceArn"): [self._function_arn, f"{self._function_arn}:*"]},
            )
        ]

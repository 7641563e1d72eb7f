"""The CI pipeline's way into AWS: GitHub's OIDC provider and, per environment, a plan role and an apply role.

``.github/workflows/infra.yml`` assumes them with GitHub's OIDC tokens (no long-lived keys). Trust is pinned to one
repository (config ``ci.github_repository``): the plan role to its pull requests and its main branch, the apply role
to one GitHub environment (``ci.github_environment``; ``production`` in prod, with required reviewers).

- **plan**: AWS's ``ReadOnlyAccess`` (a refresh reads the configuration of every service the stack uses), the state
  read and locked, the environment's secret versions (refreshing ``aws_secretsmanager_secret_version`` reads them);
  denied the data itself: objects in the environment's buckets, items in its tables, its log events.
- **apply**: the services this stack's resources belong to (derived from the stack itself, so a new resource type
  needs a new line in ``RESOURCE_SERVICES`` and nothing is granted that the stack does not use), in this
  environment's regions only; IAM only on the environment's names; the state read, written and locked. Denied:
  anything tagged for another environment, IAM users and keys, the account and organization, and changes to the
  pipeline's own roles (those an administrator applies; docs/DEPLOYMENT.md, "The CI pipeline").

The OIDC provider exists once per account: the environment that owns the account services creates it, the others
look it up (the plan fails loudly if the owner has not been applied).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cdktf import TerraformDataSource, TerraformResource
from cdktf_cdktf_provider_aws.data_aws_iam_openid_connect_provider import DataAwsIamOpenidConnectProvider
from cdktf_cdktf_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

from roi_tf.config import ACCOUNT_SCOPE
from roi_tf.modules.exports import export
from roi_tf.modules.protection import generated_resource_type
from roi_tf.modules.security.policy import Statement, policy_document

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_AUDIENCE = "sts.amazonaws.com"  # what aws-actions/configure-aws-credentials asks GitHub for
READ_ONLY_POLICY = "policy/ReadOnlyAccess"
PIPELINE_SESSION_HOURS = 2  # a prod plan plus the pre-deploy snapshot, apply and validation fit in it

# Terraform resource type prefix -> the IAM service prefix whose actions manage it (longest prefix wins). A type
# missing here stops the synth: the apply role would otherwise fail at apply on a service it was never granted.
RESOURCE_SERVICES = {
    "aws_acm_": "acm",
    "aws_appautoscaling_": "application-autoscaling",
    "aws_autoscaling_": "autoscaling",
    "aws_budgets_": "budgets",
    "aws_ce_": "ce",
    "aws_chatbot_": "chatbot",
    "aws_cloudfront_": "cloudfront",
    "aws_cloudtrail": "cloudtrail",
    "aws_cloudwatch_dashboard": "cloudwatch",
    "aws_cloudwatch_metric_alarm": "cloudwatch",
    "aws_cloudwatch_event_": "events",
    "aws_cloudwatch_log_": "logs",
    "aws_config_": "config",
    "aws_db_": "rds",
    "aws_default_network_acl": "ec2",
    "aws_default_route_table": "ec2",
    "aws_default_security_group": "ec2",
    "aws_dynamodb_": "dynamodb",
    "aws_ec2_": "ec2",
    "aws_ecr_": "ecr",
    "aws_ecs_": "ecs",
    "aws_eip": "ec2",
    "aws_elasticache_": "elasticache",
    "aws_flow_log": "ec2",
    "aws_guardduty_": "guardduty",
    "aws_internet_gateway": "ec2",
    "aws_kms_": "kms",
    "aws_lambda_": "lambda",
    "aws_launch_template": "ec2",
    "aws_lb": "elasticloadbalancing",
    "aws_nat_gateway": "ec2",
    "aws_network_acl": "ec2",
    "aws_route53_": "route53",
    "aws_route": "ec2",
    "aws_s3_": "s3",
    "aws_secretsmanager_": "secretsmanager",
    "aws_security_group": "ec2",
    "aws_securityhub_": "securityhub",
    "aws_sns_": "sns",
    "aws_sqs_": "sqs",
    "aws_subnet": "ec2",
    "aws_vpc": "ec2",
    "aws_wafv2_": "wafv2",
    "aws_xray_": "xray",
}
# IAM is never granted by service: ``_iam_statements`` scopes it to the environment's names.
IAM_TYPE_PREFIX = "aws_iam_"
# Services granted on the environment's names only (``roi-systems-<env>-*``), not on "*": a bucket or table of
# another environment in the account (its Terraform state among them) stays out of reach, tagged or not.
NAMED_SERVICES = {
    "s3": ("arn:{partition}:s3:::{prefix}-*", "arn:{partition}:s3:::{prefix}-*/*"),
    "dynamodb": (
        "arn:{partition}:dynamodb:*:{account}:table/{prefix}-*",
        "arn:{partition}:dynamodb:*:{account}:table/{prefix}-*/*",
    ),
}
# Data sources the apply role reads besides the managed services' (those need no permission at all: ``None``).
DATA_SOURCE_ACTIONS: dict[str, tuple[str, ...] | None] = {
    "aws_caller_identity": None,
    "aws_partition": None,
    "aws_default_tags": None,
    "aws_iam_policy_document": None,
    "aws_elb_service_account": None,
    "aws_ssm_parameter": ("ssm:GetParameter",),  # AWS's public parameters (the ECS-optimized AMI)
    # The account's detector, looked up by an environment that shares the account: reading it is all it may do
    # (counted as a service, the lookup would have granted guardduty:* on the owner's detector).
    "aws_guardduty_detector": ("guardduty:ListDetectors", "guardduty:GetDetector"),
}
# What those reads may name; default "*" (in the environment's regions): ListDetectors takes no resource, and the
# detector's ID is what the lookup finds.
DATA_SOURCE_RESOURCES = {"aws_ssm_parameter": "arn:{partition}:ssm:*:*:parameter/aws/service/*"}
DATA_SOURCE_SIDS = {"aws_ssm_parameter": "ReadPublicParameters", "aws_guardduty_detector": "FindTheAccountsDetector"}
# The AWS managed policies the stack attaches to its own roles: the only ones the apply role may attach.
ATTACHABLE_MANAGED_POLICIES = (
    "policy/job-function/ViewOnlyAccess",
    "policy/service-role/AmazonRDSEnhancedMonitoringRole",
    "policy/AmazonSSMManagedInstanceCore",
    "policy/CloudWatchAgentServerPolicy",
    "policy/service-role/AmazonEC2ContainerServiceforEC2Role",
    "policy/ReadOnlyAccess",
    "policy/CloudWatchReadOnlyAccess",
)
# Service prefix -> the principals the stack's roles for that service trust (iam:PassedToService).
PASSED_TO_SERVICES = {
    "chatbot": ("chatbot.amazonaws.com",),
    "cloudtrail": ("cloudtrail.amazonaws.com",),
    "ec2": ("ec2.amazonaws.com", "vpc-flow-logs.amazonaws.com"),
    "ecs": ("ecs-tasks.amazonaws.com",),
    "lambda": ("lambda.amazonaws.com",),
    "rds": ("monitoring.rds.amazonaws.com", "rds.amazonaws.com"),
    "s3": ("s3.amazonaws.com",),
}
# Service prefix -> the service-linked roles AWS creates on first use of it (iam:AWSServiceName).
SERVICE_LINKED_ROLES = {
    "application-autoscaling": ("ecs.application-autoscaling.amazonaws.com",),
    "autoscaling": ("autoscaling.amazonaws.com", "spot.amazonaws.com"),
    "chatbot": ("management.chatbot.amazonaws.com",),
    "config": ("config.amazonaws.com",),
    # Global tables and ECR replication (the DR pilot light) replicate through a service-linked role of their own.
    "dynamodb": ("replication.dynamodb.amazonaws.com",),
    "ecr": ("replication.ecr.amazonaws.com",),
    "ecs": ("ecs.amazonaws.com",),
    "elasticache": ("elasticache.amazonaws.com",),
    "elasticloadbalancing": ("elasticloadbalancing.amazonaws.com",),
    "guardduty": ("guardduty.amazonaws.com",),
    "rds": ("rds.amazonaws.com",),
    "securityhub": ("securityhub.amazonaws.com",),
}
# Identity and account changes no pipeline makes.
DENIED_IDENTITY_ACTIONS = (
    "iam:CreateUser",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:AttachUserPolicy",
    "iam:PutUserPolicy",
    "iam:AddUserToGroup",
    "iam:CreateSAMLProvider",
    "organizations:*",
    "account:*",
)
# What would let the pipeline widen its own access: an administrator applies such changes.
PIPELINE_ROLE_CHANGES = (
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:UpdateRole",
    "iam:DeleteRole",
)
# What the environment's roles, instance profiles and groups may be done to.
ENVIRONMENT_IAM_ACTIONS = (
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:GetRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:ListRoleTags",
    "iam:PutRolePolicy",
    "iam:GetRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:ListRolePolicies",
    "iam:DetachRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:CreateInstanceProfile",
    "iam:DeleteInstanceProfile",
    "iam:GetInstanceProfile",
    "iam:AddRoleToInstanceProfile",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:TagInstanceProfile",
    "iam:UntagInstanceProfile",
    "iam:CreateGroup",
    "iam:DeleteGroup",
    "iam:GetGroup",
    "iam:PutGroupPolicy",
    "iam:GetGroupPolicy",
    "iam:DeleteGroupPolicy",
    "iam:ListGroupPolicies",
    "iam:ListAttachedGroupPolicies",
)
OIDC_PROVIDER_ACTIONS = (
    "iam:CreateOpenIDConnectProvider",
    "iam:DeleteOpenIDConnectProvider",
    "iam:GetOpenIDConnectProvider",
    "iam:TagOpenIDConnectProvider",
    "iam:UntagOpenIDConnectProvider",
    "iam:AddClientIDToOpenIDConnectProvider",
    "iam:RemoveClientIDFromOpenIDConnectProvider",
    "iam:UpdateOpenIDConnectProviderThumbprint",
)
PASSWORD_POLICY_ACTIONS = (
    "iam:GetAccountPasswordPolicy",
    "iam:UpdateAccountPasswordPolicy",
    "iam:DeleteAccountPasswordPolicy",
)
STATE_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")


def resource_service(resource_type: str) -> str:
    """The IAM service prefix that manages ``resource_type`` (``aws_db_proxy`` -> ``rds``)."""
    matches = [p for p in RESOURCE_SERVICES if resource_type.startswith(p)]
    if not matches:
        raise ValueError(
            f"{resource_type}: no IAM service known for it; add its prefix to RESOURCE_SERVICES in "
            "roi_tf/modules/security/pipeline.py so the CI apply role may manage it"
        )
    return RESOURCE_SERVICES[max(matches, key=len)]


def stack_services(types: Iterable[str]) -> tuple[str, ...]:
    """The services whose resources ``types`` (a stack's resource types) are; IAM is left to its own statements."""
    return tuple(sorted({resource_service(t) for t in types if not t.startswith(IAM_TYPE_PREFIX)}))


def data_source_actions(types: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Data source type -> what reading it needs beyond its services' and IAM's own actions."""
    return {t: actions for t in sorted(types) if (actions := DATA_SOURCE_ACTIONS.get(t))}


def _types_in(stack: Construct) -> tuple[set[str], set[str]]:
    """The resource and data source types in ``stack``: read from the generated classes' modules, asking jsii only
    for any other class (synth time)."""
    classes = {type(c) for c in stack.node.find_all()}
    resources = {generated_resource_type(c) or c.TF_RESOURCE_TYPE for c in classes if issubclass(c, TerraformResource)}
    data = {generated_resource_type(c) or c.TF_RESOURCE_TYPE for c in classes if issubclass(c, TerraformDataSource)}
    return resources, data


@dataclass(frozen=True, kw_only=True)
class PipelineProps:
    """Inputs of the pipeline's roles in one environment."""

    env: str
    name_prefix: str  # "roi-systems-<env>": the names the apply role may manage IAM under
    plan_role_name: str
    apply_role_name: str
    repository: str  # "owner/name"
    github_environment: str  # the GitHub environment whose jobs may apply
    main_branch: str
    owns_provider: bool  # this environment creates the account's GitHub OIDC provider (and its password policy)
    regions: Sequence[str]  # where the stack makes requests: primary, DR, us-east-1 (global services), Chatbot's
    region: str  # the state's region
    account_id: str
    partition: str
    state_bucket: str
    state_key: str  # "<env>/terraform.tfstate"
    lock_table: str
    state_key_alias: str  # "alias/roi-systems-<env>-tfstate"
    secrets_key_alias: str  # the key the environment's secrets are encrypted with
    secret_name_prefix: str  # "roi-systems/<env>/"
    log_group_prefix: str  # "/roi-systems/<env>"


class Pipeline(Construct):
    """The account's GitHub OIDC provider (or a lookup of it) and this environment's plan and apply roles.

    Create it last in the stack: the apply role's services are read from the resources already in the stack.
    """

    def __init__(self, scope: Construct, id: str, *, props: PipelineProps, stack: Construct) -> None:
        super().__init__(scope, id)
        p = self._props = props
        arn = f"arn:{p.partition}"
        if p.owns_provider:
            self.provider_arn = IamOpenidConnectProvider(
                self,
                "github_oidc",
                url=f"https://{GITHUB_OIDC_HOST}",
                client_id_list=[GITHUB_AUDIENCE],
                tags={"Environment": ACCOUNT_SCOPE},  # every environment of the account reads it
            ).arn
        else:
            self.provider_arn = DataAwsIamOpenidConnectProvider(
                self, "github_oidc", url=f"https://{GITHUB_OIDC_HOST}"
            ).arn
        resource_types, data_types = _types_in(stack)
        # A data source of a service the stack does not otherwise use (a hosted zone lookup) needs its reads too.
        self.services = stack_services(resource_types | {t for t in data_types if t not in DATA_SOURCE_ACTIONS})
        self._data_actions = data_source_actions(data_types)

        subject = f"repo:{p.repository}"
        plan = self._role(
            "plan",
            p.plan_role_name,
            f"CI plans of {p.name_prefix} ({p.repository}: pull requests and {p.main_branch}); read-only",
            [f"{subject}:pull_request", f"{subject}:ref:refs/heads/{p.main_branch}"],
            self._state_statements(write=False) + self._plan_statements(),
        )
        IamRolePolicyAttachment(self, "plan_read_only", role=plan.name, policy_arn=f"{arn}:iam::aws:{READ_ONLY_POLICY}")
        apply = self._role(
            "apply",
            p.apply_role_name,
            f"CI applies of {p.name_prefix} ({p.repository}, GitHub environment {p.github_environment})",
            [f"{subject}:environment:{p.github_environment}"],
            self._state_statements(write=True) + self._apply_statements(),
        )
        self.plan_role_arn, self.apply_role_arn = plan.arn, apply.arn
        export(
            self,
            {
                "ci_plan_role_arn": (plan.arn, "Role CI plans assume (GitHub OIDC; repository variable)"),
                "ci_apply_role_arn": (apply.arn, "Role CI applies assume (GitHub OIDC; GitHub environment variable)"),
            },
        )

    def _role(self, id: str, name: str, description: str, subjects: list[str], statements: list[Statement]) -> IamRole:
        trust = policy_document(
            self,
            f"{id}_trust",
            [
                Statement(
                    sid="GithubActionsOfThisRepository",
                    actions=["sts:AssumeRoleWithWebIdentity"],
                    resources=[],
                    principals={"Federated": [self.provider_arn]},
                    conditions={
                        ("StringEquals", f"{GITHUB_OIDC_HOST}:aud"): [GITHUB_AUDIENCE],
                        # Exact subjects, never a pattern: another repository, branch or environment gets nothing.
                        ("StringEquals", f"{GITHUB_OIDC_HOST}:sub"): subjects,
                    },
                )
            ],
        )
        role = IamRole(
            self,
            f"{id}_role",
            name=name,
            description=description,
            assume_role_policy=trust.json,
            max_session_duration=PIPELINE_SESSION_HOURS * 3600,
        )
        IamRolePolicy(
            self,
            f"{id}_policy",
            name=id,
            role=role.name,
            policy=policy_document(self, f"{id}_permissions", statements).json,
        )
        return role

    # --- statements ----------------------------------------------------------------------------------------------

    def _key_statement(self, sid: str, actions: Sequence[str], alias: str, via: str | None = None) -> Statement:
        """KMS actions on the key behind ``alias``, wherever its ID (the policy cannot know it before the key)."""
        p = self._props
        conditions = {("ForAnyValue:StringEquals", "kms:ResourceAliases"): [alias]}
        if via:
            conditions[("StringEquals", "kms:ViaService")] = [f"{via}.{p.region}.amazonaws.com"]
        return Statement(
            sid=sid,
            actions=list(actions),
            resources=[f"arn:{p.partition}:kms:{p.region}:{p.account_id}:key/*"],
            conditions=conditions,
        )

    def _state_statements(self, *, write: bool) -> list[Statement]:
        """The environment's own state: read (plan) or written (apply), and locked either way."""
        p = self._props
        bucket = f"arn:{p.partition}:s3:::{p.state_bucket}"
        lock_file = f"{bucket}/{p.state_key}.tflock"  # use_lockfile: S3-native locking beside the state
        return [
            Statement(sid="ListStateBucket", actions=["s3:ListBucket"], resources=[bucket]),
            Statement(
                sid="WriteState" if write else "ReadState",
                actions=["s3:GetObject", "s3:PutObject"] if write else ["s3:GetObject"],
                resources=[f"{bucket}/{p.state_key}"],
            ),
            Statement(
                sid="LockStateFile",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                resources=[lock_file],
            ),
            Statement(
                sid="LockStateTable",
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
                resources=[f"arn:{p.partition}:dynamodb:{p.region}:{p.account_id}:table/{p.lock_table}"],
            ),
            self._key_statement("UseStateKey", STATE_KEY_ACTIONS, p.state_key_alias),
        ]

    def _plan_statements(self) -> list[Statement]:
        p = self._props
        arn, where = f"arn:{p.partition}", f"{p.region}:{p.account_id}"
        return [
            Statement(
                # Refreshing aws_secretsmanager_secret_version calls GetSecretValue (docs/DEPLOYMENT.md says why
                # the plan role still cannot be used from a fork).
                sid="RefreshSecretVersions",
                actions=["secretsmanager:GetSecretValue"],
                resources=[f"{arn}:secretsmanager:{where}:secret:{p.secret_name_prefix}*"],
            ),
            self._key_statement("DecryptSecretsForRefresh", ["kms:Decrypt"], p.secrets_key_alias, via="secretsmanager"),
            Statement(
                sid="DenyDataReads",
                effect="Deny",
                actions=[
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "logs:GetLogEvents",
                    "logs:FilterLogEvents",
                    "logs:StartQuery",
                ],
                resources=[
                    f"{arn}:s3:::{p.name_prefix}-*/*",
                    f"{arn}:dynamodb:*:{p.account_id}:table/{p.name_prefix}-*",
                    f"{arn}:logs:*:{p.account_id}:log-group:{p.log_group_prefix}/*",
                ],
            ),
        ]

    def _apply_statements(self) -> list[Statement]:
        p = self._props
        by_region = [service for service in self.services if service not in NAMED_SERVICES]
        by_name = [service for service in self.services if service in NAMED_SERVICES]
        statements = [
            Statement(
                sid="ManageTheStacksServicesInItsRegions",
                actions=[f"{service}:*" for service in by_region],
                resources=["*"],
                conditions={("StringEquals", "aws:RequestedRegion"): list(p.regions)},
                any_resource_reason=(
                    "AWS assigns the IDs of most of these resources (VPCs, subnets, keys, distributions) at creation; "
                    "the region condition and the Deny on other environments' tags bound it"
                ),
            ),
            *(
                Statement(
                    sid=f"ManageEnvironment{service.capitalize()}Resources",
                    actions=[f"{service}:*"],
                    resources=[
                        pattern.format(partition=p.partition, account=p.account_id, prefix=p.name_prefix)
                        for pattern in NAMED_SERVICES[service]
                    ],
                    # Tables by name and, like every other service, only in the environment's regions (a table of
                    # the same name elsewhere is not the stack's); bucket names are global, their region the bucket's.
                    conditions={("StringEquals", "aws:RequestedRegion"): list(p.regions)} if service != "s3" else {},
                )
                for service in by_name
            ),
            *self._iam_statements(),
            *self._deny_statements(),
        ]
        for data_type, actions in self._data_actions.items():
            resource = DATA_SOURCE_RESOURCES.get(data_type, "*").format(partition=p.partition)
            statements.append(
                Statement(
                    sid=DATA_SOURCE_SIDS[data_type],
                    actions=list(actions),
                    resources=[resource],
                    conditions={} if resource != "*" else {("StringEquals", "aws:RequestedRegion"): list(p.regions)},
                    any_resource_reason="" if resource != "*" else f"{data_type}: a lookup by what it finds",
                )
            )
        return statements

    def _iam_statements(self) -> list[Statement]:
        p = self._props
        iam = f"arn:{p.partition}:iam::{p.account_id}"
        names = [
            f"{iam}:role/{p.name_prefix}-*",
            f"{iam}:instance-profile/{p.name_prefix}-*",
            f"{iam}:group/{p.name_prefix}-*",
        ]
        statements = [
            Statement(sid="ManageEnvironmentIam", actions=list(ENVIRONMENT_IAM_ACTIONS), resources=names),
            Statement(
                sid="AttachOnlyTheStacksManagedPolicies",
                actions=["iam:AttachRolePolicy"],
                resources=[f"{iam}:role/{p.name_prefix}-*"],
                conditions={
                    ("ArnEquals", "iam:PolicyARN"): [
                        f"arn:{p.partition}:iam::aws:{policy}" for policy in ATTACHABLE_MANAGED_POLICIES
                    ]
                },
            ),
            Statement(
                sid="PassEnvironmentRolesToItsServices",
                actions=["iam:PassRole"],
                resources=[f"{iam}:role/{p.name_prefix}-*"],
                conditions={("StringEquals", "iam:PassedToService"): self._per_service(PASSED_TO_SERVICES)},
            ),
            Statement(
                sid="CreateServiceLinkedRoles",
                actions=["iam:CreateServiceLinkedRole"],
                resources=[f"{iam}:role/aws-service-role/*"],
                conditions={("StringEquals", "iam:AWSServiceName"): self._per_service(SERVICE_LINKED_ROLES)},
            ),
            Statement(
                sid="ReadAwsManagedPolicies",
                actions=["iam:GetPolicy", "iam:GetPolicyVersion"],
                resources=[f"arn:{p.partition}:iam::aws:policy/*"],
            ),
            Statement(
                sid="UseGithubOidcProvider",
                actions=list(OIDC_PROVIDER_ACTIONS) if p.owns_provider else ["iam:GetOpenIDConnectProvider"],
                resources=[f"{iam}:oidc-provider/{GITHUB_OIDC_HOST}"],
            ),
            Statement(
                sid="FindGithubOidcProvider",
                actions=["iam:ListOpenIDConnectProviders"],
                resources=["*"],
                any_resource_reason="ListOpenIDConnectProviders has no resource-level permissions",
            ),
        ]
        if p.owns_provider:
            statements.append(
                Statement(
                    sid="ManageAccountPasswordPolicy",
                    actions=list(PASSWORD_POLICY_ACTIONS),
                    resources=["*"],
                    any_resource_reason="the account password policy has no ARN",
                )
            )
        return statements

    def _per_service(self, table: dict[str, tuple[str, ...]]) -> list[str]:
        """The entries of ``table`` for the services this stack uses."""
        return sorted({value for service in self.services for value in table.get(service, ())})

    def _deny_statements(self) -> list[Statement]:
        p = self._props
        iam = f"arn:{p.partition}:iam::{p.account_id}"
        tag = "Environment"
        # Resources tagged for another environment, and creating or tagging anything for one.
        tags = {
            "DenyOtherEnvironmentsResources": "aws:ResourceTag",
            "DenyTaggingForOtherEnvironments": "aws:RequestTag",
        }
        return [
            *(
                Statement(
                    sid=sid,
                    effect="Deny",
                    actions=["*"],
                    resources=["*"],
                    # Only where the tag is there: a negated operator also holds when the key is absent.
                    conditions={
                        ("Null", f"{key}/{tag}"): ["false"],
                        # The account-level resources all environments of the account read are no one's.
                        ("StringNotEquals", f"{key}/{tag}"): [p.env, ACCOUNT_SCOPE],
                    },
                )
                for sid, key in tags.items()
            ),
            Statement(
                sid="DenyIdentityAndAccountChanges",
                effect="Deny",
                actions=list(DENIED_IDENTITY_ACTIONS),
                resources=["*"],
            ),
            Statement(
                sid="DenyChangingThePipelineRoles",
                effect="Deny",
                actions=list(PIPELINE_ROLE_CHANGES),
                resources=[f"{iam}:role/{p.plan_role_name}", f"{iam}:role/{p.apply_role_name}"],
            ),
        ]

"""The CI pipeline's roles (roi_tf/modules/security/pipeline.py): who may assume them, and what each may do.

Trust is read from the synthesized trust documents; permissions are decided by tests/policy_sim.py over the roles'
own inline policies (an explicit Deny wins, then an Allow). The plan role's AWS managed ReadOnlyAccess is not
simulated: what it must not reach is asserted as an *explicit* deny, which no managed Allow can override.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import policy_sim
from conftest import Stack
from roi_tf.config import ACCOUNT_SCOPE, ENVIRONMENTS, EnvironmentConfig, load_schema
from roi_tf.modules.security.pipeline import (
    ATTACHABLE_MANAGED_POLICIES,
    DATA_SOURCE_ACTIONS,
    IAM_TYPE_PREFIX,
    PASSED_TO_SERVICES,
    resource_service,
)

GITHUB = "token.actions.githubusercontent.com"
ACCOUNT = policy_sim.ACCOUNT
INLINE_POLICY_LIMIT = 10_240  # IAM: characters of all inline policies of one role, whitespace excluded


def role(stack: Stack, config: EnvironmentConfig, kind: str) -> tuple[str, dict[str, Any]]:
    return stack.one("aws_iam_role", name=f"roi-systems-{config.name}-ci-{kind}")


def trust(stack: Stack, role_body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[tuple[str, str], list[str]]]:
    (statement,) = stack.data("aws_iam_policy_document")[role_body["assume_role_policy"].split(".")[2]]["statement"]
    return statement["principals"], {(c["test"], c["variable"]): c["values"] for c in statement["condition"]}


def inline_documents(stack: Stack, role_name: str) -> list[dict[str, Any]]:
    policies = [
        p
        for p in stack.resources("aws_iam_role_policy").values()
        if p["role"] == Stack.ref("aws_iam_role", role_name, "name")
    ]
    assert policies, role_name
    return [stack.data("aws_iam_policy_document")[p["policy"].split(".")[2]] for p in policies]


class Role:
    """One pipeline role's own policies, asked the way AWS would be."""

    def __init__(self, stack: Stack, config: EnvironmentConfig, kind: str) -> None:
        self.name, self.body = role(stack, config, kind)
        self.statements = [s for d in inline_documents(stack, self.name) for s in policy_sim.from_document(d)]
        self.resolve = policy_sim.resolver(stack.json)
        self.region = config.region

    def decide(self, action: str, resource: str, **context: str) -> policy_sim.Decision:
        context.setdefault("aws:RequestedRegion", self.region)
        return policy_sim.identity_decision(self.statements, action, resource, self.resolve, context)

    def statement(self, sid: str) -> policy_sim.Statement:
        (found,) = [s for s in self.statements if s.sid == sid]
        return found


def arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


# --- Who may assume them ---------------------------------------------------------------------------------------


def test_plan_role_trusts_only_the_repositorys_pull_requests_and_main_branch(stack: Stack, config) -> None:
    _, body = role(stack, config, "plan")
    principals, conditions = trust(stack, body)
    (provider,) = stack.resources("aws_iam_openid_connect_provider")
    assert principals == [
        {"type": "Federated", "identifiers": [Stack.ref("aws_iam_openid_connect_provider", provider, "arn")]}
    ]
    repo = config.ci.github_repository
    assert conditions == {
        ("StringEquals", f"{GITHUB}:aud"): ["sts.amazonaws.com"],
        ("StringEquals", f"{GITHUB}:sub"): [f"repo:{repo}:pull_request", f"repo:{repo}:ref:refs/heads/main"],
    }
    assert body["max_session_duration"] == 7200


def test_apply_role_trusts_only_the_configured_github_environment(stack: Stack, config) -> None:
    _, body = role(stack, config, "apply")
    _, conditions = trust(stack, body)
    expected = {"dev": "dev", "staging": "staging", "prod": "production"}[config.name]  # prod: required reviewers
    assert conditions == {
        ("StringEquals", f"{GITHUB}:aud"): ["sts.amazonaws.com"],
        ("StringEquals", f"{GITHUB}:sub"): [f"repo:{config.ci.github_repository}:environment:{expected}"],
    }


def test_the_account_owner_creates_githubs_provider(stack: Stack) -> None:
    ((name, provider),) = stack.resources("aws_iam_openid_connect_provider").items()
    assert provider["url"] == f"https://{GITHUB}"
    assert provider["client_id_list"] == ["sts.amazonaws.com"]
    assert "thumbprint_list" not in provider  # IAM trusts GitHub's certificate authority itself
    assert stack.data("aws_iam_openid_connect_provider") == {}
    assert Stack.ref("aws_iam_openid_connect_provider", name, "arn") in stack.path.read_text()


def test_an_environment_sharing_the_account_looks_the_provider_up(referencing_dev: Stack, configs) -> None:
    dev = configs["dev"]
    assert referencing_dev.resources("aws_iam_openid_connect_provider") == {}
    ((name, lookup),) = referencing_dev.data("aws_iam_openid_connect_provider").items()
    assert lookup["url"] == f"https://{GITHUB}"
    for kind in ("plan", "apply"):
        principals, _ = trust(referencing_dev, role(referencing_dev, dev, kind)[1])
        assert principals[0]["identifiers"] == [Stack.data_ref("aws_iam_openid_connect_provider", name, "arn")]
    apply = Role(referencing_dev, dev, "apply")
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GITHUB}"
    shared = {"aws:ResourceTag/Environment": ACCOUNT_SCOPE}  # what the owner tags them with
    assert apply.decide("iam:GetOpenIDConnectProvider", provider, **shared).allowed
    detector = arn("guardduty", dev.region, "detector/12abc34d567e8fa901bc2d34e56789f0")
    assert apply.decide("guardduty:GetDetector", detector, **shared).allowed  # its lookup of the owner's detector
    assert apply.decide("guardduty:GetDetector", detector, **{"aws:ResourceTag/Environment": "prod"}).effect == (
        "explicit-deny"
    )
    assert apply.decide("guardduty:ListDetectors", "*").allowed
    # The detector is the owner's to manage: the lookup grants reads, never guardduty:*.
    for action in ("guardduty:DeleteDetector", "guardduty:UpdateDetector", "guardduty:CreateFilter"):
        assert not apply.decide(action, detector, **shared).allowed, action
    assert not apply.decide("guardduty:GetDetector", detector, **{"aws:RequestedRegion": "eu-west-1"}).allowed
    assert not apply.decide("iam:DeleteOpenIDConnectProvider", provider).allowed  # the owner's to manage
    assert not apply.decide("iam:UpdateAccountPasswordPolicy", "*").allowed


def test_what_every_environment_of_the_account_reads_is_tagged_as_the_accounts(stack: Stack, config) -> None:
    """The OIDC provider and the GuardDuty detectors carry Environment=shared-account: the other environments'
    apply roles may read them (their lookups), where any other environment's resources are denied."""
    shared = [
        *stack.resources("aws_iam_openid_connect_provider").values(),
        *stack.resources("aws_guardduty_detector").values(),
    ]
    assert len(shared) == 1 + (2 if config.security.enable_guardduty_in_dr_region else 1)
    assert all(body["tags"] == {"Environment": ACCOUNT_SCOPE} for body in shared)
    assert ACCOUNT_SCOPE not in ENVIRONMENTS and not re.fullmatch(
        load_schema()["$defs"]["environment_name"]["pattern"], ACCOUNT_SCOPE
    )
    apply = Role(stack, config, "apply")
    creating = {"aws:RequestTag/Environment": ACCOUNT_SCOPE}  # the owner creates them so tagged
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GITHUB}"
    assert apply.decide("iam:CreateOpenIDConnectProvider", provider, **creating).allowed


def test_without_a_repository_there_are_no_pipeline_roles(variants: dict[str, Stack]) -> None:
    staging = variants["staging"]
    assert not staging.find("aws_iam_role", name="roi-systems-staging-ci-plan")
    assert not staging.find("aws_iam_role", name="roi-systems-staging-ci-apply")
    assert staging.resources("aws_iam_openid_connect_provider") == {}
    assert not {"ci_plan_role_arn", "ci_apply_role_arn"} & set(staging.json["output"])


# --- What the plan role may do ---------------------------------------------------------------------------------


def test_plan_reads_and_locks_the_state_and_writes_nothing(stack: Stack, config) -> None:
    plan = Role(stack, config, "plan")
    env, state = config.name, config.state
    key = f"arn:aws:s3:::{state.bucket}/{env}/terraform.tfstate"
    table = arn("dynamodb", config.region, f"table/{state.lock_table}")
    attachment = stack.one("aws_iam_role_policy_attachment", role=Stack.ref("aws_iam_role", plan.name, "name"))[1]
    assert attachment["policy_arn"].endswith(":iam::aws:policy/ReadOnlyAccess")
    assert plan.decide("s3:GetObject", key).allowed
    assert plan.decide("s3:ListBucket", f"arn:aws:s3:::{state.bucket}").allowed
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"):
        assert plan.decide(action, table).allowed, action
    assert plan.decide("s3:PutObject", f"{key}.tflock").allowed  # S3-native locking
    state_key = arn("kms", config.region, "key/1234abcd-12ab-34cd-56ef-1234567890ab")
    alias = f"alias/roi-systems-{env}-tfstate"
    assert plan.decide("kms:Decrypt", state_key, **{"kms:ResourceAliases": alias}).allowed
    # ... and nothing else: not the state itself, another environment's state, or another key.
    assert not plan.decide("s3:PutObject", key).allowed
    assert not plan.decide("s3:DeleteObject", key).allowed
    assert not plan.decide("s3:GetObject", f"arn:aws:s3:::{state.bucket}/other/terraform.tfstate").allowed
    assert not plan.decide("kms:Decrypt", state_key, **{"kms:ResourceAliases": "alias/roi-systems-x-tfstate"}).allowed
    assert not plan.decide("kms:Decrypt", state_key).allowed
    assert not plan.decide("kms:Encrypt", state_key, **{"kms:ResourceAliases": f"alias/roi-systems-{env}-data"}).allowed


def test_plan_is_denied_the_environments_data_explicitly(stack: Stack, config) -> None:
    """Explicit denies: ReadOnlyAccess allows s3:GetObject and dynamodb:Scan on everything, these win over it."""
    plan = Role(stack, config, "plan")
    env, region = config.name, config.region
    documents = f"arn:aws:s3:::roi-systems-{env}-documents-{ACCOUNT}/contracts/1.pdf"
    for action, resource in [
        ("s3:GetObject", documents),
        ("s3:GetObjectVersion", documents),
        ("dynamodb:Scan", arn("dynamodb", region, f"table/roi-systems-{env}-sessions")),
        ("dynamodb:GetItem", arn("dynamodb", config.dr_region, f"table/roi-systems-{env}-sessions")),
        ("logs:GetLogEvents", arn("logs", region, f"log-group:/roi-systems/{env}/api:log-stream:x")),
        ("logs:StartQuery", arn("logs", region, f"log-group:/roi-systems/{env}/api")),
    ]:
        assert plan.decide(action, resource).effect == "explicit-deny", (action, resource)
    # The state and the lock table are not the environment's data: their names do not start with its prefix.
    assert plan.decide("s3:GetObject", f"arn:aws:s3:::{config.state.bucket}/{env}/terraform.tfstate").allowed
    assert plan.decide("dynamodb:GetItem", arn("dynamodb", region, f"table/{config.state.lock_table}")).allowed


def test_plan_refreshes_the_environments_secret_versions_only(stack: Stack, config) -> None:
    plan = Role(stack, config, "plan")
    env, region = config.name, config.region
    assert plan.decide(
        "secretsmanager:GetSecretValue",
        arn("secretsmanager", region, f"secret:roi-systems/{env}/api/jwt-secret-AbCdEf"),
    ).allowed
    assert not plan.decide(
        "secretsmanager:GetSecretValue", arn("secretsmanager", region, "secret:roi-systems/other/api/jwt-secret-AbCdEf")
    ).allowed
    key = arn("kms", region, "key/1234abcd-12ab-34cd-56ef-1234567890ab")
    data_alias = f"alias/roi-systems-{env}-data"
    via = {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
    assert plan.decide("kms:Decrypt", key, **{"kms:ResourceAliases": data_alias}, **via).allowed
    assert not plan.decide(
        "kms:Decrypt", key, **{"kms:ResourceAliases": data_alias}
    ).allowed  # only through Secrets Manager


# --- What the apply role may do --------------------------------------------------------------------------------


def stack_types(stack: Stack) -> set[str]:
    return set(stack.json["resource"]) | set(stack.json.get("data", {}))


def test_apply_manages_exactly_the_services_of_its_stack_in_its_regions(stack: Stack, config) -> None:
    apply = Role(stack, config, "apply")
    statement = apply.statement("ManageTheStacksServicesInItsRegions")
    expected = {
        resource_service(t)
        for t in stack_types(stack)
        if not t.startswith(IAM_TYPE_PREFIX) and t not in DATA_SOURCE_ACTIONS
    }
    named = {"s3", "dynamodb"} & expected  # granted on the environment's names instead
    assert {a.removesuffix(":*") for a in statement.actions} == expected - named
    assert all(a.endswith(":*") for a in statement.actions)
    regions = {config.region, config.dr_region, "us-east-1"}
    if "slack" in (config.monitoring.critical.route, config.monitoring.warning.route):
        regions.add(config.monitoring.chatbot_region)
    in_regions = (("StringEquals", "aws:RequestedRegion", tuple(sorted(regions))),)
    assert statement.conditions == in_regions
    for service in named:  # tables in the environment's regions; buckets wherever they are (global names)
        granted = apply.statement(f"ManageEnvironment{service.capitalize()}Resources")
        assert granted.actions == (f"{service}:*",) and granted.conditions == (in_regions if service != "s3" else ())


def test_apply_can_deploy_its_environment_and_nothing_outside_it(stack: Stack, config) -> None:
    apply = Role(stack, config, "apply")
    env, region = config.name, config.region
    database = arn("rds", region, f"db:roi-systems-{env}-postgres")
    assert apply.decide("rds:ModifyDBInstance", database).allowed
    assert apply.decide("ecs:UpdateService", arn("ecs", region, f"service/roi-systems-{env}/api")).allowed
    assert apply.decide("s3:PutBucketPolicy", f"arn:aws:s3:::roi-systems-{env}-documents-replica-{ACCOUNT}",
                         **{"aws:RequestedRegion": config.dr_region}).allowed  # fmt: skip
    # Another region, a service the stack does not use, another environment's tagged resource: no.
    assert not apply.decide("rds:ModifyDBInstance", database, **{"aws:RequestedRegion": "eu-west-1"}).allowed
    assert not apply.decide("sagemaker:CreateNotebookInstance", arn("sagemaker", region, "notebook-instance/x")).allowed
    other = "staging" if env != "staging" else "prod"
    tagged = {"aws:ResourceTag/Environment": other}
    assert apply.decide("rds:DeleteDBInstance", database, **tagged).effect == "explicit-deny"
    assert apply.decide("rds:DeleteDBInstance", database, **{"aws:ResourceTag/Environment": env}).allowed
    creating = {"aws:RequestTag/Environment": other}
    assert apply.decide("ec2:CreateVpc", arn("ec2", region, "vpc/*"), **creating).effect == "explicit-deny"
    assert apply.decide("ec2:CreateVpc", arn("ec2", region, "vpc/*"), **{"aws:RequestTag/Environment": env}).allowed
    # Buckets by name: the environment's, wherever they are (bucket names are global); tables by name in the
    # environment's regions; no other one, even untagged.
    bucket = f"arn:aws:s3:::roi-systems-{env}-documents-replica-{ACCOUNT}"
    assert apply.decide("s3:PutObject", f"{bucket}/x", **{"aws:RequestedRegion": "eu-west-1"}).allowed
    assert not apply.decide("s3:PutBucketPolicy", f"arn:aws:s3:::roi-systems-{other}-documents-{ACCOUNT}").allowed
    assert not apply.decide("s3:PutObject", "arn:aws:s3:::someone-elses-bucket/x").allowed
    table = arn("dynamodb", region, f"table/roi-systems-{env}-sessions")
    assert apply.decide("dynamodb:UpdateTable", table).allowed
    assert not apply.decide(
        "dynamodb:UpdateTable", arn("dynamodb", region, f"table/roi-systems-{other}-sessions")
    ).allowed
    assert not apply.decide("dynamodb:PutItem", arn("dynamodb", region, "table/roi-systems-terraform-locks-x")).allowed
    # Its own state, written; another environment's, not.
    state = f"arn:aws:s3:::{config.state.bucket}/{env}/terraform.tfstate"
    assert apply.decide("s3:PutObject", state).allowed
    assert not apply.decide("s3:PutObject", f"arn:aws:s3:::{config.state.bucket}/state-{env}/terraform.tfstate").allowed


def test_apply_gpu_capacity_only_where_the_stack_has_it(stacks: dict[str, Stack], configs) -> None:
    for env in ("dev", "prod"):
        apply = Role(stacks[env], configs[env], "apply")
        group = arn("autoscaling", configs[env].region, "autoScalingGroup:*:autoScalingGroupName/x")
        assert (
            apply.decide("autoscaling:CreateAutoScalingGroup", group).allowed
            is configs[env].compute.gpu_training.enabled
        )


def test_apply_manages_iam_only_under_the_environments_names(stack: Stack, config) -> None:
    apply = Role(stack, config, "apply")
    env = config.name
    task_role = f"arn:aws:iam::{ACCOUNT}:role/roi-systems-{env}-api-task"
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole"):
        assert apply.decide(action, task_role).allowed, action
        assert not apply.decide(action, f"arn:aws:iam::{ACCOUNT}:role/roi-systems-other-api-task").allowed, action
        assert not apply.decide(action, f"arn:aws:iam::{ACCOUNT}:role/admin").allowed, action
    # Managed policies: only those the stack attaches.
    view_only = "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"
    assert apply.decide("iam:AttachRolePolicy", task_role, **{"iam:PolicyARN": view_only}).allowed
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert not apply.decide("iam:AttachRolePolicy", task_role, **{"iam:PolicyARN": admin}).allowed
    # Passing roles: the environment's, to the services they serve.
    assert apply.decide("iam:PassRole", task_role, **{"iam:PassedToService": "ecs-tasks.amazonaws.com"}).allowed
    assert not apply.decide("iam:PassRole", task_role, **{"iam:PassedToService": "glue.amazonaws.com"}).allowed
    other_role = f"arn:aws:iam::{ACCOUNT}:role/roi-systems-other-api-task"
    assert not apply.decide("iam:PassRole", other_role, **{"iam:PassedToService": "ecs-tasks.amazonaws.com"}).allowed
    # Never: users and keys, the account, or the pipeline's own roles (an administrator applies those).
    for action in ("iam:CreateUser", "iam:CreateAccessKey", "organizations:LeaveOrganization"):
        assert apply.decide(action, "*").effect == "explicit-deny", action
    for kind in ("plan", "apply"):
        own = f"arn:aws:iam::{ACCOUNT}:role/roi-systems-{env}-ci-{kind}"
        for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole"):
            assert apply.decide(action, own, **{"iam:PolicyARN": view_only}).effect == "explicit-deny", (kind, action)
        assert apply.decide("iam:GetRole", own).allowed  # a refresh still reads them


def test_apply_creates_the_service_linked_roles_its_stack_needs_and_no_others(stack: Stack, config) -> None:
    """The pilot light's replication creates service-linked roles at its first apply: the global table's and ECR's."""
    apply = Role(stack, config, "apply")

    def creates(service: str) -> bool:
        role_arn = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/{service}/AWSServiceRole"
        return apply.decide("iam:CreateServiceLinkedRole", role_arn, **{"iam:AWSServiceName": service}).allowed

    needed = {"elasticloadbalancing.amazonaws.com", "ecs.amazonaws.com", "rds.amazonaws.com"}
    if stack.resources("aws_ecr_replication_configuration"):
        needed.add("replication.ecr.amazonaws.com")
    if any("replica" in table for table in stack.resources("aws_dynamodb_table").values()):
        needed.add("replication.dynamodb.amazonaws.com")
    assert {service for service in needed if not creates(service)} == set()
    assert not creates("opensearchservice.amazonaws.com") and not creates("replication.s3.amazonaws.com")


@pytest.mark.parametrize("env", ["prod"], indirect=True)
def test_apply_sets_up_the_pilot_lights_replication_in_the_dr_region_only(stack: Stack, config) -> None:
    apply = Role(stack, config, "apply")
    table = f"roi-systems-{config.name}-sessions"
    for region, allowed in ((config.dr_region, True), ("eu-west-1", False)):
        requests = {
            "dynamodb:CreateTableReplica": arn("dynamodb", region, f"table/{table}"),
            "ecr:CreateRepository": arn("ecr", region, f"repository/roi-systems-{config.name}-apps/api"),
            "secretsmanager:ReplicateSecretToRegions": arn("secretsmanager", config.region, "secret:x"),
        }
        for action, resource in requests.items():
            decision = apply.decide(action, resource, **{"aws:RequestedRegion": region})
            assert decision.allowed is allowed, (action, region)
    assert apply.decide("ecr:PutReplicationConfiguration", "*").allowed
    other = arn("dynamodb", config.dr_region, "table/roi-systems-other-sessions")
    assert not apply.decide("dynamodb:CreateTableReplica", other, **{"aws:RequestedRegion": config.dr_region}).allowed


def test_every_role_the_stack_creates_can_be_passed_to_its_service(stacks: dict[str, Stack], configs) -> None:
    """PassedToService lists each service a role of the stack trusts, and nothing no stack needs."""
    used: set[str] = set()
    for env in ("dev", "staging", "prod"):
        stack, config = stacks[env], configs[env]
        passable = set(Role(stack, config, "apply").statement("PassEnvironmentRolesToItsServices").conditions[0][2])
        for name, body in stack.resources("aws_iam_role").items():
            document = stack.data("aws_iam_policy_document")[body["assume_role_policy"].split(".")[2]]
            services = {
                identifier
                for statement in document["statement"]
                for principal in statement["principals"]
                if principal["type"] == "Service"
                for identifier in principal["identifiers"]
            }
            assert services <= passable, (env, name, services - passable)
            used |= services
    listed = {service for services in PASSED_TO_SERVICES.values() for service in services}
    assert listed - used == {"chatbot.amazonaws.com"}  # the Slack route's role: no shipped config routes there


def test_the_managed_policies_it_may_attach_are_those_the_stacks_attach(stacks: dict[str, Stack]) -> None:
    attached = {
        body["policy_arn"].split(":iam::aws:")[1]
        for stack in stacks.values()
        for body in stack.resources("aws_iam_role_policy_attachment").values()
    }
    chatbot = {"policy/CloudWatchReadOnlyAccess"}  # the Slack route's channel role (no shipped config routes there)
    assert attached | chatbot == set(ATTACHABLE_MANAGED_POLICIES)


def test_each_roles_inline_policies_fit_iams_size_limit(stack: Stack, config) -> None:
    """AWS refuses a role whose inline policies exceed 10,240 characters (whitespace excluded) at apply."""
    resolve = policy_sim.resolver(stack.json)
    for kind in ("plan", "apply"):
        name, _ = role(stack, config, kind)
        size = 0
        for document in inline_documents(stack, name):
            rendered = json.dumps(
                {"Version": "2012-10-17", "Statement": [{k: v for k, v in s.items()} for s in document["statement"]]},
                separators=(",", ":"),
            )
            size += len(resolve(rendered))
        assert 1000 < size < INLINE_POLICY_LIMIT, (kind, size)


@pytest.mark.parametrize("kind", ["plan", "apply"])
def test_pipeline_role_arns_are_outputs(stack: Stack, config, kind: str) -> None:
    name, _ = role(stack, config, kind)
    assert stack.json["output"][f"ci_{kind}_role_arn"]["value"] == Stack.ref("aws_iam_role", name, "arn")

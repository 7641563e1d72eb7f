"""Where alerts go: encrypted SNS topics per severity and region, and their routes (PagerDuty, Slack, e-mail)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.chatbot_slack_channel_configuration import ChatbotSlackChannelConfiguration
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from roi_tf.config import AlertRouteConfig
from roi_tf.modules.security import KmsKey, ServiceRole, ServiceRoleProps, Statement, policy_document

CRITICAL, WARNING = "critical", "warning"

# The AWS services that publish alerts: CloudWatch alarms, EventBridge rules, AWS Budgets, Cost Anomaly Detection.
ALARMS, EVENTS, BUDGETS, COST_ANOMALIES = (
    "cloudwatch.amazonaws.com",
    "events.amazonaws.com",
    "budgets.amazonaws.com",
    "costalerts.amazonaws.com",
)

# What the account's own principals may do with a topic (through their IAM policies; the root delegates).
OWNER_ACTIONS = (
    "sns:GetTopicAttributes",
    "sns:SetTopicAttributes",
    "sns:AddPermission",
    "sns:RemovePermission",
    "sns:DeleteTopic",
    "sns:Subscribe",
    "sns:ListSubscriptionsByTopic",
    "sns:Publish",
)

# Chatbot reads alarm details and graphs to render them in Slack; the channel's guardrail keeps every command there
# read-only, whatever a member's role would allow.
CHATBOT_POLICY = "CloudWatchReadOnlyAccess"
CHATBOT_GUARDRAIL = "ReadOnlyAccess"


@dataclass(frozen=True, kw_only=True)
class TopicProps:
    """One alert topic: a severity in one region."""

    name: str
    severity: str  # CRITICAL or WARNING
    region: str
    account_id: str
    partition: str = "aws"
    publishers: Sequence[str]  # the service principals allowed to publish, for this account only


class AlertTopic(Construct):
    """An SNS topic encrypted with its region's alerts key, publishable only by this account and its services."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: TopicProps,
        key: KmsKey,
        provider: TerraformProvider | None = None,  # default: the stack's primary-region provider
    ) -> None:
        super().__init__(scope, id)
        p = props
        self.severity, self.region = p.severity, p.region
        self.topic = SnsTopic(
            self, "topic", name=p.name, display_name=p.name, kms_master_key_id=key.arn, provider=provider
        )
        self.arn = self.topic.arn  # read once: each attribute read is a round trip to jsii
        this_account = {("StringEquals", "aws:SourceAccount"): [p.account_id]}
        statements = [
            Statement(
                sid="AccountManages",
                actions=OWNER_ACTIONS,
                resources=[self.arn],
                principals={"AWS": [f"arn:{p.partition}:iam::{p.account_id}:root"]},
            ),
            Statement(
                sid="ServicesPublishForThisAccount",
                actions=["sns:Publish"],
                resources=[self.arn],
                principals={"Service": list(p.publishers)},
                conditions=this_account,
            ),
            Statement(
                sid="DenyInsecureTransport",
                effect="Deny",
                actions=OWNER_ACTIONS,
                resources=[self.arn],
                principals={"*": ["*"]},
                conditions={("Bool", "aws:SecureTransport"): ["false"]},
            ),
        ]
        document = policy_document(self, "policy_document", statements)
        SnsTopicPolicy(self, "policy", arn=self.arn, policy=document.json, provider=provider)
        self._provider = provider
        self.name = self.topic.name

    def deliver(self, route: AlertRouteConfig, *, pagerduty_url: str | None) -> None:
        """Subscribe the route's endpoint (PagerDuty's integration URL, or an e-mail address)."""
        if route.route == "pagerduty":
            assert pagerduty_url is not None  # the stack declares the variable whenever a route uses it
            SnsTopicSubscription(
                self,
                "pagerduty",
                topic_arn=self.arn,
                protocol="https",
                endpoint=pagerduty_url,
                # PagerDuty confirms the subscription itself; raw delivery off: it parses SNS's envelope.
                endpoint_auto_confirms=True,
                provider=self._provider,
            )
        elif route.route == "email":
            SnsTopicSubscription(
                self,
                "email",
                topic_arn=self.arn,
                protocol="email",
                endpoint=route.email or "",
                provider=self._provider,
            )


class SlackChannel(Construct):
    """AWS Chatbot posting the warning topics to one Slack channel, read-only whoever runs a command there."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        route: AlertRouteConfig,
        topics: Sequence[AlertTopic],
        account_id: str,
        partition: str,
        provider: TerraformProvider,  # Chatbot's API region (monitoring.chatbot_region)
    ) -> None:
        super().__init__(scope, id)
        role = ServiceRole(
            self,
            "role",
            props=ServiceRoleProps(
                name=name,
                description=f"{name}: AWS Chatbot reads alarm details for the Slack channel",
                service="chatbot.amazonaws.com",
                account_id=account_id,
            ),
        )
        IamRolePolicyAttachment(
            self, "read_alarms", role=role.name, policy_arn=f"arn:{partition}:iam::aws:policy/{CHATBOT_POLICY}"
        )
        self.channel = ChatbotSlackChannelConfiguration(
            self,
            "channel",
            configuration_name=name,
            iam_role_arn=role.arn,
            slack_team_id=route.slack_workspace_id or "",
            slack_channel_id=route.slack_channel_id or "",
            sns_topic_arns=[topic.arn for topic in topics],
            guardrail_policy_arns=[f"arn:{partition}:iam::aws:policy/{CHATBOT_GUARDRAIL}"],
            logging_level="ERROR",
            user_authorization_required=True,
            provider=provider,
        )

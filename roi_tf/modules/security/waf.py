"""WAFv2 web ACLs: AWS managed rule groups plus a per-IP rate limit, logged to CloudWatch Logs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.wafv2_web_acl import (
    Wafv2WebAcl,
    Wafv2WebAclDefaultAction,
    Wafv2WebAclDefaultActionAllow,
    Wafv2WebAclRule,
    Wafv2WebAclRuleAction,
    Wafv2WebAclRuleActionBlock,
    Wafv2WebAclRuleOverrideAction,
    Wafv2WebAclRuleOverrideActionNone,
    Wafv2WebAclRuleVisibilityConfig,
    Wafv2WebAclVisibilityConfig,
)
from cdktf_cdktf_provider_aws.wafv2_web_acl_logging_configuration import (
    Wafv2WebAclLoggingConfiguration,
    Wafv2WebAclLoggingConfigurationRedactedFields,
    Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader,
)
from constructs import Construct

from roi_tf.modules.exports import export
from roi_tf.modules.security.kms import KmsKey

SCOPES = ("REGIONAL", "CLOUDFRONT")
# AWS managed rule groups, in evaluation order (lower priority numbers run first).
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",  # known bad IPs: cheapest to drop
    "AWSManagedRulesAnonymousIpList",  # Tor exits and anonymizing proxies (hosting providers only counted)
    "AWSManagedRulesCommonRuleSet",  # OWASP Top 10 basics
    "AWSManagedRulesKnownBadInputsRuleSet",  # Log4Shell and similar exploit payloads
    "AWSManagedRulesSQLiRuleSet",
)
# Rules of the groups above that only count: integrations and customers' servers call the API from cloud hosts.
COUNTED_RULES = {"AWSManagedRulesAnonymousIpList": ("HostingProviderIPList",)}
RATE_LIMIT_RULE = "rate-limit-per-ip"
# The common rule set blocks request bodies over 8 KB. Where uploads must pass, that one rule only counts (and
# labels), and this rule blocks the labelled requests everywhere except under the upload prefixes.
BODY_SIZE_GROUP, BODY_SIZE_RULE = "AWSManagedRulesCommonRuleSet", "SizeRestrictions_BODY"
BODY_SIZE_LABEL = "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"
LARGE_BODIES_RULE = "large-bodies-only-for-uploads"
# Request headers that carry credentials: never written to the WAF logs.
REDACTED_HEADERS = ("authorization", "cookie")


@dataclass(frozen=True, kw_only=True)
class WebAclProps:
    """Inputs of a web ACL; CLOUDFRONT scope must be created through the us-east-1 provider."""

    name: str  # "roi-systems-<env>-regional"
    scope: str  # REGIONAL (ALB) or CLOUDFRONT
    rate_limit: int = 2000  # requests per client IP in 5 minutes
    log_group_name: str  # must start with "aws-waf-logs-"
    log_retention_days: int = 90
    # A stack output with the ACL's ARN, for the module that attaches it; default: none.
    output_name: str | None = None
    # URI path prefixes where request bodies over 8 KB are allowed (uploads); default: nowhere.
    large_body_path_prefixes: Sequence[str] = ()


def web_acl_log_group(
    scope: Construct, props: WebAclProps, logs_key: KmsKey, provider: TerraformProvider | None = None
) -> CloudwatchLogGroup:
    """The group a web ACL logs to. The DR region's, whose web ACL a failover may create, stands with the pilot light
    (the stack): a failback forgets the web ACL but must not leave its logs behind for the next failover to collide
    with."""
    return CloudwatchLogGroup(
        scope,
        "log_group",
        name=props.log_group_name,
        retention_in_days=props.log_retention_days,
        kms_key_id=logs_key.arn,
        provider=provider,
    )


class WebAcl(Construct):
    """A web ACL that allows by default and blocks what the managed rules or the rate limit catch."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: WebAclProps,
        logs_key: KmsKey,
        provider: TerraformProvider | None = None,  # default: the stack's primary-region provider
    ) -> None:
        super().__init__(scope, id)
        if props.scope not in SCOPES:
            raise ValueError(f"web ACL {props.name}: scope must be one of {SCOPES}, not {props.scope!r}")
        if not props.log_group_name.startswith("aws-waf-logs-"):
            raise ValueError(f"web ACL {props.name}: WAF only logs to groups named aws-waf-logs-*")

        # The rate limit runs first (priority 1), then the managed groups (10, 11, ...).
        rules = [
            Wafv2WebAclRule(
                name=RATE_LIMIT_RULE,
                priority=1,
                action=Wafv2WebAclRuleAction(block=Wafv2WebAclRuleActionBlock()),
                statement={"rate_based_statement": {"limit": props.rate_limit, "aggregate_key_type": "IP"}},
                visibility_config=_rule_visibility(RATE_LIMIT_RULE),
            ),
            *(
                Wafv2WebAclRule(
                    name=group,
                    priority=priority,
                    # The groups' own actions (block) apply; "none" means no override to count.
                    override_action=Wafv2WebAclRuleOverrideAction(none=Wafv2WebAclRuleOverrideActionNone()),
                    statement={"managed_rule_group_statement": _managed_group(group, props.large_body_path_prefixes)},
                    visibility_config=_rule_visibility(group),
                )
                for priority, group in enumerate(MANAGED_RULE_GROUPS, start=10)
            ),
        ]
        if props.large_body_path_prefixes:
            rules.append(
                Wafv2WebAclRule(
                    name=LARGE_BODIES_RULE,
                    priority=20,  # after the common rule set has labelled the request
                    action=Wafv2WebAclRuleAction(block=Wafv2WebAclRuleActionBlock()),
                    statement=_large_body_outside(props.large_body_path_prefixes),
                    visibility_config=_rule_visibility(LARGE_BODIES_RULE),
                )
            )
        self.acl = Wafv2WebAcl(
            self,
            "acl",
            name=props.name,
            description=f"{props.name}: AWS managed rules and a per-IP rate limit",
            scope=props.scope,
            default_action=Wafv2WebAclDefaultAction(allow=Wafv2WebAclDefaultActionAllow()),
            rule=rules,
            visibility_config=Wafv2WebAclVisibilityConfig(
                cloudwatch_metrics_enabled=True, metric_name=props.name, sampled_requests_enabled=True
            ),
            provider=provider,
        )
        self.arn = self.acl.arn  # read once: attribute reads are round trips to jsii
        self.log_group = web_acl_log_group(self, props, logs_key, provider)
        Wafv2WebAclLoggingConfiguration(
            self,
            "logging",
            resource_arn=self.arn,
            log_destination_configs=[self.log_group.arn],
            redacted_fields=[
                Wafv2WebAclLoggingConfigurationRedactedFields(
                    single_header=Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader(name=header)
                )
                for header in REDACTED_HEADERS
            ],
            provider=provider,
        )
        self.id = self.acl.id
        if props.output_name:
            where = "CloudFront (us-east-1)" if props.scope == "CLOUDFRONT" else "the load balancers"
            export(self, {props.output_name: (self.arn, f"WAF web ACL for {where}")})


def _managed_group(group: str, large_body_path_prefixes: Sequence[str]) -> dict[str, object]:
    statement: dict[str, object] = {"name": group, "vendor_name": "AWS"}
    counted = list(COUNTED_RULES.get(group, ()))
    if group == BODY_SIZE_GROUP and large_body_path_prefixes:
        counted.append(BODY_SIZE_RULE)
    if counted:
        statement["rule_action_override"] = [{"name": rule, "action_to_use": {"count": {}}} for rule in counted]
    return statement


def _large_body_outside(prefixes: Sequence[str]) -> dict[str, object]:
    """A body the common rule set found too large, on a path outside every upload prefix."""
    matches = [
        {
            "byte_match_statement": {
                "search_string": prefix,
                "positional_constraint": "STARTS_WITH",
                "field_to_match": {"uri_path": {}},
                "text_transformation": [{"priority": 0, "type": "NONE"}],
            }
        }
        for prefix in prefixes
    ]
    upload = matches[0] if len(matches) == 1 else {"or_statement": {"statement": matches}}
    return {
        "and_statement": {
            "statement": [
                {"label_match_statement": {"scope": "LABEL", "key": BODY_SIZE_LABEL}},
                {"not_statement": {"statement": [upload]}},
            ]
        }
    }


def _rule_visibility(name: str) -> Wafv2WebAclRuleVisibilityConfig:
    return Wafv2WebAclRuleVisibilityConfig(
        cloudwatch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )

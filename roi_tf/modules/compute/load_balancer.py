"""Application load balancers: TLS 1.3 HTTPS, HTTP redirected, invalid headers dropped, logged, deletion-protected."""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import TerraformResource, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.lb import Lb, LbAccessLogs
from cdktf_cdktf_provider_aws.lb_listener import (
    LbListener,
    LbListenerDefaultAction,
    LbListenerDefaultActionForward,
    LbListenerDefaultActionForwardTargetGroup,
    LbListenerDefaultActionRedirect,
)
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from cdktf_cdktf_provider_aws.wafv2_web_acl_association import Wafv2WebAclAssociation
from constructs import Construct

HTTPS, HTTP = 443, 80


class LoadBalancer(Construct):
    """One ALB with its security group and a single target group, HTTPS with a certificate, else HTTP (dev)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,  # at most 32 characters (ALB and target group names)
        internal: bool,
        vpc_id: str,
        subnet_ids: Sequence[str],
        certificate_arn: str | None,  # None: plain HTTP on port 80 (a disposable environment only)
        ssl_policy: str,
        idle_timeout_seconds: int,
        deletion_protection: bool,
        access_logs_bucket: str,
        access_logs_prefix: str,
        access_logs_policy: TerraformResource,  # the bucket's policy admitting ELB's delivery (checked at creation)
        target_group_name: str,  # at most 32 characters; changes whenever a replacing setting (the port) does
        target_port: int,
        health_check_path: str,
        deregistration_delay_seconds: int,
        web_acl_arn: str | None = None,  # default: no WAF in front (the internal load balancer)
    ) -> None:
        super().__init__(scope, id)
        self.https = certificate_arn is not None
        self.port = HTTPS if self.https else HTTP
        self.security_group = SecurityGroup(
            self,
            "security_group",
            name=f"{name}-lb",
            description=f"{name} load balancer: {'HTTPS' if self.https else 'HTTP'} in, to its targets only",
            vpc_id=vpc_id,
            tags={"Name": f"{name}-lb"},
        )
        # Attribute reads are round trips to jsii: each one used more than once is read once.
        self.security_group_id = self.security_group.id
        self.lb = Lb(
            self,
            "lb",
            name=name,
            load_balancer_type="application",
            internal=internal,
            subnets=list(subnet_ids),
            security_groups=[self.security_group_id],
            drop_invalid_header_fields=True,
            desync_mitigation_mode="strictest",
            enable_deletion_protection=deletion_protection,
            idle_timeout=idle_timeout_seconds,
            access_logs=LbAccessLogs(bucket=access_logs_bucket, prefix=access_logs_prefix, enabled=True),
            tags={"Name": name},
            # ELB writes a test object when access logs are enabled: the bucket must admit it by then.
            depends_on=[access_logs_policy],
        )
        self.arn = self.lb.arn
        # A new port replaces the target group: the new one is created (under its own name) and the listener and
        # service moved to it before the old one goes, which a listener still forwarding to it would refuse.
        self.target_group = LbTargetGroup(
            self,
            "target_group",
            name=target_group_name,
            target_type="ip",
            protocol="HTTP",
            port=target_port,
            vpc_id=vpc_id,
            deregistration_delay=str(deregistration_delay_seconds),
            health_check=LbTargetGroupHealthCheck(
                enabled=True,
                path=health_check_path,
                matcher="200",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags={"Name": target_group_name},
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        self.target_group_arn = self.target_group.arn
        forward = LbListenerDefaultAction(
            type="forward",
            forward=LbListenerDefaultActionForward(
                target_group=[LbListenerDefaultActionForwardTargetGroup(arn=self.target_group_arn)]
            ),
        )
        if self.https:
            self.listener = LbListener(
                self,
                "https",
                load_balancer_arn=self.arn,
                port=HTTPS,
                protocol="HTTPS",
                ssl_policy=ssl_policy,
                certificate_arn=certificate_arn,
                default_action=[forward],
            )
            if not internal:
                LbListener(
                    self,
                    "http_redirect",
                    load_balancer_arn=self.arn,
                    port=HTTP,
                    protocol="HTTP",
                    default_action=[
                        LbListenerDefaultAction(
                            type="redirect",
                            redirect=LbListenerDefaultActionRedirect(
                                protocol="HTTPS", port=str(HTTPS), status_code="HTTP_301"
                            ),
                        )
                    ],
                )
        else:
            self.listener = LbListener(
                self, "http", load_balancer_arn=self.arn, port=HTTP, protocol="HTTP", default_action=[forward]
            )
        if web_acl_arn is not None:
            Wafv2WebAclAssociation(self, "web_acl", resource_arn=self.arn, web_acl_arn=web_acl_arn)
        self.dns_name = self.lb.dns_name
        self.zone_id = self.lb.zone_id
        self.arn_suffix = self.lb.arn_suffix
        self.target_group_arn_suffix = self.target_group.arn_suffix

    def admit(self, id: str, *, description: str, cidr: str | None = None, prefix_list_id: str | None = None) -> None:
        """Clients from a CIDR or a managed prefix list, on the listener ports (HTTP too, for the redirect)."""
        ports = (HTTPS, HTTP) if self.https else (HTTP,)
        for port in ports:
            VpcSecurityGroupIngressRule(
                self,
                f"{id}_{port}",
                security_group_id=self.security_group_id,
                description=f"{description} ({'redirect to HTTPS' if self.https and port == HTTP else 'requests'})",
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4=cidr,
                prefix_list_id=prefix_list_id,
            )

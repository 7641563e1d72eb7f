"""Networking: VPC, three subnet tiers, NAT, routing, locked-down defaults, flow logs, endpoints.

Mirrors terraform-aws-modules/vpc (names of inputs and outputs) and AWS CDK's ``Vpc`` (computed
subnet CIDRs, secure defaults). Tiers:

- ``public``: load balancers and NAT gateways; routes to the internet gateway; no public IPs on launch.
- ``private`` (application): ECS tasks, Lambda; egress through NAT; reachable only from inside the VPC.
- ``isolated`` (database/cache): no route to the internet at all; subnet groups for RDS and ElastiCache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformProvider, TerraformResource
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.db_subnet_group import DbSubnetGroup
from cdktf_cdktf_provider_aws.default_network_acl import DefaultNetworkAcl
from cdktf_cdktf_provider_aws.default_route_table import DefaultRouteTable
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.eip import Eip
from cdktf_cdktf_provider_aws.elasticache_subnet_group import ElasticacheSubnetGroup
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.nat_gateway import NatGateway
from cdktf_cdktf_provider_aws.network_acl import NetworkAcl
from cdktf_cdktf_provider_aws.network_acl_rule import NetworkAclRule
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from roi_tf.config import NetworkingConfig
from roi_tf.modules.exports import export
from roi_tf.modules.firewall import https_out_group
from roi_tf.modules.regional import use_provider
from roi_tf.modules.security import KmsKey, ServiceRole, ServiceRoleProps, Statement

ANYWHERE = "0.0.0.0/0"
EPHEMERAL_PORTS = (1024, 65535)
GATEWAY_ENDPOINTS = ("s3", "dynamodb")


@dataclass(frozen=True, kw_only=True)
class NetworkOutputs:
    """What later modules may use; names follow terraform-aws-modules/vpc."""

    vpc_id: str
    vpc_cidr_block: str
    public_subnet_ids: list[str]
    private_subnet_ids: list[str]
    database_subnet_ids: list[str]
    database_subnet_group_name: str
    elasticache_subnet_group_name: str
    nat_gateway_ids: list[str]
    nat_public_ips: list[str]
    private_route_table_ids: list[str]
    interface_endpoint_security_group_id: str | None
    # The application's tasks; database and cache admit only this group (and the RDS proxy).
    application_security_group_id: str


class Networking(Construct):
    """A VPC across ``az_count`` AZs with public, private and isolated tiers, secure by default."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: NetworkingConfig,
        name: str,  # "roi-systems-<env>"; prefixes every Name tag
        region: str,
        flow_log_group_name: str,  # "/roi-systems/<env>/vpc-flow-logs"
        flow_log_key: KmsKey,
        flow_log_role_name: str,
        account_id: str,
        provider: TerraformProvider | None = None,  # default: the stack's primary-region provider
        export_outputs: bool = False,  # default: no stack outputs (the standby VPC's would collide)
    ) -> None:
        super().__init__(scope, id)
        self._ids: dict[int, str] = {}
        if provider is not None:
            use_provider(self, provider)
        self._config = config
        self._name = name
        self._region = region
        self._flow_log_group_name = flow_log_group_name
        self._flow_log_key = flow_log_key
        self._flow_log_role_name = flow_log_role_name
        self._account_id = account_id

        self.vpc = Vpc(
            self,
            "vpc",
            cidr_block=str(self._config.vpc_cidr),
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": name},
        )
        vpc_id = self._vpc_id = self.vpc.id

        # Lock down the defaults AWS creates with every VPC: nothing may use them by accident.
        DefaultSecurityGroup(
            self,
            "default_security_group",
            vpc_id=vpc_id,
            ingress=[],
            egress=[],
            tags={"Name": f"{name}-default-locked"},
        )
        DefaultNetworkAcl(
            self,
            "default_network_acl",
            default_network_acl_id=self.vpc.default_network_acl_id,
            ingress=[],
            egress=[],
            tags={"Name": f"{name}-default-locked"},
        )
        DefaultRouteTable(
            self,
            "default_route_table",
            default_route_table_id=self.vpc.default_route_table_id,
            route=[],
            tags={"Name": f"{name}-default-unused"},
        )

        self.public_subnets = self._subnets("public", self._config.subnet_plan.public)
        self.private_subnets = self._subnets("private", self._config.subnet_plan.private)
        self.isolated_subnets = self._subnets("isolated", self._config.subnet_plan.isolated)

        igw = InternetGateway(self, "igw", vpc_id=vpc_id, tags={"Name": name})
        public_rt = RouteTable(self, "public_route_table", vpc_id=vpc_id, tags={"Name": f"{name}-public"})
        Route(
            self,
            "public_internet",
            route_table_id=public_rt.id,
            destination_cidr_block=ANYWHERE,
            gateway_id=igw.id,
        )
        self._associate("public", self.public_subnets, [public_rt])

        self.nat_gateways: list[NatGateway] = []
        self.nat_eips: list[Eip] = []
        for i in range(self._config.nat_gateway_count):
            eip = Eip(self, f"nat_eip_{i}", domain="vpc", tags={"Name": f"{name}-nat-{i}"}, depends_on=[igw])
            self.nat_eips.append(eip)
            self.nat_gateways.append(
                NatGateway(
                    self,
                    f"nat_{i}",
                    allocation_id=eip.id,
                    subnet_id=self._id(self.public_subnets[i]),
                    tags={"Name": f"{name}-nat-{i}"},
                    depends_on=[igw],
                )
            )

        # One private route table per AZ, so each AZ egresses through its own NAT where there is one.
        self.private_route_tables = []
        for i in range(len(self._config.availability_zone_ids)):
            rt = RouteTable(self, f"private_route_table_{i}", vpc_id=vpc_id, tags={"Name": f"{name}-private-{i}"})
            if self.nat_gateways:
                nat = self.nat_gateways[i % len(self.nat_gateways)]
                Route(
                    self,
                    f"private_nat_{i}",
                    route_table_id=self._id(rt),
                    destination_cidr_block=ANYWHERE,
                    nat_gateway_id=self._id(nat),
                )
            self.private_route_tables.append(rt)
        self._associate("private", self.private_subnets, self.private_route_tables)

        # Isolated subnets: one route table with no route out of the VPC.
        isolated_rt = RouteTable(self, "isolated_route_table", vpc_id=vpc_id, tags={"Name": f"{name}-isolated"})
        self._associate("isolated", self.isolated_subnets, [isolated_rt])

        self._network_acls()
        self.flow_log = self._flow_logs()

        for service in GATEWAY_ENDPOINTS:
            VpcEndpoint(
                self,
                f"{service}_gateway_endpoint",
                vpc_id=vpc_id,
                service_name=f"com.amazonaws.{self._region}.{service}",
                vpc_endpoint_type="Gateway",
                route_table_ids=[*(self._id(rt) for rt in self.private_route_tables), self._id(isolated_rt)],
                tags={"Name": f"{name}-{service}"},
            )
        endpoint_sg = self._interface_endpoints() if self._config.interface_endpoints else None

        self.db_subnet_group = DbSubnetGroup(
            self,
            "database_subnet_group",
            name=f"{name}-database",
            description=f"{name} database subnets (isolated)",
            subnet_ids=[self._id(s) for s in self.isolated_subnets],
            tags={"Name": f"{name}-database"},
        )
        self.elasticache_subnet_group = ElasticacheSubnetGroup(
            self,
            "elasticache_subnet_group",
            name=f"{name}-elasticache",
            description=f"{name} cache subnets (isolated)",
            subnet_ids=[self._id(s) for s in self.isolated_subnets],
            tags={"Name": f"{name}-elasticache"},
        )

        app_sg = self._application_security_group()
        self.outputs = NetworkOutputs(
            vpc_id=vpc_id,
            vpc_cidr_block=self.vpc.cidr_block,
            public_subnet_ids=[self._id(s) for s in self.public_subnets],
            private_subnet_ids=[self._id(s) for s in self.private_subnets],
            database_subnet_ids=[self._id(s) for s in self.isolated_subnets],
            database_subnet_group_name=self.db_subnet_group.name,
            elasticache_subnet_group_name=self.elasticache_subnet_group.name,
            nat_gateway_ids=[self._id(n) for n in self.nat_gateways],
            nat_public_ips=[e.public_ip for e in self.nat_eips],
            private_route_table_ids=[self._id(rt) for rt in self.private_route_tables],
            interface_endpoint_security_group_id=endpoint_sg.id if endpoint_sg else None,
            application_security_group_id=app_sg.id,
        )
        if export_outputs:
            self._export()

    def _export(self) -> None:
        out = self.outputs
        export(
            self,
            {
                "vpc_id": (out.vpc_id, "ID of the VPC"),
                "vpc_cidr_block": (out.vpc_cidr_block, "CIDR block of the VPC"),
                "public_subnet_ids": (out.public_subnet_ids, "IDs of the public subnets (load balancers, NAT)"),
                "private_subnet_ids": (out.private_subnet_ids, "IDs of the private (application) subnets"),
                "database_subnet_ids": (out.database_subnet_ids, "IDs of the isolated (database/cache) subnets"),
                "database_subnet_group_name": (out.database_subnet_group_name, "Name of the RDS subnet group"),
                "elasticache_subnet_group_name": (out.elasticache_subnet_group_name, "ElastiCache subnet group"),
                "nat_gateway_ids": (out.nat_gateway_ids, "IDs of the NAT gateways"),
                "nat_public_ips": (out.nat_public_ips, "Public IPs of the NAT gateways (egress allow-lists)"),
                "application_security_group_id": (out.application_security_group_id, "Security group of the app tasks"),
            },
        )

    def _id(self, resource: TerraformResource) -> str:
        """A resource's id, read once: each attribute read is a round trip to jsii's node process (subnets and route
        tables are referenced many times; docs/FAST_SYNTH.md)."""
        key = id(resource)
        if key not in self._ids:
            self._ids[key] = resource.id  # type: ignore[attr-defined]
        return self._ids[key]

    def _subnets(self, tier: str, cidrs: Sequence[object]) -> list[Subnet]:
        return [
            Subnet(
                self,
                f"{tier}_subnet_{i}",
                vpc_id=self._vpc_id,
                cidr_block=str(cidr),
                availability_zone_id=self._config.availability_zone_ids[i],
                # Nothing gets a public IP implicitly; the ALB and NAT gateways bring their own.
                map_public_ip_on_launch=False,
                tags={"Name": f"{self._name}-{tier}-{i}", "Tier": tier},
            )
            for i, cidr in enumerate(cidrs)
        ]

    def _associate(self, tier: str, subnets: Sequence[Subnet], tables: Sequence[RouteTable]) -> None:
        for i, subnet in enumerate(subnets):
            RouteTableAssociation(
                self,
                f"{tier}_route_table_association_{i}",
                subnet_id=self._id(subnet),
                route_table_id=self._id(tables[i % len(tables)]),
            )

    def _network_acls(self) -> None:
        """Stateless second layer under the security groups; the locked default NACL is never used.

        public: HTTP/HTTPS and ephemeral-port return traffic from anywhere, anything from the VPC.
        private: return traffic from anywhere (NAT responses), anything from the VPC.
        isolated: only the VPC, in and out: no path to or from the internet.
        """
        vpc_cidr = str(self._config.vpc_cidr)
        low, high = EPHEMERAL_PORTS
        tiers = {
            "public": (
                self.public_subnets,
                [
                    ("tcp", ANYWHERE, 443, 443),
                    ("tcp", ANYWHERE, 80, 80),
                    ("tcp", ANYWHERE, low, high),
                    ("udp", ANYWHERE, low, high),
                    ("-1", vpc_cidr, 0, 0),
                ],
                [("-1", ANYWHERE, 0, 0)],
            ),
            "private": (
                self.private_subnets,
                [("tcp", ANYWHERE, low, high), ("udp", ANYWHERE, low, high), ("-1", vpc_cidr, 0, 0)],
                [("-1", ANYWHERE, 0, 0)],
            ),
            "isolated": (self.isolated_subnets, [("-1", vpc_cidr, 0, 0)], [("-1", vpc_cidr, 0, 0)]),
        }
        for tier, (subnets, ingress, egress) in tiers.items():
            acl = NetworkAcl(
                self,
                f"{tier}_network_acl",
                vpc_id=self._vpc_id,
                subnet_ids=[self._id(s) for s in subnets],
                tags={"Name": f"{self._name}-{tier}"},
            )
            for direction, rules in (("ingress", ingress), ("egress", egress)):
                for n, (protocol, cidr, from_port, to_port) in enumerate(rules):
                    NetworkAclRule(
                        self,
                        f"{tier}_{direction}_{n}",
                        network_acl_id=self._id(acl),
                        rule_number=100 + 10 * n,
                        egress=direction == "egress",
                        protocol=protocol,
                        rule_action="allow",
                        cidr_block=cidr,
                        from_port=from_port,
                        to_port=to_port,
                    )

    def _flow_logs(self) -> FlowLog:
        """ALL traffic to a KMS-encrypted log group, through a role that can write only there."""
        group = CloudwatchLogGroup(
            self,
            "flow_log_group",
            name=self._flow_log_group_name,
            retention_in_days=self._config.flow_log_retention_days,
            kms_key_id=self._flow_log_key.arn,
            tags={"Name": f"{self._name}-vpc-flow-logs"},
        )
        role = ServiceRole(
            self,
            "flow_log_role",
            props=ServiceRoleProps(
                name=self._flow_log_role_name,
                description=f"VPC flow logs of {self._name} write to {self._flow_log_group_name}",
                service="vpc-flow-logs.amazonaws.com",
                account_id=self._account_id,
                policy_name="write-flow-logs",
                statements=[
                    Statement(
                        sid="WriteFlowLogs",
                        # (logs:DescribeLogGroups, in AWS's example, accepts only Resource "*": not needed.)
                        actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                        resources=[group.arn, f"{group.arn}:*"],
                    )
                ],
            ),
        )
        return FlowLog(
            self,
            "flow_log",
            vpc_id=self._vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=self._config.flow_log_aggregation_seconds,
            tags={"Name": f"{self._name}-vpc-flow-logs"},
        )

    def _application_security_group(self) -> SecurityGroup:
        """The application's tasks: HTTPS out (AWS APIs, registries); the modules they use add the rest."""
        return https_out_group(
            self,
            "application_",
            name=f"{self._name}-app",
            description=f"{self._name} application tasks",
            vpc_id=self._vpc_id,
            egress_description="HTTPS to AWS APIs and registries (NAT gateway or VPC endpoints)",
        )

    def _interface_endpoints(self) -> SecurityGroup:
        """PrivateLink endpoints in the private subnets, reachable on 443 from inside the VPC only."""
        sg = SecurityGroup(
            self,
            "interface_endpoints_security_group",
            name=f"{self._name}-vpc-endpoints",
            description=f"HTTPS from {self._name} VPC to interface endpoints",
            vpc_id=self._vpc_id,
            tags={"Name": f"{self._name}-vpc-endpoints"},
        )
        VpcSecurityGroupIngressRule(
            self,
            "interface_endpoints_https_in",
            security_group_id=self._id(sg),
            description="HTTPS from inside the VPC",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=str(self._config.vpc_cidr),
        )
        # No egress rule: endpoints only answer, and security groups are stateful.
        for service in self._config.interface_endpoints:
            VpcEndpoint(
                self,
                f"{service.replace('.', '_')}_interface_endpoint",
                vpc_id=self._vpc_id,
                service_name=f"com.amazonaws.{self._region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[self._id(s) for s in self.private_subnets],
                security_group_ids=[self._id(sg)],
                tags={"Name": f"{self._name}-{service}"},
            )
        return sg

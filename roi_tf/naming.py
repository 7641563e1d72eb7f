"""Resource names ``roi-systems-<env>-<component>[-suffix]`` that respect AWS length limits."""

from __future__ import annotations

import hashlib
import re

from roi_tf.config import PROJECT

# Length limits of the names we generate (AWS service quotas).
MAX_LENGTH = {
    "default": 255,
    "iam_role": 64,
    "s3_bucket": 63,
    "db_subnet_group": 255,
    "elasticache_subnet_group": 255,
    "kms_alias": 256 - len("alias/"),  # AWS counts the "alias/" prefix in the 256
    "log_group": 512,
    "load_balancer": 32,
    "target_group": 32,
    "ecs_cluster": 255,
    "sqs_queue": 80,
    "lambda_function": 64,
}
_VALID = re.compile(r"[a-z0-9][a-z0-9-]*")


def resource_name(env: str, component: str, *suffixes: str, kind: str = "default") -> str:
    """``roi-systems-<env>-<component>-<suffix...>``, shortened with a stable hash if over the limit."""
    parts = [PROJECT, env, component, *suffixes]
    for part in parts:
        if not _VALID.fullmatch(part):
            raise ValueError(f"name part {part!r} must be lower-case letters, digits and hyphens")
    name = "-".join(parts)
    limit = MAX_LENGTH[kind]
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def prefix(env: str) -> str:
    """``roi-systems-<env>``: the prefix of every name in an environment."""
    return f"{PROJECT}-{env}"


def log_group_prefix(env: str) -> str:
    """``/roi-systems/<env>``: every log group of an environment lives below it (KMS policy scope)."""
    return f"/{PROJECT}/{env}"


def kms_alias(env: str, purpose: str) -> str:
    """``alias/roi-systems-<env>-<purpose>``: the aliases other stacks and the backend refer to."""
    return f"alias/{resource_name(env, purpose, kind='kms_alias')}"


def waf_log_group_prefix(env: str) -> str:
    """WAF only logs to log groups whose names start with ``aws-waf-logs-``; ours add the environment."""
    return f"aws-waf-logs-{PROJECT}-{env}-"


def waf_log_group_name(env: str, scope: str) -> str:
    return f"{waf_log_group_prefix(env)}{scope.lower()}"


def trail_name(env: str) -> str:
    return prefix(env)


def final_snapshot_name(identifier: str) -> str:
    """``<identifier>-final-<creation time>``: unique per incarnation, so a second deletion cannot collide with the
    snapshot of the first. A Terraform expression: the resource must ignore later changes to it."""
    return f'{identifier}-final-${{formatdate("YYYYMMDDhhmmss", timestamp())}}'


def state_key(env: str) -> str:
    """Where an environment's state lives in its state bucket (and in the bucket's DR copy)."""
    return f"{env}/terraform.tfstate"

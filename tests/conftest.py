"""Test harness: synthesize every stack once per session; query the JSON by type and property."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from roi_tf.config import ENVIRONMENTS, CiConfig, EnvironmentConfig, load_environments

REPO = Path(__file__).resolve().parent.parent
# Recognisable dummy values for the sensitive variables: they must never appear in synthesized JSON.
DUMMY_SECRETS = {
    "TF_VAR_db_password": "dummy-db-password-4f9c2e7a",
    "TF_VAR_jwt_secret": "dummy-jwt-secret-8b1d6f3c",
}


# The pilot light's application tier: the compute module again, in the DR region, and its web ACL.
STANDBY_CONSTRUCTS = ("dr_compute", "waf_dr_regional")


@dataclass(frozen=True)
class Stack:
    """One synthesized stack (``cdk.tf.json``) with Terratest-style lookups."""

    name: str
    path: Path
    json: dict[str, Any]

    def resources(self, rtype: str) -> dict[str, dict[str, Any]]:
        """Every resource of a type, by logical name (empty if none)."""
        return self.json.get("resource", {}).get(rtype, {})

    def data(self, dtype: str) -> dict[str, dict[str, Any]]:
        return self.json.get("data", {}).get(dtype, {})

    def find(self, rtype: str, **props: Any) -> list[tuple[str, dict[str, Any]]]:
        """Resources of a type whose properties include ``props`` (a subset match)."""
        return [(name, body) for name, body in self.resources(rtype).items() if _matches(body, props)]

    def one(self, rtype: str, **props: Any) -> tuple[str, dict[str, Any]]:
        found = self.find(rtype, **props)
        assert len(found) == 1, f"{self.name}: expected one {rtype} matching {props}, found {len(found)}"
        return found[0]

    def one_primary(self, rtype: str, **props: Any) -> tuple[str, dict[str, Any]]:
        """The one resource of a type matching ``props`` created through the stack's primary-region provider (the
        DR pilot light has copies of repositories, cache users and groups, state buckets in the DR region)."""
        found = [(name, body) for name, body in self.find(rtype, **props) if "provider" not in body]
        assert len(found) == 1, f"{self.name}: expected one {rtype} matching {props} in the primary region"
        return found[0]

    def excluding(self, *constructs: str) -> Stack:
        """A view without the resources and data sources created under these construct paths."""
        prefixes = tuple(f"{self.name}/{c}/" for c in constructs)
        return self._view(lambda path: not path.startswith(prefixes))

    def without_standby(self) -> Stack:
        """The view a module's own tests read: without the pilot light's application tier in the DR region (the
        same compute module and a web ACL there, tested as such in tests/test_dr_compute.py)."""
        return self.excluding(*STANDBY_CONSTRUCTS)

    def under(self, construct: str) -> Stack:
        """A view of only the resources and data sources created under this construct path."""
        return self._view(lambda path: path.startswith(f"{self.name}/{construct}/"))

    def _view(self, keep: Callable[[str], bool]) -> Stack:
        view = dict(self.json)
        for block in ("resource", "data"):
            view[block] = {
                rtype: kept
                for rtype, items in self.json.get(block, {}).items()
                if (kept := {n: b for n, b in items.items() if keep(b["//"]["metadata"]["path"])})
            }
        return Stack(self.name, self.path, view)

    def kms_key(self, alias: str) -> tuple[str, dict[str, Any]]:
        """The KMS key behind an alias (``alias/roi-systems-<env>-<purpose>``)."""
        _, found = self.one("aws_kms_alias", name=alias)
        name = found["target_key_id"].split(".")[1]
        return name, self.resources("aws_kms_key")[name]

    def bucket_named(self, name: str) -> str:
        """Logical name of the bucket ``roi-systems-<env>-<name>-<account id>``."""
        (found,) = [
            n
            for n, b in self.resources("aws_s3_bucket").items()
            if b["bucket"].rsplit("-${", 1)[0] == f"roi-systems-{self.name}-{name}"
        ]
        return found

    def attached_security_groups(self) -> set[str]:
        """References of the security groups some resource of this view puts itself in (at any depth: an ECS
        service's network configuration, a function's VPC configuration, a launch template's interfaces)."""
        keys = ("vpc_security_group_ids", "security_group_ids", "security_groups")

        def walk(value: Any) -> Iterator[str]:
            if isinstance(value, dict):
                for key, item in value.items():
                    if key in keys and isinstance(item, list):
                        yield from (ref for ref in item if isinstance(ref, str))
                    else:
                        yield from walk(item)
            elif isinstance(value, list):
                for item in value:
                    yield from walk(item)

        return {
            ref
            for rtype, resources in self.json.get("resource", {}).items()
            if rtype != "aws_security_group"
            for body in resources.values()
            for ref in walk(body)
        }

    def region_of(self, body: dict[str, Any]) -> str:
        """The region of the provider a resource or data source uses (the default provider's if none)."""
        alias = body.get("provider", "aws").removeprefix("aws").removeprefix(".") or None
        (provider,) = [p for p in self.json["provider"]["aws"] if p.get("alias") == alias]
        return provider["region"]

    def count(self, rtype: str) -> int:
        return len(self.resources(rtype))

    @staticmethod
    def ref(rtype: str, name: str, attribute: str = "id") -> str:
        """The interpolation another resource uses to refer to this one."""
        return f"${{{rtype}.{name}.{attribute}}}"

    @staticmethod
    def data_ref(dtype: str, name: str, attribute: str) -> str:
        return f"${{data.{dtype}.{name}.{attribute}}}"


def _matches(body: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(body, dict) and all(k in body and _matches(body[k], v) for k, v in expected.items())
    return body == expected


def iter_strings(value: Any) -> Iterator[str]:
    """Every string anywhere inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from iter_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from iter_strings(v)


@pytest.fixture(scope="session")
def configs() -> dict[str, EnvironmentConfig]:
    return load_environments()


def _failed_over_variants(scratch: Path, configs: dict[str, EnvironmentConfig]) -> dict[str, EnvironmentConfig]:
    """See ``variants``: dev sharing an account, staging without CI, prod failed over (loaded from a copy)."""
    dev, staging = configs["dev"], configs["staging"]
    shutil.copytree(REPO / "environments", scratch)
    prod = json.loads((scratch / "prod.json").read_text())
    prod["dr"]["active"] = True
    (scratch / "prod.json").write_text(json.dumps(prod))
    return {
        "dev": dataclasses.replace(dev, security=dataclasses.replace(dev.security, owns_account_services=False)),
        "staging": dataclasses.replace(staging, ci=CiConfig()),
        "prod": load_environments(["prod"], scratch)["prod"],
    }


def _failing_back(scratch: Path, _: dict[str, EnvironmentConfig]) -> dict[str, EnvironmentConfig]:
    """prod during the database's failback: dr.active and dr.failback_replica set in a copy of its file, as
    failback-database.sh sets them (stackinfo set-dr), and loaded as its synth loads it."""
    from roi_tf.tools.stackinfo import set_dr

    shutil.copytree(REPO / "environments", scratch)
    for switch in ("active", "failback_replica"):
        set_dr(scratch / "prod.json", switch, True)
    return load_environments(["prod"], scratch)


# The synths the session shares (name -> the configurations to synthesize, given a scratch directory and the shipped
# configurations): each is made once per run, by whichever worker gets to it first.
SHARED_SYNTHS: dict[str, Callable[[Path, dict[str, EnvironmentConfig]], dict[str, EnvironmentConfig]]] = {
    "synth": lambda _, configs: configs,
    "variants": _failed_over_variants,
    "canary": lambda _, configs: {"canary": canary_config(configs["prod"])},
    "failback": _failing_back,
}


def _synthesize_shared(root: Path, name: str, configs: dict[str, EnvironmentConfig], *, wait: bool) -> bool:
    """Make SHARED_SYNTHS[name] under its lock unless it is made already; without ``wait``, give up (False) at once
    when another worker holds the lock."""
    with (root / f"session-{name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        target = root / f"session-{name}"
        if not (target / "done").exists():
            from roi_tf.app import synth

            shutil.rmtree(target, ignore_errors=True)
            synth(SHARED_SYNTHS[name](target / "scratch", configs), target / "cdktf.out")
            (target / "done").touch()
    return True


def synthesized_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, configs: dict[str, EnvironmentConfig]
) -> Path:
    """The output directory of SHARED_SYNTHS[name], made once for the whole run and read from disk by every worker.
    A worker that finds another one making it makes the next shared synth nobody has started instead of waiting, so
    the synths spread over the workers; then it waits for its own."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root  # shared by the workers
    for variable, value in DUMMY_SECRETS.items():  # as every worker's environment had them before
        os.environ[variable] = value
    if not _synthesize_shared(root, name, configs, wait=False):
        for other in SHARED_SYNTHS:
            if other != name:
                _synthesize_shared(root, other, configs, wait=False)
        _synthesize_shared(root, name, configs, wait=True)
    return root / f"session-{name}" / "cdktf.out"


@pytest.fixture(scope="session")
def synth_outdir(tmp_path_factory: pytest.TempPathFactory, configs: dict[str, EnvironmentConfig]) -> Path:
    """All six stacks, synthesized once per run (the provider import is the cost)."""
    return synthesized_once(tmp_path_factory, "synth", configs)


@pytest.fixture(scope="session")
def variants(tmp_path_factory: pytest.TempPathFactory, configs: dict[str, EnvironmentConfig]) -> dict[str, Stack]:
    """Shipped environments changed where the shipped configs cannot show the other side, in one synth:
    dev sharing its account with the owner of the account services, staging without a CI pipeline, and prod failed
    over (``dr.active`` set in a copy of its file, loaded as failover.sh's synth loads it)."""
    outdir = synthesized_once(tmp_path_factory, "variants", configs)
    paths = {env: outdir / "stacks" / env / "cdk.tf.json" for env in ENVIRONMENTS}
    return {env: Stack(env, path, json.loads(path.read_text())) for env, path in paths.items()}


@pytest.fixture(scope="session")
def failed_over(variants: dict[str, Stack]) -> Stack:
    """prod synthesized with dr.active: the DR region serves (docs/DEPLOYMENT.md, "Regional failover")."""
    return variants["prod"]


@pytest.fixture(scope="session")
def failing_back(tmp_path_factory: pytest.TempPathFactory, configs: dict[str, EnvironmentConfig]) -> Stack:
    """prod while its database fails back (dr.failback_replica): us-east-1's instance replicates from the promoted
    one in us-west-2 (docs/DEPLOYMENT.md, "Failing the database back")."""
    path = synthesized_once(tmp_path_factory, "failback", configs) / "stacks" / "prod" / "cdk.tf.json"
    return Stack("prod", path, json.loads(path.read_text()))


@pytest.fixture(scope="session")
def referencing_dev(variants: dict[str, Stack]) -> Stack:
    """dev synthesized as an environment that shares its account with the owner of the account services."""
    return variants["dev"]


@pytest.fixture(scope="session")
def stacks(synth_outdir: Path) -> dict[str, Stack]:
    result = {}
    for stack_dir in sorted((synth_outdir / "stacks").iterdir()):
        path = stack_dir / "cdk.tf.json"
        result[stack_dir.name] = Stack(stack_dir.name, path, json.loads(path.read_text()))
    return result


def canary_config(prod: EnvironmentConfig) -> EnvironmentConfig:
    """prod, moved to other regions, with every setting that could be confused with another given its own value.

    The shipped environments happen to use equal values for some pairs of settings (database and sessions
    deletion protection, several log retentions), so a setting wired from the wrong field passes every test on
    them. The canary tells them apart, and exercises what us-east-1 never does (a separate us-east-1 logs key)
    and what no shipped environment chose (a load balancer open only to CloudFront, the event processor as an
    image).
    """
    r = dataclasses.replace
    assert prod.dr_networking is not None
    zones = ("euw1-az1", "euw1-az2")
    return r(
        prod,
        name="canary",
        region="eu-west-1",
        dr_region="eu-central-1",
        allowed_account_ids=("123456789012",),
        state=r(prod.state, bucket="roi-systems-terraform-state-canary", lock_table="roi-systems-locks-canary",
                kms_deletion_window_days=20),
        protection=r(prod.protection, prevent_destroy=False),
        networking=r(prod.networking, availability_zone_ids=zones, flow_log_retention_days=14),
        dr_networking=r(prod.dr_networking, availability_zone_ids=("euc1-az1", "euc1-az2"), flow_log_retention_days=60),
        database=r(prod.database, deletion_protection=True, log_retention_days=120),
        cache=r(prod.cache, log_retention_days=150),
        # The pilot light with the cache copied too and the application tier standing by (prod's budget leaves no
        # room for either yet), its own RPO, told apart from the replica-lag threshold.
        dr=r(prod.dr, state_bucket="roi-systems-terraform-state-canary-eu-central-1", rpo_minutes=10,
             cache_replica=True, standby_compute=True),
        # The services told apart: own ports and health path, the API's count above its floor and its own
        # cooldown, the ML service without scaling, a stricter TLS policy than the default.
        compute=r(prod.compute, log_retention_days=30,
                  api=r(prod.compute.api, container_port=8081, desired_count=4,
                        autoscaling=r(prod.compute.api.autoscaling, min_capacity=3, scale_in_cooldown_seconds=240)),
                  ml=r(prod.compute.ml, container_port=9000, health_check_path="/ready",
                       autoscaling=r(prod.compute.ml.autoscaling, enabled=False)),
                  load_balancer=r(prod.compute.load_balancer, ingress="cloudfront", idle_timeout_seconds=120,
                                  ssl_policy="ELBSecurityPolicy-TLS13-1-3-2021-06"),
                  event_processing=r(prod.compute.event_processing, package_type="Image")),
        # Every CloudFront setting other than prod's (and the defaults): a value wired from a constant shows.
        cdn=r(prod.cdn, minimum_protocol_version="TLSv1.2_2025", price_class="PriceClass_200",
              api_cache=r(prod.cdn.api_cache, min_ttl_seconds=1, default_ttl_seconds=5, max_ttl_seconds=30),
              api_path_pattern="/v1/*", assets_cache_policy="Managed-CachingOptimizedForUncompressedObjects",
              api_forwarded_headers=("Accept", "X-Tenant"), hsts_max_age_seconds=31536000, hsts_preload=True,
              content_security_policy="default-src 'none'", referrer_policy="no-referrer", frame_options="SAMEORIGIN",
              geo_restriction=r(prod.cdn.geo_restriction, type="whitelist", locations=("DE", "FR"))),
        sessions=r(prod.sessions, deletion_protection=False),
        security=r(
            prod.security,
            kms_deletion_window_days=10,
            secret_recovery_window_days=14,
            cloudtrail_log_retention_days=400,
            waf_log_retention_days=180,
            db_password_version=3,
            jwt_secret_version=5,
        ),
        # The assets bucket replicated too: its own key (not the storage key) must then be the one decrypted.
        storage=r(prod.storage, noncurrent_expiration_days=200, abort_incomplete_multipart_days=3,
                  access_log_expiration_days=500, noncurrent_glacier_days=40,
                  buckets=MappingProxyType({**prod.storage.buckets,
                                            "assets": r(prod.storage.buckets["assets"], replicate=True)})),
        # Warnings to Slack (no shipped environment has its workspace yet), every alarm setting and threshold
        # distinct from the defaults and from each other, so a threshold wired from the wrong field shows.
        monitoring=r(prod.monitoring,
                     warning=r(prod.monitoring.warning, route="slack", email=None,
                               slack_workspace_id="T0CANARY01", slack_channel_id="C0CANARY01"),
                     chatbot_region="us-east-2", period_seconds=300, evaluation_periods=4, datapoints_to_alarm=2,
                     budget_forecast_percent=110, budget_actual_percent=75, xray_sampling_rate=0.2,
                     xray_reservoir_per_second=3,
                     thresholds=r(prod.monitoring.thresholds, api_error_rate_percent=2.5, database_cpu_percent=71,
                                  api_latency_p95_ms=750, memory_percent=77, cost_increase_percent=33,
                                  database_free_storage_gb=13, replica_lag_seconds=45, redis_cpu_percent=66,
                                  redis_memory_critical_percent=93, api_log_errors_per_minute=17)),
    )  # fmt: skip


@pytest.fixture(scope="session")
def canary(tmp_path_factory: pytest.TempPathFactory, configs: dict[str, EnvironmentConfig]):
    """(config, {"canary": Stack, "state-canary": Stack}): see canary_config; synthesized once per session."""
    config = canary_config(configs["prod"])
    outdir = synthesized_once(tmp_path_factory, "canary", configs)
    return config, {
        name: Stack(name, outdir / "stacks" / name / "cdk.tf.json",
                    json.loads((outdir / "stacks" / name / "cdk.tf.json").read_text()))
        for name in (config.name, f"state-{config.name}")
    }  # fmt: skip


@pytest.fixture(params=[*ENVIRONMENTS, "canary"])
def deployed(request: pytest.FixtureRequest, stacks, configs) -> tuple[Stack, EnvironmentConfig]:
    """(stack, config) of every environment and of the canary (other regions, confusable settings distinct)."""
    if request.param == "canary":
        config, canary_stacks = request.getfixturevalue("canary")
        return canary_stacks[config.name], config
    return stacks[request.param], configs[request.param]


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def stack(stacks: dict[str, Stack], env: str) -> Stack:
    return stacks[env]


@pytest.fixture
def state_stack(stacks: dict[str, Stack], env: str) -> Stack:
    return stacks[f"state-{env}"]


@pytest.fixture
def config(configs: dict[str, EnvironmentConfig], env: str) -> EnvironmentConfig:
    return configs[env]


@pytest.fixture
def current_outdir(synth_outdir: Path, tmp_path: Path) -> Path:
    """The session's stacks, stamped current for the shipped configs: a tool reading them does not synthesize."""
    from roi_tf.tools import fingerprint

    outdir = tmp_path / "cdktf.out"
    shutil.copytree(synth_outdir, outdir)
    for env in ENVIRONMENTS:
        fingerprint.stamp(env, fingerprint.digest(env, REPO / "environments"), outdir)
    return outdir


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m roi_tf TOOL ARGS`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "roi_tf", tool, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip

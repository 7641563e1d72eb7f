"""Gate: checkov finds no failed check, outside a reasoned skip list, in any stack.

Two scopes, each with its own configuration and skip list: the environment stacks (dev, staging, prod) with
.checkov.yaml, and the state stacks (state-<env>: the bucket, lock table and key holding each environment's
Terraform state) with .checkov.state.yaml, so a skip one scope needs hides nothing in the other.

Each scope is scanned once, WITHOUT its skip list, and the gate applies the skip list to that report itself:
checkov's skip-check only drops the skipped checks' results, passed and failed alike, and it is the only filter
the configurations may hold (asserted below). One run then proves both that nothing fails outside the skip list
and that every skip still hides a real failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from conftest import REPO, Stack
from roi_tf.config import ENVIRONMENTS
from roi_tf.stacks import state_stack_name

CHECKOV = Path(sys.executable).with_name("checkov")
CHECK_ID = r"CKV2?_[A-Z]+_\d+"
# Settings that do not filter results; anything else (check, skip-path, soft-fail, ...) would make the report
# of the run without skips differ from checkov's own skipped run by more than the skipped checks.
NON_FILTERING_SETTINGS = {"framework", "skip-download", "skip-check"}


@dataclass(frozen=True)
class Scope:
    name: str
    config: Path
    stacks: tuple[str, ...]
    # Per stack, after the skip list: a gutted scan (checks not loaded, resources not seen) falls far below.
    min_passed_per_stack: int


# prod failed over (dr.active): scanned with the environments, from a directory of its own name.
FAILED_OVER = "prod-failed-over"
SCOPES = {
    "env": Scope("env", REPO / ".checkov.yaml", (*ENVIRONMENTS, FAILED_OVER), min_passed_per_stack=400),
    "state": Scope(
        "state", REPO / ".checkov.state.yaml", tuple(state_stack_name(e) for e in ENVIRONMENTS), min_passed_per_stack=25
    ),
}


def run_checkov(config: Path, files: list[Path]) -> list[dict]:
    """Run checkov over files; return one report per framework (never empty)."""
    # Not --quiet: the passed checks are how the gate proves each file was really scanned. --compact keeps them and
    # drops only each result's code block (the report shrinks fourfold, and the run by about a fifth).
    argv = [str(CHECKOV), "--config-file", str(config), "--output", "json", "--compact"]
    for path in files:
        argv += ["--file", str(path)]
    # Checkov also reads .checkov.yaml from its working directory and from $HOME, on top of --config-file: from
    # the repository root, the environment stacks' skips would leak into every other run. An empty directory as
    # both makes the given config the only one.
    with tempfile.TemporaryDirectory(prefix="checkov-") as empty:
        env = {**os.environ, "HOME": empty}
        done = subprocess.run(argv, cwd=empty, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode in (0, 1), f"checkov crashed ({done.returncode}): {done.stderr[-2000:]}"
    reports = json.loads(done.stdout)
    return reports if isinstance(reports, list) else [reports]


def skip_list(config: Path) -> list[tuple[str, str]]:
    """(check id, reason) for every skip in a checkov config; the reason is the `# reason:` comment above it."""
    skips, reason = [], []
    for line in config.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# reason:"):
            reason = [stripped.removeprefix("# reason:").strip()]
        elif stripped.startswith("#") and reason:
            reason.append(stripped.lstrip("# "))
        elif match := re.fullmatch(rf"-\s*({CHECK_ID})", stripped):
            skips.append((match.group(1), " ".join(reason)))
            reason = []
    return skips


def skipped_ids(config: Path) -> set[str]:
    """The check ids checkov itself reads from the config's skip-check (what the gate applies)."""
    return set(yaml.safe_load(config.read_text()).get("skip-check") or [])


# A Global Datastore's secondary takes encryption at rest, in transit and its authentication from the global group:
# AWS refuses the three settings on a secondary (roi_tf/modules/database/cache.py), so checkov, judging the resource
# alone, fails it on these checks, while the group's primary, which sets them, is scanned and passes. The gate drops
# these results of secondaries only (resources with global_replication_group_id), and asserts that they still fail
# there and nothing else does (below): prod can turn dr.cache_replica on without a global skip.
INHERITED_BY_SECONDARIES = frozenset({"CKV_AWS_29", "CKV_AWS_30", "CKV_AWS_31"})


def secondaries(stack: dict) -> set[str]:
    """Names of the Global Datastore secondaries in a stack."""
    groups = stack["resource"].get("aws_elasticache_replication_group", {})
    return {name for name, body in groups.items() if "global_replication_group_id" in body}


def resource_name(check: dict) -> str:
    """A checked resource's name (checkov prefixes it with its type, or with "resource." where it cannot type it)."""
    return check["resource"].rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Scan:
    """One checkov report over a scope's stacks, made without its skip list."""

    scope: Scope
    report: dict = field(repr=False)
    skips: frozenset[str]

    def checks(self, kind: str, *, skipping: bool = True) -> list[dict]:
        """passed_checks or failed_checks, without what a secondary inherits; with skipping, as checkov reports
        them with the skip list."""
        secondary = set(self.report.get("secondaries", ()))
        return [
            c
            for c in self.report["results"][kind]
            if not (skipping and c["check_id"] in self.skips)
            and not (c["check_id"] in INHERITED_BY_SECONDARIES and resource_name(c) in secondary)
        ]


def without_skips(config: Path, tmp: Path) -> Path:
    settings = yaml.safe_load(config.read_text())
    settings.pop("skip-check", None)
    unskipped = tmp / f"{config.stem}.without-skips.yaml"
    unskipped.write_text(yaml.safe_dump(settings))
    return unskipped


def only(report: dict, directories: set[str]) -> dict:
    """The part of a report about the files in these directories (a stack's, or a control's)."""
    results = {
        kind: [c for c in checks if Path(c["file_path"]).parent.name in directories]
        for kind, checks in report["results"].items()
        if kind != "parsing_errors"
    }
    results["parsing_errors"] = [
        p for p in report["results"].get("parsing_errors", []) if Path(p).parent.name in directories
    ]
    return {
        **report,
        "results": results,
        "summary": {**report["summary"], "parsing_errors": len(results["parsing_errors"])},
    }


def failover_and_failback_delta(stack: dict, failing_back: dict, canary: dict) -> dict:
    """A stack with only the resources in its DR region, what failing over adds or changes (test_failed_over.py
    shows every other resource is the standing stack's, scanned as such), those of prod failing back that differ
    from the failed-over prod's (its primary region's database: test_failing_back.py), and the canary's Global
    Datastore (its group and secondary: prod has none yet), under names of their own: for a scan that costs seconds
    less than three more stacks."""
    resources: dict[str, dict] = {
        rtype: kept
        for rtype, items in stack["resource"].items()
        if (kept := {name: body for name, body in items.items() if body.get("provider") == "aws.dr"})
    }
    for rtype, items in failing_back["resource"].items():
        for name, body in items.items():
            if body != stack["resource"].get(rtype, {}).get(name):
                resources.setdefault(rtype, {})[f"{name}_failing_back"] = body
    for rtype in ("aws_elasticache_global_replication_group", "aws_elasticache_replication_group"):
        for name, body in canary["resource"].get(rtype, {}).items():
            if rtype.endswith("global_replication_group") or "global_replication_group_id" in body:
                resources.setdefault(rtype, {})[f"{name}_canary"] = body
    return {**stack, "resource": resources}


@pytest.fixture(scope="module")
def full_report(
    stacks: dict[str, Stack],
    failed_over: Stack,
    failing_back: Stack,
    canary,
    controls: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict:
    """One checkov run (its start-up is most of the cost) over every stack of both scopes and the two controls,
    without skip lists: the scopes' configs differ only in their skips, which the tests apply per scope."""
    tmp = tmp_path_factory.mktemp("checkov")
    unskipped = {without_skips(scope.config, tmp).read_text() for scope in SCOPES.values()}
    assert len(unskipped) == 1, "the scopes' configs differ beyond their skip lists: scan them separately"
    (tmp / FAILED_OVER).mkdir()
    config, canary_stacks = canary
    delta = failover_and_failback_delta(failed_over.json, failing_back.json, canary_stacks[config.name].json)
    (tmp / FAILED_OVER / "cdk.tf.json").write_text(json.dumps(delta))
    scanned = {**{name: stack.path for name, stack in stacks.items()}, FAILED_OVER: tmp / FAILED_OVER / "cdk.tf.json"}
    paths = [scanned[name] for scope in SCOPES.values() for name in scope.stacks] + list(controls)
    (report,) = run_checkov(without_skips(SCOPES["env"].config, tmp), paths)
    # With nothing scanned (another framework, no file found), checkov prints a bare summary, no results.
    assert report.get("check_type") == "terraform_json", f"nothing scanned: {report}"
    found = {address for name in scanned for address in secondaries(json.loads(scanned[name].read_text()))}
    return {**report, "secondaries": sorted(found)}


def scan(scope: Scope, report: dict) -> Scan:
    return Scan(scope, only(report, set(scope.stacks)), frozenset(skipped_ids(scope.config)))


@pytest.fixture(scope="module")
def env_scan(full_report: dict) -> Scan:
    return scan(SCOPES["env"], full_report)


@pytest.fixture(scope="module")
def state_scan(full_report: dict) -> Scan:
    return scan(SCOPES["state"], full_report)


@pytest.fixture(params=sorted(SCOPES))
def scope_scan(request: pytest.FixtureRequest) -> Scan:
    return request.getfixturevalue(f"{request.param}_scan")


def test_checkov_parsed_and_scanned_every_stack(scope_scan: Scan) -> None:
    """Guards against a vacuous pass: a stack checkov cannot parse, or never scans, reports no failure either."""
    scope, report = scope_scan.scope, scope_scan.report
    assert report["results"].get("parsing_errors", []) == []
    assert report["summary"]["parsing_errors"] == 0
    passed: dict[str, int] = {}
    for check in scope_scan.checks("passed_checks"):
        stack = Path(check["file_path"]).parent.name
        passed[stack] = passed.get(stack, 0) + 1
    assert set(passed) == set(scope.stacks), f"every {scope.name} stack was scanned and passed checks"
    thin = {stack: n for stack, n in passed.items() if n < scope.min_passed_per_stack}
    assert not thin, f"fewer than {scope.min_passed_per_stack} passed checks: {thin}"
    # Every skip is the gate's own, from the reasoned config: checkov reports none as skipped by itself.
    assert report["results"]["skipped_checks"] == []


def test_the_failed_over_scan_covers_the_failing_back_database(env_scan: Scan) -> None:
    """The scan of prod failed over includes prod failing back's primary database (a replica of the promoted one):
    checked for encryption, IAM authentication, logs and the rest like every other instance."""
    passed = env_scan.checks("passed_checks")
    scanned = {c["resource"] for c in passed if Path(c["file_path"]).parent.name == FAILED_OVER}
    assert [r for r in scanned if r.startswith("aws_db_instance.") and r.endswith("_failing_back")]
    # And the failed-over resources themselves: the promoted database, the new cache.
    assert [r for r in scanned if r.startswith("aws_db_instance.") and not r.endswith("_failing_back")]
    assert [r for r in scanned if r.startswith("aws_elasticache_replication_group.")]


def test_a_secondary_fails_only_what_it_inherits_from_its_global_group(env_scan: Scan) -> None:
    """The gate's one per-resource exception (INHERITED_BY_SECONDARIES) hides real failures, on Global Datastore
    secondaries only: each of its checks fails on every secondary scanned, nothing else does, and the secondary
    passes the other checks of a replication group (its KMS key, its logs...)."""
    found = set(env_scan.report["secondaries"])
    assert found and all(name.endswith("_canary") for name in found)  # prod has none yet
    raw = env_scan.report["results"]
    failed = {(c["check_id"], resource_name(c)) for c in raw["failed_checks"] if resource_name(c) in found}
    assert failed == {(check, name) for check in INHERITED_BY_SECONDARIES for name in found}
    assert {resource_name(c) for c in raw["passed_checks"]} >= found
    # Not dropped anywhere else: the primary replication groups pass these checks.
    groups = {resource_name(c) for c in raw["passed_checks"] if c["check_id"] in INHERITED_BY_SECONDARIES}
    assert groups and not groups & found


def test_checkov_reports_no_failed_check_outside_the_skip_list(scope_scan: Scan) -> None:
    """Guards against a real security finding in any stack of the scope."""
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in scope_scan.checks("failed_checks")]
    assert failed == [], f"{scope_scan.scope.config.name}: fix these, or skip one with a reason"


def test_every_skip_still_hides_a_real_failure(scope_scan: Scan) -> None:
    """Guards against a stale skip: one that hides nothing today would silently hide tomorrow's real failure."""
    name = scope_scan.scope.config.name
    failing = {c["check_id"] for c in scope_scan.checks("failed_checks", skipping=False)}
    assert scope_scan.skips - failing == set(), f"{name}: nothing fails these checks any more, remove their skips"
    assert failing - scope_scan.skips == set(), f"{name}: failing and not skipped (see the test above)"


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_every_skipped_check_carries_a_reason(scope: str) -> None:
    """Guards against an unexplained (or unparsed) global skip in either config."""
    config = SCOPES[scope].config
    skips = skip_list(config)
    assert skips, "the skip list parses"
    for check_id, reason in skips:
        assert len(reason) >= 40, f"{config.name}: {check_id} needs a one-line reason a reviewer would accept"
    ids = [c for c, _ in skips]
    assert len(ids) == len(set(ids))
    assert set(ids) == skipped_ids(config), "every skip checkov applies was seen with its reason"


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_skip_check_is_the_only_filter_in_the_config(scope: str) -> None:
    """Guards the gate's shortcut: the run without skips, filtered by skip-check, is checkov's skipped run."""
    config = SCOPES[scope].config
    settings = yaml.safe_load(config.read_text())
    assert set(settings) <= NON_FILTERING_SETTINGS, f"{config.name}: the gate cannot derive the skipped run"
    assert settings["framework"] == ["terraform_json"]


@pytest.fixture(scope="module")
def controls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two controls, scanned with the stacks: a misconfigured stack and one checkov cannot parse."""
    misconfigured = {
        "resource": {
            "aws_security_group": {
                "open": {
                    "name": "open",
                    "description": "open",
                    "ingress": [
                        {
                            "from_port": 22,
                            "to_port": 22,
                            "protocol": "tcp",
                            "cidr_blocks": ["0.0.0.0/0"],
                            "description": "ssh",
                            "ipv6_cidr_blocks": [],
                            "prefix_list_ids": [],
                            "security_groups": [],
                            "self": False,
                        }
                    ],
                }
            }
        }
    }
    # checkov 3.3 silently skips a file with terraform.required_version.
    unparsable = {
        "terraform": {"required_version": ">= 1.6"},
        "resource": {"aws_s3_bucket": {"b": {"bucket": "b"}}},
    }
    root = tmp_path_factory.mktemp("checkov-controls")
    paths = []
    for name, content in (("misconfigured", misconfigured), ("unparsable", unparsable)):
        path = root / name / "cdk.tf.json"
        path.parent.mkdir()
        path.write_text(json.dumps(content))
        paths.append(path)
    return paths[0], paths[1]


@pytest.fixture(scope="module")
def control_report(full_report: dict, controls: tuple[Path, Path]) -> tuple[dict, Path, Path]:
    """The controls' part of the run, with the environment stacks' skips applied (as the gate applies them)."""
    skips = skipped_ids(SCOPES["env"].config)
    report = only(full_report, {path.parent.name for path in controls})
    results = {
        k: [c for c in v if k == "parsing_errors" or c["check_id"] not in skips] for k, v in report["results"].items()
    }
    return {**report, "results": results}, *controls


def test_the_gate_fails_on_a_misconfigured_resource(control_report: tuple[dict, Path, Path]) -> None:
    """Control: an unencrypted, public security group is reported, so a pass means something."""
    report, misconfigured, _ = control_report
    failed = {
        c["check_id"]
        for c in report["results"]["failed_checks"]
        if Path(c["file_path"]).parent.name == misconfigured.parent.name
    }
    assert "CKV_AWS_24" in failed


def test_the_gate_notices_a_file_checkov_cannot_parse(control_report: tuple[dict, Path, Path]) -> None:
    """Control: checkov 3.3 silently skips a file with terraform.required_version; the gate must not."""
    report, _, unparsable = control_report
    assert report["summary"]["parsing_errors"] == 1
    assert [Path(p).parent.name for p in report["results"]["parsing_errors"]] == [unparsable.parent.name]
    results = report["results"]["passed_checks"] + report["results"]["failed_checks"]
    assert not [c for c in results if Path(c["file_path"]).parent.name == unparsable.parent.name]

"""Gate: checkov finds no failed check, outside the reasoned skip list, in any environment stack."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, Stack
from roi_tf.config import ENVIRONMENTS

CHECKOV = Path(sys.executable).with_name("checkov")
CONFIG = REPO / ".checkov.yaml"


def run_checkov(files: list[Path]) -> list[dict]:
    """Run checkov over files; return one report per framework (never empty)."""
    # Not --quiet/--compact: the passed checks are how the gate proves each file was really scanned.
    argv = [str(CHECKOV), "--config-file", str(CONFIG), "--output", "json"]
    for path in files:
        argv += ["--file", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode in (0, 1), f"checkov crashed ({done.returncode}): {done.stderr[-2000:]}"
    reports = json.loads(done.stdout)
    return reports if isinstance(reports, list) else [reports]


def skip_list() -> list[tuple[str, str]]:
    """(check id, reason) for every skip in .checkov.yaml; the reason is the comment above it."""
    skips, reason = [], []
    for line in CONFIG.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# reason:"):
            reason = [stripped.removeprefix("# reason:").strip()]
        elif stripped.startswith("#") and reason:
            reason.append(stripped.lstrip("# "))
        elif match := re.fullmatch(r"-\s*(CKV2?_[A-Z]+_\d+)", stripped):
            skips.append((match.group(1), " ".join(reason)))
            reason = []
    return skips


@pytest.fixture(scope="module")
def env_reports(stacks: dict[str, Stack]) -> list[dict]:
    return run_checkov([stacks[env].path for env in ENVIRONMENTS])


def test_checkov_parsed_every_environment_stack(env_reports: list[dict], stacks: dict[str, Stack]) -> None:
    (report,) = env_reports
    assert report["check_type"] == "terraform_json"
    assert report["results"].get("parsing_errors", []) == []
    assert report["summary"]["parsing_errors"] == 0
    scanned = {Path(c["file_path"]).parent.name for c in report["results"]["passed_checks"]}
    assert scanned == set(ENVIRONMENTS), "every env stack was scanned and passed checks (never vacuous)"


def test_checkov_reports_no_failed_check(env_reports: list[dict]) -> None:
    (report,) = env_reports
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 100


def test_every_skipped_check_carries_a_reason() -> None:
    skips = skip_list()
    assert skips, "the skip list parses"
    for check_id, reason in skips:
        assert len(reason) >= 40, f"{check_id} needs a one-line reason a reviewer would accept"
    ids = [c for c, _ in skips]
    assert len(ids) == len(set(ids))
    configured = re.findall(r"^\s*-\s*(CKV2?_[A-Z]+_\d+)", CONFIG.read_text(), flags=re.MULTILINE)
    assert sorted(configured) == sorted(ids), "every configured skip was seen with its reason"


def test_the_gate_fails_on_a_misconfigured_resource(tmp_path: Path) -> None:
    """Control: an unencrypted, public security group is reported, so a pass means something."""
    bad = {
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
    path = tmp_path / "cdk.tf.json"
    path.write_text(json.dumps(bad))
    (report,) = run_checkov([path])
    assert "CKV_AWS_24" in {c["check_id"] for c in report["results"]["failed_checks"]}


def test_the_gate_notices_a_file_checkov_cannot_parse(tmp_path: Path) -> None:
    """Control: checkov 3.3 silently skips a file with terraform.required_version; the gate must not."""
    unparsable = {
        "terraform": {"required_version": ">= 1.6"},
        "resource": {"aws_s3_bucket": {"b": {"bucket": "b"}}},
    }
    path = tmp_path / "cdk.tf.json"
    path.write_text(json.dumps(unparsable))
    (report,) = run_checkov([path])
    assert report["summary"]["parsing_errors"] == 1
    assert report["summary"]["passed"] == 0

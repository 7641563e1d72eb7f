"""No secret value in the synthesized JSON or in the repository: only references to sensitive variables."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import DUMMY_SECRETS, REPO

# Attributes that hold secret material in the AWS provider's resources.
SECRET_ATTRIBUTES = re.compile(r"(password|secret_string|auth_token|secret_key|private_key|token)(_wo)?$")
# Things that are secrets wherever they appear.
SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS secret access key": re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+=]{40}"),
}
# Files allowed to hold the dummy values: the harness that defines them.
DUMMY_HOLDERS = {"tests/conftest.py"}


def secret_findings(value: Any, path: str = "$") -> Iterator[str]:
    """Where a JSON value holds a literal in a secret attribute, or anything matching a secret pattern."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}"
            if SECRET_ATTRIBUTES.search(key) and isinstance(item, str) and not item.startswith("${"):
                yield f"{here}: literal value in a secret attribute"
            yield from secret_findings(item, here)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from secret_findings(item, f"{path}[{i}]")
    elif isinstance(value, str):
        for name, pattern in SECRET_PATTERNS.items():
            if pattern.search(value):
                yield f"{path}: looks like an {name}"


def test_the_dummy_secret_values_appear_in_no_synthesized_file(synth_outdir: Path) -> None:
    files = [p for p in synth_outdir.rglob("*") if p.is_file()]
    assert len(files) >= 6
    for path in files:
        text = path.read_text(errors="replace")
        for variable, value in DUMMY_SECRETS.items():
            assert value not in text, f"{path}: contains the value of {variable}"


def test_synthesized_stacks_hold_no_literal_secret(stacks) -> None:
    checked = 0
    for stack in stacks.values():
        assert list(secret_findings(stack.json)) == [], stack.name
        checked += sum(1 for _ in re.finditer(r'"(secret_string|password)_wo"', stack.path.read_text()))
    assert checked >= 9  # the scan saw the secret attributes it is meant to guard (3 per environment)


def sensitive_references(value: Any, path: str, sensitive: set[str]) -> Iterator[tuple[str, str]]:
    """(JSON path, attribute) of every string that mentions one of the sensitive variables."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from sensitive_references(item, f"{path}.{key}", sensitive)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from sensitive_references(item, f"{path}[{i}]", sensitive)
    elif isinstance(value, str) and any(re.search(rf"\bvar\.{name}\b", value) for name in sensitive):
        yield path, path.rsplit(".", 1)[-1].split("[")[0]


# The one sensitive value the state holds, and where: an SNS subscription's endpoint has no write-only argument, so
# PagerDuty's integration URL is stored (the encrypted state; SNS shows it to the account's readers anyway). It only
# opens incidents on one PagerDuty service (README, "Alert routing"). Anything else stored fails the test.
STORED_SENSITIVE = {("pagerduty_integration_url", "aws_sns_topic_subscription", "endpoint")}


def test_sensitive_variables_reach_only_write_only_arguments(stacks) -> None:
    """No resource, output, local or provider holds a secret variable outside a write-only argument (``*_wo``).

    Guards against a secret that would be stored in the plan and the state (e.g. ``password`` instead of
    ``password_wo``); Terraform also refuses ephemeral values there, but only at plan time against AWS.
    """
    seen, stored = 0, 0
    for stack in stacks.values():
        variables = stack.json.get("variable", {})
        sensitive = {name for name, v in variables.items() if v.get("sensitive")}
        ephemeral = sensitive - {name for name, _, _ in STORED_SENSITIVE}
        assert all(variables[name].get("ephemeral") is True for name in ephemeral), stack.name
        for block in ("resource", "data", "output", "locals", "provider", "terraform", "module"):
            for name in sensitive:
                for where, attribute in sensitive_references(stack.json.get(block, {}), f"$.{block}", {name}):
                    if block == "resource" and attribute.endswith("_wo"):
                        seen += 1
                    else:
                        rtype = where.split(".")[2] if block == "resource" else block
                        assert (name, rtype, attribute) in STORED_SENSITIVE, f"{stack.name}: {where}"
                        stored += 1
    assert seen >= 9, "the walk saw the write-only arguments (a secret version per secret, the database password)"
    assert stored >= 1, "the walk saw prod's PagerDuty subscription"


def test_the_write_only_walk_reports_a_stored_secret() -> None:
    """Control: a password in a plain argument and a secret in an output are both reported."""
    leaked = {"resource": {"aws_db_instance": {"db": {"password": "${var.db_password}", "password_wo": "${var.x}"}}}}
    found = list(sensitive_references(leaked, "$", {"db_password"}))
    assert found == [("$.resource.aws_db_instance.db.password", "password")]
    output = {"output": {"o": {"value": "${jsonencode({p = var.db_password})}"}}}
    assert [a for _, a in sensitive_references(output, "$", {"db_password"})] == ["value"]


def test_repository_files_hold_no_secret() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    scanned = 0
    for name in tracked.splitlines():
        path = REPO / name
        if not path.is_file() or path.suffix not in {
            ".py",
            ".json",
            ".sh",
            ".md",
            ".yaml",
            ".yml",
            ".toml",
            ".txt",
            "",
        }:
            continue
        text = path.read_text(errors="replace")
        scanned += 1
        for pattern_name, pattern in SECRET_PATTERNS.items():
            assert not pattern.search(text), f"{name}: looks like an {pattern_name}"
        if name not in DUMMY_HOLDERS:
            assert not any(v in text for v in DUMMY_SECRETS.values()), f"{name}: holds a dummy secret value"
        if name.startswith("environments/") and name.endswith(".json"):
            assert list(secret_findings(json.loads(text))) == [], name
    assert scanned >= 20


def test_the_scanner_finds_what_it_should() -> None:
    """Negative control: a literal password, an access key and a private key are all reported."""
    leaked = {
        "resource": {
            "aws_db_instance": {"db": {"password": "hunter2-literal-password"}},
            "aws_secretsmanager_secret_version": {"v": {"secret_string": "${var.jwt_secret}"}},
            # Assembled at run time, so this file does not trip its own repository scan.
            "aws_instance": {"i": {"user_data": "export KEY=" + "AKIA" + "ABCDEFGHIJKLMNOP"}},
            "tls": {"k": {"content": "-----BEGIN RSA " + "PRIVATE KEY-----"}},
        }
    }
    findings = list(secret_findings(leaked))
    assert len(findings) == 3
    assert findings[0].startswith("$.resource.aws_db_instance.db.password")

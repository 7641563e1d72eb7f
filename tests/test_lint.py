"""Linters as tests, so `make test` alone keeps the tree clean: ruff (lint + format) and shellcheck."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

BIN = Path(sys.executable).parent
SHELL_SCRIPTS = [*sorted(str(p.relative_to(REPO)) for p in (REPO / "scripts").glob("*.sh")), ".ci/run"]


@pytest.mark.parametrize(
    "argv",
    [
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
        [str(BIN / "shellcheck"), "-x", *SHELL_SCRIPTS],
    ],
    ids=["ruff-check", "ruff-format", "shellcheck"],
)
def test_linter_is_clean(argv: list[str]) -> None:
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_script_is_linted() -> None:
    assert {"scripts/init.sh", "scripts/deploy.sh", "scripts/destroy.sh", "scripts/lib.sh"} <= set(SHELL_SCRIPTS)

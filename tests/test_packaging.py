"""Packaging: `pip install .` (a real, non-editable wheel) ships every module of roi_tf, and nothing else.

Guards against the bug of a hand-kept package list: `packages = ["roi_tf", "roi_tf.modules", "roi_tf.tools"]` left
roi_tf.modules.database and roi_tf.modules.security out of the wheel, which the editable install every test
uses could never notice. The expected files come from the source tree, so a new subpackage is covered as it lands.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from conftest import REPO

PACKAGE = "roi_tf"
PACKAGE_DATA = ("py.typed",)
# Not copied into the build tree: generated, bulky or private, and none of it is package source. Everything
# else is (tests/, docs/, scripts/, ...), so that a discovery rule which would pick them up is seen doing so.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "cdktf.out",
    ".cdktf.out.*",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".bench",
    ".terraform",
    "bootstrap-state",
)


def expected_files(source: Path) -> set[str]:
    """The wheel entries the package must have: every module under roi_tf/ and its package data."""
    modules = {
        path.relative_to(source).as_posix()
        for path in (source / PACKAGE).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    data = {
        path.relative_to(source).as_posix()
        for folder in (source / PACKAGE / "data", source / PACKAGE / "tools" / "data")
        for path in folder.glob("*.json")
    }
    return modules | data | {f"{PACKAGE}/{name}" for name in PACKAGE_DATA}


def missing(expected: set[str], wheel_names: list[str]) -> set[str]:
    return expected - set(wheel_names)


def strays(wheel_names: list[str]) -> list[str]:
    """Wheel entries outside the package and its metadata (tests/, main.py, a namespace package, ...)."""
    return [n for n in wheel_names if not re.match(rf"({PACKAGE}/|{PACKAGE}-[^/]+\.dist-info/)", n)]


def pinned_backend() -> str:
    """The setuptools version [build-system] requires, which `pip install .` builds with."""
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    (pin,) = [r.split("==", 1)[1] for r in requires if r.startswith("setuptools==")]
    return pin


def test_the_wheel_ships_every_module_and_nothing_else(tmp_path: Path) -> None:
    """Guards against a subpackage (or py.typed) missing from `pip install .`, and tests/ shipped in it."""
    # Without build isolation (which would download setuptools), the build uses the venv's setuptools: it must be
    # the pinned backend, or the test would check some other version's package discovery.
    try:
        installed = version("setuptools")
    except PackageNotFoundError:
        installed = "none"
    assert installed == pinned_backend(), (
        f"the venv has setuptools {installed}, the build backend is setuptools=={pinned_backend()}: "
        "install that in the venv to build the wheel offline"
    )
    # Built from a copy: setuptools writes build/ and roi_tf.egg-info/ into the tree it builds, and the repository
    # must stay untouched (and free for another worker building at the same time).
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    out = tmp_path / "wheels"
    argv = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "--no-index"]
    argv += ["--disable-pip-version-check", "--no-cache-dir", "--wheel-dir", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    (wheel,) = out.glob("roi_tf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    expected = expected_files(source)
    assert len(expected) > 20, "the expected files were found (never vacuous)"
    assert missing(expected, names) == set(), "not in the wheel (namespaces = false: a package needs an __init__.py)"
    assert strays(names) == []
    assert expected_files(source) == expected_files(REPO), "the copy holds the package as the repository does"


def test_the_check_notices_a_module_missing_from_the_wheel(tmp_path: Path) -> None:
    """Control: a new subpackage left out of the wheel, or a test shipped in it, is reported."""
    for path in ("roi_tf/__init__.py", "roi_tf/modules/__init__.py", "roi_tf/modules/cdn/__init__.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    (tmp_path / "roi_tf/modules/cdn/distribution.py").write_text("")
    (tmp_path / "roi_tf/__pycache__").mkdir()
    (tmp_path / "roi_tf/__pycache__/stray.py").write_text("")
    expected = expected_files(tmp_path)
    assert expected == {
        "roi_tf/__init__.py",
        "roi_tf/modules/__init__.py",
        "roi_tf/modules/cdn/__init__.py",
        "roi_tf/modules/cdn/distribution.py",
        "roi_tf/py.typed",
    }
    narrow = ["roi_tf/__init__.py", "roi_tf/py.typed", "roi_tf/modules/__init__.py", "roi_tf-0.1.0.dist-info/RECORD"]
    assert missing(expected, narrow) == {"roi_tf/modules/cdn/__init__.py", "roi_tf/modules/cdn/distribution.py"}
    assert strays([*narrow, "tests/conftest.py", "main.py"]) == ["tests/conftest.py", "main.py"]

"""roi_tf/tools/fingerprint.py: when the scripts may reuse synthesized stacks (never when anything changed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import REPO
from roi_tf.tools import fingerprint


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the app's sources (what a synth reads), so a test can edit one."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "roi_tf", copy / "roi_tf", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "environments", copy / "environments")
    for name in fingerprint.SOURCES:
        shutil.copy(REPO / name, copy / name)
    monkeypatch.setattr(fingerprint, "REPO", copy)
    return copy


@pytest.fixture
def synthesized(repo: Path, tmp_path: Path) -> Path:
    """An output directory holding dev's two stacks, stamped with the inputs they came from."""
    outdir = tmp_path / "cdktf.out"
    for stack in ("dev", "state-dev"):
        (outdir / "stacks" / stack).mkdir(parents=True)
        (outdir / "stacks" / stack / "cdk.tf.json").write_text(f'{{"stack": "{stack}"}}')
    fingerprint.stamp("dev", fingerprint.digest("dev", repo / "environments"), outdir)
    return outdir


def test_stamped_stacks_of_unchanged_inputs_are_fresh(repo: Path, synthesized: Path) -> None:
    assert fingerprint.fresh("dev", repo / "environments", synthesized)


def test_no_stamp_means_synthesize(repo: Path, synthesized: Path) -> None:
    (synthesized / "stacks" / "dev" / fingerprint.STAMP).unlink()
    assert not fingerprint.fresh("dev", repo / "environments", synthesized)


@pytest.mark.parametrize(
    "edited",
    [
        "environments/dev.json",
        "environments/schema.json",
        "main.py",
        "constraints.txt",
        "roi_tf/modules/monitoring/alarms.py",
        "roi_tf/config.py",
    ],
)
def test_any_edited_input_means_synthesize(repo: Path, synthesized: Path, edited: str) -> None:
    path = repo / edited
    path.write_bytes(path.read_bytes() + b"\n")
    assert not fingerprint.fresh("dev", repo / "environments", synthesized)


def test_a_new_source_file_means_synthesize(repo: Path, synthesized: Path) -> None:
    (repo / "roi_tf" / "modules" / "extra.py").write_text("X = 1\n")
    assert not fingerprint.fresh("dev", repo / "environments", synthesized)


@pytest.mark.parametrize("stack", ["dev", "state-dev"])
def test_an_edited_or_missing_stack_means_synthesize(repo: Path, synthesized: Path, stack: str) -> None:
    path = synthesized / "stacks" / stack / "cdk.tf.json"
    path.write_text(path.read_text() + " ")
    assert not fingerprint.fresh("dev", repo / "environments", synthesized)
    path.unlink()
    assert not fingerprint.fresh("dev", repo / "environments", synthesized)


def test_another_environments_file_is_not_an_input(repo: Path, synthesized: Path) -> None:
    """A broken staging.json must not force (and then fail) dev's synth: only dev's own inputs count."""
    (repo / "environments" / "staging.json").write_text("{ not json")
    assert fingerprint.fresh("dev", repo / "environments", synthesized)


def test_a_missing_environment_file_is_an_input_not_a_crash(repo: Path) -> None:
    present = fingerprint.digest("dev", repo / "environments")
    (repo / "environments" / "dev.json").unlink()
    assert fingerprint.digest("dev", repo / "environments") != present


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_each_environment_is_stamped_with_its_own_file(repo: Path, tmp_path: Path, env: str) -> None:
    """Guards against a digest of the wrong environment's file: editing prod.json must stale prod, not dev."""
    outdir = tmp_path / "out"
    for stack in (env, f"state-{env}"):
        (outdir / "stacks" / stack).mkdir(parents=True)
        (outdir / "stacks" / stack / "cdk.tf.json").write_text("{}")
    fingerprint.stamp(env, fingerprint.digest(env, repo / "environments"), outdir)
    assert fingerprint.fresh(env, repo / "environments", outdir)
    (repo / "environments" / "dev.json").write_text("{ edited")
    assert fingerprint.fresh(env, repo / "environments", outdir)
    own = repo / "environments" / f"{env}.json"
    own.write_bytes(own.read_bytes() + b"\n")
    assert not fingerprint.fresh(env, repo / "environments", outdir)

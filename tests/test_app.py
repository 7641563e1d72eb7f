"""main.py / cdktf.json: atomic output replacement and one way to synthesize."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import REPO
from roi_tf.app import synthesize_atomically


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def fake_synth(contents: dict[str, str]):
    def synth(directory: Path) -> None:
        for name, text in contents.items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text(text)

    return synth


def test_a_failing_synth_leaves_the_previous_output_untouched(tmp_path: Path) -> None:
    outdir = tmp_path / "cdktf.out"
    synthesize_atomically(outdir, fake_synth({"stacks/dev/cdk.tf.json": "v1"}))
    before = files(outdir)

    def broken(directory: Path) -> None:
        fake_synth({"stacks/dev/cdk.tf.json": "half-written"})(directory)
        raise RuntimeError("synth failed midway")

    with pytest.raises(RuntimeError):
        synthesize_atomically(outdir, broken)
    assert files(outdir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"], "no temporary directory left behind"


def test_a_successful_synth_replaces_output_but_keeps_terraform_working_files(tmp_path: Path) -> None:
    outdir = tmp_path / "cdktf.out"
    synthesize_atomically(outdir, fake_synth({"stacks/dev/cdk.tf.json": "v1", "stacks/old/cdk.tf.json": "gone"}))
    (outdir / "stacks" / "dev" / ".terraform").mkdir()
    (outdir / "stacks" / "dev" / ".terraform" / "providers").write_text("downloaded")
    (outdir / "stacks" / "dev" / ".terraform.lock.hcl").write_text("lock")

    synthesize_atomically(outdir, fake_synth({"stacks/dev/cdk.tf.json": "v2"}))

    assert files(outdir) == {
        "stacks/dev/.terraform.lock.hcl": b"lock",
        "stacks/dev/.terraform/providers": b"downloaded",
        "stacks/dev/cdk.tf.json": b"v2",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"]


def test_cdktf_json_app_produces_the_same_bytes_as_main_py(tmp_path: Path, synth_outdir: Path) -> None:
    """`cdktf synth` runs cdktf.json's app with CDKTF_OUTDIR set; that must equal `python main.py`."""
    config = json.loads((REPO / "cdktf.json").read_text())
    assert config["language"] == "python"
    argv = shlex.split(config["app"])
    assert argv[-1] == "main.py"
    outdir = tmp_path / "cli.out"
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir)}
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert files(outdir) == files(synth_outdir)

"""main.py / cdktf.json: atomic output replacement and one way to synthesize."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from roi_tf import app
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


def manifest(*stacks: str) -> str:
    return json.dumps(
        {"version": "0.21.0", "stacks": {s: {"name": s, "workingDirectory": f"stacks/{s}"} for s in stacks}}
    )


def test_synthesizing_one_environment_keeps_the_other_environments_stacks_and_their_working_files(
    tmp_path: Path,
) -> None:
    """``main.py --env dev`` must not cost prod its synthesized stack, .terraform/ or saved plan; a stack that is
    neither synthesized nor kept (an environment that no longer exists) still goes."""
    outdir = tmp_path / "cdktf.out"
    synthesize_atomically(outdir, fake_synth({
        "manifest.json": manifest("dev", "prod", "old"),
        "stacks/dev/cdk.tf.json": "v1", "stacks/prod/cdk.tf.json": "p1", "stacks/old/cdk.tf.json": "gone",
    }))  # fmt: skip
    (outdir / "stacks" / "prod" / ".terraform").mkdir()
    (outdir / "stacks" / "prod" / ".terraform" / "terraform.tfstate").write_text("backend")
    (outdir / "stacks" / "prod" / "tfplan").write_bytes(b"\x00plan")

    synthesize_atomically(
        outdir,
        fake_synth({"manifest.json": manifest("dev"), "stacks/dev/cdk.tf.json": "v2"}),
        keep_stacks=["prod", "state-prod"],
    )

    assert {k: v for k, v in files(outdir).items() if k != "manifest.json"} == {
        "stacks/dev/cdk.tf.json": b"v2",
        "stacks/prod/cdk.tf.json": b"p1",
        "stacks/prod/.terraform/terraform.tfstate": b"backend",
        "stacks/prod/tfplan": b"\x00plan",
    }
    assert sorted(json.loads((outdir / "manifest.json").read_text())["stacks"]) == ["dev", "prod"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"]


def test_main_keeps_the_stacks_of_the_environments_it_was_not_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards what main passes down: --env dev keeps staging's and prod's stacks, a full synth keeps none."""
    seen: list[list[str]] = []

    def record(outdir: Path, synth, keep_stacks=()) -> None:
        seen.append(sorted(keep_stacks))

    monkeypatch.setattr(app, "synthesize_atomically", record)
    assert app.main(["--env", "dev", "--outdir", str(tmp_path / "out")]) == 0
    assert app.main(["--outdir", str(tmp_path / "out")]) == 0
    assert seen == [["prod", "staging", "state-prod", "state-staging"], []]


def fail_rename(monkeypatch: pytest.MonkeyPatch, outdir: Path, which: str) -> list[str]:
    """Make one rename of ``synthesize_atomically``'s swap raise OSError; the returned list records that it did.

    ``which`` is ``"staging->outdir"`` (the final rename) or ``"outdir->retired"`` (moving the old output aside).
    Every other rename (carrying working files over, putting the old output back) goes through untouched.
    """
    real_rename = Path.rename
    injected: list[str] = []

    def rename(self: Path, target: str | Path) -> Path:
        target = Path(target)
        is_staging = self.parent == outdir.parent and self.name.startswith(f".{outdir.name}.")
        if which == "staging->outdir" and is_staging and not self.name.endswith(".old") and target == outdir:
            injected.append(which)
            raise OSError(errno.EXDEV, "injected rename failure")
        if which == "outdir->retired" and self == outdir:
            injected.append(which)
            raise OSError(errno.EBUSY, "injected rename failure")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    return injected


def test_a_failed_final_rename_puts_the_previous_output_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the restore in the swap: if staging -> outdir fails after outdir was moved aside, the old output
    must be renamed back (else cdktf.out/ vanishes, or stays as .cdktf.out.*.old), and the error must propagate."""
    outdir = (tmp_path / "cdktf.out").resolve()
    synthesize_atomically(outdir, fake_synth({"stacks/dev/cdk.tf.json": "v1", "stacks/prod/cdk.tf.json": "p1"}))
    before = files(outdir)
    injected = fail_rename(monkeypatch, outdir, "staging->outdir")

    with pytest.raises(OSError, match="injected rename failure"):
        synthesize_atomically(outdir, fake_synth({"stacks/dev/cdk.tf.json": "v2", "stacks/prod/cdk.tf.json": "p2"}))

    assert injected == ["staging->outdir"], "the final rename was attempted (and failed)"
    assert files(outdir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"], "no staging or retired directory left behind"


@pytest.mark.parametrize("which", ["staging->outdir", "outdir->retired"])
def test_a_failed_swap_keeps_the_terraform_working_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    """Guards "on any failure outdir is untouched" for what Terraform put there: a failed swap must not cost the
    operator .terraform/ (providers, backend state), .terraform.lock.hcl or a saved tfplan."""
    outdir = (tmp_path / "cdktf.out").resolve()
    synthesize_atomically(outdir, fake_synth({"stacks/dev/cdk.tf.json": "v1"}))
    (outdir / "stacks" / "dev" / ".terraform").mkdir()
    (outdir / "stacks" / "dev" / ".terraform" / "terraform.tfstate").write_text("backend")
    (outdir / "stacks" / "dev" / ".terraform.lock.hcl").write_text("lock")
    (outdir / "stacks" / "dev" / "tfplan").write_bytes(b"\x00plan")
    before = files(outdir)
    injected = fail_rename(monkeypatch, outdir, which)

    with pytest.raises(OSError, match="injected rename failure"):
        synthesize_atomically(outdir, fake_synth({"stacks/dev/cdk.tf.json": "v2"}))

    assert injected == [which]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"], "no staging or retired directory left behind"
    assert files(outdir) == before


# --- main.py when synthesis fails -------------------------------------------------------------


def broken_synth(configs, outdir: Path, state_location: str = "primary") -> None:
    raise RuntimeError("node kernel died")


def test_main_reports_a_synthesis_failure_in_two_lines_and_returns_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Guards main()'s except branch: a failed synth returns EXIT_SYNTH_ERROR (not 0, not an exception)."""
    monkeypatch.delenv("ROI_TF_DEBUG", raising=False)
    monkeypatch.setattr(app, "synth", broken_synth)
    outdir = tmp_path / "out"

    assert app.main(["--env", "dev", "--outdir", str(outdir)]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "error: synthesis failed: RuntimeError: node kernel died",
        f"{outdir} left unchanged (set ROI_TF_DEBUG=1 for the traceback)",
    ]


def test_main_lets_the_exception_through_with_roi_tf_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Guards the debugging escape hatch: ROI_TF_DEBUG=1 must show the real exception, not the one-liner."""
    monkeypatch.setenv("ROI_TF_DEBUG", "1")
    monkeypatch.setattr(app, "synth", broken_synth)

    with pytest.raises(RuntimeError, match="node kernel died"):
        app.main(["--env", "dev", "--outdir", str(tmp_path / "out")])
    assert "synthesis failed" not in capsys.readouterr().err


def make_synth_fail(tmp_path: Path, how: str) -> tuple[Path, Path, dict[str, str]]:
    """Set up a real synthesis failure: (the --outdir to pass, the tree that must stay unchanged, extra env)."""
    if how == "outdir-parent-is-a-file":
        # Creating the staging directory beside the output fails: its parent is a regular file.
        blocker = tmp_path / "not-a-directory"
        blocker.write_bytes(b"a regular file\n")
        return blocker / "cdktf.out", blocker, {}
    # TMPDIR names a deleted directory: the staging directory is created, then the jsii node kernel cannot
    # unpack the cdktf assembly, so synthesis fails half-way with a previous output in place.
    outdir = tmp_path / "cdktf.out"
    fake_synth({"stacks/dev/cdk.tf.json": "previous", "stacks/dev/.terraform/providers": "downloaded"})(outdir)
    return outdir, outdir, {"TMPDIR": str(tmp_path / "deleted-tmp")}


@pytest.mark.parametrize(
    ("how", "error"),
    [
        ("outdir-parent-is-a-file", "error: synthesis failed: FileExistsError: "),
        ("tmpdir-deleted", "error: synthesis failed: RuntimeError: ENOENT: "),
    ],
)
def test_main_py_exits_1_with_a_one_line_error_when_synthesis_fails(tmp_path: Path, how: str, error: str) -> None:
    """Guards the command line contract the scripts rely on: a failed synth exits 1 (so `set -e` stops them),
    says so in one line plus a hint, prints no traceback, and leaves the previous output byte-for-byte as it was."""
    outdir, watched, extra_env = make_synth_fail(tmp_path, how)
    before = files(watched) if watched.is_dir() else {"": watched.read_bytes()}
    listing = sorted(p.name for p in tmp_path.iterdir())
    env = {k: v for k, v in os.environ.items() if k not in ("ROI_TF_DEBUG", "CDKTF_OUTDIR")}

    done = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--outdir", str(outdir)],
        cwd=tmp_path,
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    first, hint = done.stderr.splitlines()
    assert first.startswith(error), done.stderr
    assert hint == f"{outdir} left unchanged (set ROI_TF_DEBUG=1 for the traceback)"
    assert (files(watched) if watched.is_dir() else {"": watched.read_bytes()}) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing, "no .cdktf.out.* staging directory left behind"

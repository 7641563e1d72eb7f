"""The synthesized stacks the insight tools read (cost, diagram, diff): cdktf.out/ when it is current for an
environment's sources and configuration (the scripts' fingerprint), a fresh synth into it otherwise.

The tools describe what would really be deployed: the JSON Terraform would plan, never the configuration alone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from roi_tf.config import DEFAULT_ENVIRONMENTS_DIR, ConfigError, EnvironmentConfig, load_environments
from roi_tf.tools import fingerprint

DEFAULT_OUTDIR = Path("cdktf.out")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load(
    envs: Sequence[str],
    *,
    outdir: Path = DEFAULT_OUTDIR,
    environments_dir: Path = DEFAULT_ENVIRONMENTS_DIR,
    progress: Callable[[str], None] = _stderr,
) -> tuple[dict[str, EnvironmentConfig], dict[str, Mapping[str, Any]]]:
    """The validated configurations of ``envs`` and their environment stacks' JSON (``ConfigError`` on bad input)."""
    configs = load_environments(envs, environments_dir)
    stale = [env for env in envs if not fingerprint.fresh(env, environments_dir, outdir)]
    if stale:
        progress(f"synthesizing {', '.join(stale)} into {outdir} (the stacks there are not current) ...")
        from roi_tf.app import synth  # the provider import: only when a synth is needed

        inputs = {env: fingerprint.digest(env, environments_dir) for env in stale}  # what this synth reads
        synth({env: configs[env] for env in stale}, outdir)
        for env in stale:
            fingerprint.stamp(env, inputs[env], outdir)
        progress(f"synthesized {', '.join(stale)}")
    stacks = {env: json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text()) for env in envs}
    return configs, stacks


def load_for_command(
    envs: Sequence[str], *, outdir: Path, environments_dir: Path
) -> tuple[dict[str, EnvironmentConfig], dict[str, Mapping[str, Any]]] | None:
    """``load`` for a command line: bad configuration printed one problem per line (then None: exit 2)."""
    try:
        return load(envs, outdir=outdir, environments_dir=environments_dir)
    except ConfigError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return None

"""Command line entry point: validate every environment, build one App, synthesize atomically.

``python main.py`` and ``cdktf synth`` (whose ``app`` runs main.py) both end up here. Configuration
is validated before the provider package is imported, so bad input fails fast, and the output is
synthesized into a temporary directory that replaces ``cdktf.out/`` only when everything succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from roi_tf.config import (
    DEFAULT_ENVIRONMENTS_DIR,
    ENVIRONMENTS,
    STATE_LOCATIONS,
    ConfigError,
    EnvironmentConfig,
    load_environments,
)

DEFAULT_OUTDIR = "cdktf.out"
EXIT_CONFIG_ERROR = 2
EXIT_SYNTH_ERROR = 1


def build_app(configs: Mapping[str, EnvironmentConfig], outdir: str, state_location: str = "primary"):  # -> cdktf.App
    """One App holding ``state-<env>`` and ``<env>`` for every configured environment (``<env>`` on the state's
    DR copy with ``state_location="dr"``; ``state-<env>`` always on the primary bucket it manages)."""
    from cdktf import App

    from roi_tf.stacks import EnvironmentStack, StateBackendStack

    app = App(outdir=outdir)
    for config in configs.values():
        StateBackendStack(app, config)
        EnvironmentStack(app, config, state_location=state_location)
    return app


def _carry_over_working_files(old: Path, new: Path, keep_stacks: Collection[str]) -> None:
    """Keep what Terraform put into a stack directory (.terraform/, lock file, plans) across synths, and the whole
    directory of a stack in ``keep_stacks`` that this synth did not produce (``--env``: the other environments).
    A stack directory that is neither synthesized nor kept (a removed environment) goes."""
    old_stacks, new_stacks = old / "stacks", new / "stacks"
    if not old_stacks.is_dir():
        return
    kept = []
    for stack_dir in sorted(old_stacks.iterdir()):
        target = new_stacks / stack_dir.name
        if not target.is_dir():
            if stack_dir.name in keep_stacks:
                new_stacks.mkdir(exist_ok=True)
                stack_dir.rename(target)
                kept.append(stack_dir.name)
            continue
        for entry in stack_dir.iterdir():
            if not (target / entry.name).exists():
                entry.rename(target / entry.name)
    if kept:
        _merge_manifest(old / "manifest.json", new / "manifest.json", kept)


def _merge_manifest(old: Path, new: Path, stacks: Sequence[str]) -> None:
    """List the kept stacks in the new manifest.json too, so ``cdktf`` still finds them."""
    try:
        previous = json.loads(old.read_text())["stacks"]
        manifest = json.loads(new.read_text())
    except (OSError, ValueError, KeyError):
        return  # no manifest to merge (a synth that is not cdktf's): the directories alone are kept
    manifest["stacks"].update({name: previous[name] for name in stacks if name in previous})
    new.write_text(json.dumps(manifest, indent=2) + "\n")


def synthesize_atomically(outdir: Path, synth: Callable[[Path], None], keep_stacks: Collection[str] = ()) -> None:
    """Run ``synth(tmpdir)``, then swap tmpdir into ``outdir``; on any failure ``outdir`` is untouched. Stacks named
    in ``keep_stacks`` that ``synth`` did not write stay as they were (see _carry_over_working_files)."""
    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        synth(staging)
        if not outdir.exists():
            staging.rename(outdir)
            return
        retired = outdir.with_name(f"{staging.name}.old")
        outdir.rename(retired)
        try:
            staging.rename(outdir)
        except OSError:
            retired.rename(outdir)
            raise
        # Terraform's working files move only once the new output is in place, so a failed swap cannot lose
        # them; if moving them fails, the retired output stays beside cdktf.out/ with whatever was not moved.
        _carry_over_working_files(retired, outdir, keep_stacks)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def synth(configs: Mapping[str, EnvironmentConfig], outdir: Path, state_location: str = "primary") -> None:
    """Synthesize ``configs`` into ``outdir``; the stacks of the other environments (``--env``) stay untouched."""

    def run(directory: Path) -> None:
        build_app(configs, str(directory), state_location).synth()

    others = [name for env in ENVIRONMENTS if env not in configs for name in (env, f"state-{env}")]
    synthesize_atomically(outdir, run, keep_stacks=others)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Synthesize the ROI Systems Terraform stacks (<env> and state-<env> per environment).",
    )
    parser.add_argument(
        "--env",
        action="append",
        metavar="NAME",
        help=f"environment to synthesize (repeatable; default: all of {', '.join(ENVIRONMENTS)})",
    )
    parser.add_argument(
        "--outdir",
        type=Path,
        default=Path(os.environ.get("CDKTF_OUTDIR") or DEFAULT_OUTDIR),
        help="output directory (default: $CDKTF_OUTDIR or cdktf.out)",
    )
    parser.add_argument(
        "--environments-dir",
        type=Path,
        default=DEFAULT_ENVIRONMENTS_DIR,
        help="directory holding <env>.json and schema.json (default: environments/)",
    )
    parser.add_argument(
        "--state",
        choices=STATE_LOCATIONS,
        default="primary",
        help="where <env>'s backend points: its state bucket (primary, default) or the bucket's copy in dr_region "
        "(dr: during a regional outage; needs a dr section; docs/DEPLOYMENT.md, Regional failover)",
    )
    parser.add_argument("--check", action="store_true", help="validate the configuration only; write nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        configs = load_environments(args.env, args.environments_dir)
    except ConfigError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"synth aborted: {len(error.problems)} problem(s); {args.outdir} left unchanged", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.state == "dr" and (without := [env for env, config in configs.items() if not config.dr.enabled]):
        for env in without:
            print(f"error: {env} has no dr section: its state has no copy in another region", file=sys.stderr)
        print(f"synth aborted: --state dr needs a dr section; {args.outdir} left unchanged", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.check:
        print(f"configuration valid: {', '.join(configs)}")
        return 0

    try:
        synth(configs, args.outdir, args.state)
    except Exception as error:
        if os.environ.get("ROI_TF_DEBUG"):
            raise
        print(f"error: synthesis failed: {type(error).__name__}: {error}", file=sys.stderr)
        print(f"{args.outdir} left unchanged (set ROI_TF_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_SYNTH_ERROR
    stacks = [name for env in configs for name in (f"state-{env}", env)]
    print(f"synthesized {len(stacks)} stacks into {args.outdir}/stacks: {', '.join(stacks)}")
    for env, config in configs.items() if args.state == "dr" else ():
        print(
            f"{env}: backend is the DR copy of its state (s3://{config.dr.state_bucket} in {config.dr_region}, "
            f"S3 lock files); run terraform init -reconfigure in {args.outdir}/stacks/{env}"
        )
    return 0

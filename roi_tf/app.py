"""Command line entry point: validate every environment, build one App, synthesize atomically.

``python main.py`` and ``cdktf synth`` (whose ``app`` runs main.py) both end up here. Configuration
is validated before the provider package is imported, so bad input fails fast, and the output is
synthesized into a temporary directory that replaces ``cdktf.out/`` only when everything succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from roi_tf.config import (
    DEFAULT_ENVIRONMENTS_DIR,
    ENVIRONMENTS,
    PRODUCTION_ENVIRONMENTS,
    ConfigError,
    EnvironmentConfig,
    load_environments,
)

STATE_LOCATIONS = ("primary", "dr")  # roi_tf.stacks.common.STATE_LOCATIONS (not imported: it loads the provider)

DEFAULT_OUTDIR = "cdktf.out"
EXIT_CONFIG_ERROR = 2
EXIT_SYNTH_ERROR = 1
SERIAL_ENV = "ROI_TF_SERIAL_SYNTH"  # synthesize every environment in this process (no worker)


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


class SynthError(Exception):
    """Synthesis failed in a worker process (its message names the environments and the error)."""


def split_for_workers(configs: Mapping[str, EnvironmentConfig]) -> list[dict[str, EnvironmentConfig]]:
    """Two groups of environments of about equal synthesis work, or one group when there is nothing to split.

    The fixed cost of a process (importing cdktf and loading the provider's jsii assembly, ~3 s) is paid by each
    worker at once on its own core; the work per environment (~1 s) then splits: the heaviest environment (a
    production one, with a pilot light) alone, the others together.
    """
    if len(configs) < 2:
        return [dict(configs)]
    heaviest = max(configs.values(), key=lambda c: (c.name in PRODUCTION_ENVIRONMENTS, c.dr.enabled, c.name))
    return [{n: c for n, c in configs.items() if n != heaviest.name}, {heaviest.name: heaviest}]


def parallel_synthesis_possible() -> bool:
    """Workers are forked before jsii starts (a forked copy of a running kernel's pipes would be shared)."""
    serial = os.environ.get(SERIAL_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return not serial and hasattr(os, "fork") and (os.cpu_count() or 1) > 1 and "jsii" not in sys.modules


def _synth_in_parallel(groups: Sequence[Mapping[str, EnvironmentConfig]], directory: Path, state_location: str) -> None:
    """The first group in this process, each other in a forked worker; the workers' stacks are then moved in."""
    workers = []
    for number, group in enumerate(groups[1:], start=1):
        part = directory.with_name(f"{directory.name}.part{number}")
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: synthesize, report, and leave without running the parent's exit handlers
            os.close(read)
            status = 0
            try:
                build_app(group, str(part), state_location).synth()
            except BaseException as error:
                os.write(write, f"{type(error).__name__}: {error}".encode())
                status = 1
            finally:
                os._exit(status)
        os.close(write)
        workers.append((pid, read, part, group))
    failures = []
    try:
        try:
            build_app(groups[0], str(directory), state_location).synth()
        finally:
            for pid, read, _, group in workers:
                with os.fdopen(read, "rb") as pipe:
                    message = pipe.read().decode(errors="replace")
                _, status = os.waitpid(pid, 0)
                if status != 0:
                    failures.append(f"{', '.join(group)}: {message or f'worker exited with status {status}'}")
        if failures:
            raise SynthError("; ".join(failures))
        for _, _, part, _ in workers:
            for stack_dir in sorted((part / "stacks").iterdir()):
                stack_dir.rename(directory / "stacks" / stack_dir.name)
            stacks = list(json.loads((part / "manifest.json").read_text())["stacks"])
            _merge_manifest(part / "manifest.json", directory / "manifest.json", stacks)
    finally:
        for _, _, part, _ in workers:
            shutil.rmtree(part, ignore_errors=True)


def cdktf_json(value: object) -> str:
    """JSON as cdktf writes manifest.json: keys sorted, two-space indents, an empty list over two lines, no final
    newline (so a merged manifest is byte for byte the one a single process writes)."""
    text = json.dumps(value, indent=2, sort_keys=True)
    return re.sub(r"^( *)(.*)\[\]", lambda m: f"{m[1]}{m[2]}[\n{m[1]}]", text, flags=re.MULTILINE)


def synth(
    configs: Mapping[str, EnvironmentConfig],
    outdir: Path,
    state_location: str = "primary",
    *,
    parallel: bool = True,  # False: this process only (a caller with threads of its own, such as a test runner)
) -> None:
    """Synthesize ``configs`` into ``outdir``; the stacks of the other environments (``--env``) stay untouched.

    With two or more environments and two or more cores, the environments are synthesized by two processes at once
    (docs/FAST_SYNTH.md); ``ROI_TF_SERIAL_SYNTH=1`` (or a process that started jsii already) synthesizes in this
    process only. Either way the stacks are byte-identical and manifest.json lists the same (tests/test_app.py).
    """

    def run(directory: Path) -> None:
        groups = split_for_workers(configs)
        if parallel and len(groups) > 1 and parallel_synthesis_possible():
            _synth_in_parallel(groups, directory, state_location)
            manifest_path = directory / "manifest.json"
            manifest_path.write_text(cdktf_json(json.loads(manifest_path.read_text())))
        else:
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
        # With ROI_TF_DEBUG, in this process only: a worker's traceback would not reach the terminal.
        synth(configs, args.outdir, args.state, parallel=not os.environ.get("ROI_TF_DEBUG"))
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

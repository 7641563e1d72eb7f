"""Benchmark: full synth the normal way and the fast way, against the bare provider import.

Run from the repository root: ``make bench`` (or ``.venv/bin/python benchmarks/synth_bench.py``).
Every sample is a whole process, interpreter start and exit included, of:

  bare    python -c "import cdktf_cdktf_provider_aws"
  normal  python main.py --outdir <tmp>   with ROI_TF_EAGER_PROVIDER_IMPORT=1 (all 2,212 submodules)
  fast    python main.py --outdir <tmp>   (roi_tf.provider_loader: only the submodules used)

Scenarios are interleaved round by round (after ``--warmup`` discarded rounds), and medians over ``--runs``
rounds are reported. Memory is that of the whole process tree (python and its node child): the sum of
RSS over the tree, sampled every ``--interval`` seconds, and the sum of each process's own peak (VmHWM,
exact per process, but the processes need not peak at the same moment, so it is an upper bound).
A benchmark, not a test: missing a target is reported, never an error.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is in the dev extras
    sys.exit("synth_bench: psutil is missing; run `make venv` (it installs the dev extras)")

REPO = Path(__file__).resolve().parents[1]
EAGER_ENV = "ROI_TF_EAGER_PROVIDER_IMPORT"
MB = 1024 * 1024
TARGETS = (
    # (issue, scenario, limit as a multiple of the bare import's wall time, what it states)
    ("issue 2", "fast", 1.3, "all stacks in one process (main.py as shipped) <= 1.3 x bare import"),
    ("issue 2", "normal", 1.3, "the same, with the normal import (for reference) <= 1.3 x bare import"),
    ("issue 3", "fast", 0.5, "fast full synth <= 0.5 x bare import"),
)


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    runs_main: bool  # python main.py --outdir DIR, or the bare import
    eager: bool  # sets ROI_TF_EAGER_PROVIDER_IMPORT=1

    def command(self, outdir: Path) -> list[str]:
        if self.runs_main:
            return [sys.executable, "main.py", "--outdir", str(outdir)]
        return [sys.executable, "-c", "import cdktf_cdktf_provider_aws"]


SCENARIOS = (
    Scenario("bare", "bare `import cdktf_cdktf_provider_aws`", runs_main=False, eager=False),
    Scenario("normal", "`python main.py`, normal import", runs_main=True, eager=True),
    Scenario("fast", "`python main.py`, fast loader", runs_main=True, eager=False),
)


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    peak: list[int] = field(default_factory=list)
    hwm_sum: list[int] = field(default_factory=list)


def peak_rss(pid: int) -> int:
    """The kernel's high-water mark of the resident set of one process (Linux), 0 if unavailable."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(argv: list[str], env: dict[str, str], interval: float) -> tuple[float, int, int, int]:
    """Run one process to completion: wall seconds, peak tree RSS, sum of per-process peaks, process count."""
    peak = 0
    hwm: dict[int, int] = {}
    done = threading.Event()
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = psutil.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr)

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                try:
                    tree = [process, *process.children(recursive=True)]
                except psutil.NoSuchProcess:
                    return
                total = 0
                for member in tree:
                    try:
                        total += member.memory_info().rss
                        hwm[member.pid] = max(hwm.get(member.pid, 0), peak_rss(member.pid))
                    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                        continue
                peak = max(peak, total)
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        returncode = process.wait()
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        if returncode != 0:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace")[-3000:]
            sys.exit(f"synth_bench: {' '.join(argv)} exited {returncode}\n{tail}")
    return wall, peak, sum(hwm.values()), len(hwm)


def environment(eager: bool) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != EAGER_ENV}
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    if eager:
        env[EAGER_ENV] = "1"
    return env


def same_output(left: Path, right: Path) -> bool:
    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    return files(left) == files(right)


def machine() -> str:
    try:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        node = "node ?"
    versions = ", ".join(f"{dist} {metadata.version(dist)}" for dist in ("cdktf", "cdktf-cdktf-provider-aws", "jsii"))
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, Node {node}; {versions}"
    )


def table(results: dict[str, Samples], markdown: bool) -> str:
    bare_wall = statistics.median(results["bare"].wall)
    bare_peak = statistics.median(results["bare"].peak)
    header = ["", "wall (s)", "min-max (s)", "x bare", "peak RSS, tree (MB)", "x bare", "sum of process peaks (MB)"]
    rows = []
    for scenario in SCENARIOS:
        samples = results[scenario.name]
        wall, peak = statistics.median(samples.wall), statistics.median(samples.peak)
        rows.append(
            [
                scenario.label,
                f"{wall:.2f}",
                f"{min(samples.wall):.2f}-{max(samples.wall):.2f}",
                f"{wall / bare_wall:.2f}",
                f"{peak / MB:.0f}",
                f"{peak / bare_peak:.2f}",
                f"{statistics.median(samples.hwm_sum) / MB:.0f}",
            ]
        )
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in [header, *rows]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (default: 5; medians)")
    parser.add_argument("--warmup", type=int, default=1, help="discarded rounds first (default: 1)")
    parser.add_argument("--interval", type=float, default=0.02, help="memory sampling period in s (0.02)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")

    measured_on = machine()
    print(f"# {measured_on}", file=sys.stderr)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"# warning: load average {load:.2f} before starting; other work skews the figures", file=sys.stderr)
    results: dict[str, Samples] = {}
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as tmp:
        for round_number in range(args.warmup + args.runs):
            warm = round_number < args.warmup
            for scenario in SCENARIOS:
                command = scenario.command(Path(tmp) / f"{scenario.name}-{round_number}")
                wall, peak, hwm_sum, count = measure(command, environment(scenario.eager), args.interval)
                tag = "warm-up" if warm else f"run {round_number - args.warmup + 1}/{args.runs}"
                print(
                    f"{tag:>9}  {scenario.name:<6}  {wall:6.2f} s  peak {peak / MB:6.0f} MB  "
                    f"process peaks {hwm_sum / MB:6.0f} MB  ({count} processes)",
                    file=sys.stderr,
                )
                if not warm:
                    samples = results.setdefault(scenario.name, Samples())
                    samples.wall.append(wall)
                    samples.peak.append(peak)
                    samples.hwm_sum.append(hwm_sum)
        last = args.warmup + args.runs - 1
        identical = same_output(Path(tmp) / f"normal-{last}", Path(tmp) / f"fast-{last}")

    bare = statistics.median(results["bare"].wall)
    ratios = {name: statistics.median(samples.wall) / bare for name, samples in results.items()}
    print(table(results, args.markdown))
    print()
    print(f"Medians of {args.runs} runs, each a whole process (python and its node child), on {measured_on}.")
    print()
    print(f"fast/bare   = {ratios['fast']:.2f}  (wall time, medians)")
    print(f"normal/bare = {ratios['normal']:.2f}")
    print(f"fast and normal outputs byte-identical (last round): {'yes' if identical else 'NO'}")
    for issue, name, limit, text in TARGETS:
        verdict = "PASS" if ratios[name] <= limit else "MISS"
        print(f"{verdict}  {issue}: {text}: {ratios[name]:.2f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

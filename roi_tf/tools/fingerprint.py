"""Whether an environment's synthesized stacks are what its sources and configuration synthesize now.

The wrapper scripts synthesize before every plan; synthesizing costs seconds, reading this costs milliseconds. A
synth is skipped only when every input is byte-for-byte what it was and both stacks are byte-for-byte what that
synth wrote: the environment's file and the schema, every source file of the app (``main.py``, ``roi_tf/``), and
the pinned dependencies. Anything else (no stamp, an edited stack, a changed line anywhere) synthesizes again.

python -m roi_tf.tools.fingerprint digest ENV ENVIRONMENTS_DIR            # the inputs' digest, printed
python -m roi_tf.tools.fingerprint fresh ENV ENVIRONMENTS_DIR OUTDIR      # exit 0: up to date; 1: synthesize
python -m roi_tf.tools.fingerprint stamp ENV DIGEST OUTDIR                # record a synth of those inputs
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STAMP = ".synth-inputs.json"  # in cdktf.out/stacks/<env>/; main.py does not carry it over a new synth
# What the app's output depends on besides the environment's file: its code and its pinned dependencies.
SOURCES = ("main.py", "pyproject.toml", "constraints.txt")
PACKAGE = "roi_tf"


def _inputs(env: str, environments_dir: Path) -> Iterator[tuple[str, Path]]:
    for name in SOURCES:
        yield name, REPO / name
    for path in sorted((REPO / PACKAGE).rglob("*.py")):
        yield path.relative_to(REPO).as_posix(), path
    yield "environments/schema.json", environments_dir / "schema.json"
    yield f"environments/{env}.json", environments_dir / f"{env}.json"


def digest(env: str, environments_dir: Path) -> str:
    """SHA-256 over the name and bytes of every input of ``env``'s synth."""
    sha = hashlib.sha256()
    for name, path in _inputs(env, environments_dir):
        content = path.read_bytes() if path.is_file() else None  # a missing file is an input too (synth reports it)
        sha.update(f"{name}\0{-1 if content is None else len(content)}\0".encode())
        sha.update(content or b"")
    return sha.hexdigest()


def _stack_digests(env: str, outdir: Path) -> dict[str, str | None]:
    stacks = {}
    for stack in (env, f"state-{env}"):
        path = outdir / "stacks" / stack / "cdk.tf.json"
        stacks[stack] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return stacks


def fresh(env: str, environments_dir: Path, outdir: Path) -> bool:
    """True when the stamp names today's inputs and both stacks are exactly what that synth wrote."""
    stamp = outdir / "stacks" / env / STAMP
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    stacks = _stack_digests(env, outdir)
    return None not in stacks.values() and recorded == {"inputs": digest(env, environments_dir), "stacks": stacks}


def stamp(env: str, inputs_digest: str, outdir: Path) -> None:
    """Record that the stacks now in ``outdir`` were synthesized from inputs with this digest."""
    stacks = _stack_digests(env, outdir)
    if None in stacks.values():
        raise FileNotFoundError(f"{env}: no synthesized stacks in {outdir} to stamp")
    (outdir / "stacks" / env / STAMP).write_text(json.dumps({"inputs": inputs_digest, "stacks": stacks}, indent=2))


def main(argv: Sequence[str]) -> int:
    match list(argv):
        case ["digest", env, environments_dir]:
            print(digest(env, Path(environments_dir)))
            return 0
        case ["fresh", env, environments_dir, outdir]:
            return 0 if fresh(env, Path(environments_dir), Path(outdir)) else 1
        case ["stamp", env, inputs_digest, outdir]:
            stamp(env, inputs_digest, Path(outdir))
            return 0
    print("\n".join(__doc__.strip().splitlines()[-3:]), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

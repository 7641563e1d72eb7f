"""What differs between two environments, per module (``python -m roi_tf diff ENV1 ENV2``).

Two kinds of difference: configuration values (the two validated ``EnvironmentConfig`` objects walked field by
field, ``path: left -> right``; ``name`` and ``source`` are skipped, a section one side lacks compares as null),
and how many resources of each type the synthesized stacks create (a resource belongs to the module of its
construct path, ``<env>/<module>/...``). A configuration value belongs to its top-level section; the top-level
values (region, ...) to ``environment``. Constructs of the security layer (keys, secrets, audit, account services,
WAF, operators) are reported as ``security``, the pipeline's roles as ``ci``.

JSON output (``--format json``, schema: ``roi_tf/tools/data/envdiff.schema.json``)::

    {"left": "staging", "right": "prod",
     "modules": [{"module": "compute",
                  "config": [{"path": "compute.api.task_cpu", "left": 1024, "right": 4096}, ...],
                  "resources": [{"type": "aws_autoscaling_group", "left": 0, "right": 1}, ...]}, ...]}

Only modules with a difference are listed; modules, paths and types are sorted. Exit 0 (differences are not an
error), 2 on an unknown environment or an invalid configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from roi_tf.config import DEFAULT_ENVIRONMENTS_DIR, ENVIRONMENTS, EnvironmentConfig

SCHEMA = Path(__file__).resolve().parent / "data" / "envdiff.schema.json"
SKIPPED = frozenset({"name", "source"})  # of EnvironmentConfig: they differ by definition
TOP_LEVEL = "environment"  # the module of the top-level values (region, dr_region, description, ...)
# Construct paths' modules reported under the configuration section that drives them.
CONSTRUCT_MODULES = {
    "keys": "security",
    "db_credentials_secret": "security",
    "jwt_secret_secret": "security",
    "audit": "security",
    "account_services": "security",
    "waf_cloudfront": "security",
    "waf_regional": "security",
    "operators": "security",
    "pipeline": "ci",
}


def plain(value: Any) -> Any:
    """A configuration value as JSON: tuples as lists, networks as strings, sections as objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(value)
    return value


def _children(value: Any) -> dict[str, Any] | None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return None


def config_differences(left: Any, right: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """``(path, left, right)`` for every leaf value that differs; a side without a section counts as null."""
    lkids, rkids = _children(left), _children(right)
    if lkids is None and rkids is None:
        return [] if plain(left) == plain(right) else [(path, plain(left), plain(right))]
    if (lkids is None and left is not None) or (rkids is None and right is not None):
        return [(path, plain(left), plain(right))]  # a section against a value: whole
    lkids, rkids = lkids or {}, rkids or {}
    found = []
    for key in sorted(lkids.keys() | rkids.keys()):
        if not path and key in SKIPPED:
            continue
        found += config_differences(lkids.get(key), rkids.get(key), f"{path}.{key}" if path else key)
    return found


def module_of_path(path: str) -> str:
    """The configuration section of a value's path; ``environment`` for a top-level value."""
    return path.split(".", 1)[0] if "." in path else TOP_LEVEL


def resource_counts(stack: Mapping[str, Any]) -> dict[str, Counter[str]]:
    """Resources per type, per module (the second segment of each resource's construct path)."""
    counts: dict[str, Counter[str]] = {}
    for rtype, items in stack.get("resource", {}).items():
        for body in items.values():
            segment = body["//"]["metadata"]["path"].split("/")[1]
            counts.setdefault(CONSTRUCT_MODULES.get(segment, segment), Counter())[rtype] += 1
    return counts


def diff(
    left: EnvironmentConfig,
    right: EnvironmentConfig,
    left_stack: Mapping[str, Any],
    right_stack: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON document (see the module docstring) of what differs from ``left`` to ``right``."""
    modules: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def module(name: str) -> dict[str, list[dict[str, Any]]]:
        return modules.setdefault(name, {"config": [], "resources": []})

    for path, lvalue, rvalue in config_differences(left, right):
        module(module_of_path(path))["config"].append({"path": path, "left": lvalue, "right": rvalue})
    lcounts, rcounts = resource_counts(left_stack), resource_counts(right_stack)
    for name in sorted(lcounts.keys() | rcounts.keys()):
        lc, rc = lcounts.get(name, Counter()), rcounts.get(name, Counter())
        for rtype in sorted(lc.keys() | rc.keys()):
            if lc[rtype] != rc[rtype]:
                module(name)["resources"].append({"type": rtype, "left": lc[rtype], "right": rc[rtype]})
    return {
        "left": left.name,
        "right": right.name,
        "modules": [
            {
                "module": name,
                "config": modules[name]["config"],  # in path order: the walk is sorted
                "resources": modules[name]["resources"],
            }
            for name in sorted(modules)
        ],
    }


def _value(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def as_table(document: Mapping[str, Any]) -> str:
    left, right, modules = document["left"], document["right"], document["modules"]
    if not modules:
        return f"{left} and {right}: no differences"
    out = [f"{left} -> {right}: {len(modules)} module(s) differ"]
    for module in modules:
        out += ["", module["module"]]
        out += [f"  {c['path']}: {_value(c['left'])} -> {_value(c['right'])}" for c in module["config"]]
        if module["resources"]:
            out.append("  resources:")
            out += [f"    {r['type']}: {r['left']} -> {r['right']}" for r in module["resources"]]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m roi_tf diff", description=__doc__.splitlines()[0])
    parser.add_argument("left", metavar="ENV1")
    parser.add_argument("right", metavar="ENV2")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--outdir", type=Path, default=Path("cdktf.out"), help="where the synthesized stacks live")
    parser.add_argument("--environments-dir", type=Path, default=DEFAULT_ENVIRONMENTS_DIR)
    args = parser.parse_args(argv)
    unknown = [env for env in dict.fromkeys((args.left, args.right)) if env not in ENVIRONMENTS]
    if unknown:
        print(f"error: unknown environment(s) {', '.join(unknown)}: choose from {', '.join(ENVIRONMENTS)}",
              file=sys.stderr)  # fmt: skip
        return 2
    envs = [env for env in ENVIRONMENTS if env in (args.left, args.right)]
    from roi_tf.tools import synthesized

    loaded = synthesized.load_for_command(envs, outdir=args.outdir, environments_dir=args.environments_dir)
    if loaded is None:
        return 2
    configs, stacks = loaded
    document = diff(configs[args.left], configs[args.right], stacks[args.left], stacks[args.right])
    print(json.dumps(document, indent=2) if args.format == "json" else as_table(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

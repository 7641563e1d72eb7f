"""``python -m roi_tf <tool>``: the insight tools over the synthesized stacks.

cost [ENV ...]        monthly cost estimate per environment (roi_tf/tools/cost.py)
"""

from __future__ import annotations

import importlib
import sys

TOOLS = {"cost": "roi_tf.tools.cost", "diagram": "roi_tf.tools.diagram", "diff": "roi_tf.tools.envdiff"}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in TOOLS:
        print(__doc__.strip(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return importlib.import_module(TOOLS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

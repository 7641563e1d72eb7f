#!/usr/bin/env python3
"""Synthesize every ROI Systems environment: ``python main.py`` (or ``cdktf synth``). See README.md."""

import os
import sys

# jsii's end-of-life banner for Node 20 (README recommends Node 22+); other versions still warn.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from roi_tf.app import main

if __name__ == "__main__":
    sys.exit(main())

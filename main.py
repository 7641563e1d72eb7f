#!/usr/bin/env python3
"""Synthesize every ROI Systems environment: ``python main.py`` (or ``cdktf synth``). See README.md."""

import sys

from roi_tf.app import main

if __name__ == "__main__":
    sys.exit(main())

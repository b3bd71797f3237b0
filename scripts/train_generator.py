#!/usr/bin/env python
"""Thin entry point: same as `textrnn train-generator ...` (see textrnn/cli.py)."""

import sys

from textrnn.cli import run

if __name__ == "__main__":
    run(["train-generator", *sys.argv[1:]])

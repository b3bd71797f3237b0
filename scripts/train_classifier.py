#!/usr/bin/env python
"""Thin entry point: same as `textrnn train-classifier ...` (see textrnn/cli.py)."""

import sys

from textrnn.cli import run

if __name__ == "__main__":
    run(["train-classifier", *sys.argv[1:]])

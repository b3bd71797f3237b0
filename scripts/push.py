#!/usr/bin/env python
"""Thin entry point: same as `textrnn push ...` (see textrnn/cli.py)."""

import sys

from textrnn.cli import run

if __name__ == "__main__":
    run(["push", *sys.argv[1:]])

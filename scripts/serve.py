#!/usr/bin/env python
"""Thin entry point: same as `textrnn serve ...` (see textrnn/cli.py)."""

import sys

from textrnn.cli import run

if __name__ == "__main__":
    run(["serve", *sys.argv[1:]])

#!/usr/bin/env python
"""Thin entry point: same as `textrnn generate ...` (see textrnn/cli.py)."""

import sys

from textrnn.cli import run

if __name__ == "__main__":
    run(["generate", *sys.argv[1:]])

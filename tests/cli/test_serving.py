"""The serving commands' flags: each server limit is a flag whose default is the server's."""

from __future__ import annotations

import dataclasses

from textrnn.cli import build_parser
from textrnn.cli.serving import SERVE_LIMITS
from textrnn.serving.server import Limits


def test_each_limit_is_a_flag_with_the_servers_default():
    args = build_parser().parse_args(["serve", "--checkpoint", "x"])
    defaults = {f.name: f.default for f in dataclasses.fields(Limits)}
    assert set(SERVE_LIMITS) <= set(defaults)
    for name in SERVE_LIMITS:
        assert getattr(args, name) == defaults[name], name
    changed = build_parser().parse_args(["serve", "--checkpoint", "x", "--max-texts", "7", "--batch-window-ms", "2"])
    assert changed.max_texts == 7 and changed.batch_window_ms == 2.0

"""Fault injection for the reliability tests. Unless ``TEXTRNN_FAULT`` is set, nothing here acts.

``TEXTRNN_FAULT`` holds comma-separated faults:

* ``save:N``: SIGKILL this process inside its Nth checkpoint write, after the files are
  written and before the rename.
* ``resave:N``: SIGKILL this process inside its Nth re-save of an existing checkpoint, between
  moving the old folder aside and moving the new one in.
* ``spike:N``: multiply the training loss by 1e4 at this process's Nth training step;
  ``spike:N+`` at every step from the Nth on.
* ``kill_rank:R:N``: SIGKILL rank R at its Nth training step, on the first attempt of a
  torchrun group only (``TORCHELASTIC_RESTART_COUNT`` 0 or unset), so a restarted group runs on.

Counts are per process (kept in the process's environment), so a step replayed after a
rollback is a new count.
"""

from __future__ import annotations

import os
import signal
from typing import Callable, Optional


def _specs(name: str) -> list[list[str]]:
    return [part.split(":")[1:] for part in os.environ.get("TEXTRNN_FAULT",
                                                           "").split(",") if part.split(":")[0] == name]


def _count(name: str) -> int:
    key = f"_TEXTRNN_FAULT_{name}"
    value = int(os.environ.get(key, "0")) + 1
    os.environ[key] = str(value)
    return value


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def save_point() -> None:
    """Inside a checkpoint write: ``save:N`` kills the process at the Nth."""
    specs = _specs("save")
    if specs and _count("save") == int(specs[0][0]):
        _kill()


def resave_point() -> None:
    """Inside a re-save of an existing checkpoint, between moving the old folder aside and the new one in:
    ``resave:N`` kills the process at the Nth."""
    specs = _specs("resave")
    if specs and _count("resave") == int(specs[0][0]):
        _kill()


def step_hook() -> Optional[Callable[[int], float]]:
    """The per-step fault, read once when training starts: None (nothing runs per step) unless
    ``TEXTRNN_FAULT`` holds a ``spike`` or ``kill_rank`` fault; else ``loss_factor``."""
    return loss_factor if _specs("spike") or _specs("kill_rank") else None


def loss_factor(rank: int) -> float:
    """At a training step: 1e4 where a ``spike`` is due (else 1); ``kill_rank`` kills its rank."""
    spikes, kills = _specs("spike"), _specs("kill_rank")
    step = _count("step")
    first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") in ("", "0")
    if any(int(r) == rank and int(n) == step and first_attempt for r, n in kills):
        _kill()
    due = any(step >= int(n[:-1]) if n.endswith("+") else step == int(n) for (n,) in spikes)
    return 1e4 if due else 1.0

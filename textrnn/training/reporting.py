"""What a run shows and writes as it goes: the progress bar, metrics.jsonl and the curves."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import torch

from ..core.errors import ConfigError
from .reporters import open_sink, require_reporters

LOG = logging.getLogger(__name__)

METRICS = "metrics.jsonl"


class MetricsLog:
    """``metrics.jsonl`` of a run: one JSON object per line, appended (rank 0 only writes).

    ``report_to`` names more places each record goes (``tensorboard``, ``wandb``, ``mlflow``:
    :mod:`textrnn.training.reporters`); ``params`` (the run's config) goes to those that record one.
    """

    def __init__(self, path: Path, enabled: bool = True, report_to: Sequence[str] = (),
                 params: Optional[dict] = None) -> None:
        require_reporters(report_to)  # a missing package is one line, on every rank, before any work
        self.path, self.enabled = Path(path), enabled
        self.sinks = [open_sink(name, self.path.parent, params or {}) for name in report_to if enabled]

    def write(self, record: dict) -> None:
        """Append one record to metrics.jsonl (and its other sinks), on rank 0."""
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            for sink in self.sinks:
                sink.write(record)

    def close(self) -> None:
        """Close the sinks (flush TensorBoard's files, finish the W&B and MLflow runs)."""
        for sink in self.sinks:
            sink.close()

    def forget_after(self, step: int) -> None:
        """On resume, drop lines of steps after the checkpoint: they are about to be redone."""
        if not self.enabled or not self.path.is_file():
            return
        lines = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        records = []
        for number, line in enumerate(lines, 1):
            try:
                records.append((line, json.loads(line)))
            except ValueError:
                if number < len(lines):  # only the last line can be torn by a crash or a full disk
                    raise ConfigError(f"{self.path} line {number} is not JSON; repair or delete that line") from None
                LOG.info(f"note: {self.path} had a torn last line (a crash or a full disk); dropped it")
        kept = [line for line, record in records if record.get("step", 0) <= step]
        if len(kept) != len(lines):
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            os.replace(tmp, self.path)




LOSS_WINDOW = 100  # recent steps whose mean loss is logged and guards against divergence


def loss_window(losses: list) -> torch.Tensor:
    """The recent losses as a fixed-size float64 tensor (NaN-padded), for a checkpoint's resume state."""
    window = torch.full((LOSS_WINDOW,), math.nan, dtype=torch.float64)
    window[: len(losses)] = torch.tensor(losses[-LOSS_WINDOW:], dtype=torch.float64)
    return window


def window_losses(state: Optional[torch.Tensor], rank: int) -> list:
    """The losses :func:`loss_window` saved for ``rank`` (none when the checkpoint predates them)."""
    return [] if state is None else [v for v in state[rank].tolist() if math.isfinite(v)]


class ProgressBar:
    """tqdm progress with live loss and throughput.

    With a time budget (``budget_s``: the seconds train.max_minutes leaves), the bar's total is the
    steps the budget allows at the rate so far, when fewer than planned: its ETA is then the budget's.
    """

    def __init__(self, total: int, initial: int, enabled: bool, budget_s: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from tqdm.auto import tqdm

        self.tqdm = tqdm(total=total, initial=initial, disable=not enabled, dynamic_ncols=True, mininterval=1.0,
                         file=sys.stderr, unit="step")
        self.losses: list[float] = []
        self.clock = clock
        self.tokens, self.started = 0, clock()
        self.planned, self.initial, self.budget_s, self.steps = total, initial, budget_s, 0

    def update(self, loss: float, tokens: int) -> None:
        """Count one step of ``tokens`` tokens at ``loss``."""
        if math.isfinite(loss):  # the running loss is what a divergence is measured against
            self.losses = (self.losses + [loss])[-LOSS_WINDOW:]
        self.tokens, self.steps = self.tokens + tokens, self.steps + 1
        if self.budget_s is not None:
            self.tqdm.total = self.budgeted_total()
        self.tqdm.update(1)
        if self.steps % 10 == 0:
            self.tqdm.set_postfix(loss=f"{self.mean_loss():.4f}", tok_s=f"{self.rate():,.0f}", refresh=False)

    def budgeted_total(self) -> int:
        """The planned steps, or the steps the time budget allows at the rate so far when fewer."""
        spent = self.clock() - self.started
        left = max(0.0, (self.budget_s or 0.0) - spent)
        return min(self.planned, self.initial + self.steps + int(left * self.steps / max(spent, 1e-9)))

    def rate(self) -> float:
        """Training tokens per second on this rank since the bar started."""
        return self.tokens / max(self.clock() - self.started, 1e-9)

    def mean_loss(self) -> float:
        """The mean loss of the recent steps."""
        return sum(self.losses) / max(1, len(self.losses))


@contextlib.contextmanager
def progress_bar(total: int, initial: int, enabled: bool, budget_s: Optional[float] = None) -> Iterator[ProgressBar]:
    """A :class:`ProgressBar` for the run, closed when the block ends."""
    bar = ProgressBar(total, initial, enabled, budget_s)
    try:
        yield bar
    finally:
        bar.tqdm.close()


def loss_label(valid: list) -> str:
    """The loss axis's label: a classifier's loss is per text, a language model's per token."""
    classifier = any(key in record for record in valid for key in ("accuracy", "macro_f1"))
    return "loss (cross-entropy per text, nats)" if classifier else "loss (nats/token)"


def plot_curves(out: Path) -> Optional[Path]:
    """training_curves.png from metrics.jsonl: train/validation loss and the validation metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train = [(r["step"], r["train_loss"]) for r in rows if r.get("split") == "train"]
    valid = [r for r in rows if r.get("split") == "validation"]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        ax_loss.plot(*zip(*train), label="train loss")
    ax_loss.plot([r["step"] for r in valid], [r["loss"] for r in valid], "o-", label="validation loss")
    ax_loss.set_xlabel("step"), ax_loss.set_ylabel(loss_label(valid)), ax_loss.legend()
    name = next((key for key in ("accuracy", "macro_f1") if valid and key in valid[0]), "perplexity")
    ax_metric.plot([r["step"] for r in valid], [r.get(name) for r in valid], "o-", color="C2")
    ax_metric.set_xlabel("step"), ax_metric.set_ylabel(f"validation {name}")
    fig.tight_layout()
    path = out / "training_curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

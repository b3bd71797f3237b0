"""``textrnn.lr_find()`` (``textrnn lr-find``, ``train.lr: find``): a learning-rate range test (Smith 2017; fastai's
``lr_find``).

A fresh model of the config trains for up to ``steps`` updates while the learning rate grows
exponentially from ``start_lr`` to ``end_lr``; the loss, smoothed, is recorded against it, and the
sweep stops once the loss passes 4 times its lowest (it has diverged)::

    lr:   1e-7 ......................................... 10    (one update each, a geometric series)
    loss: flat (too small to learn) -> falling -> lowest -> exploding

The suggestion is the rate where the smoothed loss falls fastest (the steepest negative slope
against log lr), the point fastai's ``steepest`` also picks: fast, still stable. Nothing is saved
but the plot (``lr_find.png`` in the run folder); the sweep's model is thrown away, so the run that
follows starts from the config's own initialization.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..core.config import ExperimentConfig
from ..core.errors import ConfigError, TrainingError
from .accumulation import accumulate, groups
from .optim import clip_gradients

LOG = logging.getLogger(__name__)

PLOT = "lr_find.png"


@dataclasses.dataclass
class LRFindResult:
    """The sweep: each update's learning rate and smoothed loss, the suggested rate, and the plot's path."""

    lrs: list[float]
    losses: list[float]
    suggested_lr: float
    plot: Optional[Path]


def lr_find_config(config: ExperimentConfig, raw: Any = None, device: Optional[str] = None, start_lr: float = 1e-7,
                   end_lr: float = 10.0, steps: int = 200) -> LRFindResult:
    """The range test on a resolved config and its in-memory data (``raw``); :func:`textrnn.lr_find` takes
    any config form and data in memory."""
    from .trainer import Trainer

    if not 0 < start_lr < end_lr or steps < 10:
        raise ConfigError(f"lr-find needs 0 < start_lr < end_lr and at least 10 steps; got {start_lr}, {end_lr}, "
                          f"{steps}")
    out = Path(config.train.output_dir)
    with tempfile.TemporaryDirectory(prefix="textrnn-lr-find-") as scratch:
        sweep = dataclasses.replace(config, train=dataclasses.replace(
            config.train, lr=start_lr, output_dir=scratch, report_to=[], progress=False, resume=None,
            max_steps=None, ema_decay=0.0))
        trainer = Trainer(sweep, None, device, raw=raw)
        lrs, losses = _sweep(trainer, start_lr, end_lr, steps)
    if len(lrs) < 5:
        raise TrainingError(f"the loss diverged within {len(lrs)} updates of lr-find; lower end_lr")
    suggested = steepest(lrs, losses)
    plot = _plot(out / PLOT, lrs, losses, suggested) if trainer.dist.is_main else None
    LOG.info(f"lr-find: {len(lrs)} updates from {lrs[0]:.2g} to {lrs[-1]:.2g}; suggested lr {suggested:.3g}"
             + (f" (plot: {plot})" if plot else ""))
    return LRFindResult(lrs, losses, suggested, plot)


def _sweep(trainer: Any, start_lr: float, end_lr: float, steps: int) -> tuple[list[float], list[float]]:
    """Up to ``steps`` updates at a growing rate (epochs repeat if the data runs out); (lrs, smoothed losses)."""
    t = trainer.train_config
    ratios = [group.get("initial_lr", group["lr"]) / start_lr  # layer_lr_decay's shares (before any warm-up)
              for group in trainer.optimizer.param_groups]
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    trainer.model.train()
    for epoch in range(1_000_000):
        trainer.task.new_epoch(epoch)
        for batches in groups(trainer.task.train_loader.iterate(0), t.accumulate_steps):
            lr = start_lr * (end_lr / start_lr) ** (len(lrs) / (steps - 1))
            for group, ratio in zip(trainer.optimizer.param_groups, ratios):
                group["lr"] = lr * ratio
            trainer.optimizer.zero_grad(set_to_none=True)
            loss, _ = accumulate(trainer.wrapped, trainer.task.step_loss, batches, contextlib.nullcontext)
            value = float(loss)
            if not math.isfinite(value):
                return lrs, losses
            if t.grad_clip:
                clip_gradients(trainer.model, t.grad_clip)
            trainer.optimizer.step()
            average = 0.98 * average + 0.02 * value  # smoothed, with the bias of a zero start corrected
            smoothed = average / (1 - 0.98 ** (len(lrs) + 1))
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            if len(lrs) >= steps or smoothed > 4 * best:
                return lrs, losses
    return lrs, losses


def steepest(lrs: list[float], losses: list[float]) -> float:
    """The rate where the smoothed loss falls fastest against log lr, before its lowest point."""
    lowest = int(np.argmin(losses))
    if lowest < 2:
        return lrs[lowest] / 10
    slopes = np.gradient(np.asarray(losses[: lowest + 1]), np.log(np.asarray(lrs[: lowest + 1])))
    return float(lrs[int(np.argmin(slopes))])


def _plot(path: Path, lrs: list[float], losses: list[float], suggested: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lrs, losses)
    ax.axvline(suggested, color="tab:red", linestyle="--", label=f"suggested {suggested:.2g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss (smoothed)", title="lr-find")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def with_found_lr(config: ExperimentConfig, raw: Any, device: Optional[str], resume: Optional[str]) -> ExperimentConfig:
    """``config`` with ``train.lr: find`` replaced by :func:`lr_find_config`'s suggestion (other rates as they
    are)."""
    if config.train.lr != "find":
        return config
    if resume:
        raise ConfigError("train.lr: find sweeps before a run starts; a resumed run keeps the rate it started with "
                          "(resume with --resume RUN_DIR alone: its config.yaml holds that rate)")
    found = lr_find_config(config, raw, device)
    return dataclasses.replace(config, train=dataclasses.replace(config.train, lr=found.suggested_lr))


"""Optimizer, learning-rate schedule, gradient clipping and the weight average."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Callable, Iterator, Optional

import torch


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW; biases, norms and embeddings get no weight decay."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if param.dim() >= 2 and "embedding" not in name else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, fused=device.type == "cuda")


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """How long a run trains and how often it evaluates, resolved from the config and the data."""

    max_epochs: int
    eval_every: int  # steps; 0: at the end of each epoch
    total_steps: int  # the learning-rate schedule's horizon

    @classmethod
    def resolve(cls, max_epochs: int, eval_every: int, steps_per_epoch: int, max_steps: Optional[int] = None,
                min_steps: Optional[int] = None) -> "TrainingPlan":
        """``max_epochs``, stretched to at least ``min_steps`` updates, and then evaluated every epoch.

        A config sized for a big dataset (SST-2: 4 epochs of 1,053 steps, evaluated every 500)
        gives a 3,000-sentence set 4 x 47 = 188 updates and not one evaluation before the end:
        undertrained, and no chance to stop early. With ``min_steps`` the small set trains for
        more epochs, and a stretched run whose epochs are shorter than ``eval_every`` is
        evaluated after every epoch, so the best checkpoint and early stopping
        (``train.patience``) see each one. A run that ``min_steps`` does not stretch trains and
        evaluates exactly as configured (a huge ``eval_every`` still means "not before the end").
        """
        steps_per_epoch = max(1, steps_per_epoch)
        epochs = max(max_epochs, math.ceil((min_steps or 0) / steps_per_epoch))
        every = min(eval_every, steps_per_epoch) if eval_every and epochs > max_epochs else eval_every
        return cls(epochs, every, max_steps or epochs * steps_per_epoch)


def make_scheduler(optimizer, warmup: int, total: int, min_ratio: float, clock: Optional[Callable[[], float]] = None,
                   scale: Optional[Callable[[], float]] = None):
    """Linear warmup to the peak, then cosine decay to ``min_ratio`` of it at ``total`` steps.

    With ``clock`` (the used fraction of a wall-clock budget), the decay follows whichever of
    steps and time runs out first, so a time-limited run still ends at the low learning rate.
    ``scale()`` multiplies the whole schedule (the trainer lowers it after a divergence).
    """

    def factor(step: int) -> float:
        factor = 1.0 if scale is None else scale()
        if step < warmup:
            return factor * (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if clock is not None:
            progress = max(progress, min(1.0, clock()))
        return factor * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def clip_gradients(model: torch.nn.Module, max_norm: float) -> None:
    """Clip the gradient norm to ``max_norm``, each of ``model.clip_groups()`` on its own.

    A plain model is one group. An ensemble's loss is the mean of its K members' losses, so
    each member's gradient is 1/K of what it would be alone: clipping it to max_norm / K is
    clipping the lone member to max_norm (Adam does not see the common 1/K, up to its
    epsilon). Members train as K lone runs on the same batches would.
    """
    groups = model.clip_groups()
    for params in groups:
        torch.nn.utils.clip_grad_norm_(params, max_norm / len(groups))


class WeightAverage:
    """An exponential moving average of the parameters (Polyak averaging).

    Evaluation and checkpoints use the average, which is smoother than the last step's
    weights; training continues from the raw weights, which the trainer state keeps for an
    exact resume. The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` so early averages
    are not dominated by the random initialization.
    """

    def __init__(self, model: torch.nn.Module, decay: float, updates: int = 0) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay, self.updates = decay, updates
        self.stash: Optional[list] = None

    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - decay)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Inside, the model holds the averaged weights; the raw ones are in ``stash``."""
        with torch.no_grad():
            self.stash = [p.detach().clone() for p in self.params]
            for p, s in zip(self.params, self.shadow):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, raw in zip(self.params, self.stash):
                    p.copy_(raw)
            self.stash = None

    def restore_raw(self, raw: list) -> None:
        """Put the raw (not averaged) weights of a checkpoint back for training to continue from."""
        with torch.no_grad():
            for p, tensor in zip(self.params, raw):
                p.copy_(tensor)

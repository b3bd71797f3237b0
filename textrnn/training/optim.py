"""Optimizer, learning-rate schedule, gradient clipping and the weight average."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from typing import Any, Callable, Iterator, Optional, Union

import torch

from ..core.errors import ConfigError
from ..models.base import TextModel
from ..models.vectors import embedding_frozen

_ENCODER_LAYER = re.compile(r"encoder\.(?:weight|bias)_(?:ih|hh)_l(\d+)")


def layer_group(name: str, num_layers: int) -> int:
    """The layer group of a parameter, bottom to top: 0 the embedding, 1..L the encoder layers
    (both directions), L + 1 everything above them (pooling, output layers). Ensemble members
    share the groups: member k's layer 0 is in group 1 with the others'."""
    if ".embedding." in f".{name}":
        return 0
    match = _ENCODER_LAYER.search(name)
    return int(match.group(1)) + 1 if match else num_layers + 1


def optimizer_for(model: TextModel, train: Any, device: torch.device) -> torch.optim.Optimizer:
    """:func:`make_optimizer` with the ``train:`` section's settings (``lr: find`` must have been swept first,
    as ``textrnn.train`` does: :func:`textrnn.training.lr_find.with_found_lr`)."""
    if not isinstance(train.lr, float):
        raise ConfigError("train.lr is find, which textrnn.train, textrnn.distill and the train commands sweep "
                          "first; a Trainer built directly needs a number")
    return make_optimizer(model, train.lr, train.weight_decay, device, train.layer_lr_decay, train.optimizer)


def make_optimizer(model: TextModel, lr: float, weight_decay: float, device: torch.device,
                   layer_lr_decay: float = 1.0, name: str = "adamw") -> torch.optim.Optimizer:
    """AdamW, or plain SGD for ``name`` sgd and ntasgd (whose averaging is :func:`after_validation`'s);
    biases, norms and embeddings get no weight decay.

    ``layer_lr_decay`` d > 1 gives each layer group its own learning rate, the top one ``lr``
    and each group below it d times less (ULMFiT's discriminative fine-tuning, d = 2.6 there):
    layers copied from a language model move less than the new head.
    """
    top = model.config.num_layers + 1
    groups: dict = {}
    for param_name, param in model.named_parameters():
        group = layer_group(param_name, model.config.num_layers) if layer_lr_decay != 1.0 else top
        decays = param.dim() >= 2 and "embedding" not in param_name
        groups.setdefault((group, not decays), []).append(param)
    param_groups = [{"params": params, "weight_decay": weight_decay if not no_decay else 0.0,
                     "lr": lr / layer_lr_decay ** (top - group)} for (group, no_decay),
                    params in sorted(groups.items())]
    if name in ("sgd", "ntasgd"):
        return torch.optim.SGD(param_groups, lr=lr)
    return torch.optim.AdamW(param_groups, lr=lr, fused=device.type == "cuda")


def after_validation(t: Any, progress: Any, better: bool, greater_is_better: bool) -> list[str]:
    """What a validation result changes, as events: ``anneal`` (no gain and ``train.plateau_factor``
    set: the learning rate is multiplied by it, pytorch/examples' divide-by-4) and ``average``
    (``ntasgd``: validation is worse than the best before the last ``train.nonmono`` evaluations,
    AWD-LSTM's non-monotone trigger; from now on the weights are averaged)."""
    events = []
    if not better and t.plateau_factor:
        progress.lr_scale *= t.plateau_factor
        events.append("anneal")
    *past, now = progress.history
    if t.optimizer == "ntasgd" and not progress.averaging and len(past) > t.nonmono:
        best_before = max(past[:-t.nonmono]) if greater_is_better else min(past[:-t.nonmono])
        if (now < best_before) if greater_is_better else (now > best_before):
            progress.averaging = True
            events.append("average")
    return events


def group_parameters(model: TextModel, unfreeze: Union[None, str, list] = None) -> list:
    """The parameters of each layer group, bottom to top (see :func:`layer_group`); a one-line error when
    ``unfreeze`` lists more groups than the model has."""
    groups: list = [[] for _ in range(model.config.num_layers + 2)]
    for name, param in model.named_parameters():
        groups[layer_group(name, model.config.num_layers)].append(param)
    if isinstance(unfreeze, list) and len(unfreeze) > len(groups):
        raise ConfigError(
            f"train.unfreeze lists {len(unfreeze)} epochs but this model has {len(groups)} layer groups "
            "(head, each encoder layer, embedding)"
        )
    return groups


def frozen_groups(unfreeze: Union[None, str, list], epoch: int, num_groups: int) -> set:
    """Layer groups (0 = bottom) that do not train in ``epoch``: ``unfreeze`` lists, for each group from
    the top, the epoch it starts training in; ``gradual`` is ULMFiT's one more group each epoch."""
    if unfreeze is None:
        return set()
    starts = list(range(num_groups)) if unfreeze == "gradual" else list(unfreeze)
    return {num_groups - 1 - k for k, start in enumerate(starts) if epoch < start}


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


def make_scheduler(optimizer: Any, warmup: int, total: int, min_ratio: float,
                   clock: Optional[Callable[[], float]] = None, scale: Optional[Callable[[], float]] = None) -> Any:
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


def clip_gradients(model: TextModel, max_norm: float) -> None:
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
    """An exponential moving average of the parameters, or with ``decay=None`` the plain mean of
    every step's weights since it began (Polyak averaging, NT-ASGD's average).

    Evaluation and checkpoints use the average, which is smoother than the last step's
    weights; training continues from the raw weights, which the trainer state keeps for an
    exact resume. The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` so early averages
    are not dominated by the random initialization.
    """

    def __init__(self, model: TextModel, decay: Optional[float], updates: int = 0) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay, self.updates = decay, updates
        self.stash: Optional[list] = None

    def update(self) -> None:
        """Move the average toward the current weights (after an optimizer step)."""
        self.updates += 1
        n = self.updates
        decay = n / (n + 1) if self.decay is None else min(self.decay, (1 + n) / (10 + n))  # mean of n + 1 weights
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


def drop_frozen_gradients(layers: list, unfreeze: Any, freeze_embedding: Any, epoch: int) -> None:
    """Frozen layer groups get no update and no optimizer state: their gradients are dropped before the step.

    ``model.freeze_embedding`` freezes group 0, the embedding (of every ensemble member).
    """
    frozen = frozen_groups(unfreeze, epoch, len(layers))
    if embedding_frozen(freeze_embedding, epoch):
        frozen.add(0)
    for group in frozen:
        for param in layers[group]:
            param.grad = None

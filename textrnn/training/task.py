"""The contract between the trainer and a task (:class:`Task`), and what the tasks share.

A task turns an :class:`~textrnn.core.config.ExperimentConfig` into a tokenizer, a model config
(a new one, with what the data decides filled in), a training loader, ``step_loss`` and an
``evaluate(model)`` that returns a dict of metrics, reduced across ranks. Each task is one
module (:mod:`textrnn.training.classification_task`, :mod:`textrnn.training.language_model_task`);
:mod:`textrnn.training.registry` maps task names to them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, NamedTuple, Optional, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from ..core.config import ExperimentConfig, RNNConfig
from ..core.distributed import Dist, gather_objects
from ..data.preparation import configured_tokenizer
from ..data.streaming import StreamLoader
from ..data.tokenization import TextTokenizer
from ..models.base import TextModel
from ..models.encoder import State
from ..models.hub import TOKENIZER_FILE
from ..models.transfer import lm_tokenizer

Carry = Optional[State]  # what one step hands the next: a language model's state, None for a classifier


class StepOutput(NamedTuple):
    """What one training step of a task returns."""

    loss: Tensor  # scalar, what backward runs on
    tokens: int  # real (non-pad) tokens in the batch, for the tokens/s figure


class TrainLoader(Protocol):
    """What the trainer asks of a task's training loader."""

    def __len__(self) -> int: ...

    def iterate(self, start: int = 0) -> Iterator[dict]:
        """The batches of an epoch from the ``start``-th on."""
        ...


@runtime_checkable
class Task(Protocol):
    """What the trainer asks of a task. A task class is built as ``Task(config, dist, device, workdir,
    checkpoint=None, raw=None)`` (``checkpoint``: the folder a resumed run continues from, whose
    tokenizer and labels it keeps; ``raw``: a ``DatasetDict`` already in memory, read instead of
    ``config.data.dataset``) and has a static ``check_experiment(config)`` that raises ConfigError
    before any data is read. :mod:`textrnn.training.registry` maps task names to task classes.
    """

    metric: str  # the validation metric that picks the best checkpoint
    greater_is_better: bool
    tokenizer: TextTokenizer
    data_note: str  # one line for the log: where the prepared data is, found or built, and what it holds

    @property
    def eval_note(self) -> Optional[str]:
        """One line for the log when evaluations read part of the validation split (``train.eval_tokens``)."""
        ...

    @property
    def train_loader(self) -> TrainLoader:
        """The training batches of one epoch; read-only here, since each task has its own loader class."""
        ...

    def model_config(self) -> RNNConfig:
        """The experiment's model section with what the data decides filled in (a new config)."""
        ...

    def new_epoch(self, epoch: int) -> None:
        """Called before each epoch (a sampler reshuffles)."""
        ...

    def token_counts(self) -> np.ndarray:
        """How often each id occurs in the training data, (V,) int64."""
        ...

    def step_loss(self, model: torch.nn.Module, batch: dict) -> StepOutput:
        """The loss of one training batch (the model may be DDP-wrapped; the trainer holds the autocast)."""
        ...

    def state_dict(self) -> dict:
        """What an exact resume needs of the task, beside the model and optimizer: a language model's carried
        state, a stream's position; tensors stacked over the ranks (every rank joins)."""
        ...

    def load_state_dict(self, state: dict, rank: int) -> None:
        """Restore this rank's part of :meth:`state_dict` (a checkpoint of the same world size)."""
        ...

    def reset_state(self) -> None:
        """Forget what one batch hands the next (a language model's state): at an epoch's end and on a rollback."""
        ...

    def evaluate(self, model: TextModel) -> dict:
        """Validation metrics of the task's own kind of model, reduced across ranks (a distributed evaluation equals
        a single-process one)."""
        ...


class TaskClass(Protocol):
    """What the registry holds for a task: a class that builds a :class:`Task` and checks configs first."""

    greater_is_better: bool  # of the validation metric, known before any data is read (textrnn tune's direction)

    def __call__(self, config: ExperimentConfig, dist: Dist, device: torch.device, workdir: Path,
                 checkpoint: Optional[Path] = None, raw: Any = None) -> Task: ...

    def check_experiment(self, config: ExperimentConfig) -> None:
        """One-line errors for an experiment config this task cannot train, before any data is read."""
        ...

    def prepare(self, config: ExperimentConfig, checkpoint: Optional[Path] = None, raw: Any = None) -> Any:
        """The task's data, tokenized and encoded, from the prepared-data cache (built there if missing)."""
        ...


def loader_state(loader: Any, dist: Dist) -> dict:
    """A streaming loader's position on every rank (``loader_states``); nothing for a loader of prepared data,
    which the epoch and batch index place."""
    if not isinstance(loader, StreamLoader):
        return {}
    return {"loader_states": gather_objects(loader.state_dict(), dist)}


def load_loader_state(loader: Any, state: dict, rank: int) -> None:
    """Put a streaming loader back where ``state``'s ``loader_states`` says this rank's part of it was."""
    if "loader_states" in state:
        loader.load_state_dict(state["loader_states"][rank])


def to_device(batch: dict, device: torch.device) -> dict:
    """Move a batch to ``device``; lengths stay on the CPU (pack_padded_sequence wants them there)."""
    non_blocking = device.type == "cuda"
    return {k: v if k == "lengths" else v.to(device, non_blocking=non_blocking) for k, v in batch.items()}


def given_tokenizer(config: ExperimentConfig, checkpoint: Optional[Path]) -> Optional[TextTokenizer]:
    """The tokenizer a run must keep: its checkpoint's, its language model's (``model.init_from``), or
    ``tokenizer.from_file``; None when it trains its own."""
    if checkpoint:
        return TextTokenizer.from_file(checkpoint / TOKENIZER_FILE)
    if config.model.init_from:
        return lm_tokenizer(str(config.model.init_from))
    return configured_tokenizer(config)

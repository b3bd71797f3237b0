"""One table from a task name to its classes: the only place the task string is dispatched on.

Each :class:`TaskEntry` names the model class (whose ``build`` makes the model a config
describes), the task class (data, loss, evaluation) and the command that trains it. Adding a
task is one entry here plus its two classes (transformers' Auto mappings, keyed on
``config.task``)::

    config.json {"task": "classification", ...}
        -> TASKS["classification"].model_class.build(config)  -> RNNClassifier or ClassifierEnsemble
        -> TASKS["classification"].task_class(experiment, ...) -> ClassificationTask
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np
import torch

from .checkpoint import locate, read_config
from .config import ExperimentConfig, RNNConfig
from .errors import ConfigError
from .model import RNNClassifier, RNNLanguageModel
from .classification import ClassificationTask
from .tasks import LanguageModelTask
from .tokenization import TextTokenizer
from .transfer import copy_from_language_model
from .vectors import embeddings_of, load_pretrained_vectors


@dataclass(frozen=True)
class TaskEntry:
    name: str
    model_class: type
    task_class: type
    command: str  # the `textrnn` subcommand that trains it
    description: str  # "a classifier", for messages


TASKS = {
    "classification": TaskEntry("classification", RNNClassifier, ClassificationTask, RNNClassifier.train_command,
                                "a classifier"),
    "language_model": TaskEntry("language_model", RNNLanguageModel, LanguageModelTask, RNNLanguageModel.train_command,
                                "a language model"),
}


def get_task(name: str) -> TaskEntry:
    if name not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {name!r}")
    return TASKS[name]


def check_experiment(config: ExperimentConfig) -> TaskEntry:
    """Every check of an experiment config, the task's and its model's, before any data is read."""
    entry = get_task(config.task)
    entry.task_class.check_experiment(config)
    entry.model_class.check_config(config.model_config().validate())
    return entry


def build_model(config: RNNConfig, tokenizer: Optional[TextTokenizer] = None,
                token_counts: Optional[Callable[[], np.ndarray]] = None,
                log: Optional[Callable[[str], None]] = None) -> torch.nn.Module:
    """The model ``config`` describes, whatever its task, started from what the config names.

    Fresh weights, then ``pretrained_vectors`` copied into the embedding (``token_counts()``,
    the training ids' counts, only measures their coverage) and ``init_from`` /
    ``init_from_backward`` language models copied into the encoder. A saved model loads with
    ``load_model`` instead: its weights already hold what these gave it. ``log`` gets notes.
    """
    model = get_task(config.task).model_class.build(config, tokenizer)
    if config.pretrained_vectors:
        counts = token_counts() if token_counts is not None else None
        coverage = load_pretrained_vectors(embeddings_of(model), config.pretrained_vectors, model.require_tokenizer(),
                                           counts, config.pad_id)
        if log is not None:
            log(f"note: {coverage.line()}")
    for direction, source in enumerate([config.init_from, config.init_from_backward]):
        if source:
            copy_from_language_model(model, load_model(source), direction)
    return model


def load_model(path: Union[str, os.PathLike], map_location: Union[str, torch.device] = "cpu"):
    """Load whichever model a checkpoint holds (AutoModel): folder, run folder or Hub id."""
    folder = locate(path)
    return get_task(read_config(folder).task).model_class.from_pretrained(folder, map_location)

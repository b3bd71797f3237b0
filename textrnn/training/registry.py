"""One table from a task name to what trains it: the model class, the task class and the command.

Adding a task is one entry here and one in :data:`textrnn.models.registry.MODELS`, plus its
two classes::

    experiment config {"task": "classification", ...}
        -> TASKS["classification"].task_class(experiment, ...) -> ClassificationTask (a Task)
        -> TASKS["classification"].model_class                  -> RNNClassifier
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.config import ExperimentConfig
from ..core.errors import ConfigError
from ..models.registry import MODELS
from .classification_task import ClassificationTask
from .language_model_task import LanguageModelTask
from .task import Task


@dataclass(frozen=True)
class TaskEntry:
    name: str
    model_class: type
    task_class: type[Task]
    command: str  # the `textrnn` subcommand that trains it
    description: str  # "a classifier", for messages


TASKS = {name: TaskEntry(name, MODELS[name], task_class, MODELS[name].train_command, description) for name, task_class,
         description in (("classification", ClassificationTask, "a classifier"), ("language_model", LanguageModelTask,
                                                                                  "a language model"))}


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

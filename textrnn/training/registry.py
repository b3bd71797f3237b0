"""One table from a task name to what trains it: the model class, the task class and the command.

Adding a task is one entry here and one in :data:`textrnn.MODELS`, plus its
two classes::

    experiment config {"task": "classification", ...}
        -> TASKS["classification"].task_class(experiment, ...) -> ClassificationTask (a Task)
        -> TASKS["classification"].model_class                  -> RNNClassifier
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.config import ExperimentConfig
from ..core.schema import choice_error
from ..models.base import TextModel
from ..models.registry import MODELS
from .classification_task import ClassificationTask
from .language_model_task import LanguageModelTask
from .task import TaskClass


@dataclass(frozen=True)
class TaskEntry:
    """What trains one task: its model class, task class, command and a name for messages."""
    name: str
    model_class: type[TextModel]
    task_class: TaskClass
    command: str  # the `textrnn` subcommand that trains it
    description: str  # "a classifier", for messages


def _entry(name: str, task_class: TaskClass, description: str) -> TaskEntry:
    return TaskEntry(name, MODELS[name], task_class, MODELS[name].train_command, description)


TASKS = {"classification": _entry("classification", ClassificationTask, "a classifier"),
         "language_model": _entry("language_model", LanguageModelTask, "a language model")}


def get_task(name: str) -> TaskEntry:
    """The entry of a task name, or a one-line error naming the tasks."""
    if name not in TASKS:
        raise choice_error("task", TASKS, name)
    return TASKS[name]


def check_experiment(config: ExperimentConfig) -> TaskEntry:
    """Every check of an experiment config, the task's and its model's, before any data is read."""
    entry = get_task(config.task)
    entry.task_class.check_experiment(config)
    entry.model_class.check_config(config.model_config().validate())
    return entry

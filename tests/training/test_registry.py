"""The training registry: a task's rules are checked before data is read; each entry pairs a task class with
its model class."""

from pathlib import Path

import pytest

from textrnn import ConfigError, load_config
from textrnn.training.registry import check_experiment, get_task

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_task_rules_are_checked_before_any_data_is_read():
    with pytest.raises(ConfigError, match="unidirectional"):
        check_experiment(load_config(None, ["task=language_model", "model.bidirectional=true"]))
    with pytest.raises(ConfigError, match="train.label_smoothing applies to classifiers only"):
        check_experiment(load_config(None, ["task=language_model", "train.label_smoothing=0.1"]))
    with pytest.raises(ConfigError, match="train.lm_loss_weight needs model.num_layers=1 when bidirectional"):
        check_experiment(load_config(None, ["model.bidirectional=true", "model.num_layers=2",
                                            "train.lm_loss_weight=0.1"]))
    with pytest.raises(ConfigError, match="task must be one of classification, language_model"):
        check_experiment(load_config(None, ["task=translation"]))


def test_each_task_entry_pairs_a_task_class_with_the_model_class_of_the_same_name():
    from textrnn import MODELS, TASKS, Task

    assert set(TASKS) == set(MODELS)
    for name, entry in TASKS.items():
        assert entry.name == name and entry.model_class is MODELS[name]
        assert entry.command == entry.model_class.train_command and entry.command.startswith("train-")
        assert all(callable(getattr(entry.task_class, member, None)) for member in ("check_experiment", "model_config",
                                                                                     "new_epoch", "token_counts",
                                                                                     "step_loss", "evaluate"))
        assert Task in type.mro(Task)  # the protocol the trainer types its task with
    assert get_task("language_model").description == "a language model"

"""The configs: every shipped one loads, bad keys and values are one-line errors, and the allowed values are
the implemented ones."""

from pathlib import Path

import pytest

from textrnn import ConfigError, ExperimentConfig, RNNEncoder, load_config
from textrnn.training.registry import check_experiment, get_task

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[2] / "configs").glob("*.yaml")
                 if not p.name.endswith(".tune.yaml"))  # a search space beside its config (textrnn tune), not a config


def test_there_are_shipped_configs():
    names = {p.name for p in CONFIGS}
    assert {"sst2_bilstm.yaml", "imdb_bilstm.yaml", "char_shakespeare.yaml", "debug.yaml", "demo_char.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_opens_with_its_launch_command(path):
    config = load_config(str(path))
    assert isinstance(config, ExperimentConfig)
    command = get_task(config.task).command
    check_experiment(config)
    lines = path.read_text().splitlines()
    if config.distill is not None:  # a teacher to make (or name) first, then the distill command
        assert lines[0].startswith("# Launch: python benchmarks/finetune_teacher.py ")
        assert f"--out {config.distill['teacher']}" in lines[0]
        command, lines = f"distill --teacher {config.distill['teacher']}", lines[1:]
    assert lines[0] == f"# Launch: textrnn {command} --config configs/{path.name}"
    for key in ("dataset", "text_column"):
        assert getattr(config.data, key)
    assert config.train.output_dir and config.train.max_epochs >= 1


@pytest.mark.parametrize("override,match", [
    ("train.lrr=0.1", r"unknown config key 'train.lrr'; did you mean 'train.lr'\?"),
    ("model.hiden_size=3", r"did you mean 'model.hidden_size'"),
    ("trian.lr=0.1", r"did you mean 'train'"),
    ("model.hidden_size=-1", "model.hidden_size must be a positive integer"),
    ("model.dropout=1.0", r"model.dropout must be in \[0, 1\)"),
    ("model.weight_dropout=-0.1", r"model.weight_dropout must be in \[0, 1\)"),
    ("model.hidden_size=abc", "model.hidden_size must be an integer"),
    ("data.batch_size=0", "data.batch_size must be a positive integer"),
    ("model.cell=transformer", "model.cell must be one of lstm, gru, rnn"),
    ("tokenizer.kind=sentencepiece", "tokenizer.kind must be one of char, word, bpe, got 'sentencepiece'"),
    ("train.optimizer=adam", "train.optimizer must be one of adamw, sgd, ntasgd, got 'adam'"),
    ("train.resume=always", "train.resume must be one of auto, got 'always'"),
    ("train.on_divergence=ignore", "train.on_divergence must be one of rollback, stop, got 'ignore'"),
    ("model.cell=minrgu", r"model.cell must be one of .*, got 'minrgu'; did you mean 'mingru'\?"),
    ("train.optimizer=adamW", r"got 'adamW'; did you mean 'adamw'\?"),
    ("train.lr", "must look like key=value"),
    ("tokenizer.min_freq=often", "tokenizer.min_freq must be an integer or auto, got 'often'"),
    ("tokenizer.min_freq=0", "tokenizer.min_freq must be a positive integer or auto"),
    ("train.min_steps=0", r"train.min_steps must be positive \(or null\)"),
])
def test_bad_keys_and_values_are_one_line_errors(override, match):
    with pytest.raises(ConfigError, match=match) as info:
        load_config(None, [override])
    assert "\n" not in str(info.value)


def test_the_experiment_config_is_not_changed_by_the_data(tmp_path):
    import torch

    from textrnn.core.distributed import Dist
    from textrnn.data.loading import write_tiny_sentiment
    from textrnn.training.classification_task import ClassificationTask

    data = write_tiny_sentiment(tmp_path / "d")
    config = load_config(None, [f"data.dataset={data}", "data.text_column=sentence", "train.lm_loss_weight=0.1"])
    before = repr(config)
    task = ClassificationTask(config, Dist(), torch.device("cpu"), tmp_path / "run")
    model_config = task.model_config()
    assert repr(config) == before  # a new model config was returned, nothing filled in place
    assert model_config.vocab_size == task.tokenizer.vocab_size and model_config.label_names == ["neg", "pos"]
    assert model_config.aux_lm_head and not config.model.aux_lm_head and config.model.vocab_size == 0


def test_the_allowed_values_config_owns_are_the_ones_implemented():
    from textrnn.core import config
    from textrnn.data.labels import MULTI, SINGLE
    from textrnn.models.cells import KERNELS
    from textrnn.models.modules import POOLINGS
    from textrnn.models.parallel import PARALLEL_CELLS
    from textrnn.training.reporters import SINKS

    assert set(config.CELLS) == set(KERNELS) | set(PARALLEL_CELLS)
    assert set(config.POOLINGS) == set(POOLINGS)
    assert set(config.PROBLEM_TYPES) == {SINGLE, MULTI}
    assert set(config.REPORT_TO) == set(SINKS)
    from textrnn import MODELS, TASKS

    assert tuple(MODELS) == tuple(TASKS) == config.TASK_NAMES

    for strategy in config.STRATEGIES:  # each builds an encoder; anything else is refused
        RNNEncoder(4, 4, strategy=strategy)
    with pytest.raises(ValueError, match="strategy"):
        RNNEncoder(4, 4, strategy="sideways")

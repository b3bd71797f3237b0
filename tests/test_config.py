from pathlib import Path

import pytest

from textrnn import ConfigError, ExperimentConfig, load_config
from textrnn.config import parse_overrides

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_shipped_configs():
    names = {p.name for p in CONFIGS}
    assert {"sst2_bilstm.yaml", "imdb_bilstm.yaml", "char_shakespeare.yaml", "debug.yaml", "demo_char.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_opens_with_its_launch_command(path):
    config = load_config(str(path))
    assert isinstance(config, ExperimentConfig)
    command = "train-classifier" if config.task == "classification" else "train-generator"
    first = path.read_text().splitlines()[0]
    assert first == f"# Launch: textrnn {command} --config configs/{path.name}"
    for key in ("dataset", "text_column"):
        assert getattr(config.data, key)
    assert config.train.output_dir and config.train.max_epochs >= 1


def test_dotted_overrides_parse_yaml_values():
    assert parse_overrides(["train.lr=1e-3", "model.bidirectional=true", "data.max_length=null", "a.b.c=x"]) == {
        "train": {"lr": 0.001}, "model": {"bidirectional": True}, "data": {"max_length": None}, "a": {"b": {"c": "x"}}}
    config = load_config(str(CONFIGS[0]), ["train.lr=0.5", "model.hidden_size=7"])
    assert config.train.lr == 0.5 and config.model.hidden_size == 7


@pytest.mark.parametrize("override,match", [
    ("train.lrr=0.1", r"unknown config key 'train.lrr'; did you mean 'train.lr'\?"),
    ("model.hiden_size=3", r"did you mean 'model.hidden_size'"),
    ("trian.lr=0.1", r"did you mean 'train'"),
    ("model.hidden_size=-1", "model.hidden_size must be a positive integer"),
    ("model.dropout=1.0", r"model.dropout must be in \[0, 1\)"),
    ("model.weight_dropout=-0.1", r"model.weight_dropout must be in \[0, 1\)"),
    ("model.hidden_size=abc", "model.hidden_size must be an integer"),
    ("data.batch_size=0", "data.batch_size must be a positive integer"),
    ("model.cell=transformer", "model.cell must be lstm, gru or rnn"),
    ("train.lr", "must look like key=value"),
])
def test_bad_keys_and_values_are_one_line_errors(override, match):
    with pytest.raises(ConfigError, match=match) as info:
        load_config(None, [override])
    assert "\n" not in str(info.value)


def test_task_mismatch_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="use the other train command"):
        load_config(str(Path(CONFIGS[0]).parent / "sst2_bilstm.yaml"), task="language_model")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))


def test_language_model_must_be_unidirectional():
    with pytest.raises(ConfigError, match="unidirectional"):
        load_config(None, ["task=language_model", "model.bidirectional=true"])

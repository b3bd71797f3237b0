"""Configs from YAML, overrides and dicts, and the help of every key (textrnn.core.config_files)."""

from pathlib import Path

import pytest

from textrnn import ConfigError, ExperimentConfig, load_config
from textrnn.core.config_files import parse_overrides

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_dotted_overrides_parse_yaml_values():
    assert parse_overrides(["train.lr=1e-3", "model.bidirectional=true", "data.max_length=null", "a.b.c=x"]) == {
        "train": {"lr": 0.001}, "model": {"bidirectional": True}, "data": {"max_length": None}, "a": {"b": {"c": "x"}}}
    config = load_config(str(CONFIGS[0]), ["train.lr=0.5", "model.hidden_size=7"])
    assert config.train.lr == 0.5 and config.model.hidden_size == 7


def test_task_mismatch_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="use the other train command"):
        load_config(str(Path(CONFIGS[0]).parent / "sst2_bilstm.yaml"), task="language_model")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))


@pytest.mark.parametrize("override,new", [("model.label_smoothing=0.1", "train.label_smoothing"),
                                          ("model.lm_loss_weight=0.1", "train.lm_loss_weight"),
                                          ("model.tie_projection=true", "model.tie_weights")])
def test_keys_that_moved_name_their_new_place(override, new):
    with pytest.raises(ConfigError, match=new) as info:
        load_config(None, [override])
    assert "\n" not in str(info.value)


def test_a_misspelled_task_is_named_not_sent_to_the_other_command():
    with pytest.raises(ConfigError, match="task must be one of classification, language_model, got 'clasification'; "
                       "did you mean 'classification'"):
        load_config(None, ["task=clasification"], task="classification")


def test_every_config_key_has_help_for_the_reference_page():
    import dataclasses

    from textrnn.core.config import DataConfig, RNNConfig, TokenizerConfig, TrainConfig
    from textrnn.core.config_files import field_help

    for cls in (ExperimentConfig, DataConfig, TokenizerConfig, RNNConfig, TrainConfig):
        helps = field_help(cls)
        assert set(helps) == {f.name for f in dataclasses.fields(cls)}, cls.__name__
        assert all(helps.values()), [name for name, text in helps.items() if not text]
    assert field_help(TrainConfig)["lr"] == "the peak learning rate, or find: lr-find's suggestion, swept first"
    assert field_help(DataConfig)["unlabeled"].startswith("language model: more training text")  # a comment above

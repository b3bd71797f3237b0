"""The model table (textrnn.models.registry): a task name to its class, build_model and load_model."""

import pytest
import torch

from textrnn import (
    MODELS,
    ClassifierEnsemble,
    ConfigError,
    RNNConfig,
    RNNLanguageModel,
    TextTokenizer,
    build_model,
    load_model,
)
from textrnn.models.registry import model_class

from ..helpers import TEXT


def test_each_task_name_maps_to_the_class_that_says_it_is_that_task():
    assert set(MODELS) == {"classification", "language_model"}
    for name, cls in MODELS.items():
        assert cls.task == name and model_class(name) is cls
    with pytest.raises(ConfigError, match="task must be one of classification, language_model, got 'clasification'"):
        model_class("clasification")


def test_build_model_picks_the_class_and_an_ensemble_from_the_config():
    tok = TextTokenizer.train([TEXT], "char")
    lm = build_model(RNNConfig(task="language_model", vocab_size=tok.vocab_size, hidden_size=8), tok)
    assert isinstance(lm, RNNLanguageModel)
    ensemble = build_model(RNNConfig(vocab_size=tok.vocab_size, hidden_size=8, ensemble_size=2), tok)
    assert isinstance(ensemble, ClassifierEnsemble) and len(ensemble.members) == 2


def test_build_model_starts_from_the_vectors_and_language_model_the_config_names(tmp_path, logged):
    tok = TextTokenizer.train([TEXT], "word")
    word = next(t for t in tok.vocab.get_itos() if t.isalpha())
    (tmp_path / "v.vec").write_text(f"1 4\n{word} 1 2 3 4\n", encoding="utf-8")
    lm = build_model(RNNConfig(task="language_model", vocab_size=tok.vocab_size, embedding_dim=4, hidden_size=6), tok)
    lm.save_pretrained(tmp_path / "lm")
    config = RNNConfig(vocab_size=tok.vocab_size, embedding_dim=4, hidden_size=6, tokenizer_kind="word",
                       pretrained_vectors=str(tmp_path / "v.vec"))
    with_vectors = build_model(config, tok)
    row = with_vectors.backbone.embedding.weight[tok.vocab.get_stoi()[word]]
    assert row.tolist() == [1.0, 2.0, 3.0, 4.0] and any("1 of" in line for line in logged)
    from_lm = build_model(RNNConfig(**{**config.to_dict(), "pretrained_vectors": None,
                                       "init_from": str(tmp_path / "lm")}), tok)
    assert torch.equal(from_lm.backbone.encoder.weight_hh_l0, lm.backbone.encoder.weight_hh_l0)
    assert torch.equal(load_model(tmp_path / "lm").backbone.embedding.weight, lm.backbone.embedding.weight)

"""Tiny models shared by the model, modules and generation tests."""

from __future__ import annotations

import torch

from textrnn import RNNClassifier, RNNConfig, RNNLanguageModel, TextTokenizer

TEXT = "the quick brown fox jumps over the lazy dog.\nA stitch in time saves nine!\n" * 3


def char_tokenizer() -> TextTokenizer:
    return TextTokenizer.train([TEXT], "char")


def classifier(tok, **kw):
    """A 3-label classifier (an ensemble when ensemble_size > 1), eval mode, seeded."""
    sizes = {"embedding_dim": kw.pop("embedding_dim", 8), "hidden_size": kw.pop("hidden_size", 6)}
    config = RNNConfig(task="classification", vocab_size=len(tok), num_labels=3, label_names=["a", "b", "c"], **sizes, **kw)
    torch.manual_seed(0)
    return RNNClassifier.build(config, tok).eval()


def language_model(tok, **kw):
    config = RNNConfig(task="language_model", vocab_size=len(tok), embedding_dim=kw.pop("embedding_dim", 8),
                       hidden_size=kw.pop("hidden_size", 8), num_layers=kw.pop("num_layers", 2), tokenizer_kind="char", **kw)
    torch.manual_seed(0)
    return RNNLanguageModel(config, tok).eval()

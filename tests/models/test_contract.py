"""The Protocols the models' helpers name: each model class has every member its Protocol declares."""

from __future__ import annotations

import pytest

from textrnn import RNNConfig, RNNLanguageModel, TextTokenizer
from textrnn.models.classifier import TextClassifier
from textrnn.models.contract import Buildable, Described, ModelParts, Saved, Scorer


def members(protocol: type) -> set[str]:
    """The names a Protocol declares, its bases' included (attributes and methods, not object's)."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass in (object,) or not getattr(klass, "_is_protocol", False):
            continue
        names |= set(getattr(klass, "__annotations__", {}))
        names |= {name for name, value in vars(klass).items() if not name.startswith("_") and
                  (callable(value) or isinstance(value, (property, classmethod)))}
    return names | {"__call__"}


@pytest.fixture(scope="module")
def models():
    tokenizer = TextTokenizer.train(["a b c d e f"] * 3, "word")
    classifier = TextClassifier.build(RNNConfig(vocab_size=len(tokenizer), embedding_dim=4, hidden_size=4,
                                                num_labels=2, label_names=["x", "y"]), tokenizer)
    language_model = RNNLanguageModel(RNNConfig(task="language_model", vocab_size=len(tokenizer), embedding_dim=4,
                                                hidden_size=4, tokenizer_kind="word"), tokenizer)
    return classifier, language_model


@pytest.mark.parametrize("protocol", [Described, ModelParts, Buildable, Saved])
def test_every_model_has_what_its_helpers_read(models, protocol):
    assert "config" in members(protocol)  # the members were found (every one of these declares the config)
    for model in models:
        missing = sorted(name for name in members(protocol) if not hasattr(model, name))
        assert missing == [], f"{type(model).__name__} lacks {missing} of {protocol.__name__}"


def test_a_classifier_has_what_its_scoring_helpers_read(models):
    classifier, language_model = models
    assert {"probabilities", "result_of", "label_names", "explain"} <= members(Scorer)
    assert [name for name in members(Scorer) if not hasattr(classifier, name)] == []
    assert not all(hasattr(language_model, name) for name in members(Scorer))  # the check can fail

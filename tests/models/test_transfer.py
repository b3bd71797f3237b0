"""Language model -> classifier: an exact copy of the embedding and encoder, the LM's tokenizer, and each error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textrnn import ConfigError, load_config, load_model
from textrnn.training.api import train

from ..conftest import write_sentiment
from ..helpers import prepared_stream

SIZES = ["model.embedding_dim=12", "model.hidden_size=10", "train.progress=false", "tokenizer.kind=word"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_sentiment(tmp_path_factory.mktemp("transfer") / "data")


def train_lm(data, out, *extra):
    train(load_config(None, [f"data.dataset={data}", "data.text_column=sentence", f"train.output_dir={out}",
                             "data.batch_size=4", "data.seq_len=8", "model.num_layers=2", "train.max_steps=20",
                             "train.max_epochs=50", *SIZES, *extra], task="language_model"))
    return out


@pytest.fixture(scope="module")
def lm_run(data, tmp_path_factory):
    return train_lm(data, tmp_path_factory.mktemp("lm") / "run")


@pytest.fixture(scope="module")
def backward_lm_run(data, tmp_path_factory):
    return train_lm(data, tmp_path_factory.mktemp("bwd") / "run", "model.reverse=true")


def classifier_config(data, out, *extra):
    return load_config(None, [f"data.dataset={data}", "data.text_column=sentence", f"train.output_dir={out}",
                              "data.batch_size=16", "train.max_steps=1", "train.eval_every=0", *SIZES, *extra],
                       task="classification")


@pytest.mark.parametrize("extra,layers,members", [([], 2, 1), (["model.num_layers=1"], 1, 1),
                                                  (["model.num_layers=1", "model.ensemble_size=2"], 1, 2)])
def test_the_classifier_starts_as_an_exact_copy_of_the_language_model(data, lm_run, tmp_path, extra, layers, members):
    lm = load_model(lm_run)
    config = classifier_config(data, tmp_path / "run", f"model.init_from={lm_run}", "model.num_layers=2",
                               "train.lr=1e-30", *extra)  # a step too small to move a weight: what is saved is the copy
    train(config)
    classifier = load_model(tmp_path / "run" / "last")
    assert classifier.tokenizer.tokenizer.to_str() == lm.tokenizer.tokenizer.to_str()
    backbones = [m.backbone for m in getattr(classifier, "members", [classifier])]
    assert len(backbones) == members
    source = dict(lm.backbone.named_parameters())
    for backbone in backbones:
        copied = dict(backbone.named_parameters())
        names = ["embedding.weight"] + [f"encoder.{p}_l{k}" for k in range(layers)
                                        for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        for name in names:
            torch.testing.assert_close(copied[name], source[name], rtol=0, atol=1e-12, msg=name)


def test_the_backward_direction_from_a_backward_model(data, lm_run, backward_lm_run, tmp_path):
    train(classifier_config(data, tmp_path / "run", f"model.init_from={lm_run}",
                            f"model.init_from_backward={backward_lm_run}", "model.bidirectional=true",
                            "model.num_layers=1", "train.lr=1e-30"))
    classifier, lm, bwd = load_model(tmp_path / "run" / "last"), load_model(lm_run), load_model(backward_lm_run)
    assert bwd.config.reverse and not lm.config.reverse
    encoder, exact = classifier.backbone.encoder, {"rtol": 0, "atol": 1e-12}
    for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        backward_weight = getattr(bwd.backbone.encoder, f"{p}_l0")
        torch.testing.assert_close(getattr(encoder, f"{p}_l0_reverse"), backward_weight, **exact)
        torch.testing.assert_close(getattr(encoder, f"{p}_l0"), getattr(lm.backbone.encoder, f"{p}_l0"), **exact)
    torch.testing.assert_close(classifier.backbone.embedding.weight, lm.backbone.embedding.weight, rtol=0, atol=1e-12)


def test_each_direction_takes_a_language_model_that_reads_its_way(data, lm_run, backward_lm_run, tmp_path):
    both = ["model.bidirectional=true", "model.num_layers=1"]
    with pytest.raises(ConfigError, match="model.init_from_backward: that language model reads left to right; .*"
                                          "train it with model.reverse=true"):
        train(classifier_config(data, tmp_path / "a", f"model.init_from={lm_run}", f"model.init_from_backward={lm_run}",
                                *both))
    with pytest.raises(ConfigError, match=r"model.init_from: that language model reads right to left \(model.reverse"):
        train(classifier_config(data, tmp_path / "b", f"model.init_from={backward_lm_run}", *both))
    with pytest.raises(ConfigError, match="model.reverse makes a right-to-left language model: drop it here"):
        train(classifier_config(data, tmp_path / "c", "model.reverse=true"))


def test_a_backward_language_model_reads_the_reversed_stream_and_does_not_generate(data, lm_run, backward_lm_run):
    import datasets

    from textrnn import TextRNNError
    from textrnn.core.distributed import Dist
    from textrnn.training.evaluation import evaluate_lm, evaluate_lm_split

    forward, backward = load_model(lm_run), load_model(backward_lm_run)
    assert forward.tokenizer.tokenizer.to_str() == backward.tokenizer.tokenizer.to_str()
    dtype = forward.tokenizer.id_dtype
    stream, reversed_stream = prepared_stream(lm_run), prepared_stream(backward_lm_run)
    assert stream.dtype == dtype
    np.testing.assert_array_equal(reversed_stream, stream[::-1])
    # textrnn evaluate scores a backward model on the reversed text, as it trained
    data_config = load_config(None, [f"data.dataset={data}", "data.text_column=sentence", "data.seq_len=8"],
                              task="language_model").data
    scored = evaluate_lm_split(backward, datasets.load_dataset(str(data)), data_config, "train", 8,
                                              backward_lm_run)
    ways = [evaluate_lm(backward, np.ascontiguousarray(s), 8, 8, Dist(), backward.device, False)["loss"]
            for s in (stream[::-1], stream)]
    assert ways[0] != pytest.approx(ways[1], rel=1e-5)  # the two readings score apart (7e-4 here) ...
    assert scored["loss"] == pytest.approx(ways[0], rel=1e-9)  # ... and evaluate reads the reversed one
    with pytest.raises(TextRNNError, match="reads right to left .* does not continue a prompt"):
        backward.generate_text("", max_new_tokens=3)


@pytest.mark.parametrize(
    "extra,match",
    [
        (
            ["model.hidden_size=11"],
            "the language model has hidden_size=10 but the classifier 11; set model.hidden_size=10",
        ),
        (["model.cell=gru"], "has cell=lstm but the classifier gru"),
        (["model.num_layers=3"], "has 2 layer.s., the classifier 3; set model.num_layers to at most 2"),
        (
            ["model.init_from_backward=LM"],
            "model.init_from_backward fills the backward direction: set model.bidirectional=true",
        ),
    ],
)
def test_mismatches_are_one_line_errors(data, lm_run, tmp_path, extra, match):
    extra = [e.replace("LM", str(lm_run)) for e in extra]
    with pytest.raises(ConfigError, match=match):
        train(classifier_config(data, tmp_path / "run", f"model.init_from={lm_run}", *extra))


def test_a_classifier_is_not_a_language_model_and_a_generator_takes_no_init_from(data, lm_run, tmp_path):
    first = tmp_path / "cls"
    train(classifier_config(data, first))
    with pytest.raises(ConfigError, match="must name a language model checkpoint; it holds a classifier"):
        train(classifier_config(data, tmp_path / "run", f"model.init_from={first}"))
    from textrnn.training.registry import check_experiment

    generator = load_config(None, [f"data.dataset={data}", f"model.init_from={lm_run}"], task="language_model")
    with pytest.raises(ConfigError, match="model.init_from starts a classifier from a language model"):
        check_experiment(generator)

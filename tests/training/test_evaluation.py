"""`textrnn evaluate` against the dataset a run trained on, Hub configuration included."""

from __future__ import annotations

import datasets
import pytest

from textrnn import load_config, load_model
from textrnn.training.evaluation import evaluate_checkpoint
from textrnn.training.trainer import train

from ..conftest import write_sentiment


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A stand-in for the unreachable Hub: ``someone/reviews`` (configuration ``short``) is a local folder."""
    local = datasets.load_dataset(str(write_sentiment(tmp_path / "reviews")))
    calls = []
    real = datasets.load_dataset

    def load_dataset(name, config_name=None, **kwargs):
        if name != "someone/reviews":
            return real(name, config_name, **kwargs)
        calls.append(config_name)
        return local

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


@pytest.mark.parametrize("task,extra", [("classification", ["data.label_column=label"]),
                                        ("language_model", ["tokenizer.kind=char", "data.seq_len=8"])])
def test_a_run_on_a_hub_configuration_trains_and_evaluates_on_that_configuration(hub, tmp_path, task, extra):
    out = tmp_path / task
    config = load_config(None, ["data.dataset=someone/reviews", "data.config_name=short", "data.text_column=sentence",
                                f"train.output_dir={out}", "train.max_steps=2", "train.progress=false",
                                "model.embedding_dim=8", "model.hidden_size=8", *extra], task=task)
    train(config)
    assert hub and set(hub) == {"short"}  # training asked the Hub for the configuration, every time
    hub.clear()
    metrics = evaluate_checkpoint(load_model(out), str(out), "someone/reviews", "validation", None, None)
    assert hub == ["short"] and metrics["loss"] > 0  # the same dataset: the run's configuration
    hub.clear()
    evaluate_checkpoint(load_model(out), str(out), "someone/reviews", "validation", None, None, config_name="long")
    assert hub == ["long"]  # --config-name wins

"""`textrnn evaluate` against the dataset a run trained on, Hub configuration included."""

from __future__ import annotations

import datasets
import pytest

from textrnn import load_config, load_model
from textrnn.training.api import train
from textrnn.training.evaluation import evaluate_checkpoint

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


# ---------------------------------------------------------------------- one local file, split by training (issue 26)
def one_csv(folder):
    import csv

    rows = list(csv.reader((write_sentiment(folder / "parts") / "train.csv").open()))
    rows += list(csv.reader((folder / "parts" / "validation.csv").open()))[1:]
    path = folder / "reviews.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([["review", "sentiment"], *[[text, label] for text, label in rows[1:]]])
    return path


def test_evaluate_re_creates_the_part_of_a_file_that_training_held_out(tmp_path):
    data = one_csv(tmp_path)
    config = load_config(None, [f"data.dataset={data}", "data.text_column=review", "data.label_column=sentiment",
                                f"train.output_dir={tmp_path / 'run'}", "train.max_steps=6", "train.eval_every=6",
                                "train.progress=false", "model.embedding_dim=8", "model.hidden_size=8",
                                "train.seed=3"], task="classification")
    result = train(config)
    model = load_model(tmp_path / "run")
    held_out = evaluate_checkpoint(model, str(tmp_path / "run"), str(data), "validation", None, None)
    assert held_out["examples"] == 15 and held_out["accuracy"] == result.metrics["accuracy"]
    assert abs(held_out["loss"] - result.metrics["loss"]) < 1e-6
    trained_on = evaluate_checkpoint(model, str(tmp_path / "run"), str(data), "train", None, None)
    assert trained_on["examples"] == 135  # the other 90%, not the whole file


def test_a_missing_label_column_names_the_flag_that_sets_it(tmp_path):
    from textrnn import DataError

    data = one_csv(tmp_path)
    config = load_config(None, [f"data.dataset={data}", "data.text_column=review", "data.label_column=sentiment",
                                f"train.output_dir={tmp_path / 'run'}", "train.max_steps=2", "train.progress=false",
                                "model.embedding_dim=8", "model.hidden_size=8"], task="classification")
    train(config)
    other = tmp_path / "other.csv"
    other.write_text("review,stars\ngood,5\n")
    with pytest.raises(DataError, match="pass --label-column"):
        evaluate_checkpoint(load_model(tmp_path / "run"), str(tmp_path / "run"), str(other), "train", None, None)


def test_a_second_evaluate_reads_the_split_it_encoded_the_first_time(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTRNN_CACHE", str(tmp_path / "cache"))
    data = one_csv(tmp_path)
    config = load_config(None, [f"data.dataset={data}", "data.text_column=review", "data.label_column=sentiment",
                                f"train.output_dir={tmp_path / 'run'}", "train.max_steps=2", "train.progress=false",
                                "model.embedding_dim=8", "model.hidden_size=8"], task="classification")
    train(config)
    model = load_model(tmp_path / "run")
    first = evaluate_checkpoint(model, str(tmp_path / "run"), str(data), "validation", None, None)
    [folder] = (tmp_path / "cache").glob("eval-*[!k]")  # the folder, not its .lock
    stamp = (folder / "meta.json").stat().st_mtime_ns
    again = evaluate_checkpoint(model, str(tmp_path / "run"), str(data), "validation", None, None)
    assert again == first and (folder / "meta.json").stat().st_mtime_ns == stamp
    other = evaluate_checkpoint(model, str(tmp_path / "run"), str(data), "train", None, None)
    assert other["examples"] == 135 and len([p for p in (tmp_path / "cache").glob("eval-*") if p.is_dir()]) == 2


def test_textrnn_evaluate_scores_data_in_memory_as_the_command_does(tmp_path):
    import pandas as pd

    from textrnn import DataError, evaluate

    data = write_sentiment(tmp_path / "data")
    config = load_config(None, [f"data.dataset={data}", "data.text_column=sentence", "train.max_steps=8",
                                f"train.output_dir={tmp_path / 'run'}", "train.progress=false",
                                "model.embedding_dim=8", "model.hidden_size=8"], task="classification")
    train(config)
    model = load_model(tmp_path / "run")
    frame = pd.read_csv(data / "validation.csv")
    from_file = evaluate_checkpoint(model, str(tmp_path / "run"), str(data), "validation", None, None)
    in_memory = evaluate(model, frame)
    assert in_memory["accuracy"] == from_file["accuracy"] and in_memory["examples"] == len(frame)
    assert abs(in_memory["loss"] - from_file["loss"]) < 1e-6
    by_hand = sum(p["label"] == gold for p, gold in zip(model.predict(frame["sentence"].tolist()), frame["label"]))
    assert in_memory["accuracy"] == by_hand / len(frame)
    ids = frame.assign(label=[model.label_names.index(name) for name in frame["label"]])
    assert evaluate(tmp_path / "run", ids)["accuracy"] == from_file["accuracy"]  # integer labels: the model's ids
    assert evaluate(str(tmp_path / "run"), str(data), "validation") == from_file
    with pytest.raises(DataError, match="pass label_column= with one of them"):
        evaluate(model, frame.rename(columns={"label": "y"}))
    lm = train(load_config(None, [f"data.dataset={data / 'train.csv'}", "data.text_column=sentence",
                                  f"train.output_dir={tmp_path / 'lm'}", "train.max_steps=3", "train.progress=false",
                                  "model.embedding_dim=8", "model.hidden_size=8", "data.seq_len=16"],
                           task="language_model")).model
    scored = evaluate(lm, frame["sentence"].tolist())
    assert scored["loss"] > 0 and scored["perplexity"] > 1

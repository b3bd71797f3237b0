"""textrnn tune: a search space in YAML, each trial a run folder, pruning, a study that resumes, the best config."""

from __future__ import annotations

import json

import pytest
import yaml

from textrnn import ConfigError, load_config, tune
from textrnn.training.tune import BEST_CONFIG, PLOT, parse_space

from ..conftest import cli
from ..helpers import classifier_config

pytest.importorskip("optuna")
SPACE = {"train.lr": "loguniform(1e-3, 3e-2)", "model.hidden_size": "choice(8, 16)"}


def test_the_space_reads_each_distribution_and_names_each_mistake():
    assert parse_space({"a.b": "loguniform(1e-4, 1e-2)", "c.d": "int(1, 4)", "e.f": "choice('x', 2)"}) == {
        "a.b": ("loguniform", [1e-4, 1e-2]), "c.d": ("int", [1, 4]), "e.f": ("choice", ["x", 2])}
    for space, words in [({"a": "normal(0, 1)"}, "not one of loguniform"), ({"a": "uniform(2, 1)"}, "low < high"),
                         ({"a": "choice()"}, "at least one value"), ({"a": "uniform(x, 1)"}, "numbers or quoted"),
                         ([], "must be a mapping")]:
        with pytest.raises(ConfigError, match=words):
            parse_space(space)


def test_trials_are_run_folders_and_a_rerun_continues_the_study(tmp_path, sentiment_dir):
    config = classifier_config(sentiment_dir, tmp_path / "study", "train.max_steps=12", "train.eval_every=4",
                               "train.max_epochs=100")
    first = tune(config, SPACE, trials=3)
    assert first.trials == 3 and sorted(p.name for p in (tmp_path / "study").glob("trial-*")) == \
        ["trial-0000", "trial-0001", "trial-0002"]
    assert (first.best_run / "best" / "model.safetensors").exists() and first.plot.name == PLOT
    best = load_config(str(tmp_path / "study" / BEST_CONFIG))
    assert best.train.lr == pytest.approx(first.best_params["train.lr"])
    assert best.model.hidden_size == first.best_params["model.hidden_size"]
    metrics = [json.loads(line) for line in (first.best_run / "metrics.jsonl").read_text().splitlines()]
    assert max(m["accuracy"] for m in metrics if m["split"] == "validation") == pytest.approx(first.best_value)
    again = tune(config, SPACE, trials=4)  # the study in study.db goes on: one more trial, not four
    assert again.trials == 4 and len(list((tmp_path / "study").glob("trial-*"))) == 4


def test_a_bad_key_fails_before_any_trial(tmp_path, sentiment_dir):
    with pytest.raises(ConfigError, match="unknown config key 'train.lrr'"):
        tune(classifier_config(sentiment_dir, tmp_path / "s"), {"train.lrr": "uniform(0.1, 0.2)"}, trials=1)
    assert not list((tmp_path / "s").glob("trial-*"))


def test_the_command_reads_the_space_beside_the_config(tmp_path, sentiment_dir):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({"task": "classification", "data": {"dataset": str(sentiment_dir),
                      "text_column": "sentence"}, "model": {"embedding_dim": 8}, "train": {
                      "max_steps": 6, "eval_every": 3, "progress": False, "output_dir": str(tmp_path / "s")}}))
    (tmp_path / "small.tune.yaml").write_text("model.hidden_size: choice(8, 12)\n")
    proc = cli("tune", "--config", str(config), "--trials", "2")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["trials"] == 2 and set(out["best_params"]) == {"model.hidden_size"}

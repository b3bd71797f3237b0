"""The learning-rate range test: a sweep that finds a falling loss, a plot, a suggestion, and train.lr: find."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textrnn import ConfigError, lr_find
from textrnn.training.api import train
from textrnn.training.lr_find import PLOT, steepest

from ..conftest import cli
from ..helpers import classifier_config


def test_the_suggestion_is_the_steepest_fall_before_the_lowest_loss():
    lrs = list(np.logspace(-6, 0, 7))
    losses = [2.0, 1.98, 1.9, 1.2, 0.9, 0.85, 3.0]  # falls fastest between 1e-4 and 1e-3, lowest at 1e-1
    assert steepest(lrs, losses) == pytest.approx(1e-3)
    assert steepest(lrs, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]) == pytest.approx(1e-7)  # lowest first: a tenth


def test_a_sweep_runs_rates_up_and_leaves_no_run_behind(tmp_path, sentiment_dir):
    config = classifier_config(sentiment_dir, tmp_path / "run", "train.lr=find")
    found = lr_find(config, steps=40, start_lr=1e-5, end_lr=10.0)
    assert found.lrs == sorted(found.lrs) and found.lrs[0] == pytest.approx(1e-5) and 10 <= len(found.lrs) <= 40
    assert min(found.losses) < found.losses[0]  # the loss fell somewhere in the sweep
    assert found.lrs[0] < found.suggested_lr < found.lrs[-1] and found.plot == tmp_path / "run" / PLOT
    assert found.plot.stat().st_size > 1000 and sorted(p.name for p in (tmp_path / "run").iterdir()) == [PLOT]


def test_train_lr_find_trains_at_the_suggestion(tmp_path, sentiment_dir):
    result = train(classifier_config(sentiment_dir, tmp_path / "run", "train.lr=find", "train.max_steps=4"))
    saved = (tmp_path / "run" / "config.yaml").read_text()
    lr = float(saved.split("  lr: ")[1].split("\n")[0])
    assert result.step == 4 and 1e-7 < lr < 10 and (tmp_path / "run" / PLOT).exists()
    with pytest.raises(ConfigError, match="a resumed run keeps the rate it started with"):
        train(classifier_config(sentiment_dir, tmp_path / "run", "train.lr=find"), resume=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="train.lr must be > 0 or find, got 'fast'"):
        classifier_config(sentiment_dir, tmp_path / "x", "train.lr=fast")


def test_the_command_prints_the_suggestion(tmp_path, sentiment_dir):
    config = tmp_path / "c.yaml"
    config.write_text("task: classification\n")
    proc = cli("lr-find", "--config", str(config), f"data.dataset={sentiment_dir}", "data.text_column=sentence",
               f"train.output_dir={tmp_path / 'run'}", "model.hidden_size=16", "--steps", "20", "train.progress=false")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["updates"] <= 20 and out["suggested_lr"] > 0 and out["plot"].endswith(PLOT)

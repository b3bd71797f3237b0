"""Reporting: TensorBoard events and reporter errors (textrnn.training.reporting)."""

import json

import pytest

from textrnn.training.api import train

from ..helpers import classifier_config


def test_tensorboard_events_hold_the_logged_metrics(tmp_path, sentiment_dir):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(classifier_config(sentiment_dir, tmp_path / "run", "train.max_steps=100", "train.max_epochs=100",
                            "train.eval_every=25", "train.patience=null", "train.report_to=[tensorboard]"))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/tokens_per_s", "validation/accuracy", "validation/loss"} <= tags
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = {r["step"]: r["accuracy"] for r in rows if r["split"] == "validation"}
    seen = {e.step: e.value for e in events.Scalars("validation/accuracy")}
    assert seen.keys() == logged.keys() and all(seen[s] == pytest.approx(logged[s], abs=1e-6) for s in seen)
    assert [e.step for e in events.Scalars("train/loss")] == [50, 100]


def test_a_missing_reporter_package_is_a_one_line_error(tmp_path, sentiment_dir, monkeypatch):
    import sys

    from textrnn import ConfigError

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install -e '.\[tensorboard\]'"):
        train(classifier_config(sentiment_dir, tmp_path / "run", "train.report_to=[tensorboard]"))
    with pytest.raises(ConfigError, match="train.report_to takes tensorboard"):
        classifier_config(sentiment_dir, tmp_path / "run", "train.report_to=[wandb]")


def test_a_torn_last_line_of_the_metrics_log_is_dropped_with_a_note(tmp_path, capsys):
    from textrnn.training.reporting import MetricsLog

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 4, "loss": 1.5}\n{"step": 8, "loss": 1.2}\n{"step": 12, "lo', encoding="utf-8")  # a crash
    MetricsLog(path).forget_after(8)
    assert path.read_text().splitlines() == ['{"step": 4, "loss": 1.5}', '{"step": 8, "loss": 1.2}']
    assert "torn last line" in capsys.readouterr().err

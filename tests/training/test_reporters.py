"""Reporters: TensorBoard events, an offline W&B run and a local MLflow store hold what metrics.jsonl holds."""

import json

import pytest

from textrnn.training.api import train
from textrnn.training.reporters import flat, scalars

from ..helpers import classifier_config

RUN = ("train.max_steps=100", "train.max_epochs=100", "train.eval_every=25", "train.patience=null")


def logged_accuracy(run) -> dict:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["accuracy"] for r in rows if r["split"] == "validation"}


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
    with pytest.raises(ConfigError, match="train.report_to takes tensorboard, wandb, mlflow; got \\['comet'\\]"):
        classifier_config(sentiment_dir, tmp_path / "run", "train.report_to=[comet]")



def test_every_reporter_sees_the_same_numbers():
    assert scalars({"step": 50, "split": "train", "train_loss": 1.5, "lr": 0.1}) == {"train/loss": 1.5, "train/lr": 0.1}
    assert scalars({"step": 5, "split": "validation", "accuracy": 0.5, "per_label": {}, "epoch": 1}) == \
        {"validation/accuracy": 0.5}
    assert scalars({"step": 5, "split": "event", "event": "anneal"}) == {}
    assert flat({"train": {"lr": 0.1, "report_to": ["mlflow"]}}) == {"train.lr": 0.1, "train.report_to": "['mlflow']"}


@pytest.mark.slow
def test_an_mlflow_run_holds_the_validation_curve_and_resumes_in_place(tmp_path, sentiment_dir, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = tmp_path / "run"
    train(classifier_config(sentiment_dir, run, *RUN[1:], "train.max_steps=50", "train.report_to=[mlflow]"))
    train(classifier_config(sentiment_dir, run, *RUN, "train.report_to=[mlflow]"), resume=str(run))
    client = MlflowClient(tracking_uri=f"sqlite:///{(run / 'mlflow.db').resolve()}")
    run_id = (run / "mlflow_run_id").read_text()
    history = {m.step: m.value for m in client.get_metric_history(run_id, "validation/accuracy")}
    assert history == pytest.approx(logged_accuracy(run), abs=1e-6) and sorted(history) == [25, 50, 75, 100]
    assert client.get_run(run_id).data.params["train.eval_every"] == "25"  # one run, resumed, with the config


def wandb_records(path) -> list:
    """The records of an offline W&B run file (LevelDB's log format: 32 KiB blocks, a 7-byte header a chunk)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, records, pending = path.read_bytes(), 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if left < 7 or (length == 0 and kind == 0):  # the block's padding
            pos += left
            continue
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or its last chunk
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


@pytest.mark.slow
def test_an_offline_wandb_run_holds_the_validation_curve_and_the_config(tmp_path, sentiment_dir, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    train(classifier_config(sentiment_dir, run, *RUN, "train.report_to=[wandb]"))
    [path] = run.glob("wandb/offline-run-*/run-*.wandb")
    records = wandb_records(path)
    rows = [{"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item}
            for r in records if r.WhichOneof("record_type") == "history"]
    seen = {row["_step"]: row["validation/accuracy"] for row in rows if "validation/accuracy" in row}
    assert seen == pytest.approx(logged_accuracy(run), abs=1e-6) and sorted(seen) == [25, 50, 75, 100]
    [started] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert json.loads({u.key: u.value_json for u in started.config.update}["train.eval_every"]) == 25

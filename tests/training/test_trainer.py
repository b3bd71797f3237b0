"""The training loop: resume equivalence, run folder contents, stopping rules."""




import json

import pytest
import torch

from textrnn import load_model
from textrnn.training.api import train

from ..conftest import assert_same_weights, weights, write_sentiment
from ..helpers import classifier_config, lm_config


@pytest.mark.parametrize("kind,ema,members,cell,accumulate", [
    ("classification", 0.0, 1, "lstm", 1), ("language_model", 0.0, 1, "lstm", 1), ("classification", 0.9, 1, "lstm", 1),
    ("classification", 0.9, 2, "lstm", 1), ("classification", 0.0, 1, "mingru", 1),
    ("language_model", 0.0, 1, "minlstm", 1), ("classification", 0.0, 1, "lstm", 3),
    ("language_model", 0.0, 1, "lstm", 2)])
def test_resumed_run_ends_with_the_same_weights(tmp_path, sentiment_dir, corpus_file, kind, ema, members, cell,
                                                accumulate):
    """accumulate 3 on 8 batches an epoch: updates of 3, 3 and 2 batches, the resume point after an epoch's end."""
    make = classifier_config if kind == "classification" else lm_config
    data = sentiment_dir if kind == "classification" else corpus_file
    extra = ("train.max_steps=18", "train.eval_every=6", "train.max_epochs=100", f"train.ema_decay={ema}",
             f"model.ensemble_size={members}", f"model.cell={cell}", f"train.accumulate_steps={accumulate}")
    full = train(make(data, tmp_path / "full", *extra))
    assert full.stop_reason == "max_steps"
    middle = tmp_path / "full" / "checkpoints" / "step-00000006"
    assert middle.is_dir()
    resumed = train(make(data, tmp_path / "resumed", *extra), resume=str(middle))
    assert (tmp_path / "resumed" / "last").resolve().name == "step-00000018"
    assert_same_weights(tmp_path / "full" / "last", tmp_path / "resumed" / "last")
    assert resumed.metrics["loss"] == pytest.approx(full.metrics["loss"], rel=1e-6)


@pytest.mark.parametrize("optimizer,resume_at", [("sgd", 0), ("ntasgd", -3), ("ntasgd", 0), ("ntasgd", 3)])
def test_sgd_and_ntasgd_resume_exactly(tmp_path, sentiment_dir, optimizer, resume_at):
    """SGD with plateau annealing, and NT-ASGD resumed before, at and after the evaluation that starts its
    averaging (the lr is high enough that validation accuracy drops): the same weights as one run."""
    extra = ("train.max_steps=18", "train.eval_every=3", "train.max_epochs=100", f"train.optimizer={optimizer}",
             "train.keep_checkpoints=10",
             "train.lr=5.0", "train.seed=3", "train.nonmono=1", "train.plateau_factor=0.5", "train.patience=null",
             "train.weight_decay=1e-4")
    train(classifier_config(sentiment_dir, tmp_path / "full", *extra))
    events = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    started = [e["step"] for e in events if e.get("event") == "average"]
    annealed = [e["step"] for e in events if e.get("event") == "anneal"]
    assert len(started) == (optimizer == "ntasgd") and annealed
    at = (started or annealed)[0] + resume_at  # around where the average starts, or the first annealing
    assert 3 <= at <= 15, events
    point = tmp_path / "full" / "checkpoints" / f"step-{at:08d}"
    train(classifier_config(sentiment_dir, tmp_path / "resumed", *extra), resume=str(point))
    assert_same_weights(tmp_path / "full" / "last", tmp_path / "resumed" / "last")
    state = json.loads((tmp_path / "resumed" / "last" / "trainer_state.json").read_text())
    assert state["progress"]["averaging"] == (optimizer == "ntasgd")


def test_resume_across_an_epoch_boundary(tmp_path, sentiment_dir):
    # 120 examples / 16 = 8 batches an epoch: step 10 is mid-epoch 2
    extra = ("train.max_epochs=3", "train.eval_every=5")
    train(classifier_config(sentiment_dir, tmp_path / "full", *extra))
    train(classifier_config(sentiment_dir, tmp_path / "resumed", *extra),
          resume=str(tmp_path / "full" / "checkpoints" / "step-00000010"))
    assert_same_weights(tmp_path / "full" / "last", tmp_path / "resumed" / "last")


def test_run_folder_contents_and_metrics_log(tmp_path, sentiment_dir):
    result = train(classifier_config(sentiment_dir, tmp_path / "run", "train.max_epochs=3", "train.eval_every=0",
                                     "train.lr=0.02"))
    run = tmp_path / "run"
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "training_curves.png",
        "best/config.json",
        "last/model.safetensors",
        "last/tokenizer.json",
        "last/trainer_state.json",
        "last/trainer_state.pt",
    ):
        assert (run / name).exists(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["split"] == "validation"]
    assert [r["epoch"] for r in evals] == [1, 2, 3] and all(0 <= r["accuracy"] <= 1 for r in evals)
    assert result.metrics["accuracy"] >= 0.8  # the toy task is easy; chance is 0.5
    model = load_model(run)  # the output_dir means its best checkpoint
    assert model.label_names == ["neg", "pos"]


def test_early_stopping_and_time_budget(tmp_path, sentiment_dir):
    stopped = train(classifier_config(sentiment_dir, tmp_path / "es", "train.max_epochs=50", "train.eval_every=2",
                                      "train.patience=1", "train.lr=1e-9"))
    assert stopped.stop_reason == "early_stopping"
    timed = train(classifier_config(sentiment_dir, tmp_path / "t", "train.max_epochs=1000", "train.max_minutes=0.002"))
    assert timed.stop_reason == "max_minutes" and (tmp_path / "t" / "last" / "model.safetensors").exists()


def test_nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint(tmp_path, sentiment_dir, monkeypatch):
    from textrnn import TrainingError
    from textrnn.training.classification_task import ClassificationTask

    original = ClassificationTask.step_loss
    calls = {"n": 0}

    def poisoned(self, model, batch):
        loss, tokens = original(self, model, batch)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 7 else loss), tokens

    monkeypatch.setattr(ClassificationTask, "step_loss", poisoned)
    config = classifier_config(
        sentiment_dir, tmp_path / "nan", "train.max_epochs=5", "train.eval_every=3", "train.on_divergence=stop"
    )  # the default rolls back (tests/test_recovery.py)
    with pytest.raises(TrainingError, match="loss became nan at step 7"):
        train(config)
    assert (tmp_path / "nan" / "last").resolve().name == "step-00000006"
    assert torch.isfinite(torch.cat([w.flatten() for w in weights(tmp_path / "nan" / "last").values()])).all()
    calls["n"] = 0
    skipped = train(classifier_config(sentiment_dir, tmp_path / "skip", "train.max_epochs=2",
                                      "train.skip_nonfinite=true"))
    assert skipped.stop_reason == "max_epochs" and calls["n"] == 16  # 2 epochs of 8 batches, the 7th poisoned
    last = tmp_path / "skip" / "last"
    progress = json.loads((last / "trainer_state.json").read_text())["progress"]
    assert progress["step"] == 16 and progress["skipped_batches"] == 1
    optimizer = torch.load(last / "trainer_state.pt", weights_only=True)["optimizer"]
    assert {float(s["step"]) for s in optimizer["state"].values()} == {15.0}  # the bad batch made no update
    assert torch.isfinite(torch.cat([w.flatten() for w in weights(last).values()])).all()


def test_weight_average_is_what_gets_evaluated_and_saved(tmp_path, sentiment_dir):
    from textrnn.training.trainer import Trainer

    trainer = Trainer(classifier_config(sentiment_dir, tmp_path / "run", "train.max_steps=5", "train.ema_decay=0.5"))
    trainer.fit()
    raw = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    saved = weights(tmp_path / "run" / "last")
    shadow = dict(zip([n for n, p in trainer.model.named_parameters()], trainer.ema.shadow))
    assert torch.equal(saved["head.weight"], shadow["head.weight"])
    assert not torch.equal(saved["head.weight"], raw["head.weight"])


def test_validation_cut_from_train_when_missing(tmp_path):
    data = write_sentiment(tmp_path / "d", train=100, validation=0)
    (data / "validation.csv").unlink()
    result = train(classifier_config(data, tmp_path / "run", "train.max_epochs=1"))
    assert result.metrics["examples"] == 10


def test_min_steps_trains_more_epochs_and_evaluates_each_one(tmp_path, sentiment_dir):
    # 120 training examples / 16 -> 8 steps an epoch; min_steps 30 -> 4 epochs, each one evaluated
    result = train(classifier_config(sentiment_dir, tmp_path / "run", "train.max_epochs=2", "train.eval_every=500",
                                     "train.min_steps=30", "train.patience=null"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "validation"] == [8, 16, 24, 32]
    plan = [r for r in rows if r.get("event") == "plan"]
    assert plan and plan[0]["max_epochs"] == 4 and plan[0]["eval_every"] == 8
    assert result.stop_reason == "max_epochs" and result.step == 32


def test_gradual_unfreezing_trains_one_more_group_each_epoch(tmp_path, sentiment_dir):
    from textrnn.training.trainer import Trainer

    extra = ("train.max_epochs=2", "train.eval_every=0", "train.unfreeze=gradual", "train.lr=0.02")
    initial = {k: v.clone() for k,
               v in Trainer(classifier_config(sentiment_dir, tmp_path / "init", *extra)).model.state_dict().items()}
    train(classifier_config(sentiment_dir, tmp_path / "run", *extra))
    first, second = (weights(tmp_path / "run" / "checkpoints" / f"step-{s:08d}") for s in (8, 16))  # 8 steps an epoch
    head = [k for k in initial if k.startswith(("head", "pooling"))]
    layer = [k for k in initial if "encoder" in k]
    assert all(not torch.equal(initial[k], first[k]) for k in head)  # epoch 0: the head trains
    assert all(torch.equal(initial[k], first[k]) for k in layer)  # the encoder waits
    assert all(not torch.equal(first[k], second[k]) for k in layer)  # epoch 1: the top encoder layer joins
    # epoch 2 would free it
    assert torch.equal(initial["backbone.embedding.weight"], second["backbone.embedding.weight"])
    from textrnn import ConfigError

    with pytest.raises(ConfigError, match="train.unfreeze lists 5 epochs but this model has 3 layer groups"):
        train(classifier_config(sentiment_dir, tmp_path / "bad", "train.unfreeze=[0,1,2,3,4]"))
    with pytest.raises(ConfigError, match="train.unfreeze must be null, gradual or a list of epochs"):
        classifier_config(sentiment_dir, tmp_path / "bad", "train.unfreeze=sometimes")


def test_weights_that_are_not_finite_are_never_saved(tmp_path, corpus_file):
    from textrnn.training.trainer import Trainer

    trainer = Trainer(lm_config(corpus_file, tmp_path / "run", "train.max_steps=4"))
    with torch.no_grad():
        next(trainer.model.parameters())[0] = float("nan")
    trainer.save({}, False)
    trainer.metrics_log.close()
    assert not (tmp_path / "run" / "last").exists() and not (tmp_path / "run" / "checkpoints").exists()
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert events[-1] == {"step": 0, "split": "event", "event": "not_saved_nonfinite"}


def test_a_resumed_run_logs_the_train_loss_of_the_uninterrupted_one(tmp_path, corpus_file):
    """The window of recent losses (the logged train_loss, the divergence guard's mean) is resumed state: before,
    it started empty after a resume, and the records at steps 50 and 100 differed."""
    extra = ("train.max_steps=100", "train.eval_every=30")
    train(lm_config(corpus_file, tmp_path / "full", *extra))
    train(lm_config(corpus_file, tmp_path / "resumed", *extra),
          resume=str(tmp_path / "full" / "checkpoints" / "step-00000030"))

    def train_losses(run):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: r["train_loss"] for r in rows if r["split"] == "train"}

    full, resumed = train_losses(tmp_path / "full"), train_losses(tmp_path / "resumed")
    assert sorted(resumed) == [50, 100] and all(resumed[s] == pytest.approx(full[s], rel=1e-9) for s in resumed)


def test_an_evaluation_hook_can_stop_the_run_as_early_stopping(tmp_path, sentiment_dir):
    """textrnn tune's pruner stops a trial through Trainer.on_evaluate; the run ends as if by patience."""
    from textrnn.training.trainer import Trainer

    trainer = Trainer(classifier_config(sentiment_dir, tmp_path / "run", "train.max_steps=20", "train.eval_every=4"))
    seen = []
    trainer.on_evaluate = lambda step, metrics: seen.append((step, "accuracy" in metrics)) or step >= 8
    result = trainer.fit()
    assert seen == [(4, True), (8, True)] and result.stop_reason == "early_stopping" and result.step == 8
    assert (tmp_path / "run" / "checkpoints" / "step-00000008").is_dir()

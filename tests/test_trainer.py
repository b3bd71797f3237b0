"""The training loop: resume equivalence, run folder contents, stopping rules."""

import contextlib
import json

import pytest
import torch

from textrnn import load_config, load_model
from textrnn.optim import make_scheduler
from textrnn.registry import get_task
from textrnn.trainer import train

from .conftest import assert_same_weights, weights, write_sentiment


def classifier_config(data, out, *extra):
    return load_config(None, [f"data.dataset={data}", "data.text_column=sentence", f"train.output_dir={out}",
                              "data.batch_size=16", "model.embedding_dim=16", "model.hidden_size=16",
                              "model.bidirectional=true", "model.embedding_dropout=0.2", "model.output_dropout=0.3",
                              "train.warmup_steps=3", "train.progress=false", "train.keep_checkpoints=10", *extra],
                       task="classification")


def lm_config(corpus, out, *extra):
    return load_config(None, [f"data.dataset={corpus}", f"train.output_dir={out}", "tokenizer.kind=char",
                              "data.batch_size=4", "data.seq_len=16", "model.embedding_dim=12", "model.hidden_size=16",
                              "model.num_layers=2", "model.dropout=0.2", "model.output_dropout=0.1",
                              "train.warmup_steps=3", "train.progress=false", "train.keep_checkpoints=10", *extra],
                       task="language_model")


@pytest.mark.parametrize("kind,ema,members", [("classification", 0.0, 1), ("language_model", 0.0, 1),
                                              ("classification", 0.9, 1), ("classification", 0.9, 2)])
def test_resumed_run_ends_with_the_same_weights(tmp_path, sentiment_dir, corpus_file, kind, ema, members):
    make = classifier_config if kind == "classification" else lm_config
    data = sentiment_dir if kind == "classification" else corpus_file
    extra = ("train.max_steps=18", "train.eval_every=6", "train.max_epochs=100", f"train.ema_decay={ema}",
             f"model.ensemble_size={members}")
    full = train(make(data, tmp_path / "full", *extra))
    assert full.stop_reason == "max_steps"
    middle = tmp_path / "full" / "checkpoints" / "step-00000006"
    assert middle.is_dir()
    resumed = train(make(data, tmp_path / "resumed", *extra), resume=str(middle))
    assert (tmp_path / "resumed" / "last").resolve().name == "step-00000018"
    assert_same_weights(tmp_path / "full" / "last", tmp_path / "resumed" / "last")
    assert resumed.metrics["loss"] == pytest.approx(full.metrics["loss"], rel=1e-6)


def test_resume_across_an_epoch_boundary(tmp_path, sentiment_dir):
    # 120 examples / 16 = 8 batches an epoch: step 10 is mid-epoch 2
    extra = ("train.max_epochs=3", "train.eval_every=5")
    train(classifier_config(sentiment_dir, tmp_path / "full", *extra))
    train(classifier_config(sentiment_dir, tmp_path / "resumed", *extra), resume=str(tmp_path / "full" / "checkpoints" / "step-00000010"))
    assert_same_weights(tmp_path / "full" / "last", tmp_path / "resumed" / "last")


def test_run_folder_contents_and_metrics_log(tmp_path, sentiment_dir):
    result = train(classifier_config(sentiment_dir, tmp_path / "run", "train.max_epochs=3", "train.eval_every=0", "train.lr=0.02"))
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.jsonl", "training_curves.png", "best/config.json", "last/model.safetensors",
                 "last/tokenizer.json", "last/trainer_state.json", "last/trainer_state.pt"):
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
    from textrnn.classification import ClassificationTask

    original = ClassificationTask.step_loss
    calls = {"n": 0}

    def poisoned(self, model, batch, carry, autocast):
        loss, carry, tokens = original(self, model, batch, carry, autocast)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 7 else loss), carry, tokens

    monkeypatch.setattr(ClassificationTask, "step_loss", poisoned)
    config = classifier_config(sentiment_dir, tmp_path / "nan", "train.max_epochs=5", "train.eval_every=3",
                               "train.on_divergence=stop")  # the default rolls back (tests/test_recovery.py)
    with pytest.raises(TrainingError, match="loss became nan at step 7"):
        train(config)
    assert (tmp_path / "nan" / "last").resolve().name == "step-00000006"
    assert torch.isfinite(torch.cat([w.flatten() for w in weights(tmp_path / "nan" / "last").values()])).all()
    calls["n"] = 0
    skipped = train(classifier_config(sentiment_dir, tmp_path / "skip", "train.max_epochs=2", "train.skip_nonfinite=true"))
    assert skipped.stop_reason == "max_epochs" and calls["n"] == 16  # 2 epochs of 8 batches, the 7th poisoned
    last = tmp_path / "skip" / "last"
    progress = json.loads((last / "trainer_state.json").read_text())["progress"]
    assert progress["step"] == 16 and progress["skipped_batches"] == 1
    optimizer = torch.load(last / "trainer_state.pt", weights_only=True)["optimizer"]
    assert {float(s["step"]) for s in optimizer["state"].values()} == {15.0}  # the bad batch made no update
    assert torch.isfinite(torch.cat([w.flatten() for w in weights(last).values()])).all()


def test_weight_average_is_what_gets_evaluated_and_saved(tmp_path, sentiment_dir):
    from textrnn.trainer import Trainer

    trainer = Trainer(classifier_config(sentiment_dir, tmp_path / "run", "train.max_steps=5", "train.ema_decay=0.5"))
    trainer.fit()
    raw = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    saved = weights(tmp_path / "run" / "last")
    shadow = dict(zip([n for n, p in trainer.model.named_parameters()], trainer.ema.shadow))
    assert torch.equal(saved["head.weight"], shadow["head.weight"])
    assert not torch.equal(saved["head.weight"], raw["head.weight"])


def test_ensemble_members_train_exactly_as_they_would_alone():
    # The ensemble's loss is the members' mean, so a member's gradient is 1/K of its lone
    # gradient: SGD at K times the rate must retrace the lone run exactly, with clipping that
    # bites. (Adam does not see the 1/K at all, up to its epsilon.)
    from textrnn import ClassifierEnsemble, RNNClassifier, RNNConfig
    from textrnn.optim import clip_gradients

    config = RNNConfig(vocab_size=30, embedding_dim=8, hidden_size=8, bidirectional=True, pooling="max", ensemble_size=3)
    torch.manual_seed(0)
    ensemble = ClassifierEnsemble(config)
    alone = RNNClassifier(RNNConfig(**{**config.to_dict(), "ensemble_size": 1}))
    alone.load_state_dict(ensemble.members[1].state_dict())
    optimizers = [torch.optim.SGD(ensemble.parameters(), lr=0.3), torch.optim.SGD(alone.parameters(), lr=0.1)]
    generator, norms = torch.Generator().manual_seed(1), []
    for _ in range(5):
        ids, lengths = torch.randint(1, 30, (6, 7), generator=generator), torch.tensor([7, 5, 3, 7, 1, 2])
        labels = torch.randint(0, 2, (6,), generator=generator)
        for model, optimizer in zip((ensemble, alone), optimizers):
            optimizer.zero_grad()
            model(ids, lengths, labels)[1].backward()
            norms.append(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]))
            clip_gradients(model, 0.05)
            optimizer.step()
    assert min(norms[1::2]) > 0.05  # clipping acted on every lone step
    for (name, a), b in zip(ensemble.members[1].named_parameters(), alone.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.allclose(ensemble.members[0].head.weight, alone.head.weight)


def test_scheduler_warms_up_then_decays():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = make_scheduler(opt, warmup=4, total=20, min_ratio=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.25) and lrs[3] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1, abs=0.01) and all(a >= b for a, b in zip(lrs[3:], lrs[4:]))


def test_validation_cut_from_train_when_missing(tmp_path):
    data = write_sentiment(tmp_path / "d", train=100, validation=0)
    (data / "validation.csv").unlink()
    result = train(classifier_config(data, tmp_path / "run", "train.max_epochs=1"))
    assert result.metrics["examples"] == 10


def test_training_plan_stretches_small_datasets_and_leaves_big_ones_alone():
    from textrnn.optim import TrainingPlan

    # SST-2 with the shipped config: 1,053 steps an epoch, 4 epochs already exceed min_steps
    assert TrainingPlan.resolve(4, 500, 1053, min_steps=1200) == TrainingPlan(4, 500, 4212)
    # a 3,000-sentence set: 47 steps an epoch -> 26 epochs for 1,200 steps, evaluated after each
    assert TrainingPlan.resolve(4, 500, 47, min_steps=1200) == TrainingPlan(26, 47, 1222)
    assert TrainingPlan.resolve(4, 0, 47, min_steps=1200) == TrainingPlan(26, 0, 1222)  # 0 still means epoch ends
    assert TrainingPlan.resolve(4, 500, 47) == TrainingPlan(4, 500, 188)  # no min_steps: exactly as configured
    assert TrainingPlan.resolve(4, 500, 47, min_steps=100) == TrainingPlan(4, 500, 188)  # not stretched: the same
    assert TrainingPlan.resolve(4, 500, 47, max_steps=100, min_steps=1200).total_steps == 100


def test_min_steps_trains_more_epochs_and_evaluates_each_one(tmp_path, sentiment_dir):
    # 120 training examples / 16 -> 8 steps an epoch; min_steps 30 -> 4 epochs, each one evaluated
    result = train(classifier_config(sentiment_dir, tmp_path / "run", "train.max_epochs=2", "train.eval_every=500",
                                     "train.min_steps=30", "train.patience=null"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "validation"] == [8, 16, 24, 32]
    plan = [r for r in rows if r.get("event") == "plan"]
    assert plan and plan[0]["max_epochs"] == 4 and plan[0]["eval_every"] == 8
    assert result.stop_reason == "max_epochs" and result.step == 32


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
    with pytest.raises(ConfigError, match=r"pip install 'textrnn\[tensorboard\]'"):
        train(classifier_config(sentiment_dir, tmp_path / "run", "train.report_to=[tensorboard]"))
    with pytest.raises(ConfigError, match="train.report_to takes tensorboard"):
        classifier_config(sentiment_dir, tmp_path / "run", "train.report_to=[wandb]")


def test_layer_lr_decay_gives_each_layer_group_its_rate():
    from textrnn import RNNConfig, TextTokenizer
    from textrnn.model import _Classifier
    from textrnn.optim import make_optimizer

    tok = TextTokenizer.train(["a b c"], "word")
    model = _Classifier.build(RNNConfig(vocab_size=len(tok), embedding_dim=4, hidden_size=4, num_layers=2,
                                        bidirectional=True, pooling="attention", ensemble_size=2), tok)
    optimizer = make_optimizer(model, 0.01, 0.1, torch.device("cpu"), layer_lr_decay=2.0)
    rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    for name, param in model.named_parameters():
        want = 0.01 / 8 if "embedding" in name else 0.01 / 4 if "_l0" in name else 0.01 / 2 if "_l1" in name else 0.01
        assert rate[id(param)] == pytest.approx(want), name
        assert decay[id(param)] == (0.1 if param.dim() >= 2 and "embedding" not in name else 0.0), name
    plain = make_optimizer(model, 0.01, 0.1, torch.device("cpu"))
    assert [g["weight_decay"] for g in plain.param_groups] == [0.1, 0.0]  # off: the two groups as before


def test_gradual_unfreezing_trains_one_more_group_each_epoch(tmp_path, sentiment_dir):
    from textrnn.trainer import Trainer

    extra = ("train.max_epochs=2", "train.eval_every=0", "train.unfreeze=gradual", "train.lr=0.02")
    initial = {k: v.clone() for k, v in Trainer(classifier_config(sentiment_dir, tmp_path / "init", *extra)).model.state_dict().items()}
    train(classifier_config(sentiment_dir, tmp_path / "run", *extra))
    first, second = (weights(tmp_path / "run" / "checkpoints" / f"step-{s:08d}") for s in (8, 16))  # 8 steps an epoch
    head = [k for k in initial if k.startswith(("head", "pooling"))]
    layer = [k for k in initial if "encoder" in k]
    assert all(not torch.equal(initial[k], first[k]) for k in head)  # epoch 0: the head trains
    assert all(torch.equal(initial[k], first[k]) for k in layer)  # the encoder waits
    assert all(not torch.equal(first[k], second[k]) for k in layer)  # epoch 1: the top encoder layer joins
    assert torch.equal(initial["backbone.embedding.weight"], second["backbone.embedding.weight"])  # epoch 2 would free it
    from textrnn import ConfigError

    with pytest.raises(ConfigError, match="train.unfreeze lists 5 epochs but this model has 3 layer groups"):
        train(classifier_config(sentiment_dir, tmp_path / "bad", "train.unfreeze=[0,1,2,3,4]"))
    with pytest.raises(ConfigError, match="train.unfreeze must be null, gradual or a list of epochs"):
        classifier_config(sentiment_dir, tmp_path / "bad", "train.unfreeze=sometimes")


def test_both_tasks_implement_the_task_protocol(sentiment_dir, corpus_file, tmp_path):
    from textrnn.distributed import Dist
    from textrnn.tasks import StepOutput, Task

    for config in (classifier_config(sentiment_dir, tmp_path / "c"), lm_config(corpus_file, tmp_path / "lm")):
        task = get_task(config.task).task_class(config, Dist(), torch.device("cpu"), tmp_path / config.task)
        assert isinstance(task, Task)
        assert isinstance(task.metric, str) and isinstance(task.greater_is_better, bool)
        batch = next(task.train_loader.iterate(0))
        model = get_task(config.task).model_class.build(task.model_config(), task.tokenizer)
        out = task.step_loss(model, batch, None, contextlib.nullcontext)
        assert isinstance(out, StepOutput) and out.loss.ndim == 0 and out.tokens > 0

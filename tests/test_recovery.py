"""Losing no work: time-based checkpoints, resume before the first checkpoint, resume: auto,
elastic torchrun restarts, two torchrun nodes, the divergence guard, the honest final line."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from textrnn import TrainingError
from textrnn.training.api import train

from .conftest import ROOT, assert_same_weights, cli, weights
from .helpers import lm_config
from .test_reliability import LM_ARGS, reference_run, resume, start_training, train_here


def states(out):
    return json.loads((out / "last" / "trainer_state.json").read_text())["progress"]


def log_rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_sigkill_before_the_first_checkpoint_then_resume_starts_over(tmp_path, corpus_file):
    reference = reference_run(corpus_file, tmp_path / "ref", 24)
    out = tmp_path / "run"
    proc = start_training(corpus_file, out, 24, env={"TEXTRNN_FAULT": "kill_rank:0:3"})  # dies at step 3, eval_every=4
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL and (out / "config.yaml").is_file() and not (out / "last").exists()
    done = resume(out)
    assert done.returncode == 0, done.stderr
    assert f"note: {out} holds no checkpoint yet; starting the run from the beginning" in done.stderr
    assert_same_weights(reference, out / "last")
    stranger = tmp_path / "not_a_run"
    stranger.mkdir()
    proc = cli("train-generator", "--resume", str(stranger))
    assert proc.returncode == 2 and "is not a textrnn checkpoint" in proc.stderr


@pytest.mark.slow
def test_sigkill_after_a_timed_checkpoint_loses_at_most_one_interval(tmp_path, corpus_file):
    out = tmp_path / "run"
    # a save every 1.2 s
    timed = ["train.eval_every=100000", "train.max_epochs=100000", "train.save_every_minutes=0.02"]
    proc = start_training(corpus_file, out, 100000, extra=timed)
    deadline = time.time() + 240
    while len([r for r in log_rows_if_any(out) if r.get("event") == "timed_save"]) < 3 and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(6.0)
    killed_at = time.time()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL  # it was still training when killed
    saved_at = (out / "last" / "trainer_state.json").stat().st_mtime
    # at most one interval (1.2 s) of work lost, plus one step and one save on a loaded machine (slack 3.5 s);
    # without the timed saves the kill would lose the whole run (> 6 s here)
    assert killed_at - saved_at <= 1.2 + 3.5
    last_step = states(out)["step"]
    done = resume(out, f"train.max_steps={last_step + 10}")
    assert done.returncode == 0, done.stderr
    assert states(out)["step"] == last_step + 10


def log_rows_if_any(out):
    return log_rows(out) if (out / "metrics.jsonl").is_file() else []


@pytest.mark.slow
def test_resume_auto_relaunched_blindly_continues_the_run(tmp_path, corpus_file):
    reference = reference_run(corpus_file, tmp_path / "ref", 24)
    out = tmp_path / "run"
    first = start_training(corpus_file, out, 24, env={"TEXTRNN_FAULT": "kill_rank:0:7"}, extra=["train.resume=auto"])
    first.communicate(timeout=300)
    assert first.returncode == -signal.SIGKILL and states(out)["step"] == 4
    again = train_here(corpus_file, out, 24, "train.resume=auto")  # the same command, relaunched
    assert again.returncode == 0, again.stderr
    assert_same_weights(reference, out / "last")
    fresh = train_here(corpus_file, tmp_path / "fresh", 8, "train.resume=auto")  # nothing to resume: starts
    assert fresh.returncode == 0 and states(tmp_path / "fresh")["step"] == 8


def _fault_env(monkeypatch, spec):
    monkeypatch.setenv("TEXTRNN_FAULT", spec)
    monkeypatch.setenv("_TEXTRNN_FAULT_step", "0")  # through monkeypatch: the count is removed after the test


def test_a_loss_spike_rolls_back_to_the_last_checkpoint_at_half_the_learning_rate(tmp_path, corpus_file, monkeypatch):
    extra = ("train.max_steps=16", "train.eval_every=4", "train.patience=null", "train.keep_checkpoints=10")
    _fault_env(monkeypatch, "spike:10")
    rolled = train(lm_config(corpus_file, tmp_path / "rolled", *extra))
    assert rolled.stop_reason == "max_steps"
    progress = states(tmp_path / "rolled")
    assert progress["rollbacks"] == 1 and progress["lr_scale"] == 0.5 and progress["step"] == 16
    events = [r for r in log_rows(tmp_path / "rolled") if r.get("event") == "rollback"]
    assert len(events) == 1 and events[0]["step"] == 8 and "spiked" in events[0]["reason"]
    # The same: a clean run's step-8 checkpoint, resumed with the learning rate halved from there on.
    monkeypatch.delenv("TEXTRNN_FAULT")
    train(lm_config(corpus_file, tmp_path / "clean", *extra))
    manual = tmp_path / "manual"
    (manual / "checkpoints").mkdir(parents=True)
    step8 = manual / "checkpoints" / "step-00000008"
    subprocess.run(["cp", "-r", str(tmp_path / "clean" / "checkpoints" / "step-00000008"), str(step8)], check=True)
    state = json.loads((step8 / "trainer_state.json").read_text())
    state["progress"]["lr_scale"] = 0.5
    (step8 / "trainer_state.json").write_text(json.dumps(state))
    os.symlink("checkpoints/step-00000008", manual / "last")
    train(lm_config(corpus_file, manual, *extra), resume=str(manual))
    assert_same_weights(tmp_path / "rolled" / "last", manual / "last")


def test_a_rollback_skips_checkpoints_whose_weights_are_not_finite(tmp_path, corpus_file, monkeypatch):
    """A timed save can land between a bad update and the loss that shows it: `last` then holds NaN weights,
    and rolling back to it only diverges again until train.max_rollbacks. The rollback goes to step 4 instead."""
    from safetensors.torch import load_file, save_file

    extra = ("train.eval_every=4", "train.patience=null", "train.keep_checkpoints=10")
    train(lm_config(corpus_file, tmp_path / "run", "train.max_steps=8", *extra))
    weights_file = (tmp_path / "run" / "last").resolve() / "model.safetensors"
    poisoned = {name: tensor.fill_(float("nan")) for name, tensor in load_file(str(weights_file)).items()}
    save_file(poisoned, str(weights_file), metadata={"format": "pt"})
    result = train(lm_config(corpus_file, tmp_path / "run", "train.max_steps=12", *extra), resume=str(tmp_path / "run"))
    events = [r for r in log_rows(tmp_path / "run") if r.get("event") == "rollback"]
    assert result.step == 12 and len(events) == 1 and events[0]["step"] == 4
    assert all(torch.isfinite(t).all() for t in weights(tmp_path / "run" / "last").values())


def test_rollbacks_are_bounded_and_stop_is_still_available(tmp_path, corpus_file, monkeypatch):
    extra = ("train.max_steps=40", "train.eval_every=4", "train.patience=null")
    _fault_env(monkeypatch, "spike:10+")
    with pytest.raises(TrainingError, match=r"spiked to .* after 3 rollbacks \(train.max_rollbacks\)"):
        train(lm_config(corpus_file, tmp_path / "always", *extra))
    _fault_env(monkeypatch, "spike:6+")  # five ordinary steps to measure against, and no checkpoint yet
    with pytest.raises(TrainingError, match="before any checkpoint to roll back to"):
        train(lm_config(corpus_file, tmp_path / "early", "train.max_steps=40", "train.eval_every=100"))
    _fault_env(monkeypatch, "spike:10")
    with pytest.raises(TrainingError, match="spiked to .* at step 10"):
        train(lm_config(corpus_file, tmp_path / "stop", *extra, "train.on_divergence=stop"))


def test_final_line_reports_the_best_checkpoint_and_the_last_beside_it(tmp_path, corpus_file):
    config = tmp_path / "lm.yaml"
    config.write_text("task: language_model\n")
    proc = cli("train-generator", "--config", str(config), f"data.dataset={corpus_file}",
               f"train.output_dir={tmp_path / 'run'}", "train.max_steps=24", *LM_ARGS, "train.lr=0.05")
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    best = json.loads((tmp_path / "run" / "best" / "trainer_state.json").read_text())
    last = json.loads((tmp_path / "run" / "last" / "trainer_state.json").read_text())
    assert line["loss"] == best["metrics"]["loss"] and line["best_step"] == best["progress"]["step"]
    assert line["last"]["loss"] == last["metrics"]["loss"]
    assert line["loss"] == min(r["loss"] for r in log_rows(tmp_path / "run") if r["split"] == "validation")


def test_language_models_stop_early_by_default(tmp_path, corpus_file):
    result = train(lm_config(corpus_file, tmp_path / "run", "train.max_epochs=1000", "train.eval_every=2",
                             "train.lr=1e-9", "train.warmup_steps=1"))
    assert result.stop_reason == "early_stopping"
    evals = [r for r in log_rows(tmp_path / "run") if r["split"] == "validation"]
    assert len(evals) <= 1 + 5 + 5  # patience 5 by default: stopped soon after the loss stopped improving


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(args: list, extra_env: dict | None = None, **launch) -> subprocess.Popen:
    options = [f"--{k.replace('_', '-')}" + (f"={v}" if v != "" else "") for k, v in launch.items()]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(extra_env or {})}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *options, "-m", "textrnn", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _lm_args(corpus, out, steps=16):
    return ["train-generator", "--config", str(ROOT / "configs" / "debug.yaml"), f"data.dataset={corpus}",
            f"train.output_dir={out}", f"train.max_steps={steps}", "train.eval_every=4", "train.progress=false",
            "data.batch_size=4", "data.seq_len=16", "model.embedding_dim=12", "model.hidden_size=16",
            "train.resume=auto"]


@pytest.mark.slow
def test_torchrun_restarts_a_killed_rank_and_the_run_ends_as_an_uninterrupted_one(tmp_path, corpus_file):
    reference = _torchrun(_lm_args(corpus_file, tmp_path / "ref"), standalone="", nproc_per_node=2)
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err[-3000:]
    elastic = _torchrun(_lm_args(corpus_file, tmp_path / "run"), {"TEXTRNN_FAULT": "kill_rank:1:7"}, standalone="",
                        nproc_per_node=2, max_restarts=1)
    _, err = elastic.communicate(timeout=600)
    assert elastic.returncode == 0, err[-3000:]
    assert "failed (exitcode: -9) local_rank: 1" in err  # rank 1 did die of SIGKILL, and the group went on
    assert_same_weights(tmp_path / "ref" / "last", tmp_path / "run" / "last")


@pytest.mark.slow
def test_two_torchrun_nodes_on_this_machine_train_to_identical_weights(tmp_path, corpus_file):
    port = _free_port()
    nodes = [_torchrun(_lm_args(corpus_file, tmp_path / "run"), nnodes=2, nproc_per_node=1, rdzv_backend="c10d",
                       rdzv_endpoint=f"127.0.0.1:{port}", rdzv_id="textrnn-test") for _ in range(2)]
    for node in nodes:
        _, err = node.communicate(timeout=600)
        assert node.returncode == 0, err[-3000:]
    checksums = json.loads((tmp_path / "run" / "last" / "trainer_state.json").read_text())["rank_parameter_sha256"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    single_machine = _torchrun(_lm_args(corpus_file, tmp_path / "standalone"), standalone="", nproc_per_node=2)
    _, err = single_machine.communicate(timeout=600)
    assert single_machine.returncode == 0, err[-3000:]
    assert_same_weights(tmp_path / "standalone" / "last", tmp_path / "run" / "last")


def test_a_spike_just_after_a_resume_is_seen(tmp_path, corpus_file, monkeypatch):
    """The divergence guard's window of recent losses is resumed state: before, it started empty, so for 5 steps
    after a resume nothing was a spike, and the audit's 4e4 loss two steps in was trained on."""
    extra = ("train.max_steps=20", "train.eval_every=10", "train.on_divergence=stop")
    train(lm_config(corpus_file, tmp_path / "first", *extra))
    _fault_env(monkeypatch, "spike:2")  # the resumed process's second step
    with pytest.raises(TrainingError, match="spiked to"):
        train(lm_config(corpus_file, tmp_path / "resumed", *extra),
              resume=str(tmp_path / "first" / "checkpoints" / "step-00000010"))

"""Two CPU processes with gloo, through the real entry point (torchrun)."""

import json
import os
import subprocess
import sys

import pytest

from textrnn import load_model

from ..conftest import CORPUS, ROOT, assert_same_weights, cli, write_sentiment

SMALL = ["model.embedding_dim=16", "model.hidden_size=16", "train.progress=false", "train.warmup_steps=2"]


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "textrnn", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def logged_validation(out):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == "validation"][-1]


@pytest.mark.slow
def test_ddp_classifier_two_processes(tmp_path):
    data = write_sentiment(tmp_path / "data", train=101, validation=31)  # uneven on purpose
    out = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text("task: classification\n")
    proc = torchrun("train-classifier", "--config", str(config), f"data.dataset={data}", "data.text_column=sentence",
                    "data.batch_size=8", f"train.output_dir={out}", "train.max_epochs=2", "train.eval_every=5", *SMALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((out / "last" / "trainer_state.json").read_text())
    sums = state["rank_parameter_sha256"]
    assert len(sums) == 2 and sums[0] == sums[1]  # both ranks ended with identical parameters
    assert state["progress"]["world_size"] == 2
    load_model(out / "last")  # a plain single process loads the one checkpoint
    ev = cli("evaluate", "--checkpoint", str(out / "last"), "--dataset", str(data))
    metrics = json.loads(ev.stdout.strip().splitlines()[-1])
    logged = logged_validation(out)
    assert metrics["examples"] == logged["examples"] == 31
    assert metrics["accuracy"] == logged["accuracy"] and metrics["confusion_matrix"] == logged["confusion_matrix"]
    assert metrics["loss"] == pytest.approx(logged["loss"], rel=1e-6)


@pytest.mark.slow
def test_ddp_generator_two_processes(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    out = tmp_path / "run"
    cache = tmp_path / "cache"
    proc = torchrun("train-generator", "--config", str(ROOT / "configs" / "debug.yaml"), f"data.dataset={corpus}",
                    f"train.output_dir={out}", "train.max_steps=12", "train.eval_every=6", f"data.cache_dir={cache}",
                    *SMALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the two ranks prepared one copy, under the lock, and both mapped it; the run folder holds no token files
    assert [p.name[:3] for p in cache.iterdir() if p.is_dir()] == ["lm-"] and not list(out.rglob("*.bin"))
    assert proc.stderr.count("data: found") + proc.stderr.count("data: prepared") == 1  # rank 0 reports
    sums = json.loads((out / "last" / "trainer_state.json").read_text())["rank_parameter_sha256"]
    assert sums[0] == sums[1]
    ev = cli("evaluate", "--checkpoint", str(out / "last"), "--dataset", str(corpus))
    metrics = json.loads(ev.stdout.strip().splitlines()[-1])
    assert metrics["loss"] == pytest.approx(logged_validation(out)["loss"], rel=1e-6)
    assert metrics["tokens"] == logged_validation(out)["tokens"]


@pytest.mark.slow
def test_resume_a_two_process_run_in_one_process(tmp_path):
    data = write_sentiment(tmp_path / "data", train=64, validation=16)
    out = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text("task: classification\n")
    common = ["--config", str(config), f"data.dataset={data}", "data.text_column=sentence", "data.batch_size=8",
              f"train.output_dir={out}", "train.max_epochs=3", "train.eval_every=3", *SMALL]
    proc = torchrun("train-classifier", *common, "train.max_steps=6")
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = cli("train-classifier", "--resume", str(out), "train.max_steps=12")
    assert resumed.returncode == 0, resumed.stderr
    state = json.loads((out / "last" / "trainer_state.json").read_text())["progress"]
    assert state["step"] == 12 and state["world_size"] == 1


@pytest.mark.slow
def test_resume_with_the_same_world_size_is_exact(tmp_path):
    """With gradient accumulation too (the inner batches skip DDP's all-reduce; the ranks still agree)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    common = ["--config", str(ROOT / "configs" / "debug.yaml"), f"data.dataset={corpus}", "train.max_steps=12",
              "train.eval_every=6", "train.keep_checkpoints=5", "model.dropout=0.2", "model.num_layers=2",
              "train.accumulate_steps=2", *SMALL]
    full = torchrun("train-generator", *common, f"train.output_dir={tmp_path / 'full'}")
    assert full.returncode == 0, full.stderr[-3000:]
    middle = tmp_path / "full" / "checkpoints" / "step-00000006"
    resumed = torchrun("train-generator", *common, f"train.output_dir={tmp_path / 'resumed'}", "--resume", str(middle))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_weights(tmp_path / "full" / "last", tmp_path / "resumed" / "last")
    sums = json.loads((tmp_path / "resumed" / "last" / "trainer_state.json").read_text())["rank_parameter_sha256"]
    assert sums[0] == sums[1]


@pytest.mark.slow  # the rank split itself is tests/data/test_streaming.py, in the default run
def test_ddp_streaming_two_processes_each_read_their_part(tmp_path):
    data = write_sentiment(tmp_path / "data", train=101, validation=31)
    out = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text("task: classification\n")
    proc = torchrun("train-classifier", "--config", str(config), f"data.dataset={data}", "data.text_column=sentence",
                    "data.batch_size=8", "data.streaming=true", "data.shuffle_buffer=30", f"train.output_dir={out}",
                    "train.max_steps=10", "train.eval_every=5", *SMALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((out / "last" / "trainer_state.json").read_text())
    assert state["rank_parameter_sha256"][0] == state["rank_parameter_sha256"][1]
    import torch

    loaders = torch.load(out / "last" / "trainer_state.pt", weights_only=True)["loader_states"]
    # one state per rank; each read ~50 of the 101 rows (its own half: tests/data/test_streaming.py), so 10 steps
    # of 8 went past the end of a pass into the next one
    assert len(loaders) == 2 and all(state["epoch"] >= 1 for state in loaders)

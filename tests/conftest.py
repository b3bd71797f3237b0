"""Shared fixtures: tiny datasets written on the fly (tests never need the network)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

# Tests never reach the Hub: say so before huggingface_hub reads its settings at import, or a
# Hub name costs ~25 s of retries against an unreachable network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The web export's JavaScript (`textrnn fetch-web`, which `make test` runs) stays where the user's
# cache has it: resolved before the cache below is replaced.
from textrnn.serving.web_runtime import RUNTIME_ENV, runtime_dir  # noqa: E402

os.environ[RUNTIME_ENV] = str(runtime_dir())
# Prepared data goes to a cache of this test session (subprocesses inherit it), never ~/.cache.
os.environ["TEXTRNN_CACHE"] = tempfile.mkdtemp(prefix="textrnn-test-cache-")
atexit.register(shutil.rmtree, os.environ["TEXTRNN_CACHE"], True)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

CORPUS = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n\n"
) * 40


def write_sentiment(folder: Path, train: int = 120, validation: int = 30, seed: int = 0) -> Path:
    """A folder with train.csv and validation.csv (columns sentence, label in pos/neg)."""
    from textrnn.data.loading import write_tiny_sentiment

    return write_tiny_sentiment(folder, train, validation, seed)


@pytest.fixture(autouse=True)
def torch_seeded() -> None:
    """Every test starts from one torch seed. torch seeds its global generator from the OS in each process, so an
    unseeded model's weights differ from run to run, and a threshold that holds for most draws (int8's agreement
    with fp32 on a random model) failed about one run in three."""
    import torch

    torch.manual_seed(0)


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """The lines textrnn logs while the test runs: a handler on the package's logger, removed after."""
    import logging

    lines: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("textrnn")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def sentiment_dir(tmp_path: Path) -> Path:
    return write_sentiment(tmp_path / "sentiment")


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS, encoding="utf-8")
    return path


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m textrnn ARGS`` in a subprocess, as a user would."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "textrnn", *args], cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``textrnn ARGS`` in this process (``textrnn.cli.main``), as ``run_cli`` reports it: exit status,
    stdout and stderr. Behaviour tests use this; ``run_cli`` is kept for the entry point and for signals, which
    need a process of their own. Spares each call the 2 s of a fresh interpreter importing torch."""
    import contextlib
    import io

    import torch

    from textrnn.cli import main

    out, err, threads, here = io.StringIO(), io.StringIO(), torch.get_num_threads(), os.getcwd()
    try:
        os.chdir(cwd or ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(here)
        torch.set_num_threads(threads)  # train.num_threads must not slow the tests after it
    return subprocess.CompletedProcess(["textrnn", *args], code, out.getvalue(), err.getvalue())


def needs_shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (it lives beside the project checkout)")
    return path


def weights(folder: Path) -> dict:
    """The tensors of a checkpoint folder's model.safetensors."""
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    """Two checkpoint folders hold bit-identical weights under the same names."""
    import torch

    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.fixture
def char_tok():
    """A char tokenizer of tests.helpers.TEXT (the models' tests share it)."""
    from .helpers import char_tokenizer

    return char_tokenizer()


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory) -> Path:
    """One small BiLSTM classifier trained on :func:`write_sentiment` data, shared (read-only) by the card,
    export and server tests: its run folder ``run`` (several checkpoints, each with its card) beside ``data``."""
    from textrnn import load_config
    from textrnn.training.api import train

    tmp = tmp_path_factory.mktemp("trained_classifier")
    data = write_sentiment(tmp / "data")
    train(load_config(None, [f"data.dataset={data}", "data.text_column=sentence", f"train.output_dir={tmp / 'run'}",
                             "data.batch_size=16", "model.embedding_dim=16", "model.hidden_size=16",
                             "model.bidirectional=true", "train.max_epochs=3", "train.lr=0.02", "train.eval_every=4",
                             "train.keep_checkpoints=10", "train.progress=false"], task="classification"))
    return tmp / "run"


@pytest.fixture(scope="session")
def trained_generator(tmp_path_factory) -> Path:
    """One small char LSTM language model trained on :data:`CORPUS`, shared (read-only) by the decoding and
    server tests: its run folder."""
    from textrnn import load_config
    from textrnn.training.api import train

    tmp = tmp_path_factory.mktemp("trained_generator")
    corpus = tmp / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    train(load_config(None, [f"data.dataset={corpus}", f"train.output_dir={tmp / 'run'}", "tokenizer.kind=char",
                             "data.batch_size=8", "data.seq_len=32", "model.embedding_dim=16",
                             "model.hidden_size=48", "train.max_steps=150", "train.max_epochs=100", "train.lr=0.01",
                             "train.progress=false"], task="language_model"))
    return tmp / "run"

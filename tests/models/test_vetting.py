"""Checkpoint folders crafted to hurt whoever loads them (issue 38): each must be a one-line error within seconds
and in bounded memory. Before the fix, ``ensemble_size: 400`` beside one member's weights reached 3.9 GB,
``num_layers: 20000`` was still loading at 300 s, a FIFO hung the load and a link to /dev/zero read until memory
ran out; a backtracking tokenizer regex stalled a server's worker.

The loads run in one child process, which reports each case's seconds and how much its peak RSS grew.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ..conftest import ROOT
from ..helpers import char_tokenizer, classifier


def config_change(**change):
    def craft(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, **change}))
    return craft


def replaced(name: str, how: str):
    def craft(folder: Path) -> None:
        path = folder / name
        path.unlink()
        if how == "fifo":
            os.mkfifo(path)
        elif how == "zero":
            path.symlink_to("/dev/zero")
        elif how == "folder":
            path.mkdir()
    return craft


def weights_edit(edit):
    def craft(folder: Path) -> None:
        state = load_file(str(folder / "model.safetensors"))
        save_file(edit(state), str(folder / "model.safetensors"))
    return craft


def write(name: str, data: bytes):
    def craft(folder: Path) -> None:
        (folder / name).write_bytes(data)
    return craft


def regex_tokenizer(folder: Path) -> None:
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    tokenizer["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(a|a)+$"}, "behavior": "Isolated",
                                  "invert": False}
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))


def truncated(folder: Path) -> None:
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:200])


FIRST = "members.0.backbone.embedding.weight"
CASES = {
    "400 ensemble members declared": (config_change(ensemble_size=400), "declares ensemble members 400"),
    "20000 layers declared": (config_change(num_layers=20000), "declares layers 20000"),
    "hidden_size 1e9 (a float)": (config_change(hidden_size=1e9), "hidden_size must be an integer"),
    "hidden_size 10**9": (config_change(hidden_size=10**9), "declares a hidden_size of 1000000000"),
    "embedding_dim 10**8": (config_change(embedding_dim=10**8), "declares an embedding_dim of 100000000"),
    "100000 labels declared": (config_change(num_labels=100_000, label_names=None, thresholds=None), "head"),
    "vocab_size 10**9": (config_change(vocab_size=10**9), "tokenizer has"),
    "weights a FIFO": (replaced("model.safetensors", "fifo"), "not a regular file"),
    "config a FIFO": (replaced("config.json", "fifo"), "not a regular file"),
    "tokenizer a FIFO": (replaced("tokenizer.json", "fifo"), "not a regular file"),
    "weights a link to /dev/zero": (replaced("model.safetensors", "zero"), "not a regular file"),
    "config a link to /dev/zero": (replaced("config.json", "zero"), "not a regular file"),
    "tokenizer a link to /dev/zero": (replaced("tokenizer.json", "zero"), "not a regular file"),
    "weights a folder": (replaced("model.safetensors", "folder"), "not a regular file"),
    "weights truncated": (truncated, "corrupt or truncated"),
    "a 1 TB header declared": (write("model.safetensors", struct.pack("<Q", 1 << 40) + b"{}"), "corrupt"),
    "a 2 MB config.json": (write("config.json", b" " * (2 << 20) + b"{}"), "over the 1,048,576"),
    "config.json a list": (write("config.json", b"[]"), "not a textrnn config"),
    "config.json not JSON": (write("config.json", b"{task: "), "is corrupt"),
    "weights stored as int8": (weights_edit(lambda s: {k: v.to(torch.int8) for k, v in s.items()}), "stored as I8"),
    "a tensor the config does not build": (weights_edit(lambda s: {**s, "members.0.spy": torch.zeros(3)}),
                                           "does not build"),
    "a tensor missing": (weights_edit(lambda s: {k: v for k, v in s.items() if k != FIRST}), "corrupt"),
    "a backtracking tokenizer regex": (regex_tokenizer, "never writes"),
}

CHILD = """
import json, resource, sys, time
from textrnn import TextRNNError, load_model
load_model(sys.argv[1])  # warm: what a good folder costs is not counted
for folder in sys.argv[2:]:
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    try:
        load_model(folder)
        error = None
    except TextRNNError as exc:
        error = str(exc)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({"folder": folder, "seconds": time.perf_counter() - start, "grown_mb": grown, "error": error}),
          flush=True)
"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("hostile")
    model = classifier(char_tokenizer(), ensemble_size=2)
    model.save_pretrained(root / "good")
    folders = []
    for i, (name, (craft, _)) in enumerate(CASES.items()):
        folder = root / f"case{i}"
        model.save_pretrained(folder)
        craft(folder)
        folders.append(str(folder))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root / "good"), *folders], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    return {name: row for name, row in zip(CASES, rows)}


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_folder_is_one_line_within_seconds_in_bounded_memory(reports, name):
    row = reports[name]
    expected = CASES[name][1]
    assert row["error"] is not None and "\n" not in row["error"], row
    assert expected in row["error"], row["error"]
    assert row["seconds"] < 5 and row["grown_mb"] < 150, row


def test_a_state_file_that_never_ends_is_refused(tmp_path):
    from textrnn import CheckpointError
    from textrnn.training.run_folder import saved_experiment

    (tmp_path / "trainer_state.json").symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match="not a regular file"):
        saved_experiment(tmp_path)

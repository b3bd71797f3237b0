"""ONNX export: parity with torch in onnxruntime, the torch-free example, the CLI and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from textrnn import RNNConfig, RNNLanguageModel, TextTokenizer
from textrnn.models.classifier import TextClassifier

from ..conftest import ROOT, cli

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from textrnn.serving.export import TOLERANCE, example_feeds, export_onnx, torch_outputs  # noqa: E402

WORDS = "the a film was good bad great dull plot acting long short funny sad".split()


@pytest.fixture(scope="module")
def tokenizer():
    return TextTokenizer.train([" ".join(WORDS)] * 3, "word")


def classifier(tokenizer, **kw):
    config = RNNConfig(vocab_size=len(tokenizer), embedding_dim=12, hidden_size=10, num_labels=3,
                       label_names=["neg", "neu", "pos"], **kw)
    return TextClassifier.build(config, tokenizer)


def worst_difference(model, path, feeds) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    return max(float(np.abs(g - w).max()) for g, w in zip(got, torch_outputs(model, feeds)))


def length_cases(model, steps: int = 23) -> list[dict]:
    """Batches of 1 and 64; every length 1, every length T, mixed and unsorted."""
    cases = [example_feeds(model, 1, 1, seed=0), example_feeds(model, 1, steps, seed=1),
             example_feeds(model, 64, steps, seed=2), example_feeds(model, 64, 5, seed=3)]
    for feeds, length in (
        (example_feeds(model, 64, steps, seed=4), 1),
        (example_feeds(model, 64, steps, seed=5), steps),
    ):
        feeds["lengths"][:] = length
        feeds["input_ids"][:, length:] = 0
        cases.append(feeds)
    unsorted = cases[2]["lengths"]
    assert not (np.all(unsorted[:-1] <= unsorted[1:]) or np.all(unsorted[:-1] >= unsorted[1:]))
    return cases


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_parity_every_cell_direction_and_length(tmp_path, tokenizer, cell, bidirectional):
    model = classifier(tokenizer, cell=cell, bidirectional=bidirectional, num_layers=2, pooling="attention")
    path = export_onnx(model, tmp_path / "m.onnx")
    for feeds in length_cases(model):
        assert worst_difference(model, path, feeds) <= TOLERANCE


@pytest.mark.parametrize(
    "kw",
    [
        dict(pooling="last"),
        dict(pooling="mean"),
        dict(pooling="max"),
        dict(pooling="max", ensemble_size=3),
        dict(pooling="last", problem_type="multi_label", thresholds=[0.3, 0.5, 0.7]),
    ],
)
def test_classifier_parity_poolings_ensembles_and_multi_label(tmp_path, tokenizer, kw):
    model = classifier(tokenizer, bidirectional=True, **kw)
    path = export_onnx(model, tmp_path / "m.onnx")
    for feeds in length_cases(model):
        assert worst_difference(model, path, feeds) <= TOLERANCE
    probabilities = torch_outputs(model, length_cases(model)[2])[0]
    rows_sum_to_one = np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert rows_sum_to_one == (kw.get("problem_type") != "multi_label")  # sigmoids do not sum to one


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_language_model_step_parity_and_greedy_generation(tmp_path, tokenizer, cell):
    config = RNNConfig(task="language_model", vocab_size=len(tokenizer), embedding_dim=12, hidden_size=10, num_layers=2,
                       cell=cell, tie_weights=True, tokenizer_kind="word")
    model = RNNLanguageModel(config, tokenizer)
    path = export_onnx(model, tmp_path / "lm.onnx")
    for batch in (1, 64):
        assert worst_difference(model, path, example_feeds(model, batch, 1, seed=batch)) <= TOLERANCE
    # 20 greedy steps in onnxruntime, the state carried, give the torch model's greedy tokens
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    state = [np.zeros((2, 1, 10), np.float32) for _ in names[1:]]
    token, tokens = np.array([[5]]), []
    for _ in range(20):
        logits, *state = session.run(None, {"input_ids": token, **dict(zip(names[1:], state))})
        logits[:, model.never_sampled()] = -np.inf  # as textrnn's sampler does
        token = logits.argmax(-1)[:, None]
        tokens.append(int(token[0, 0]))
    import torch

    expected = model.generate(torch.tensor([5]), 20, temperature=0).tolist()[0]
    assert tokens == expected


def test_export_refuses_a_graph_that_differs(tmp_path, tokenizer, monkeypatch):
    import textrnn.serving.export as export

    model = classifier(tokenizer)
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # no graph can pass: the check must stop the write
    with pytest.raises(export.TextRNNError, match="differs from torch"):
        export.export_onnx(model, tmp_path / "m.onnx")
    assert not any(tmp_path.iterdir())  # nothing half-written


@pytest.fixture
def trained(trained_classifier):
    return trained_classifier


def test_cli_export_and_the_torch_free_example(trained, tmp_path):
    out = tmp_path / "model.onnx"
    proc = cli("export", "--checkpoint", str(trained), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"] == str(out) and out.stat().st_size > 0
    texts = ["a good film", "bad plot and dull acting", "", "great great great funny"]
    expected = [json.loads(line) for line in cli("predict", "--checkpoint", str(trained),
                                                     *texts).stdout.splitlines()]
    blocker = tmp_path / "blocked"
    for name in ("torch", "textrnn"):  # importing either fails in the example's process
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} is not available here')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert "torch is not available here" in check.stderr
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "onnx_predict.py"), str(out), *texts], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    for g, e in zip(got, expected):
        assert max(abs(g["probabilities"][k] - e["probabilities"][k]) for k in e["probabilities"]) <= TOLERANCE


def test_export_errors_are_one_line(trained, tmp_path):
    cases = [(["--checkpoint", str(tmp_path / "nowhere"), "--output", str(tmp_path / "m.onnx")],
               "not found|no such|does not exist"),
             (["--checkpoint", str(trained), "--output", str(tmp_path / "missing" / "m.onnx")],
               "output folder .* does not exist"),
             (["--checkpoint", str(trained), "--format", "tflite", "--output", str(tmp_path / "m.onnx")],
               "invalid choice")]
    bad_format = tmp_path / "future"
    bad_format.mkdir()
    (bad_format / "config.json").write_text(json.dumps({"task": "classification", "format_version": 99}))
    cases.append((["--checkpoint", str(bad_format), "--output", str(tmp_path / "m.onnx")], "format"))
    for args, pattern in cases:
        proc = cli("export", *args)
        assert proc.returncode == 2, proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert "Traceback" not in proc.stderr and __import__("re").search(pattern, last, flags=2), proc.stderr


def test_exported_and_saved_files_get_the_umask_mode_not_a_temporary_files_0600(tmp_path, tokenizer):
    """mkstemp (ONNX export) and safetensors (the weights) create files 0600: a container user could not read
    them. Each now gets what the umask gives any new file."""
    old = os.umask(0o022)
    try:
        model = classifier(tokenizer)
        onnx_file = export_onnx(model, tmp_path / "model.onnx")
        folder = model.save_pretrained(tmp_path / "checkpoint")
        modes = {path.name: path.stat().st_mode & 0o777 for path in [onnx_file, *folder.iterdir()] if path.is_file()}
    finally:
        os.umask(old)
    assert modes and set(modes.values()) == {0o644}, modes

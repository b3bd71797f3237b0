"""int8 ONNX: every cell and direction exports, LSTMs become DynamicQuantizeLSTM, and the agreement
with fp32 is measured, recorded in the file and printed (int8 is close, not exact)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textrnn import RNNConfig, RNNLanguageModel, TextTokenizer
from textrnn.models.classifier import TextClassifier

from ..conftest import cli

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from textrnn.serving.export import TextRNNError, example_feeds, export_onnx, torch_outputs  # noqa: E402
from textrnn.serving.quantize import Agreement, compare, read_agreement  # noqa: E402

WORDS = "the a film was good bad great dull plot acting long short funny sad".split()


@pytest.fixture(scope="module")
def tokenizer():
    return TextTokenizer.train([" ".join(WORDS)] * 3, "word")


def op_types(path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def run(path, feeds) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_int8_classifier_of_every_cell_and_direction(tmp_path, tokenizer, cell, bidirectional):
    config = RNNConfig(vocab_size=len(tokenizer), embedding_dim=32, hidden_size=32, num_labels=3, cell=cell,
                       bidirectional=bidirectional, pooling="attention", label_names=["neg", "neu", "pos"])
    model = TextClassifier.build(config, tokenizer)
    fp32, int8 = export_onnx(model, tmp_path / "fp32.onnx"), export_onnx(model, tmp_path / "int8.onnx",
                                                                           quantize="int8")
    ops = op_types(int8)
    assert "MatMulInteger" in ops  # the attention and output projections run in int8
    assert ("DynamicQuantizeLSTM" in ops) == (cell == "lstm")  # onnxruntime has int8 kernels for LSTM only
    assert read_agreement(fp32) is None
    report = read_agreement(int8)
    assert report["output"] == "probabilities" and report["rows"] == 256
    # the recorded numbers are the ones a fresh comparison gives, on other inputs too
    feeds = example_feeds(model, batch=64, steps=23, seed=7)
    reference, candidate = torch_outputs(model, feeds)[0], run(int8, feeds)[0]
    assert 0 < np.abs(reference - candidate).max() < 0.1  # close, and not the fp32 graph in disguise
    assert np.allclose(candidate.sum(1), 1, atol=1e-5)
    names = [m.key for m in onnx.load(str(int8)).metadata_props]
    assert "tokenizer_json" in names and "label_names" in names  # what a deployment reads travels along


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_int8_language_model_step_and_its_agreement(tmp_path, tokenizer, cell):
    config = RNNConfig(task="language_model", vocab_size=len(tokenizer), embedding_dim=16, hidden_size=16,
                       num_layers=2, cell=cell, tie_weights=True, tokenizer_kind="word")
    model = RNNLanguageModel(config, tokenizer)
    path = export_onnx(model, tmp_path / "lm.onnx", quantize="int8")
    assert ("DynamicQuantizeLSTM" in op_types(path)) == (cell == "lstm")
    report = read_agreement(path)
    assert report["output"] == "log_probabilities" and report["rows"] == 16 * 64
    assert 0.5 <= report["top1"] <= 1 and 0 < report["max_abs_diff"] < 1
    feeds = example_feeds(model, batch=3, seed=2)
    logits, *state = run(path, feeds)
    assert logits.shape == (3, len(tokenizer)) and all(s.shape == (2, 3, 16) for s in state)


def test_agreement_counts_rows_that_change_their_answer():
    reference = np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5 - 1e-3]])
    candidate = np.array([[0.8, 0.2], [0.6, 0.4], [0.5, 0.5 - 1e-3]])
    agreement = compare(reference, candidate, "probabilities")
    assert agreement == Agreement("probabilities", 3, pytest.approx(2 / 3), pytest.approx(0.2),
                                 pytest.approx((0.1 + 0.2) * 2 / 6))
    assert agreement.as_dict()["top1"] == 0.6667


def test_unknown_quantization_is_one_line(tmp_path, tokenizer):
    model = TextClassifier.build(RNNConfig(vocab_size=len(tokenizer), embedding_dim=8, hidden_size=8, num_labels=2),
                              tokenizer)
    with pytest.raises(TextRNNError, match="unknown quantization 'int4'; use one of int8"):
        export_onnx(model, tmp_path / "m.onnx", quantize="int4")
    assert not any(tmp_path.iterdir())


def test_cli_int8_export_prints_the_agreement(tmp_path, tokenizer):
    model = TextClassifier.build(RNNConfig(vocab_size=len(tokenizer), embedding_dim=32, hidden_size=32, num_labels=2,
                                        bidirectional=True), tokenizer)
    model.save_pretrained(tmp_path / "ckpt")
    result = cli("export", "--checkpoint", str(tmp_path / "ckpt"), "--output", str(tmp_path / "m.onnx"),
                     "--quantize", "int8")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["int8_agreement"] == read_agreement(tmp_path / "m.onnx")
    assert report["bytes"] == (tmp_path / "m.onnx").stat().st_size


def test_int8_fp32_rnn_keeps_the_recurrent_cell_in_fp32(tmp_path, tokenizer):
    """The lighter choice: embeddings and linear layers in int8, the LSTM as fp32 ONNX LSTM."""
    config = RNNConfig(vocab_size=len(tokenizer), embedding_dim=32, hidden_size=32, num_labels=3,
                       bidirectional=True, pooling="attention")
    model = TextClassifier.build(config, tokenizer)
    full, light = (export_onnx(model, tmp_path / f"{q}.onnx", quantize=q) for q in ("int8", "int8-fp32-rnn"))
    ops = op_types(light)
    assert "LSTM" in ops and "DynamicQuantizeLSTM" not in ops and "MatMulInteger" in ops
    assert "DynamicQuantizeLSTM" in op_types(full)
    assert read_agreement(light)["max_abs_diff"] < read_agreement(full)["max_abs_diff"]

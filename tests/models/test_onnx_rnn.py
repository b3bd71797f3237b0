"""The encoder in an ONNX export: one native recurrent node a layer, its weights in ONNX's layout, and parity
with torch where rows are empty."""

from __future__ import annotations

import pytest
import torch

from textrnn import TextTokenizer
from textrnn.models.cells import KERNELS
from textrnn.models.onnx_rnn import onnx_weights

from ..serving.test_export import TOLERANCE, WORDS, classifier, example_feeds, export_onnx, worst_difference


@pytest.fixture(scope="module")
def tokenizer():
    return TextTokenizer.train([" ".join(WORDS)] * 3, "word")


def test_onnx_weights_put_the_gate_blocks_in_onnx_order():
    H, In = 3, 2
    w_ih = torch.arange(4 * H * In, dtype=torch.float32).view(4 * H, In)  # PyTorch's blocks i, f, g, o
    w_hh = torch.arange(4 * H * H, dtype=torch.float32).view(4 * H, H)
    b_ih, b_hh = torch.arange(4 * H, dtype=torch.float32), 100 + torch.arange(4 * H, dtype=torch.float32)
    w, r, b = onnx_weights(KERNELS["lstm"], [[w_ih, w_hh, b_ih, b_hh]] * 2)
    i, f, g, o = w_ih.chunk(4)
    assert w.shape == (2, 4 * H, In) and r.shape == (2, 4 * H, H) and b.shape == (2, 8 * H)
    assert torch.equal(w[1], torch.cat([i, o, f, g]))  # ONNX's i, o, f, c
    bi, bf, bg, bo = b_hh.chunk(4)
    assert torch.equal(b[0, 4 * H:], torch.cat([bi, bo, bf, bg]))  # then the recurrent biases
    r_, z_, n_ = w_ih[: 3 * H].chunk(3)
    assert torch.equal(onnx_weights(KERNELS["gru"], [[w_ih[: 3 * H], w_hh[: 3 * H], b_ih[: 3 * H],
                                                      b_hh[: 3 * H]]])[0][0], torch.cat([z_, r_, n_]))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_encoder_exports_as_one_native_node_a_layer(tmp_path, tokenizer, cell, bidirectional):
    import onnx

    model = classifier(tokenizer, cell=cell, bidirectional=bidirectional, num_layers=2, pooling="last")
    graph = onnx.load(str(export_onnx(model, tmp_path / "m.onnx"))).graph
    nodes = [n for n in graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
    assert len(nodes) == 2  # one a layer, both directions in it
    direction = "bidirectional" if bidirectional else "forward"
    for node in nodes:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attributes["direction"] == direction.encode() and attributes["hidden_size"] == 10
        assert node.input[4]  # sequence_lens: the operator itself keeps each row within its length
    assert not {"GatherElements", "ScatterND"} & {n.op_type for n in graph.node}  # no reversal by hand


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_classifier_parity_with_empty_rows(tmp_path, tokenizer, cell):
    model = classifier(tokenizer, cell=cell, bidirectional=True, num_layers=2, pooling="last")
    path = export_onnx(model, tmp_path / "m.onnx")
    feeds = example_feeds(model, 6, 9, seed=7)
    feeds["lengths"][[1, 4]] = 0  # empty texts: their initial state, as in torch
    feeds["input_ids"][[1, 4]] = 0
    assert worst_difference(model, path, feeds) <= TOLERANCE

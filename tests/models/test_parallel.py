"""minGRU and minLSTM: the scans equal a step-by-step reference (values and gradients), padding is invisible, the
backward direction reads each text from its own end, state carries across windows, and generation's step form
gives the scan's outputs."""

from __future__ import annotations

import pytest
import torch

from textrnn import RNNConfig, RNNLanguageModel
from textrnn.core.config import BLOCKS
from textrnn.models.parallel import MinGRUScan, ParallelEncoder, doubling_scan, loop_scan

from ..helpers import char_tokenizer, classifier

CELLS = ["mingru", "minlstm"]
SCANS = ["loop", "doubling"]


def reference(encoder: ParallelEncoder, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One text (1, T, E), unidirectional, one step at a time with plain tensor ops: the definition."""
    h = [s[0] for s in state]  # per layer (H,)
    outs = []
    for t in range(x.size(1)):
        inp = x[0, t]
        for k, layer in enumerate(encoder.layers):
            a, b = layer.coefficients(inp)
            h[k] = a * h[k] + b
            inp = h[k]
        outs.append(inp)
    return torch.stack(outs)[None], torch.stack(h)[:, None]


@pytest.mark.parametrize("scan", SCANS)
def test_each_scan_equals_the_recurrence_with_its_gradients_in_float64(scan):
    torch.manual_seed(0)
    a = torch.rand(41, 3, 4, dtype=torch.float64, requires_grad=True)  # time-major (T, B, H)
    b = torch.randn(41, 3, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    run = loop_scan if scan == "loop" else doubling_scan
    assert torch.autograd.gradcheck(run, (a, b, h0))
    h, expected = h0, []
    for t in range(41):
        h = a[t] * h + b[t]
        expected.append(h)
    assert torch.allclose(run(a, b, h0), torch.stack(expected), atol=1e-12)


def test_the_fused_mingru_node_has_the_gradients_of_its_definition_in_float64():
    torch.manual_seed(6)
    gates = torch.randn(9, 3, 8, dtype=torch.float64, requires_grad=True)  # (T, N, 2H), H = 4
    h0 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    mask = (torch.arange(9)[:, None] < torch.tensor([9, 4, 0])[None, :]).double()[:, :, None]  # (T, N, 1)
    for m in (None, mask):
        assert torch.autograd.gradcheck(lambda g, h: MinGRUScan.apply(g, m, h), (gates, h0))
    k, candidate = gates.chunk(2, dim=-1)
    z = torch.sigmoid(k) * mask
    h, expected = h0, []
    for t in range(9):
        h = (1 - z[t]) * h + z[t] * candidate[t]
        expected.append(h)
    assert torch.allclose(MinGRUScan.apply(gates, mask, h0), torch.stack(expected), atol=1e-12)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_fused_mingru_training_path_equals_the_general_one(bidirectional):
    torch.manual_seed(7)
    fused = ParallelEncoder(5, 4, num_layers=2, cell="mingru", bidirectional=bidirectional, scan="loop").double()
    general = ParallelEncoder(5, 4, num_layers=2, cell="mingru", bidirectional=bidirectional, scan="doubling").double()
    general.load_state_dict(fused.state_dict())
    x, lengths = torch.randn(3, 11, 5, dtype=torch.float64), torch.tensor([11, 6, 1])
    state = torch.randn(2 * (1 + bidirectional), 3, 4, dtype=torch.float64)
    results = []
    for encoder in (fused, general):
        out, final = encoder(x, lengths, state)
        (out.square().sum() + final.sum()).backward()
        results.append([out, final, *(p.grad for p in encoder.parameters())])
    assert all(torch.allclose(f, g, atol=1e-10) for f, g in zip(*results))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("scan", SCANS)
def test_the_encoder_equals_the_step_by_step_definition(cell, scan):
    torch.manual_seed(1)
    encoder = ParallelEncoder(6, 5, num_layers=2, cell=cell, scan=scan).double()
    x, state = torch.randn(1, 13, 6, dtype=torch.float64), torch.randn(2, 1, 5, dtype=torch.float64)
    out, final = encoder(x, None, state)
    want_out, want_final = reference(encoder, x, state)
    assert torch.allclose(out, want_out, atol=1e-10) and torch.allclose(final, want_final, atol=1e-10)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("block", BLOCKS)
def test_a_padded_batch_gives_each_text_what_it_gives_alone(cell, bidirectional, block):
    torch.manual_seed(2)
    encoder = ParallelEncoder(4, 3, num_layers=2, cell=cell, bidirectional=bidirectional, block=block).double()
    lengths = torch.tensor([7, 3, 0, 5])
    x = torch.randn(4, 7, 4, dtype=torch.float64, requires_grad=True)
    out, final = encoder(x, lengths)
    out.sum().backward()
    for i, n in enumerate(lengths.tolist()):
        alone_x = x[i : i + 1, :n].detach().requires_grad_()
        alone, alone_final = encoder(alone_x, None)
        assert torch.allclose(out[i, :n], alone[0], atol=1e-12) and not out[i, n:].any()
        assert torch.allclose(final[:, i], alone_final[:, 0], atol=1e-12)
        alone.sum().backward()
        assert torch.allclose(x.grad[i, :n], alone_x.grad[0], atol=1e-12) and not x.grad[i, n:].any()


@pytest.mark.parametrize("cell", CELLS)
def test_the_pad_values_do_not_matter(cell):
    torch.manual_seed(3)
    encoder = ParallelEncoder(4, 3, cell=cell, bidirectional=True)
    x, lengths = torch.randn(2, 6, 4), torch.tensor([6, 2])
    noisy = x.clone()
    noisy[1, 2:] = torch.randn(4, 4) * 100
    assert torch.equal(encoder(x, lengths)[0], encoder(noisy, lengths)[0])
    assert torch.equal(encoder(x, lengths)[1], encoder(noisy, lengths)[1])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("block", BLOCKS)
def test_state_carried_across_windows_equals_one_long_forward(cell, block):
    torch.manual_seed(4)
    encoder = ParallelEncoder(4, 3, num_layers=2, cell=cell, block=block)
    x = torch.randn(2, 24, 4)
    whole, whole_final = encoder(x)
    first, state = encoder(x[:, :10])
    second, final = encoder(x[:, 10:], None, state)
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-6)
    assert torch.allclose(final, whole_final, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("block", BLOCKS)
def test_the_step_form_gives_the_scan_outputs_in_float32(cell, block):
    torch.manual_seed(5)
    encoder = ParallelEncoder(4, 8, num_layers=2, cell=cell, block=block)
    x = torch.randn(1, 30, 4)
    out, _ = encoder(x)
    stepper = encoder.fused_step(encoder.initial_state(1, x), rows=3)
    steps = torch.stack([stepper.step(x[0, t].expand(3, -1)) for t in range(30)], 1)  # (3, 30, H)
    assert torch.allclose(steps, out.expand(3, -1, -1), atol=1e-5)


def test_the_mlp_block_is_the_residual_block_plus_a_residual_mlp_after_each_layer():
    torch.manual_seed(3)
    with_mlp = ParallelEncoder(4, 8, num_layers=2, block="residual_mlp")
    without = ParallelEncoder(4, 8, num_layers=2, block="residual")
    missing, unexpected = without.load_state_dict(with_mlp.state_dict(), strict=False)
    assert not missing and unexpected and all(key.startswith("mlps.") for key in unexpected)
    x = torch.randn(2, 5, 4)
    assert not torch.allclose(with_mlp(x)[0], without(x)[0])
    for mlp in with_mlp.mlps:  # an MLP that adds nothing leaves the residual stack
        torch.nn.init.zeros_(mlp.out.weight)
        torch.nn.init.zeros_(mlp.out.bias)
    assert torch.allclose(with_mlp(x)[0], without(x)[0], atol=1e-6)


@pytest.mark.parametrize("cell,block", [("mingru", "plain"), ("minlstm", "plain"), ("mingru", "residual"),
                                        ("mingru", "residual_mlp")])
def test_a_parallel_language_model_generates_the_argmax_of_full_forwards_and_round_trips(cell, block, tmp_path):
    tok = char_tokenizer()
    config = RNNConfig(task="language_model", vocab_size=len(tok), embedding_dim=8, hidden_size=16, num_layers=2,
                       cell=cell, tokenizer_kind="char", block=block)
    torch.manual_seed(6)
    model = RNNLanguageModel(config, tok).eval()
    prompt = torch.tensor(tok.encode("the quick"))
    greedy = model.generate(prompt, max_new_tokens=12, temperature=0)[0]
    ids = prompt.tolist()
    banned = model.never_sampled()
    for _ in range(12):
        logits, _, _ = model(torch.tensor([ids]))
        last = logits[0, -1].clone()
        last[banned] = float("-inf")
        ids.append(int(last.argmax()))
    assert greedy.tolist() == ids[len(prompt):]
    model.save_pretrained(tmp_path / "lm")
    again = RNNLanguageModel.from_pretrained(tmp_path / "lm")
    assert again.generate(prompt, max_new_tokens=12, temperature=0)[0].tolist() == greedy.tolist()


@pytest.mark.parametrize("cell", CELLS)
def test_a_parallel_bidirectional_ensemble_classifier_predicts_and_round_trips(cell, tmp_path):
    from textrnn import load_model

    model = classifier(char_tokenizer(), cell=cell, bidirectional=True, num_layers=2, ensemble_size=2,
                       pooling="attention")
    texts = ["the quick brown fox", "a stitch", ""]
    model.save_pretrained(tmp_path / "cls")
    again = load_model(tmp_path / "cls")
    for a, b in zip(model.predict(texts), again.predict(texts)):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-7)


def test_settings_that_do_not_apply_are_one_line_errors():
    from textrnn import ConfigError

    with pytest.raises(ConfigError, match="weight_dropout drops hidden-to-hidden weights"):
        RNNConfig(cell="mingru", weight_dropout=0.2).validate()
    with pytest.raises(ConfigError, match="model.block=residual shapes the layers of the mingru"):
        RNNConfig(cell="lstm", block="residual").validate()


@pytest.mark.parametrize("cell,block", [("mingru", "plain"), ("minlstm", "plain"), ("mingru", "residual_mlp")])
def test_onnx_export_of_the_classifier_graph_and_the_lm_step(cell, block, tmp_path):
    """The classifier graph is traced on 3 steps and must serve any length: its doubling scan runs a fixed number
    of rounds. The LM step graph carries the state in and out."""
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    from textrnn.serving.export import export_onnx

    tok = char_tokenizer()
    model = classifier(tok, cell=cell, bidirectional=True, num_layers=2, block=block)
    model.save_pretrained(tmp_path / "cls")
    session = ort.InferenceSession(str(export_onnx(tmp_path / "cls", tmp_path / "cls.onnx")))
    texts = ["the quick brown fox jumps over the lazy dog " * 7, "a", "", "a stitch in time"]
    ids = [tok.encode(t) for t in texts]
    batch = np.zeros((len(ids), max(map(len, ids))), dtype=np.int64)
    for row, piece in enumerate(ids):
        batch[row, : len(piece)] = piece
    got = session.run(None, {"input_ids": batch, "lengths": np.array([len(i) for i in ids], dtype=np.int64)})[0]
    want = [list(r["probabilities"].values()) for r in model.predict(texts)]
    assert batch.shape[1] > 300 and np.abs(got - np.array(want)).max() < 1e-5
    config = RNNConfig(task="language_model", vocab_size=len(tok), embedding_dim=8, hidden_size=16, num_layers=2,
                       cell=cell, tokenizer_kind="char", block=block)
    RNNLanguageModel(config, tok).save_pretrained(tmp_path / "lm")
    export_onnx(tmp_path / "lm", tmp_path / "lm.onnx")  # checked against torch at export (raises past 1e-4)

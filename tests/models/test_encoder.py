"""The RNN encoder: pack_padded_sequence semantics for every cell, strategy and direction, and its fused step."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textrnn import RNNEncoder

E, H = 5, 7


def run(encoder, x, lengths, strategy, state=None):
    """Outputs, final state(s) and every gradient for one strategy."""
    encoder.strategy = strategy
    encoder.zero_grad()
    x = x.clone().requires_grad_()
    out, final = encoder(x, lengths, state)
    finals = final if isinstance(final, tuple) else (final,)
    loss = (out * torch.linspace(-1, 1, out.numel(),
                                 dtype=out.dtype).view_as(out)).sum() + sum((f**2).sum() for f in finals)
    loss.backward()
    return [out, *finals, x.grad, *[p.grad.clone() for p in encoder.parameters()]]


@pytest.mark.parametrize(
    "cell,layers,bidirectional", itertools.product(["rnn", "lstm", "gru"], [1, 2, 3], [False, True])
)
def test_packed_and_padded_agree_on_outputs_states_and_gradients(cell, layers, bidirectional):
    torch.manual_seed(0)
    enc = RNNEncoder(E, H, layers, cell, bidirectional, dropout=0.5).double().eval()
    x = torch.randn(5, 6, E, dtype=torch.double)
    lengths = torch.tensor([3, 6, 1, 4, 6])  # unsorted, includes 1 and T
    packed, padded = run(enc, x, lengths, "packed"), run(enc, x, lengths, "padded")
    for a, b in zip(packed, padded):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_batch_of_one_and_initial_state(cell):
    torch.manual_seed(1)
    enc = RNNEncoder(E, H, 2, cell, True).double()
    x = torch.randn(1, 4, E, dtype=torch.double)
    h0 = torch.randn(4, 1, H, dtype=torch.double)
    state = (h0, torch.randn_like(h0)) if cell == "lstm" else h0
    for a, b in zip(run(enc, x, torch.tensor([3]), "packed", state), run(enc, x, torch.tensor([3]), "padded", state)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("strategy", ["packed", "padded"])
def test_matches_reference_pack_padded_sequence_with_plain_lstm(strategy):
    torch.manual_seed(2)
    enc = RNNEncoder(E, H, 2, "lstm", True, strategy=strategy).double()
    plain = nn.LSTM(E, H, 2, batch_first=True, bidirectional=True).double()
    plain.load_state_dict(enc.state_dict())  # same parameter names and layout
    x, lengths = torch.randn(4, 7, E, dtype=torch.double), torch.tensor([7, 2, 5, 1])
    ref_out, (ref_h, ref_c) = plain(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    ref_out, _ = pad_packed_sequence(ref_out, batch_first=True, total_length=7)
    out, (h, c) = enc(x, lengths)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h, ref_h)
    torch.testing.assert_close(c, ref_c)
    enc.load_state_dict(plain.state_dict())  # and back


@pytest.mark.parametrize("strategy", ["packed", "padded"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_empty_sequences_give_zero_outputs_and_initial_state(strategy, cell):
    enc = RNNEncoder(E, H, 2, cell, True, strategy=strategy)
    x = torch.randn(3, 4, E)
    out, final = enc(x, torch.tensor([0, 4, 0]))
    h = final[0] if cell == "lstm" else final
    assert torch.all(out[0] == 0) and torch.all(out[2] == 0)
    assert torch.all(h[:, 0] == 0) and torch.all(h[:, 2] == 0)
    assert torch.any(h[:, 1] != 0)


@pytest.mark.parametrize("strategy", ["packed", "padded"])
def test_outputs_are_zero_at_padding_and_padding_never_leaks(strategy):
    torch.manual_seed(3)
    enc = RNNEncoder(E, H, 2, "gru", True, strategy=strategy)
    x = torch.randn(2, 6, E)
    lengths = torch.tensor([3, 6])
    out, h = enc(x, lengths)
    assert torch.all(out[0, 3:] == 0)
    x2 = x.clone()
    x2[0, 3:] = 1e3  # garbage in the padding
    out2, h2 = enc(x2, lengths)
    torch.testing.assert_close(out, out2)
    torch.testing.assert_close(h, h2)


def test_no_lengths_means_full_length():
    enc = RNNEncoder(E, H, 1, "lstm", True)
    x = torch.randn(3, 5, E)
    a, _ = enc(x)
    b, _ = enc(x, torch.tensor([5, 5, 5]))
    torch.testing.assert_close(a, b)


def test_auto_strategy_and_bad_arguments():
    enc = RNNEncoder(E, H)
    assert enc.resolve_strategy(torch.device("cpu")) == "padded"
    assert enc.resolve_strategy(torch.device("cuda")) == "packed"
    with pytest.raises(ValueError, match="lengths"):
        enc(torch.randn(2, 3, E), torch.tensor([4, 1]))
    with pytest.raises(ValueError, match="cell"):
        RNNEncoder(E, H, cell="transformer")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=6), st.sampled_from(["lstm", "gru", "rnn"]), st.booleans())
def test_strategies_agree_on_arbitrary_lengths(lengths, cell, bidirectional):
    torch.manual_seed(len(lengths))
    enc = RNNEncoder(3, 4, 2, cell, bidirectional).double()
    steps = max(max(lengths), 1)
    x = torch.randn(len(lengths), steps, 3, dtype=torch.double)
    lengths = torch.tensor(lengths)
    for a, b in zip(run(enc, x, lengths, "packed"), run(enc, x, lengths, "padded")):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_weight_dropout_is_one_mask_on_the_recurrent_weights_in_training(cell):
    torch.manual_seed(3)
    enc = RNNEncoder(E, H, 2, cell, True, weight_dropout=0.5).double().train()
    x = torch.randn(5, 6, E, dtype=torch.double)
    lengths = torch.tensor([3, 6, 1, 4, 0])
    results = {}
    for strategy in ("packed", "padded"):
        torch.manual_seed(7)  # the same mask for both: the strategies must still agree exactly
        results[strategy] = run(enc, x, lengths, strategy)
    for a, b in zip(results["packed"], results["padded"]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    grad_hh = enc.weight_hh_l0.grad
    assert 0.35 < float((grad_hh == 0).double().mean()) < 0.65  # dropped connections get no gradient
    assert bool((enc.weight_ih_l0.grad != 0).all())  # input weights are not dropped


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_weight_dropout_leaves_the_first_step_and_evaluation_alone(cell):
    torch.manual_seed(4)
    enc = RNNEncoder(E, H, 1, cell, False, weight_dropout=0.5).double()
    x = torch.randn(3, 5, E, dtype=torch.double)
    lengths = torch.tensor([5, 2, 4])
    plain = RNNEncoder(E, H, 1, cell, False).double()
    plain.load_state_dict(enc.state_dict())
    reference = plain(x, lengths)[0]
    trained = enc.train()(x, lengths)[0]
    # From a zero state the first step never reads the recurrent weights; later steps do.
    torch.testing.assert_close(trained[:, 0], reference[:, 0])
    assert not torch.allclose(trained[:, 1:], reference[:, 1:])
    torch.testing.assert_close(enc.eval()(x, lengths)[0], reference)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fused_step_runs_the_stack_one_token_at_a_time_as_forward_does(cell):
    torch.manual_seed(0)
    encoder = RNNEncoder(5, 6, num_layers=2, cell=cell).eval()
    x = torch.randn(1, 9, 5)
    with torch.no_grad():
        outputs, _ = encoder(x[:, :4])
        _, state = encoder(x[:, :4])
        step = encoder.fused_step(state, rows=3)  # three rows from one prompt state
        for t in range(4, 9):
            top = step.step(x[0, t].expand(3, -1))  # (3, H)
            expected, state = encoder(x[:, t : t + 1], state=state)
            torch.testing.assert_close(top, expected[:, 0].expand(3, -1))
        step.reorder(torch.tensor([2, 2, 0]))
        assert len(step.h) == 2 and step.h[0].shape == (3, 6)
    assert encoder._step_weights() is encoder._step_weights()  # cached while the weights are unchanged
    with torch.no_grad():
        encoder.weight_hh_l0.add_(1.0)
    assert encoder._step_weights() is not step.layers


def test_a_bidirectional_encoder_has_no_fused_step():
    encoder = RNNEncoder(3, 4, bidirectional=True)
    with pytest.raises(ValueError, match="one step at a time"):
        encoder.fused_step(encoder.initial_state(1, torch.zeros(1)), 1)

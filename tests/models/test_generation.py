"""Sampling: the fused step, the sampling rules, stop ids, prompts."""

import collections

import pytest
import torch

from textrnn import GenerationConfig, TextRNNError
from textrnn.models.generation import sample_next

from ..helpers import TEXT, language_model


def naive_greedy(model, prompt: list, steps: int) -> list:
    """Re-run the whole prefix through forward at every step: the reference for the fused path."""
    ids = list(prompt)
    for _ in range(steps):
        logits, _, _ = model(torch.tensor([ids]))
        logits[0, -1, model.never_sampled()] = float("-inf")
        ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt):]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fused_generation_step_matches_full_forward(char_tok, cell):
    model = language_model(char_tok, cell=cell)
    prompt = char_tok.encode("the quick")
    new = model.generate(torch.tensor(prompt), max_new_tokens=12, temperature=0)  # greedy, via the fused stepper
    assert new[0].tolist() == naive_greedy(model, prompt, 12)


def test_generation_same_seed_same_text_and_parallel_samples(char_tok):
    model = language_model(char_tok)
    a = model.generate_text("the ", 30, seed=5, num_samples=3, temperature=1.0)
    b = model.generate_text("the ", 30, seed=5, num_samples=3, temperature=1.0)
    assert a == b and len(a) == 3 and all(len(t) == 30 for t in a)
    assert model.generate_text("the ", 30, seed=6, temperature=1.0) != a[:1]


def test_sampling_without_a_seed_follows_torch_s_seed_and_leaves_its_generator_repeatable(char_tok):
    """Without ``seed`` sampling draws from torch's global generator (as transformers' ``generate`` does), so
    ``torch.manual_seed`` makes it repeatable, and it never re-seeds that generator from the clock: a later
    ``torch.rand`` (a training run's weights) stays what the user's seed made it."""
    model = language_model(char_tok)
    runs = []
    for _ in range(2):
        torch.manual_seed(11)
        runs.append((model.generate_text("the ", 30, temperature=1.0), torch.rand(4)))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])


def test_generation_streams_and_stops_exactly_at_the_stop_token(char_tok):
    model = language_model(char_tok)
    pieces = []
    text = model.generate_text("the", 20, seed=0, on_token=lambda p: pieces.append(p[0]))
    assert "".join(pieces) == text[0] and len(pieces) == 20
    prompt = torch.tensor(char_tok.encode("the"))
    free = model.generate(prompt, 30, temperature=0)[0].tolist()
    stop = free[10]
    first = free.index(stop)
    out = model.generate(prompt, 30, temperature=0, stop_ids=[stop])[0].tolist()
    assert out == free[: first + 1]  # everything up to and including the first stop token, then nothing
    assert model.generate_text("the", 30, temperature=0, stop_ids=[stop])[0] == char_tok.decode(free[:first])


def test_finished_samples_keep_emitting_the_stop_token(char_tok):
    model = language_model(char_tok)
    prompt = torch.tensor(char_tok.encode("the"))
    stop = char_tok.vocab[" "]
    out = model.generate(prompt, 60, seed=1, temperature=1.5, num_samples=8, stop_ids=[stop])
    hit = (out == stop).any(dim=1)
    assert hit.any()
    for row in out[hit]:
        first = row.tolist().index(stop)
        assert (row[first:] == stop).all()


@pytest.mark.parametrize("kwargs,match", [
    (dict(max_new_tokens=0), "max_new_tokens"), (dict(temperature=-1.0), "temperature"),
    (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"), (dict(num_samples=0), "num_samples"),
    (dict(top_k=0), "top_k"), (dict(temperature=1e-300), "temperature"),
    (dict(temperature=float("inf")), "temperature"),
    (dict(temperature=float("nan")), "temperature"), (dict(repetition_penalty=1e-300), "repetition_penalty"),
    (dict(repetition_penalty=float("inf")), "repetition_penalty"), (dict(seed=10**30), "seed"), (dict(seed=-1), "seed"),
])
def test_bad_sampling_settings_fail_when_called_not_when_iterated(char_tok, kwargs, match):
    model = language_model(char_tok)
    args = dict(max_new_tokens=5) | kwargs
    with pytest.raises(TextRNNError, match=match):
        model.stream(torch.tensor([4]), **args)  # no next(): the check runs at the call


def test_settings_are_checked_once_per_call(char_tok, monkeypatch):
    model = language_model(char_tok)
    calls = []
    real = GenerationConfig.validate
    monkeypatch.setattr(GenerationConfig, "validate", lambda self: calls.append(self) or real(self))
    model.generate_text("the", 5, seed=0)
    assert len(calls) == 1


def test_top_k_and_top_p_keep_exactly_the_head():
    g = torch.Generator().manual_seed(0)
    flat = torch.zeros(1, 3)  # uniform: plain sampling draws every id
    assert {sample_next(flat, 1.0, 1000, None, g).item() for _ in range(200)} == {0, 1, 2}  # top_k > V: no top-k
    probs = torch.tensor([[0.4, 0.35, 0.25]])
    top_p = collections.Counter(sample_next(probs.log(), 1.0, None, 0.5, g).item() for _ in range(400))
    assert set(top_p) == {0, 1}  # the smallest set whose mass reaches 0.5, and nothing outside it
    assert 0.45 < top_p[0] / 400 < 0.7  # renormalized: 0.4 / 0.75
    assert {sample_next(probs.log(), 1.0, 2, None, g).item() for _ in range(200)} == {0, 1}
    assert {sample_next(probs.log(), 0.0, None, None, g).item() for _ in range(5)} == {0}  # temperature 0: greedy


def test_prompt_of_unknown_characters_is_an_error(char_tok):
    model = language_model(char_tok)
    with pytest.raises(TextRNNError, match="no token the model knows"):
        model.generate_text("§§§", 5)


def test_long_prompt_runs_in_chunks_with_the_state_carried(char_tok):
    model = language_model(char_tok)
    ids = torch.tensor(char_tok.encode(TEXT * 4))
    with torch.no_grad():
        # the last chunk holds 2 tokens: its output depends on the state carried in from the rest
        last_chunked, state_chunked = model.run_prompt(ids, chunk=len(ids) // 2 - 1)
        last_whole, state_whole = model.run_prompt(ids, chunk=10**6)
        torch.testing.assert_close(last_chunked, last_whole)
        for a, b in zip(state_chunked, state_whole):
            torch.testing.assert_close(a, b)
        _, _, state_forward = model(ids[None, :])
        torch.testing.assert_close(state_chunked[0], state_forward[0])


def test_a_prompt_that_is_not_valid_unicode_is_a_one_line_error(char_tok):
    model = language_model(char_tok)
    with pytest.raises(TextRNNError, match="not valid Unicode"):
        model.generate_text("the\ud800", 5)


def test_stream_samples_yields_each_steps_pieces_and_checks_settings_at_the_call(char_tok):
    model = language_model(char_tok)
    pieces = list(model.stream_samples("the", 30, num_samples=2, seed=3, stop=["o"]))
    assert all(len(piece) == 2 for piece in pieces)
    joined = ["".join(piece[i] for piece in pieces) for i in range(2)]
    assert joined == model.generate_text("the", 30, num_samples=2, seed=3, stop=["o"])
    assert all("o" not in text for text in joined)
    with pytest.raises(TextRNNError, match="top_p must be in"):
        model.stream_samples("the", 5, top_p=2.0)  # no next(): the check runs at the call


def test_stream_text_yields_one_samples_pieces_as_strings(char_tok):
    model = language_model(char_tok)
    pieces = list(model.stream_text("the", 30, seed=3, stop=["o"]))
    assert pieces and all(isinstance(piece, str) for piece in pieces)
    assert "".join(pieces) == model.generate_text("the", 30, seed=3, stop=["o"])[0]
    with pytest.raises(TextRNNError, match="top_p must be in"):
        model.stream_text("the", 5, top_p=2.0)


def test_stream_text_with_several_samples_is_a_one_line_error_naming_stream_samples(char_tok):
    model = language_model(char_tok)
    with pytest.raises(TextRNNError, match="stream_samples") as caught:
        model.stream_text("the", 5, num_samples=2)  # no next(): refused at the call, before any output
    assert "\n" not in str(caught.value)

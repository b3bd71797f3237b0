"""Generation controls on a tiny trained char model: beam search, repetition control, stop strings, min length."""

from __future__ import annotations

import pytest
import torch

from textrnn import TextRNNError, load_model
from textrnn.models.decoding import Controls, History, StopText, apply_controls, beam_search
from textrnn.models.generation import prompt_ids


@pytest.fixture(scope="module")
def model(trained_generator):
    return load_model(trained_generator)


def repeated_share(text: str, n: int = 4) -> float:
    grams = [text[i : i + n] for i in range(len(text) - n + 1)]
    return 1 - len(set(grams)) / len(grams)


def test_beam_search_with_one_beam_is_greedy(model):
    ids = prompt_ids(model.tokenizer, "All:")
    greedy = model.generate(ids, 60, temperature=0)[0].tolist()
    with torch.inference_mode():
        stepper, logits = model.start_generation(ids, 1)
        assert beam_search(stepper, logits, ids.tolist(), 60, Controls(num_beams=1), 1, ()) == [greedy]


def test_beam_search_finds_a_likelier_sequence_than_greedy(model):
    """At least as likely on every prompt, and strictly likelier on some: a beam search that returned the
    greedy path would pass the first check and fail the second."""
    def log_likelihood(ids, tokens: list) -> float:
        full = torch.cat([ids, torch.tensor(tokens)])[None, :]
        with torch.no_grad():
            logits, _, _ = model.eval()(full)
        logp = torch.log_softmax(logits[0, len(ids) - 1 : -1].float(), -1)
        return float(logp[torch.arange(len(tokens)), torch.tensor(tokens)].sum())

    gains = []
    for prompt in ("First", "All:", "speak", "Before we", "You are", "Resolved", "hear me", "famish"):
        ids = prompt_ids(model.tokenizer, prompt)
        greedy = model.generate(ids, 30, temperature=0)[0].tolist()
        beams = model.generate(ids, 30, num_beams=5)[0].tolist()
        gains.append(log_likelihood(ids, beams) - log_likelihood(ids, greedy))
    assert min(gains) >= -1e-4 and max(gains) > 1e-3, gains
    assert model.generate(ids, 30, num_beams=4, num_samples=2).shape[0] == 2


def test_repetition_controls_break_a_loop(model):
    plain = model.generate_text("All:", 300, temperature=0)[0]
    assert repeated_share(plain) > 0.5  # the planted loop: greedy decoding repeats the corpus' lines
    penalized = model.generate_text("All:", 300, temperature=0, repetition_penalty=1.8)[0]
    blocked = model.generate_text("All:", 300, temperature=0, no_repeat_ngram_size=4)[0]
    assert repeated_share(penalized) < repeated_share(plain)
    assert repeated_share(blocked, 4) == 0.0  # no 4-gram of the output occurs twice
    assert len(blocked) == 300


def test_stop_strings_cut_exactly_and_stream_the_same_text(model):
    full = model.generate_text("First", 200, temperature=0.8, seed=3)[0]
    stop = full[40:43]  # a 3-character string the sample is known to contain
    cut = full[: full.index(stop)]
    pieces = []
    text = model.generate_text(
        "First", 200, temperature=0.8, seed=3, stop=[stop], on_token=lambda p: pieces.append(p[0])
    )[0]
    assert text == cut and "".join(pieces) == cut  # same seed, same text, ended before the stop string
    later = model.generate_text(
        "First", 200, temperature=0.8, seed=3, stop=[stop], min_new_tokens=full.index(stop) + 1
    )[0]
    assert later.startswith(cut + stop) and len(later) > len(cut)


def test_same_seed_same_text_with_every_control(model):
    options = dict(temperature=0.9, top_k=20, seed=7, repetition_penalty=1.3, no_repeat_ngram_size=5, min_new_tokens=10)
    assert model.generate_text("All", 120, **options) == model.generate_text("All", 120, **options)


def test_stop_text_holds_back_a_possible_stop_string():
    cut = StopText(["END"])
    assert cut.feed("abc E") == "abc "  # "E" may start "END"
    assert cut.feed("N") == ""
    assert cut.feed("X") == "ENX"  # it did not
    assert cut.feed(" more END tail") == " more " and cut.done and cut.text == "abc ENX more "


def test_history_bans_exactly_the_tokens_that_repeat_an_ngram():
    history = History([1, 2, 3, 1, 2], rows=1, ngram=3)
    assert sorted(history.banned(0)) == [3]  # "1 2" was followed by 3
    logits, stuck = apply_controls(torch.zeros(1, 6), history, Controls(no_repeat_ngram_size=3), 0, ())
    assert not stuck.any() and torch.isinf(logits[0, 3]) and torch.isfinite(logits[0, [0, 1, 2, 4, 5]]).all()
    penalized, _ = apply_controls(torch.tensor([[2.0, -2.0, 2.0, 0.0, 2.0, 2.0]]), history,
                                  Controls(repetition_penalty=2.0), 0, ())
    assert penalized.tolist() == [[2.0, -4.0, 1.0, 0.0, 2.0, 2.0]]  # seen 1, 2, 3: -2 * 2, 2 / 2, 0; unseen kept


@pytest.mark.parametrize(
    "options,match",
    [
        (dict(repetition_penalty=0), "repetition_penalty must be in"),
        (dict(no_repeat_ngram_size=-1), "no_repeat_ngram_size must be >= 0"),
        (dict(min_new_tokens=500), r"min_new_tokens must be in \[0, max_new_tokens=20\]"),
        (dict(num_beams=0), "num_beams must be at least 1"),
        (dict(num_beams=2, num_samples=3), "cannot exceed num_beams"),
    ],
)
def test_bad_controls_are_one_line_errors(model, options, match):
    with pytest.raises(TextRNNError, match=match):
        model.generate_text("All", 20, **options)


@pytest.mark.parametrize("way", [dict(temperature=0), dict(temperature=1.0, seed=3), dict(num_beams=3)])
def test_a_sample_whose_every_next_token_is_banned_ends_there_in_every_way_of_decoding(model, way):
    """Each character at most once (no_repeat_ngram_size=1) runs out of characters: greedy used to emit <pad>,
    sampling to raise from multinomial and beam search a ValueError. Each now ends the sample, as <eos> would."""
    from textrnn import EOS_ID, PAD_ID
    from textrnn.models.generation import stream

    vocab = model.tokenizer.vocab_size
    tokens = [int(t[0]) for t in stream(model, prompt_ids(model.tokenizer, "All:"), max_new_tokens=3 * vocab,
                                        no_repeat_ngram_size=1, **way)]
    text = [t for t in tokens if t != EOS_ID]
    assert PAD_ID not in tokens and len(text) == len(set(text)) and len(tokens) < 3 * vocab  # it ended early
    assert tokens[len(text):] and set(tokens[len(text):]) == {EOS_ID}  # once ended, only the end token
    assert model.generate_text("All:", max_new_tokens=3 * vocab, no_repeat_ngram_size=1, **way)[0]  # text, no error


# ---------------------------------------------------------------------------- properties (Hypothesis)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ALPHABET = "abXY "


@settings(max_examples=300, deadline=None)
@given(text=st.text(ALPHABET, max_size=40), stops=st.lists(st.text(ALPHABET, min_size=1, max_size=3), max_size=3),
       cuts=st.lists(st.integers(0, 40), max_size=12))
def test_streamed_pieces_join_to_the_text_cut_at_its_first_stop_string(text, stops, cuts):
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    cut = StopText(stops)
    shown = "".join(cut.feed(piece) for piece in pieces) + cut.flush()
    # generation stops at the first stop string to complete (the earliest start among ties); a longer
    # one starting earlier but completing later is never generated (hypothesis found 'YXX', ['X', 'YXX'])
    ends = [(i + len(s), i) for s, i in ((s, text.find(s)) for s in stops) if i >= 0]
    first = min(ends)[1] if ends else len(text)
    assert shown == cut.text == text[:first]


@settings(max_examples=300, deadline=None)
@given(prompt=st.lists(st.integers(0, 4), max_size=8), more=st.lists(st.integers(0, 4), max_size=12),
       n=st.integers(1, 4))
def test_history_bans_what_brute_force_says_repeats_an_ngram(prompt, more, n):
    history = History(prompt, rows=1, ngram=n)
    for token in more:
        history.append([token])
    row = prompt + more
    tail = row[len(row) - n + 1:] if n > 1 else []
    expected = {row[j + n - 1] for j in range(len(row) - n + 1) if row[j:j + n - 1] == tail}
    assert set(history.banned(0)) == (expected if len(row) >= n - 1 else set())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(way=st.sampled_from([dict(temperature=0), dict(temperature=1.0), dict(num_beams=3)]),
       n=st.integers(1, 2), seed=st.integers(0, 2**31), prompt=st.sampled_from(["All:", "First", "\n", "speak"]))
def test_decoding_under_bans_never_emits_pad_never_fails_and_never_repeats_an_ngram(model, way, n, seed, prompt):
    from textrnn import EOS_ID, PAD_ID
    from textrnn.models.generation import stream

    start = prompt_ids(model.tokenizer, prompt).tolist()
    settings_ = {**way, "seed": seed} if "temperature" in way and way["temperature"] else way
    tokens = [int(t[0]) for t in stream(model, torch.tensor(start), max_new_tokens=150, no_repeat_ngram_size=n,
                                        **settings_)]
    text = tokens[: tokens.index(EOS_ID)] if EOS_ID in tokens else tokens
    assert PAD_ID not in tokens and set(tokens[len(text):]) <= {EOS_ID}
    row = start + text
    grams = [tuple(row[i:i + n]) for i in range(len(row) - n + 1)]
    generated = grams[len(start) - n + 1:] if len(start) >= n else grams
    assert len(set(generated)) == len(generated) and not set(generated) & set(grams[: len(grams) - len(generated)])

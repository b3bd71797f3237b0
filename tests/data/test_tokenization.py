"""Tokenizers on HF tokenizers: char, word and BPE kinds, fixed special ids, save and load, vocabulary lookups."""

import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from textrnn import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, DataError, TextTokenizer

TEXT = "Hello\tworld!\n  Ünïcödé — 日本語 🎉\r\nlast line"


def test_char_round_trip_is_exact_with_whitespace_and_unicode():
    tok = TextTokenizer.train([TEXT], "char")
    assert tok.decode(tok.encode(TEXT)) == TEXT
    assert len(tok.encode(TEXT)) == len(TEXT)


def test_unseen_character_maps_to_unk():
    tok = TextTokenizer.train(["abc"], "char")
    assert tok.encode("abz") == [tok.vocab["a"], tok.vocab["b"], UNK_ID]


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_special_token_ids_are_fixed(kind):
    tok = TextTokenizer.train([TEXT] * 5, kind, vocab_size=300)
    assert ([tok.vocab[t] for t in ("<pad>", "<unk>", "<bos>", "<eos>")] == [PAD_ID, UNK_ID, BOS_ID, EOS_ID] == [0, 1,
                                                                                                                 2, 3])


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_save_load_gives_identical_ids_and_is_a_standard_file(tmp_path, kind):
    tok = TextTokenizer.train([TEXT] * 5, kind, vocab_size=300)
    tok.save(tmp_path / "tokenizer.json")
    again = TextTokenizer.from_file(tmp_path / "tokenizer.json")
    assert again.kind == kind
    assert again.encode(TEXT) == tok.encode(TEXT)
    assert Tokenizer.from_file(str(tmp_path / "tokenizer.json")).encode(
        TEXT, add_special_tokens=False
    ).ids == tok.encode(TEXT)


def test_word_options_lowercase_min_freq_max_size():
    texts = ["The cat sat.", "the cat ran!", "THE dog sat"]
    tok = TextTokenizer.train(texts, "word", lowercase=True, min_freq=2)
    words = set(tok.vocab.get_itos()[4:])
    assert words == {"the", "cat", "sat"}  # 'ran', 'dog', '.', '!' appear once
    assert tok.encode("The DOG") == [tok.vocab["the"], UNK_ID]
    capped = TextTokenizer.train(texts, "word", lowercase=True, max_size=2)
    assert len(capped) == 4 + 2


def test_bpe_reaches_target_size_and_round_trips():
    import random

    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 8))) for _ in range(500)]
    corpus = [" ".join(rng.choice(words) for _ in range(50)) for _ in range(200)] + [TEXT]
    tok = TextTokenizer.train(corpus, "bpe", vocab_size=400)
    assert len(tok) == 400
    assert tok.decode(tok.encode(TEXT)) == TEXT


def test_vocab_lookups_like_torchtext():
    tok = TextTokenizer.train(["a b c a"], "word")
    vocab = tok.vocab
    assert vocab["a"] == vocab.get_stoi()["a"]
    assert vocab["never-seen"] == UNK_ID
    assert vocab.lookup_tokens(vocab.lookup_indices(["a", "c"])) == ["a", "c"]
    assert vocab.get_itos()[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert len(vocab) == len(vocab.get_itos())


def test_char_lookup_table_matches_hf_tokenizer():
    tok = TextTokenizer.train([TEXT], "char")
    probe = TEXT + "unseen: Ω 𝄞"
    assert tok.encode_chars(probe).tolist() == tok.tokenizer.encode(probe, add_special_tokens=False).ids
    assert tok.encode_chars(probe).dtype == np.uint8


def test_file_that_is_not_a_tokenizer_is_a_one_line_error(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(DataError, match="not a tokenizer.json"):
        TextTokenizer.from_file(bad)
    with pytest.raises(DataError, match="not found"):
        TextTokenizer.from_file(tmp_path / "missing.json")


def test_unknown_kind_is_an_error():
    with pytest.raises(DataError, match="unknown tokenizer kind"):
        TextTokenizer.train(["x"], "sentencepiece")


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_char_round_trip_on_arbitrary_unicode(text):
    tok = TextTokenizer.train([text], "char")
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode_chars(text).tolist() == tok.encode(text)


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=1, max_size=100))
def test_bpe_round_trip_on_arbitrary_unicode(text):
    # A literal "<unk>", "<eos>", ... is read as that special token, which decode skips (the
    # documented Hugging Face behaviour the README states); the round trip holds for the rest.
    assume(not any(special in text for special in SPECIAL_TOKENS))
    tok = TextTokenizer.train([text, "some ordinary text"], "bpe", vocab_size=300)
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=20), st.sampled_from(["char", "word", "bpe"]))
def test_batch_encoding_equals_one_by_one(texts, kind):
    tok = TextTokenizer.train(texts + ["plain words, and punctuation!"], kind, vocab_size=300)
    assert tok.encode_batch(texts, group=3) == [tok.encode(t) for t in texts]


def test_batch_encoding_with_literal_special_token_text():
    tok = TextTokenizer.train(["a b c"], "word")
    texts = ["a <eos> b", "c", ""]
    assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]


def test_auto_min_freq_grows_with_the_corpus_and_is_five_on_sst2_sized_data():
    from textrnn.data.tokenization import auto_min_freq

    assert [auto_min_freq(n) for n in (1_000, 56_000, 57_000, 200_000, 634_000, 5_000_000)] == [1, 1, 2, 3, 5, 5]
    from textrnn import load_config
    from textrnn.data.tokenization import train_tokenizer

    for kind in ("char", "word", "bpe"):  # characters are never pruned; a small corpus keeps its rare words
        tokenizer = train_tokenizer(["onceonly twice twice"],
                                    load_config(None, [f"tokenizer.kind={kind}", "tokenizer.min_freq=auto"]).tokenizer)
        assert tokenizer.encode("y")[0] != 1 if kind == "char" else tokenizer.encode("onceonly") != [1]


def tokenizer_variants(text: str) -> list:
    """Broken forms of a real tokenizer.json: cut short, keys dropped, values of the wrong type, bad vocabularies."""
    import json

    spec = json.loads(text)
    out = [text[:cut] for cut in range(0, len(text), max(1, len(text) // 20))] + ["", "\x00\xff garbage", "[]", "1"]
    for key in list(spec):
        out.append(json.dumps({k: v for k, v in spec.items() if k != key}))
        out += [json.dumps({**spec, key: bad}) for bad in (1, "x", [], None, {"type": "Nope"})]
    vocab = spec["model"]["vocab"]
    for bad_vocab in ({k: v for k, v in vocab.items() if k != "<pad>"}, {**vocab, "<pad>": 1, "<unk>": 0},
                      {**vocab, "a": -1}, {**vocab, "a": 10**12}, {**vocab, "b": vocab.get("a", 5)}, [], "v"):
        out.append(json.dumps({**spec, "model": {**spec["model"], "vocab": bad_vocab}}))
    return out


def test_every_broken_tokenizer_json_is_a_one_line_error_or_a_working_tokenizer(tmp_path):
    from textrnn import DataError

    good = TextTokenizer.train(["abc def ghi"], "word")
    good.save(tmp_path / "good.json")
    variants = tokenizer_variants((tmp_path / "good.json").read_text(encoding="utf-8"))
    assert len(variants) >= 50
    outcomes = {"loaded": 0, "refused": 0}
    for i, variant in enumerate(variants):
        path = tmp_path / f"v{i}.json"
        path.write_text(variant, encoding="utf-8", errors="surrogateescape")
        try:
            loaded = TextTokenizer.from_file(path)
            loaded.encode_batch(["abc xyz", ""])  # what loads must also work
            outcomes["loaded"] += 1
        except DataError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc), (i, variant[:200], exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 40 and outcomes["loaded"] >= 1  # the unbroken variants (a dropped optional key) load


def test_a_lowercase_char_tokenizer_lowercases_what_it_encodes():
    """Its vocabulary holds lowercase characters only, so uppercase input must be lowered first
    (the fast char path once looked code points up as given: "Hello" began with <unk>)."""
    tok = TextTokenizer.train(["hello world, ΟΔΟΣ"], "char", lowercase=True)
    assert UNK_ID not in tok.encode("ΟΔΟΣ")
    assert tok.encode("Hello ΟΔΟΣ") == tok.encode("hello οδοσ")  # lowered code point by code point
    assert UNK_ID not in tok.encode("HELLO WORLD")
    values, offsets = tok.encode_flat(["HeLLo", "İ", "World"])  # "İ" lowers to two code points
    assert values.tolist() == tok.encode("HeLLo") + tok.encode("İ") + tok.encode("World")
    assert offsets.tolist() == [0, 5, 5 + len(tok.encode("İ")), 5 + len(tok.encode("İ")) + 5]

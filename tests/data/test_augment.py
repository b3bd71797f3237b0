"""The transfer set's augmentation: seeded, masks and swaps at their rates, n-grams, no duplicates."""

from __future__ import annotations

import math

from textrnn.data.augment import MASK, Augmentation, FrequencyBands, augment

TEXTS = [f"the film was {w} and the cast was {v} in every scene" for w in ("good", "bad", "fine", "dull")
         for v in ("great", "poor", "odd")] * 5


def test_same_seed_same_transfer_set_and_another_seed_another():
    settings = Augmentation(copies=4)
    first = list(augment(TEXTS, settings, seed=3))
    assert first == list(augment(TEXTS, settings, seed=3))
    assert first != list(augment(TEXTS, settings, seed=4))


def test_copies_are_new_and_point_at_their_source():
    out = list(augment(TEXTS[:12], Augmentation(copies=6), seed=0))
    by_source: dict = {}
    for index, text in out:
        assert text != TEXTS[index]
        by_source.setdefault(index, []).append(text)
    assert all(len(copies) == len(set(copies)) <= 6 for copies in by_source.values())
    assert len(by_source) == 12


def test_mask_rate_is_the_setting():
    settings = Augmentation(copies=20, mask_prob=0.3, swap_prob=0.0, ngram_prob=0.0)
    words = [word for _, text in augment(TEXTS, settings, seed=0) for word in text.split()]
    share = words.count(MASK) / len(words)
    assert abs(share - 0.3) < 0.03, share


def test_swaps_stay_in_the_frequency_band():
    bands = FrequencyBands(TEXTS)
    settings = Augmentation(copies=5, mask_prob=0.0, swap_prob=1.0, ngram_prob=0.0)
    for index, text in augment(TEXTS, settings, seed=1, bands=bands):
        source = TEXTS[index].split()
        assert len(text.split()) == len(source)
        for before, after in zip(source, text.split()):
            assert bands.band_of[before] == bands.band_of[after]


def test_bands_double_in_size():
    bands = FrequencyBands(["a a a a b b b c c d e f g"])
    assert [len(band) for band in bands.bands] == [1, 2, 4]
    assert bands.band_of["a"] == 0 and bands.band_of["b"] == bands.band_of["c"] == 1
    assert math.isclose(sum(len(b) for b in bands.bands), 7)


def test_ngrams_are_cut_from_the_text():
    settings = Augmentation(copies=10, mask_prob=0.0, swap_prob=0.0, ngram_prob=1.0, max_ngram=3)
    out = list(augment(TEXTS[:6], settings, seed=2))
    assert out
    for index, text in out:
        assert 1 <= len(text.split()) <= 3 and text in TEXTS[index]


def test_a_one_word_text_that_cannot_change_gets_no_copy():
    assert list(augment(["hello"], Augmentation(copies=5, mask_prob=0.0, swap_prob=1.0), seed=0)) == []

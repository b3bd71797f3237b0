"""Text augmentation for a distillation transfer set (Tang et al. 2019, "Distilling Task-Specific Knowledge
from BERT into Simple Neural Networks", section 3.3).

A student learns a teacher's function only where it sees the teacher's outputs, and a labelled
training split is too small a sample of that function. Each copy of a text is made word by word:

- with ``mask_prob`` the word becomes ``<unk>`` (the student's unknown token; a transformer
  teacher reads its own mask token there);
- else with ``swap_prob`` it becomes another word of the same frequency band: words ranked by
  their count in the training texts, bands of doubling size (ranks 0, 1-2, 3-6, ...). Tang et al.
  swap words of the same part of speech; a band keeps a swap's word about as common, with no
  tagger to install;
- then, with ``ngram_prob``, the copy is cut to one of its n-grams (n from 1 to ``max_ngram``).

Copies equal to the text or to an earlier copy are dropped (so a one-word text may get none),
and everything is drawn from one seeded generator: the same texts, settings and seed give the
same transfer set.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

MASK = "<unk>"  # what a masked word becomes in the transfer set's text (the student's unknown token)


@dataclass(frozen=True)
class Augmentation:
    """The settings of :func:`augment` (the ``distill`` section's names)."""

    copies: int = 4  # augmented copies tried per text (distill.augment)
    mask_prob: float = 0.1
    swap_prob: float = 0.1
    ngram_prob: float = 0.25
    max_ngram: int = 5


class FrequencyBands:
    """Words of a corpus grouped by frequency rank into bands of doubling size, for same-band swaps."""

    def __init__(self, texts: Iterable[str]) -> None:
        counts = Counter(word for text in texts for word in text.split())
        ranked = [word for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
        self.band_of = {word: int(math.log2(rank + 1)) for rank, word in enumerate(ranked)}
        self.bands: list[list[str]] = [[] for _ in range(max(self.band_of.values(), default=-1) + 1)]
        for word in ranked:
            self.bands[self.band_of[word]].append(word)

    def swap(self, word: str, rng: np.random.Generator) -> str:
        """Another word of ``word``'s band (the word itself when it is alone there or unknown)."""
        band = self.bands[self.band_of[word]] if word in self.band_of else [word]
        return band[int(rng.integers(len(band)))]


def augment_text(words: Sequence[str], settings: Augmentation, bands: FrequencyBands,
                 rng: np.random.Generator) -> str:
    """One augmented copy of a text split into ``words``."""
    draws = rng.random(len(words))
    out = [MASK if draw < settings.mask_prob
           else bands.swap(word, rng) if draw < settings.mask_prob + settings.swap_prob
           else word for word, draw in zip(words, draws)]
    if len(out) > 1 and rng.random() < settings.ngram_prob:
        n = int(rng.integers(1, min(settings.max_ngram, len(out)) + 1))
        start = int(rng.integers(len(out) - n + 1))
        out = out[start:start + n]
    return " ".join(out)


def augment(texts: Sequence[str], settings: Augmentation, seed: int,
            bands: FrequencyBands | None = None) -> Iterator[tuple[int, str]]:
    """``(index of the source text, augmented text)`` for up to ``settings.copies`` new copies of each text.

    ``bands``: the frequency bands to swap within (default: those of ``texts``).
    """
    bands = bands or FrequencyBands(texts)
    rng = np.random.default_rng(seed)
    for index, text in enumerate(texts):
        words = text.split()
        seen = {" ".join(words)}
        for _ in range(settings.copies):
            copy = augment_text(words, settings, bands, rng) if words else ""
            if copy and copy not in seen:
                seen.add(copy)
                yield index, copy

"""Generation controls on top of sampling: repetition penalty, n-gram blocking, a minimum length,
stop strings and beam search.

Each control works on the (N, V) next-token logits and the tokens so far (``History``), so
sampling and beam search apply them alike::

    logits -> repetition penalty -> no repeated n-gram -> no stop before min_new_tokens -> choose

* ``repetition_penalty`` p (CTRL, Keskar et al. 2019): a token already in the prompt or the
  output has its logit divided by p when positive, multiplied by p when negative.
* ``no_repeat_ngram_size`` n: a token that would complete an n-gram already in the sequence
  gets probability 0 (what breaks the loops char-rnn and textgenrnn users report).
* ``min_new_tokens``: the stop ids (and ``<eos>``) cannot be chosen, and stop strings do not
  match, before that many tokens.
* ``stop`` strings cut the text exactly where they begin (:class:`StopText`), also when one
  spans several tokens: text that could still become a stop string is held back.
* ``num_beams`` k: beam search keeps the k best sequences by summed log-probability, each
  with its own RNN state; ``num_beams=1`` is greedy decoding.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from ..data.tokenization import EOS_ID


@dataclass(frozen=True)
class Controls:
    """The generation controls of one call: repetition penalty, n-gram blocking, minimum length, beams
    (checked as part of :class:`~textrnn.models.generation_config.GenerationConfig`)."""
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    min_new_tokens: int = 0
    num_beams: int = 1


class History:
    """The tokens of each sequence (prompt included) and, for n-gram blocking, what followed each (n-1)-gram."""

    def __init__(self, prompt: Sequence[int], rows: int, ngram: int) -> None:
        self.rows = [list(prompt) for _ in range(rows)]
        self.ngram = ngram
        self.follows: list = [self._index(row) for row in self.rows] if ngram else []

    def _index(self, row: list) -> dict:
        table: dict = defaultdict(set)
        n = self.ngram
        for i in range(len(row) - n + 1):
            table[tuple(row[i : i + n - 1])].add(row[i + n - 1])
        return table

    def append(self, tokens: list, parents: Optional[list] = None) -> None:
        """Add one token per row; with ``parents`` (beam search), row i continues row ``parents[i]``."""
        if parents is not None:
            self.rows = [list(self.rows[p]) for p in parents]
            if self.ngram:
                self.follows = [defaultdict(set, {k: set(v) for k, v in self.follows[p].items()}) for p in parents]
        for i, token in enumerate(tokens):
            row = self.rows[i]
            row.append(token)
            if self.ngram and len(row) >= self.ngram:
                self.follows[i][tuple(row[-self.ngram : -1])].add(token)

    def banned(self, i: int) -> list:
        """Tokens that would repeat an n-gram in row ``i``."""
        if not self.ngram or len(self.rows[i]) < self.ngram - 1:
            return []
        key = tuple(self.rows[i][len(self.rows[i]) - self.ngram + 1 :])
        return list(self.follows[i].get(key, ()))


def apply_controls(logits: Tensor, history: History, controls: Controls, generated: int,
                   stop_ids: Sequence[int]) -> tuple[Tensor, Tensor]:
    """(N, V) logits with the repetition penalty, n-gram bans and minimum length applied, and (N,) which
    rows had every token banned.

    Such a row can only end: its first stop id (``stop_ids[0]``, ``<eos>`` when none is given) gets
    logit 0, so greedy decoding, sampling and beam search all pick it, and the sample ends there,
    as at a stop token (rather than greedy emitting ``<pad>``, or sampling failing on a softmax of
    nothing but ``-inf``).
    """
    logits = logits.float().clone()
    if controls.repetition_penalty != 1.0:
        for i, row in enumerate(history.rows):
            seen = torch.tensor(sorted(set(row)), dtype=torch.long, device=logits.device)
            values = logits[i, seen]
            p = controls.repetition_penalty
            logits[i, seen] = torch.where(values > 0, values / p, values * p)
    for i in range(logits.size(0) if controls.no_repeat_ngram_size else 0):
        banned = history.banned(i)
        if banned:
            logits[i, banned] = float("-inf")
    if generated < controls.min_new_tokens and len(stop_ids):
        logits[:, list(stop_ids)] = float("-inf")
    stuck = ~torch.isfinite(logits).any(dim=-1)  # (N,)
    if len(stop_ids) and bool(stuck.any()):
        logits[stuck, stop_ids[0]] = 0.0
    return logits, stuck


class StopText:
    """Text of one sample, cut exactly at the first stop string; ``feed`` returns what is safe to show now.

    A piece that could be the start of a stop string is held back until the next pieces say
    whether it is one. Matching starts once ``min_new_tokens`` tokens have been fed.
    """

    def __init__(self, stops: Sequence[str], min_new_tokens: int = 0) -> None:
        self.stops = [s for s in stops if s]
        self.text, self.shown, self.tokens, self.search_from, self.done = "", 0, 0, 0, False
        self.min_new_tokens = min_new_tokens

    def feed(self, piece: str) -> str:
        """Take the next piece of text; return what can be shown now (text that may start a stop string is held)."""
        if self.done:
            return ""
        self.text += piece
        self.tokens += 1
        if self.tokens <= self.min_new_tokens:
            self.search_from = len(self.text)
            return self._show(len(self.text))
        # the stop that completes first in the stream wins (then the earliest start): "X" in "YX" ends
        # the sample before "YXX" could, whichever way the text was cut into pieces
        hits = [(i + len(s), i) for s, i in ((s, self.text.find(s, self.search_from)) for s in self.stops) if i >= 0]
        if hits:
            self.done = True
            self.text = self.text[: min(hits)[1]]
            return self._show(len(self.text))
        return self._show(len(self.text) - self._held())

    def _held(self) -> int:
        """Length of the longest tail of the text that is a proper prefix of a stop string."""
        tail = self.text[self.search_from :]
        return max((k for s in self.stops for k in range(1, min(len(s), len(tail) + 1)) if tail.endswith(s[:k])),
                   default=0)

    def flush(self) -> str:
        """At the end: the held-back text, which never became a stop string."""
        return self._show(len(self.text))

    def _show(self, upto: int) -> str:
        out = self.text[self.shown : upto] if upto > self.shown else ""
        self.shown = max(self.shown, upto)
        return out


def beam_search(stepper: Any, logits: Tensor, prompt: list[int], max_new_tokens: int, controls: Controls,
                num_samples: int, stop_ids: Sequence[int]) -> list[list[int]]:
    """The ``num_samples`` best of ``controls.num_beams`` beams (summed log-probability / length), as new ids.

    ``stepper`` carries k = ``num_beams`` rows of state from the prompt and has ``step(ids (k,))
    -> logits (k, V)`` and ``reorder(parents (k,))``; ``logits`` (k, V) are the first ones. A
    beam that picks a stop id (or ``<eos>``) is finished and leaves the beam.
    """
    k, stops = controls.num_beams, [*stop_ids, EOS_ID]
    history = History(prompt, k, controls.no_repeat_ngram_size)  # each beam's tokens, prompt first
    scores = torch.full((k,), float("-inf"), device=logits.device)
    scores[0] = 0.0  # the k beams start equal: only one may continue at first
    finished = []
    for step in range(max_new_tokens):
        logp = torch.log_softmax(apply_controls(logits, history, controls, step, stops)[0], dim=-1)  # (k, V)
        best = torch.topk((scores[:, None] + logp).flatten(), k)
        parents, chosen = (best.indices // logp.size(1)).tolist(), (best.indices % logp.size(1))
        history.append(chosen.tolist(), parents)
        rows, scores = [row[len(prompt) :] for row in history.rows], best.values.clone()  # the new tokens
        for i, token in enumerate(chosen.tolist()):
            if token in stops and scores[i] > float("-inf"):  # a finished hypothesis leaves the beam
                finished.append((float(scores[i]) / len(rows[i]), rows[i]))
                scores[i] = float("-inf")
        if not bool(torch.isfinite(scores).any()):
            break
        stepper.reorder(torch.tensor(parents, device=logits.device))
        logits = stepper.step(chosen)
    finished += [(float(s) / len(r), r) for s, r in zip(scores, rows) if s > float("-inf")]
    return [r for _, r in sorted(finished, key=lambda pair: -pair[0])[:num_samples]]

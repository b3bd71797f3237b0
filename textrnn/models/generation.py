"""Sampling text from a language model: prompt handling, the sampling checks, ``sample_next``
and the fused decoding step.

A call runs the prompt through the model once, then every new token costs one step of the
model's stepper on the carried state, for all samples at once::

    prompt "ROMEO:" -> model.start_generation (one pass) -> stepper, logits (N, V)
    loop:  logits -> sample_next -> token (N,) -> stepper.step -> logits (N, V)

What this module needs of a model is that small interface (``start_generation``, ``device``,
``config.reverse``, ``require_tokenizer``); how a step runs is the model's and its encoder's
business. The functions take the model as their first argument (nanoGPT's sample.py,
transformers' ``GenerationMixin``); ``RNNLanguageModel.stream``/``generate``/``generate_text``
call them. Beam search is :func:`textrnn.models.decoding.beam_search`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from torch import Tensor

from ..core.errors import TextRNNError
from ..core.runtime import eval_mode
from ..data.encoding import require_unicode
from ..data.tokenization import EOS_ID, UNK_ID, TextTokenizer
from .decoding import Controls, History, StopText, apply_controls, beam_search
from .generation_config import GenerationConfig

LanguageModel = Any  # any model with start_generation(ids, rows) -> (stepper, logits); see module docstring


def prompt_ids(tokenizer: TextTokenizer, prompt: str) -> Tensor:
    """The prompt as ids; an empty prompt starts from a newline (or <eos> where that is unknown)."""
    require_unicode(prompt, "the prompt")  # a lone surrogate, from JSON's \ud800 or a badly decoded argument
    if prompt == "":
        ids = tokenizer.encode("\n")
        return torch.tensor(ids if ids and ids[0] != UNK_ID else [EOS_ID])
    ids = tokenizer.encode(prompt)
    if not ids or all(i == UNK_ID for i in ids):
        raise TextRNNError(
            "the prompt has no token the model knows (all map to <unk>); use characters or words from the training text"
        )
    return torch.tensor(ids)


def sample_next(logits: Tensor, temperature: float, top_k: Optional[int], top_p: Optional[float],
                generator: torch.Generator) -> Tensor:
    """(N, V) logits -> (N,) ids. temperature 0 is greedy; top_k above V means no top-k."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > top_p  # keep the smallest set reaching top_p
        probs = probs.scatter(-1, order, sorted_probs.masked_fill(outside, 0.0))
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def settings(generation_config: Optional[GenerationConfig] = None, max_new_tokens: Optional[int] = None,
             **changes: Any) -> GenerationConfig:
    """``generation_config`` (default: :class:`~textrnn.models.generation_config.GenerationConfig`'s defaults)
    with ``changes``, validated once."""
    if max_new_tokens is not None:
        changes["max_new_tokens"] = max_new_tokens
    return (generation_config or GenerationConfig()).replace(**changes).validate()


def stream(model: LanguageModel, input_ids: Tensor, max_new_tokens: Optional[int] = None, *,
           generation_config: Optional[GenerationConfig] = None, stop_ids: Sequence[int] = (),
           **changes: Any) -> Iterator[Tensor]:
    """Check the settings now, then return an iterator of new tokens, (num_samples,) ids each.

    The settings are ``generation_config`` (default: ``GenerationConfig()``) with ``changes`` by
    name (``temperature=0``...). The prompt ``input_ids`` (T,) is run once; a sample that produces a
    token in ``stop_ids`` keeps yielding ``stop_ids[0]``, and the iterator ends once all have stopped. A
    sample whose every next token the controls ban ends the same way (with ``<eos>`` when no stop
    id is given), in greedy decoding, sampling and beam search alike.
    The controls (:mod:`textrnn.models.decoding`) apply to sampling and beam search alike; beam
    search (``num_beams > 1``) yields its best ``num_samples`` beams once the search ends.
    """
    return _start(model, input_ids, settings(generation_config, max_new_tokens, **changes), stop_ids)


def _start(model: LanguageModel, input_ids: Tensor, config: GenerationConfig, stop_ids: Sequence[int]
           ) -> Iterator[Tensor]:
    """:func:`stream` with its settings validated."""
    if model.config.reverse:
        raise TextRNNError(
            "this language model reads right to left (model.reverse=true): it starts a classifier's "
            "backward direction (model.init_from_backward) and does not continue a prompt"
        )
    controls = Controls(config.repetition_penalty, config.no_repeat_ngram_size, config.min_new_tokens,
                        config.num_beams)
    if config.num_beams > 1:
        return _beam_search(model, input_ids, config.max_new_tokens, controls, config.num_samples, stop_ids)
    # Without a seed, the seed is drawn from torch's global generator: torch.manual_seed makes sampling repeatable
    # (as in transformers), and the global generator is never re-seeded from the clock behind the caller's back.
    seed = config.seed if config.seed is not None else int(torch.randint(2**62, (), dtype=torch.int64))
    generator = torch.Generator(device=model.device)
    generator.manual_seed(seed)
    return _sample(model, input_ids, config.max_new_tokens, (config.temperature, config.top_k, config.top_p),
                   config.num_samples, generator, stop_ids, controls)


@torch.inference_mode()
def _sample(model: LanguageModel, input_ids: Tensor, max_new_tokens: int,
            settings: tuple[float, Optional[int], Optional[float]], num_samples: int,
            generator: torch.Generator, stop_ids: Sequence[int], controls: Controls = Controls()) -> Iterator[Tensor]:
    device = model.device
    with eval_mode(model):
        stepper, logits = model.start_generation(input_ids, num_samples)  # logits (N, V)
        stop = torch.tensor(list(stop_ids), dtype=torch.long, device=device)
        end = torch.tensor([*stop_ids, EOS_ID][0], device=device)  # what an ended sample goes on emitting
        done = torch.zeros(num_samples, dtype=torch.bool, device=device)
        active = controls != Controls()  # plain sampling keeps no history: the fast path stays fast
        history = History(input_ids.tolist(), num_samples, controls.no_repeat_ngram_size) if active else None
        for step in range(max_new_tokens):
            if history is not None:  # a sample whose every next token is banned ends here
                logits, stuck = apply_controls(logits, history, controls, step, [*stop_ids, EOS_ID])
                done |= stuck
            token = torch.where(done, end, sample_next(logits, *settings, generator))  # (N,)
            if len(stop_ids):  # finished samples keep emitting the stop token
                done |= torch.isin(token, stop)
            yield token
            if (len(stop_ids) or history is not None) and bool(done.all()):  # (a sync: not on the fast path)
                return
            if history is not None:
                history.append(token.tolist())
            logits = stepper.step(token)  # (N, V)


@torch.inference_mode()
def _beam_search(model: LanguageModel, input_ids: Tensor, max_new_tokens: int, controls: Controls, num_samples: int,
                 stop_ids: Sequence[int]) -> Iterator[Tensor]:
    with eval_mode(model):
        stepper, logits = model.start_generation(input_ids, controls.num_beams)  # logits (k, V)
        rows = beam_search(stepper, logits, input_ids.tolist(), max_new_tokens, controls, num_samples, stop_ids)
    pad = [*stop_ids, EOS_ID][0]
    for column in range(max(len(r) for r in rows)):
        yield torch.tensor([r[column] if column < len(r) else pad for r in rows])


def stream_samples(model: LanguageModel, prompt: str = "", max_new_tokens: Optional[int] = None, *,
                   generation_config: Optional[GenerationConfig] = None, stop_ids: Sequence[int] = (),
                   **changes: Any) -> Iterator[list[str]]:
    """Check the settings now, then return an iterator of the new text of each sample, step by step: a list of
    ``num_samples`` pieces (``""`` for a sample with nothing new), the last one what stop strings held back.

    Settings as :func:`stream`. Stop tokens end a sample and are not included; ``stop`` strings cut the text
    exactly where the first one begins (:class:`~textrnn.models.decoding.StopText`). Joined, a sample's pieces
    are its text (:func:`generate_text`). One sample: :func:`stream_text` yields its pieces as strings.
    """
    return _text_steps(model, prompt, settings(generation_config, max_new_tokens, **changes), list(stop_ids))


def stream_text(model: LanguageModel, prompt: str = "", max_new_tokens: Optional[int] = None, *,
                generation_config: Optional[GenerationConfig] = None, stop_ids: Sequence[int] = (),
                **changes: Any) -> Iterator[str]:
    """One sample's new text as it is made: a string each step (``""`` while a step adds no text yet), the
    pieces joined are the sample (``generate_text(...)[0]``). Settings are checked now, as :func:`stream_samples`;
    ``num_samples`` above 1 is refused here (use :func:`stream_samples`)."""
    config = settings(generation_config, max_new_tokens, **changes)
    if config.num_samples != 1:
        raise TextRNNError(f"stream_text streams one sample, not num_samples={config.num_samples}: "
                           "use stream_samples (a list of pieces a step) or generate_text")
    return (pieces[0] for pieces in _text_steps(model, prompt, config, list(stop_ids)))


def _text_steps(model: LanguageModel, prompt: str, config: GenerationConfig, stop_ids: list) -> Iterator[list[str]]:
    """Both streams' work once the settings are checked: the prompt's checks now, then each step's pieces."""
    tokenizer = model.require_tokenizer()
    return _pieces(tokenizer, _start(model, prompt_ids(tokenizer, prompt), config, stop_ids), config, stop_ids)


def _pieces(tokenizer: TextTokenizer, tokens: Iterator[Tensor], config: GenerationConfig,
            stop_ids: list) -> Iterator[list[str]]:
    texts: list = []
    for token in tokens:
        ids = token.tolist()
        texts = texts or [(_TextSoFar(tokenizer), StopText(config.stop, config.min_new_tokens)) for _ in ids]
        piece = ["" if t in stop_ids or cut.done else cut.feed(so_far.add(t)) for t, (so_far, cut) in zip(ids, texts)]
        for t, (_, cut) in zip(ids, texts):
            cut.done = cut.done or t in stop_ids
        yield piece
        if all(cut.done for _, cut in texts):
            break
    tail = [cut.flush() for _, cut in texts]
    if any(tail):
        yield tail


def generate_text(model: LanguageModel, prompt: str = "", max_new_tokens: Optional[int] = None,
                  on_token: Optional[Callable] = None, **settings: Any) -> list[str]:
    """Sample ``num_samples`` continuations of ``prompt`` as text (prompt not included): :func:`stream_text`'s
    pieces joined. ``on_token(pieces)``, if given, sees each step's pieces as they come."""
    texts: Optional[list[str]] = None
    for piece in stream_samples(model, prompt, max_new_tokens, **settings):
        texts = piece if texts is None else [text + new for text, new in zip(texts, piece)]
        if on_token is not None:
            on_token(piece)
    assert texts is not None  # every generation yields at least one step (max_new_tokens >= 1)
    return texts


class _TextSoFar:
    """A sample's decoded text, one token at a time; ``add`` returns the new piece.

    Characters are exact one by one; word and BPE text is decoded whole each time (decoders
    join tokens with spaces or merge pieces), and the new piece is what grew.
    """

    def __init__(self, tokenizer: TextTokenizer) -> None:
        self.tokenizer, self.text = tokenizer, ""
        self.ids: list[int] = []

    def add(self, token: int) -> str:
        if self.tokenizer.kind == "char":
            return self.tokenizer.token_text(token)
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        piece, self.text = text[len(self.text) :], text
        return piece

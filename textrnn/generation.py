"""Sampling text from a language model: prompt handling, the sampling checks, ``sample_next``
and the fused decoding step.

A call runs the prompt through the model once (in chunks, so memory stays bounded), then
every new token costs one step of :class:`FusedStepper` on the carried state, for all samples
at once::

    prompt "ROMEO:" -> backbone (one pass) -> state, logits
    loop:  logits -> sample_next -> token (N,) -> FusedStepper.step -> logits (N, V)

The functions take the model as their first argument (nanoGPT's sample.py, transformers'
``GenerationMixin``); ``RNNLanguageModel.stream``/``generate``/``generate_text`` call them.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Sequence

import torch
from torch import Tensor

from .decoding import Controls, History, StopText, apply_controls
from .encoder import RNNEncoder, State
from .errors import TextRNNError
from .runtime import eval_mode
from .tokenization import EOS_ID, UNK_ID, TextTokenizer

if TYPE_CHECKING:  # annotations only: model.py imports this module
    from .model import RNNLanguageModel


def prompt_ids(tokenizer: TextTokenizer, prompt: str) -> Tensor:
    """The prompt as ids; an empty prompt starts from a newline (or <eos> where that is unknown)."""
    if prompt == "":
        ids = tokenizer.encode("\n")
        return torch.tensor(ids if ids and ids[0] != UNK_ID else [EOS_ID])
    ids = tokenizer.encode(prompt)
    if not ids or all(i == UNK_ID for i in ids):
        raise TextRNNError("the prompt has no token the model knows (all map to <unk>); use characters or words from the training text")
    return torch.tensor(ids)


def check_sampling(max_new_tokens: int, temperature: float, top_k: Optional[int], top_p: Optional[float],
                   num_samples: int) -> None:
    """One-line errors for sampling settings that make no sense."""
    if max_new_tokens < 1:
        raise TextRNNError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if temperature < 0:
        raise TextRNNError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise TextRNNError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise TextRNNError(f"top_p must be in (0, 1], got {top_p}")
    if num_samples < 1:
        raise TextRNNError(f"num_samples must be at least 1, got {num_samples}")


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


def stream(model: "RNNLanguageModel", input_ids: Tensor, max_new_tokens: int = 200, temperature: float = 1.0,
           top_k: Optional[int] = None, top_p: Optional[float] = None, num_samples: int = 1,
           seed: Optional[int] = None, stop_ids: Sequence[int] = (), repetition_penalty: float = 1.0,
           no_repeat_ngram_size: int = 0, min_new_tokens: int = 0, num_beams: int = 1) -> Iterator[Tensor]:
    """Check the settings now, then return an iterator of new tokens, (num_samples,) ids each.

    The prompt ``input_ids`` (T,) is run once; a sample that produces a token in
    ``stop_ids`` keeps yielding ``stop_ids[0]``, and the iterator ends once all have stopped.
    The controls (:mod:`textrnn.decoding`) apply to sampling and beam search alike; beam
    search (``num_beams > 1``) yields its best ``num_samples`` beams once the search ends.
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p, num_samples)
    if model.config.reverse:
        raise TextRNNError("this language model reads right to left (model.reverse=true): it starts a classifier's "
                           "backward direction (model.init_from_backward) and does not continue a prompt")
    controls = Controls(repetition_penalty, no_repeat_ngram_size, min_new_tokens, num_beams).check(max_new_tokens, num_samples)
    if num_beams > 1:
        return _beam_search(model, input_ids, max_new_tokens, controls, num_samples, stop_ids)
    generator = torch.Generator(device=model.device)
    generator.manual_seed(seed if seed is not None else torch.seed())
    return _sample(model, input_ids, max_new_tokens, (temperature, top_k, top_p), num_samples, generator, stop_ids,
                   controls)


@torch.inference_mode()
def _sample(model, input_ids: Tensor, max_new_tokens: int, settings: tuple, num_samples: int,
            generator: torch.Generator, stop_ids: Sequence[int], controls: Controls = Controls()) -> Iterator[Tensor]:
    device = model.device
    with eval_mode(model):
        stepper, logits = _start(model, input_ids, num_samples)  # logits (N, V)
        stop = torch.tensor(list(stop_ids), dtype=torch.long, device=device)
        done = torch.zeros(num_samples, dtype=torch.bool, device=device)
        active = controls != Controls()  # plain sampling keeps no history: the fast path stays fast
        history = History(input_ids.tolist(), num_samples, controls.no_repeat_ngram_size) if active else None
        for step in range(max_new_tokens):
            if history is not None:
                logits = apply_controls(logits, history, controls, step, [*stop_ids, EOS_ID])
            token = sample_next(logits, *settings, generator)  # (N,)
            if len(stop_ids):  # finished samples keep emitting the stop token
                token = torch.where(done, stop[0], token)
                done |= torch.isin(token, stop)
            yield token
            if len(stop_ids) and bool(done.all()):
                return
            if history is not None:
                history.append(token.tolist())
            logits = stepper.step(token)  # (N, V)


@torch.inference_mode()
def _beam_search(model, input_ids: Tensor, max_new_tokens: int, controls: Controls, num_samples: int,
                 stop_ids: Sequence[int]) -> Iterator[Tensor]:
    """The ``num_samples`` best of ``num_beams`` beams (summed log-probability / length), then yielded a column at a time."""
    k, stops = controls.num_beams, [*stop_ids, EOS_ID]
    with eval_mode(model):
        stepper, logits = _start(model, input_ids, k)  # logits (k, V)
        history = History(input_ids.tolist(), k, controls.no_repeat_ngram_size)  # each beam's tokens, prompt first
        scores = torch.full((k,), float("-inf"), device=model.device)
        scores[0] = 0.0  # the k beams start equal: only one may continue at first
        finished = []
        for step in range(max_new_tokens):
            logp = torch.log_softmax(apply_controls(logits, history, controls, step, stops), dim=-1)  # (k, V)
            best = torch.topk((scores[:, None] + logp).flatten(), k)
            parents, chosen = (best.indices // logp.size(1)).tolist(), (best.indices % logp.size(1))
            history.append(chosen.tolist(), parents)
            rows, scores = [row[input_ids.numel():] for row in history.rows], best.values.clone()  # the new tokens
            for i, token in enumerate(chosen.tolist()):
                if token in stops and scores[i] > float("-inf"):  # a finished hypothesis leaves the beam
                    finished.append((float(scores[i]) / len(rows[i]), rows[i]))
                    scores[i] = float("-inf")
            if not bool(torch.isfinite(scores).any()):
                break
            stepper.reorder(torch.tensor(parents, device=model.device))
            logits = stepper.step(chosen)
        finished += [(float(s) / len(r), r) for s, r in zip(scores, rows) if s > float("-inf")]
    best_rows = [r for _, r in sorted(finished, key=lambda pair: -pair[0])[:num_samples]]
    pad = stops[0]
    for column in range(max(len(r) for r in best_rows)):
        yield torch.tensor([r[column] if column < len(r) else pad for r in best_rows])


def _start(model, input_ids: Tensor, rows: int) -> tuple["FusedStepper", Tensor]:
    """Run the prompt (T,) once: the stepper carrying its state for ``rows`` sequences, and their first logits (rows, V)."""
    last_hidden, state = _run_prompt(model, input_ids.to(model.device))  # (1, H)
    stepper = FusedStepper(model, state, rows)
    return stepper, stepper.head(last_hidden).expand(rows, -1)


def _run_prompt(model, ids: Tensor, chunk: int = 4096):
    # oneDNN's per-call setup costs more than a short prompt's arithmetic on CPU.
    short = ids.numel() < 256 and ids.device.type == "cpu"
    state, outputs = None, None
    with _onednn_off() if short else contextlib.nullcontext():
        for start in range(0, ids.numel(), chunk):
            outputs, state = model.backbone(ids[start:start + chunk][None, :], None, state)  # (1, t, H)
    return outputs[:, -1], state


def generate_text(model: "RNNLanguageModel", prompt: str = "", max_new_tokens: int = 200,
                  on_token: Optional[Callable] = None, stop: Sequence[str] = (), **sampling) -> list[str]:
    """Sample ``num_samples`` continuations of ``prompt`` as text (prompt not included).

    ``on_token(texts)`` is called after every step with the new text piece of each sample,
    which is how the command line streams. Stop tokens end a sample and are not included;
    ``stop`` strings cut the text exactly where the first one begins (:class:`StopText`).
    """
    tokenizer = model.require_tokenizer()
    stop_ids = list(sampling.pop("stop_ids", ()))
    tokens = stream(model, prompt_ids(tokenizer, prompt), max_new_tokens, stop_ids=stop_ids, **sampling)
    texts: list = []
    for token in tokens:
        ids = token.tolist()
        texts = texts or [(_TextSoFar(tokenizer), StopText(stop, sampling.get("min_new_tokens", 0))) for _ in ids]
        piece = ["" if t in stop_ids or cut.done else cut.feed(so_far.add(t)) for t, (so_far, cut) in zip(ids, texts)]
        for t, (_, cut) in zip(ids, texts):
            cut.done = cut.done or t in stop_ids
        if on_token is not None:
            on_token(piece)
        if all(cut.done for _, cut in texts):
            break
    tail = [cut.flush() for _, cut in texts]
    if on_token is not None and any(tail):
        on_token(tail)
    return [cut.text for _, cut in texts]


class _TextSoFar:
    """A sample's decoded text, one token at a time; ``add`` returns the new piece.

    Characters are exact one by one; word and BPE text is decoded whole each time (decoders
    join tokens with spaces or merge pieces), and the new piece is what grew.
    """

    def __init__(self, tokenizer: TextTokenizer) -> None:
        self.tokenizer, self.ids, self.text = tokenizer, [], ""

    def add(self, token: int) -> str:
        if self.tokenizer.kind == "char":
            return self.tokenizer.token_text(token)
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        piece, self.text = text[len(self.text):], text
        return piece


class FusedStepper:
    """One decoding step of the whole RNN stack, as few ops as PyTorch allows.

    ``nn.LSTM`` on a single time step goes through oneDNN on CPU, whose per-call setup costs
    about 10x the arithmetic at batch 1. Here each layer is one ``addmm`` over the
    concatenated input and hidden state, then the gate nonlinearities. The LSTM's gate rows
    are reordered (i, f, o, g) so one sigmoid covers three gates.
    """

    def __init__(self, model: "RNNLanguageModel", state: State, num_samples: int) -> None:
        encoder = model.backbone.encoder
        self.cell, self.hidden = encoder.cell, encoder.hidden_size
        self.embedding = model.backbone.embedding.weight
        h = state[0] if isinstance(state, tuple) else state  # (L, 1, H)
        self.h = [layer.expand(num_samples, -1).contiguous() for layer in h[:, 0]]
        self.c = [layer.expand(num_samples, -1).contiguous() for layer in state[1][:, 0]] if self.cell == "lstm" else None
        self.layers = fused_weights(model)
        # The output layer, with never-sampled ids folded into its bias as -inf.
        head_bias = model.head.bias.detach().clone()
        head_bias[model.never_sampled()] = float("-inf")
        self.head_weight, self.head_bias = model.head.weight.t(), head_bias
        self.projection = model.projection

    def reorder(self, index: Tensor) -> None:
        """Row i of the state becomes row ``index[i]`` (beam search keeps the beams it extends)."""
        self.h = [h[index] for h in self.h]
        if self.c is not None:
            self.c = [c[index] for c in self.c]

    def head(self, hidden: Tensor) -> Tensor:
        """(N, H) top-layer state -> (N, V) logits."""
        if self.projection is not None:
            hidden = self.projection(hidden)
        return torch.addmm(self.head_bias, hidden, self.head_weight)

    def step(self, token: Tensor) -> Tensor:
        """token (N,) -> next-token logits (N, V); updates the carried state."""
        x = self.embedding[token]  # (N, E)
        H = self.hidden
        for layer, params in enumerate(self.layers):
            h = self.h[layer]
            if self.cell == "lstm":
                gates = torch.addmm(params[1], torch.cat([x, h], dim=1), params[0])  # (N, 4H)
                ifo = gates[:, :3 * H].sigmoid()
                c = torch.addcmul(ifo[:, H:2 * H] * self.c[layer], ifo[:, :H], gates[:, 3 * H:].tanh())
                h = ifo[:, 2 * H:] * c.tanh()
                self.c[layer] = c
            elif self.cell == "gru":
                gi = torch.addmm(params[2], x, params[0])  # (N, 3H)
                gh = torch.addmm(params[3], h, params[1])  # (N, 3H)
                rz = (gi[:, :2 * H] + gh[:, :2 * H]).sigmoid()
                n = torch.tanh(gi[:, 2 * H:] + rz[:, :H] * gh[:, 2 * H:])
                h = torch.lerp(n, h, rz[:, H:])  # (1 - z) * n + z * h
            else:
                h = torch.addmm(params[1], torch.cat([x, h], dim=1), params[0]).tanh()
            self.h[layer] = h
            x = h
        return self.head(x)


def fused_weights(model: "RNNLanguageModel") -> list:
    """Per layer, the weights in the layout FusedStepper wants; cached until a weight changes.

    Building them copies every recurrent matrix. Doing that on each ``generate`` call costs
    more than a short generation itself (fresh memory, cold caches), so the result is kept
    and keyed on each parameter's storage and version counter.
    """
    encoder = model.backbone.encoder
    weights = [encoder.layer_weights(k) for k in range(encoder.num_layers)]
    key = tuple((w.data_ptr(), w._version) for layer in weights for w in layer)
    cached = getattr(model, "_fused_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    layers = [_fuse_layer(encoder, *(w.detach() for w in layer)) for layer in weights]
    model._fused_cache = (key, layers)
    return layers


def _fuse_layer(encoder: RNNEncoder, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor):
    if encoder.cell == "gru":
        return w_ih.t().contiguous(), w_hh.t().contiguous(), b_ih, b_hh
    weight, bias = torch.cat([w_ih, w_hh], dim=1), b_ih + b_hh  # (G*H, In+H), (G*H,)
    if encoder.cell == "lstm":  # gate rows i, f, g, o -> i, f, o, g
        H = encoder.hidden_size
        order = torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)]).to(weight.device)
        weight, bias = weight[order], bias[order]
    return weight.t().contiguous(), bias


@contextlib.contextmanager
def _onednn_off():
    with warnings.catch_warnings():  # torch warns about TF32 on Intel GPUs when flags change
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            yield

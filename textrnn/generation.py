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
           seed: Optional[int] = None, stop_ids: Sequence[int] = ()) -> Iterator[Tensor]:
    """Check the settings now, then return an iterator of new tokens, (num_samples,) ids each.

    The prompt ``input_ids`` (T,) is run once; a sample that produces a token in
    ``stop_ids`` keeps yielding ``stop_ids[0]``, and the iterator ends once all have stopped.
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p, num_samples)
    generator = torch.Generator(device=model.device)
    generator.manual_seed(seed if seed is not None else torch.seed())
    return _sample(model, input_ids, max_new_tokens, (temperature, top_k, top_p), num_samples, generator, stop_ids)


@torch.inference_mode()
def _sample(model, input_ids: Tensor, max_new_tokens: int, settings: tuple, num_samples: int,
            generator: torch.Generator, stop_ids: Sequence[int]) -> Iterator[Tensor]:
    device = model.device
    with eval_mode(model):
        last_hidden, state = _run_prompt(model, input_ids.to(device))  # (1, H)
        stepper = FusedStepper(model, state, num_samples)
        logits = stepper.head(last_hidden).expand(num_samples, -1)  # (N, V)
        stop = torch.tensor(list(stop_ids), dtype=torch.long, device=device)
        done = torch.zeros(num_samples, dtype=torch.bool, device=device)
        for _ in range(max_new_tokens):
            token = sample_next(logits, *settings, generator)  # (N,)
            if len(stop_ids):  # finished samples keep emitting the stop token
                token = torch.where(done, stop[0], token)
                done |= torch.isin(token, stop)
            yield token
            if len(stop_ids) and bool(done.all()):
                return
            logits = stepper.step(token)  # (N, V)


def _run_prompt(model, ids: Tensor, chunk: int = 4096):
    # oneDNN's per-call setup costs more than a short prompt's arithmetic on CPU.
    short = ids.numel() < 256 and ids.device.type == "cpu"
    state, outputs = None, None
    with _onednn_off() if short else contextlib.nullcontext():
        for start in range(0, ids.numel(), chunk):
            outputs, state = model.backbone(ids[start:start + chunk][None, :], None, state)  # (1, t, H)
    return outputs[:, -1], state


def generate_text(model: "RNNLanguageModel", prompt: str = "", max_new_tokens: int = 200,
                  on_token: Optional[Callable] = None, **sampling) -> list[str]:
    """Sample ``num_samples`` continuations of ``prompt`` as text (prompt not included).

    ``on_token(texts)`` is called after every step with the new text piece of each sample,
    which is how the command line streams. Stop tokens end a sample and are not included.
    """
    tokenizer = model.require_tokenizer()
    stop = list(sampling.pop("stop_ids", ()))
    tokens = stream(model, prompt_ids(tokenizer, prompt), max_new_tokens, stop_ids=stop, **sampling)
    pieces: list[list[int]] = []
    finished = None
    for token in tokens:
        ids = token.tolist()
        finished = [False] * len(ids) if finished is None else finished
        piece = []
        for i, t in enumerate(ids):
            finished[i] = finished[i] or t in stop
            piece.append("" if finished[i] else tokenizer.token_text(t))
        pieces.append([-1 if finished[i] else t for i, t in enumerate(ids)])
        if on_token is not None:
            on_token(piece)
    rows = list(zip(*pieces)) if pieces else []
    return [tokenizer.decode([t for t in row if t >= 0]) for row in rows]


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

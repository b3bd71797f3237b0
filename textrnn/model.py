"""The two models: :class:`RNNClassifier` and :class:`RNNLanguageModel`.

Both are driven by one :class:`~textrnn.config.RNNConfig`, share the embedding -> encoder
front, and save to / load from a self-contained folder (``config.json``,
``model.safetensors``, ``tokenizer.json``; see :mod:`textrnn.checkpoint`).

Training and inference share one path: ``forward`` returns the loss alongside the logits
when targets are given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from typing import Callable, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import PretrainedMixin
from .config import RNNConfig
from .encoder import RNNEncoder, State
from .errors import ConfigError, TextRNNError
from .tokenization import BOS_ID, EOS_ID, PAD_ID, UNK_ID, TextTokenizer


class EmbeddingDropout(nn.Module):
    """Dropout on embeddings with one mask per sequence, shared across time steps.

    Dropping the same embedding dimensions at every step (variational dropout, Gal &
    Ghahramani 2016) regularizes an RNN better than a fresh mask per step, which the
    recurrence simply averages away.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:  # x: (B, T, E)
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - self.p) / (1 - self.p)  # (B, 1, E)
        return x * mask


class _RNNBackbone(PretrainedMixin, nn.Module):
    """Embedding (padding_idx = pad) -> embedding dropout -> RNNEncoder."""

    def __init__(self, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> None:
        super().__init__()
        config.validate()
        if config.vocab_size < 1:
            raise ConfigError("model vocab_size must be set to the tokenizer's vocabulary size")
        self.config = config
        self.tokenizer = tokenizer
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_id)
        self.embedding_dropout = EmbeddingDropout(config.embedding_dropout)
        self.encoder = RNNEncoder(
            config.embedding_dim, config.hidden_size, config.num_layers, config.cell,
            config.bidirectional, config.dropout, config.strategy, config.weight_dropout,
        )
        self.output_dropout = nn.Dropout(config.output_dropout)

    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    def encode(self, input_ids: Tensor, lengths: Optional[Tensor], state: Optional[State] = None):
        input_ids = self.drop_words(input_ids)
        x = self.embedding_dropout(self.embedding(input_ids))  # (B, T, E)
        return self.encoder(x, lengths, state)  # (B, T, D*H), final state

    def drop_words(self, input_ids: Tensor) -> Tensor:
        """In training, replace each non-pad token by ``<unk>`` with probability ``word_dropout``.

        A tokenizer trained on the training split with ``min_freq=1`` sees every training
        word, so ``<unk>`` never occurs in training and its embedding stays random, yet at test
        time every unseen word maps to it (5% of SST-2's validation tokens, in 56% of its
        sentences). Dropping words to ``<unk>`` trains that embedding as "a word I do not
        know" and makes the model lean on context (word dropout, Iyyer et al. 2015).
        ``tokenizer.min_freq > 1`` does the same with the rare words only, which measured
        better on SST-2 (see the README's ablation).
        """
        p = self.config.word_dropout
        if not self.training or p == 0:
            return input_ids
        drop = (torch.rand(input_ids.shape, device=input_ids.device) < p) & (input_ids != self.config.pad_id)
        return input_ids.masked_fill(drop, UNK_ID)  # (B, T)

    def clip_groups(self) -> list:
        """Parameter groups whose gradient norms are clipped separately: one, the whole model."""
        return [list(self.parameters())]

    def require_tokenizer(self) -> TextTokenizer:
        if self.tokenizer is None:
            raise TextRNNError("this model has no tokenizer; load it with from_pretrained or set model.tokenizer")
        return self.tokenizer


class RNNClassifier(_RNNBackbone):
    """Text classifier: embedding -> encoder -> pooling -> dropout -> linear.

    ``forward(input_ids (B, T), lengths (B,), labels (B,) = None) -> (logits (B, C), loss)``;
    ``loss`` is None without labels.

    Pooling over the encoder outputs (B, T, D*H), padding excluded:
    ``last`` concatenates each direction's final state (forward at the last token, backward
    at the first), ``mean`` and ``max`` pool over valid steps, ``attention`` is a learned
    softmax-weighted sum. An empty sequence pools to zeros.

    With ``config.label_smoothing = s > 0`` the training loss is cross-entropy against
    ``(1 - s)`` on the label plus ``s`` spread evenly over all labels; in eval mode it is the
    plain cross-entropy. With ``config.lm_loss_weight > 0`` the training loss adds that weight times
    :meth:`lm_loss`, an auxiliary language-model loss on the encoder outputs.

    With ``config.ensemble_size = K > 1`` the constructor returns a
    :class:`ClassifierEnsemble` of K such classifiers (same contract).
    """

    task = "classification"

    def __new__(cls, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None):
        if cls is RNNClassifier and config.ensemble_size > 1:
            cls = ClassifierEnsemble
        return super().__new__(cls)

    def __init__(self, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> None:
        super().__init__(config, tokenizer)
        width = self.encoder.output_size
        self.attention = nn.Linear(width, 1) if config.pooling == "attention" else None
        self.head = nn.Linear(width, config.num_labels)
        # hidden -> embedding space, where the auxiliary LM scores words against the input embeddings
        self.lm_projection = nn.Linear(config.hidden_size, config.embedding_dim, bias=False) if config.lm_loss_weight else None

    def forward(self, input_ids: Tensor, lengths: Tensor, labels: Optional[Tensor] = None):
        outputs, state = self.encode(input_ids, lengths)  # (B, T, D*H)
        pooled = self.pool(outputs, state, lengths)  # (B, D*H)
        logits = self.head(self.output_dropout(pooled))  # (B, C)
        smoothing = self.config.label_smoothing if self.training else 0.0  # evaluation reports the plain loss
        loss = F.cross_entropy(logits.float(), labels.to(logits.device), label_smoothing=smoothing) if labels is not None else None
        if loss is not None and self.training and self.lm_projection is not None:
            loss = loss + self.config.lm_loss_weight * self.lm_loss(outputs, input_ids, lengths)
        return logits, loss

    def lm_loss(self, outputs: Tensor, input_ids: Tensor, lengths: Tensor) -> Tensor:
        """Auxiliary language-model loss: each direction predicts the word it has not read yet.

        ``outputs`` (B, T, D*H) from the encoder's top layer, ``input_ids`` (B, T) before word
        dropout, ``lengths`` (B,). The forward half at step t predicts token t+1, the backward
        half (it has read t..end) token t-1::

            tokens     x0   x1   x2   x3   <pad>
            forward    ->x1 ->x2 ->x3   -     -
            backward    -   x0<- x1<- x2<-    -

        Every word of the batch gets a gradient from its contexts, rare ones included, which
        the one label per sentence cannot give (multitask LM objective, Rei 2017). The softmax
        runs over the batch's distinct target words, scored against the input embeddings
        through ``lm_projection``: a full softmax over a word vocabulary would cost more than
        the classifier itself, and the sampled one is only a training signal. Returns a
        scalar; 0 when no sequence has two tokens.
        """
        hidden = self.config.hidden_size
        lengths = lengths.to(outputs.device)
        pairs = torch.arange(outputs.size(1) - 1, device=outputs.device)[None, :] < lengths[:, None] - 1  # (B, T-1)
        states = [outputs[:, :-1, :hidden][pairs]]  # (N, H): forward states that have a next word
        targets = [input_ids[:, 1:][pairs]]  # (N,)
        if self.encoder.num_directions == 2:
            states.append(outputs[:, 1:, hidden:][pairs])  # backward states that have a previous word
            targets.append(input_ids[:, :-1][pairs])
        states, targets = torch.cat(states), torch.cat(targets)  # (2N, H), (2N,)
        words, target = torch.unique(targets, return_inverse=True)  # (W,), (2N,) indices into words
        queries = self.lm_projection(self.output_dropout(states))  # (2N, E)
        scores = queries @ self.embedding.weight[words].t()  # (2N, W)
        # a sum over max(1, 2N), not a mean: with no pairs it is 0 and every parameter still in the graph (DDP)
        return F.cross_entropy(scores.float(), target, reduction="sum") / max(1, target.numel())

    def pool(self, outputs: Tensor, state: State, lengths: Tensor) -> Tensor:
        batch, steps, _ = outputs.shape
        if self.config.pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
            top = h_n[-self.encoder.num_directions:]  # (D, B, H) of the last layer
            return top.transpose(0, 1).reshape(batch, -1)  # (B, D*H)
        lengths = lengths.to(outputs.device)
        mask = torch.arange(steps, device=outputs.device)[None, :] < lengths[:, None]  # (B, T)
        if self.config.pooling == "mean":
            return outputs.sum(1) / lengths.clamp(min=1)[:, None].to(outputs.dtype)
        if self.config.pooling == "max":
            masked = outputs.masked_fill(~mask[:, :, None], float("-inf")).amax(1)  # (B, D*H)
            return torch.where(lengths[:, None] > 0, masked, torch.zeros_like(masked))
        scores = self.attention(outputs).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.softmax(scores, dim=1).nan_to_num(0.0)  # empty rows: all -inf -> zeros
        return torch.bmm(weights[:, None, :].to(outputs.dtype), outputs)[:, 0]  # (B, D*H)

    @property
    def label_names(self) -> list[str]:
        return list(self.config.label_names or [str(i) for i in range(self.config.num_labels)])

    @torch.no_grad()
    def predict(self, texts: Sequence[str], batch_size: int = 64, max_length: Optional[int] = None) -> list[dict]:
        """Label names and probabilities for ``texts``, through the saved tokenizer.

        Returns one ``{"label": name, "probabilities": {name: p}}`` per text. Texts longer
        than ``max_length`` tokens (default 10,000) keep their first ``max_length`` tokens and
        say so with ``"truncated_to_tokens": max_length``.
        """
        from .data import encode_for_inference, pad_batch

        tokenizer = self.require_tokenizer()
        limit = max_length or 10_000
        names = self.label_names
        was_training = self.training
        self.eval()
        results = []
        try:
            for start in range(0, len(texts), batch_size):
                ids, cut = encode_for_inference(tokenizer, texts[start:start + batch_size], limit)
                input_ids, lengths = pad_batch(ids, self.config.pad_id)
                logits, _ = self(input_ids.to(self.device), lengths)
                for row, was_cut in zip(torch.softmax(logits.float(), dim=-1).cpu().tolist(), cut):
                    best = max(range(len(row)), key=row.__getitem__)
                    results.append({"label": names[best], "probabilities": dict(zip(names, row))})
                    if was_cut:
                        results[-1]["truncated_to_tokens"] = limit
        finally:
            self.train(was_training)
        return results


class ClassifierEnsemble(RNNClassifier):
    """K classifiers with independent initializations, trained side by side, probabilities averaged.

    ``forward(input_ids (B, T), lengths (B,), labels (B,) = None) -> (logits (B, C), loss)``
    like :class:`RNNClassifier`. ``logits`` are the log of the members' mean probability,
    so softmax/argmax/cross-entropy on them score the ensemble. ``loss`` is the mean of the
    members' own losses: each member learns as if alone on the same batches. (Training the
    averaged prediction instead lets members lean on each other and loses the diversity an
    ensemble lives on.) Members differ by initialization and dropout masks; giving each its
    own shuffled data order measured no better on SST-2 (see the README's ablation).

    Weights are named ``members.{k}.<RNNClassifier name>``; ``members[k]`` is an ordinary
    classifier that can be used or saved on its own.
    """

    def __init__(self, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> None:
        nn.Module.__init__(self)
        config.validate()
        self.config, self.tokenizer = config, tokenizer
        member = dataclasses.replace(config, ensemble_size=1)
        self.members = nn.ModuleList(RNNClassifier(member, tokenizer) for _ in range(config.ensemble_size))

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    def forward(self, input_ids: Tensor, lengths: Tensor, labels: Optional[Tensor] = None):
        results = [m(input_ids, lengths, labels) for m in self.members]
        member_logits = torch.stack([logits for logits, _ in results]).float()  # (K, B, C)
        log_probs = torch.log_softmax(member_logits, dim=-1)  # (K, B, C)
        logits = torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))  # (B, C)
        loss = torch.stack([loss for _, loss in results]).mean() if labels is not None else None
        return logits, loss

    def clip_groups(self) -> list:
        """Each member's parameters: members' gradients are clipped separately."""
        return [list(m.parameters()) for m in self.members]


class RNNLanguageModel(_RNNBackbone):
    """Language model: embedding -> unidirectional encoder -> dropout -> linear head.

    ``forward(input_ids (B, T), lengths=None, state=None, targets (B, T)=None)``
    returns ``(logits (B, T, V), loss, state)``. Target positions equal to -100 are ignored.

    With ``tie_weights`` the head reuses the embedding matrix (Press & Wolf 2017). That needs
    the head's input to be ``embedding_dim`` wide: if ``hidden_size`` differs, set
    ``tie_projection`` to add a linear ``hidden_size -> embedding_dim`` projection in front of
    the tied head; otherwise the mismatch is a config error.
    """

    task = "language_model"

    def __init__(self, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> None:
        super().__init__(config, tokenizer)
        width = config.hidden_size
        self.projection = None
        if config.tie_weights and config.hidden_size != config.embedding_dim:
            self.projection = nn.Linear(config.hidden_size, config.embedding_dim)
            width = config.embedding_dim
        self.head = nn.Linear(width, config.vocab_size)
        self.tied_weights: dict[str, str] = {}  # saved once, under the second name
        if config.tie_weights:
            self.head.weight = self.embedding.weight
            self.tied_weights = {"head.weight": "embedding.weight"}

    def forward(self, input_ids: Tensor, lengths: Optional[Tensor] = None, state: Optional[State] = None,
                targets: Optional[Tensor] = None):
        outputs, state = self.encode(input_ids, lengths, state)  # (B, T, H)
        logits = self.logits(self.output_dropout(outputs))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().flatten(0, 1), targets.to(logits.device).flatten(), ignore_index=-100)
        return logits, loss, state

    def logits(self, hidden: Tensor) -> Tensor:
        if self.projection is not None:
            hidden = self.projection(hidden)
        return self.head(hidden)

    # ------------------------------------------------------------------ generation
    @torch.inference_mode()
    def stream(
        self,
        input_ids: Tensor,
        max_new_tokens: int = 200,
        temperature: float = 1.0,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        num_samples: int = 1,
        seed: Optional[int] = None,
        stop_ids: Sequence[int] = (),
    ) -> Iterator[Tensor]:
        """Yield each new token, (num_samples,) ids, as it is sampled.

        The prompt ``input_ids`` (T,) is run once (in chunks, so its memory is bounded); every
        new token then costs one step of a fused cell on the carried state, for all samples
        at once. A sample that produces a token in ``stop_ids`` keeps yielding ``stop_ids[0]``.
        """
        check_sampling(max_new_tokens, temperature, top_k, top_p, num_samples)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed if seed is not None else torch.seed())
        with _eval_mode(self):
            last_hidden, state = self._run_prompt(input_ids.to(self.device))  # (1, H)
            stepper = FusedStepper(self, state, num_samples)
            logits = stepper.head(last_hidden).expand(num_samples, -1)  # (N, V)
            stop = torch.tensor(list(stop_ids), dtype=torch.long, device=self.device)
            done = torch.zeros(num_samples, dtype=torch.bool, device=self.device)
            for _ in range(max_new_tokens):
                token = sample_next(logits, temperature, top_k, top_p, generator)  # (N,)
                if len(stop_ids):  # finished samples keep emitting the stop token
                    token = torch.where(done, stop[0], token)
                    done |= torch.isin(token, stop)
                yield token
                if len(stop_ids) and bool(done.all()):
                    return
                logits = stepper.step(token)  # (N, V)

    def never_sampled(self) -> list[int]:
        """<pad>, <unk> and <bos> are never sampled; nor is <eos> for char models (not in their streams)."""
        return [PAD_ID, UNK_ID, BOS_ID] + ([EOS_ID] if self.config.tokenizer_kind == "char" else [])

    def _run_prompt(self, ids: Tensor, chunk: int = 4096):
        # oneDNN's per-call setup costs more than a short prompt's arithmetic on CPU.
        short = ids.numel() < 256 and ids.device.type == "cpu"
        state, outputs = None, None
        with _onednn_off() if short else contextlib.nullcontext():
            for start in range(0, ids.numel(), chunk):
                part = ids[start:start + chunk][None, :]  # (1, t)
                outputs, state = self.encode(part, None, state)  # (1, t, H)
        return outputs[:, -1], state

    def generate(self, input_ids: Tensor, max_new_tokens: int = 200, **kwargs) -> Tensor:
        """All new tokens at once: (num_samples, number generated)."""
        tokens = list(self.stream(input_ids, max_new_tokens, **kwargs))
        return torch.stack(tokens, dim=1)

    def generate_text(self, prompt: str = "", max_new_tokens: int = 200, on_token: Optional[Callable] = None,
                      **kwargs) -> list[str]:
        """Sample ``num_samples`` continuations of ``prompt`` as text (prompt not included).

        ``on_token(texts)`` is called after every step with the new text piece of each sample,
        which is how the command line streams. Stop tokens end a sample and are not included.
        """
        tokenizer = self.require_tokenizer()
        stop = list(kwargs.pop("stop_ids", ()))
        pieces: list[list[int]] = []
        finished = None
        for token in self.stream(prompt_ids(tokenizer, prompt), max_new_tokens, stop_ids=stop, **kwargs):
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


def prompt_ids(tokenizer: TextTokenizer, prompt: str) -> Tensor:
    """The prompt as ids; an empty prompt starts from a newline (or <eos> where that is unknown)."""
    if prompt == "":
        ids = tokenizer.encode("\n")
        return torch.tensor(ids if ids and ids[0] != 1 else [EOS_ID])
    ids = tokenizer.encode(prompt)
    if not ids or all(i == 1 for i in ids):
        raise TextRNNError("the prompt has no token the model knows (all map to <unk>); use characters or words from the training text")
    return torch.tensor(ids)


def check_sampling(max_new_tokens: int, temperature: float, top_k, top_p, num_samples: int) -> None:
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


class FusedStepper:
    """One decoding step of the whole RNN stack, as few ops as PyTorch allows.

    ``nn.LSTM`` on a single time step goes through oneDNN on CPU, whose per-call setup costs
    about 10x the arithmetic at batch 1. Here each layer is one ``addmm`` over the
    concatenated input and hidden state, then the gate nonlinearities. The LSTM's gate rows
    are reordered (i, f, o, g) so one sigmoid covers three gates.
    """

    def __init__(self, model: RNNLanguageModel, state: State, num_samples: int) -> None:
        encoder = model.encoder
        self.cell = encoder.cell
        self.embedding = model.embedding.weight
        self.hidden = encoder.hidden_size
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


def fused_weights(model: RNNLanguageModel) -> list:
    """Per layer, the weights in the layout FusedStepper wants; cached until a weight changes.

    Building them copies every recurrent matrix. Doing that on each ``generate`` call costs
    more than a short generation itself (fresh memory, cold caches), so the result is kept
    and keyed on each parameter's storage and version counter.
    """
    encoder = model.encoder
    key = tuple((w.data_ptr(), w._version) for w in encoder._flat_weights)
    cached = getattr(model, "_fused_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    layers = [_fuse_layer(encoder, k) for k in range(encoder.num_layers)]
    model._fused_cache = (key, layers)
    return layers


def _fuse_layer(encoder: RNNEncoder, k: int):
    w_ih, w_hh, b_ih, b_hh = (w.detach() for w in encoder._flat_weights[4 * k: 4 * k + 4])
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


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)

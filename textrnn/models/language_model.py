"""The language model (:class:`RNNLanguageModel`) and its one-token-at-a-time stepper for generation.

``forward`` returns ``(logits, loss, state)`` for training and scoring; ``start_generation``
runs a prompt once and hands :mod:`textrnn.models.generation` a :class:`TokenStepper`, the
small interface sampling and beam search use (they never reach into the model's layers).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.config import RNNConfig
from ..core.errors import require
from ..data.tokenization import BOS_ID, EOS_ID, PAD_ID, UNK_ID, TextTokenizer
from . import generation
from .base import LMOutput, TextModel, build_backbone
from .encoder import FusedStep, State


# ---------------------------------------------------------------------------- language model
class RNNLanguageModel(TextModel):
    """Language model: backbone (unidirectional) -> dropout -> [projection] -> linear head.

    ``forward(input_ids (B, T), lengths=None, state=None, targets (B, T)=None)``
    returns ``(logits (B, T, V), loss, state)``. Target positions equal to -100 are ignored.

    With ``tie_weights`` the head reuses the embedding matrix (Press & Wolf 2017). The head's
    input must then be ``embedding_dim`` wide, so when ``hidden_size`` differs a linear
    ``hidden_size -> embedding_dim`` projection goes in front of the tied head.
    Generation (``stream``, ``generate``, ``generate_text``) is :mod:`textrnn.models.generation`.

    Example::

        import torch
        from textrnn import RNNLanguageModel, TextTokenizer

        chars = TextTokenizer.train(["to be or not to be"], "char")
        model = RNNLanguageModel.from_tokenizer(chars, hidden_size=32)
        ids = chars.encode("to be")
        logits, loss, state = model(torch.tensor([ids]), targets=torch.tensor([ids]))  # an LMOutput
        model.generate_text("to", max_new_tokens=20, temperature=0.8, seed=0)  # ['to...'], untrained
        for piece in model.stream_text("to", max_new_tokens=5, seed=0):  # one sample, a string a step
            print(piece, end="")
    """

    task = "language_model"
    pipeline_tag = "text-generation"
    train_command = "train-generator"

    @classmethod
    def check_config(cls, config: RNNConfig) -> None:
        """Language-model rules on top of ``RNNConfig.validate``."""
        require(config.ensemble_size == 1, "model.ensemble_size applies to classifiers only: set model.ensemble_size=1")
        require(not config.aux_lm_head, "model.aux_lm_head applies to classifiers only: set model.aux_lm_head=false")
        require(not config.bidirectional, "a language model must be unidirectional: set model.bidirectional=false")
        _check_adaptive_softmax(config)

    @classmethod
    def build(cls, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> "RNNLanguageModel":
        """The model a config describes (a language model is always one model)."""
        return cls(config, tokenizer)

    def __init__(self, config: Optional[RNNConfig] = None, tokenizer: Optional[TextTokenizer] = None,
                 **architecture: Any) -> None:
        super().__init__(config, tokenizer, **architecture)
        config = self.config
        self.backbone = build_backbone(config)
        self.output_dropout = nn.Dropout(config.output_dropout)
        width = self.backbone.get_output_dim()
        self.projection = None
        if config.tie_weights and width != config.embedding_dim:
            self.projection = nn.Linear(width, config.embedding_dim)
            width = config.embedding_dim
        self.adaptive: Optional[nn.AdaptiveLogSoftmaxWithLoss] = None
        if config.adaptive_softmax_cutoffs:  # Grave et al. 2017: frequent words in the head, the rest in clusters
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(width, config.vocab_size, config.adaptive_softmax_cutoffs,
                                                          div_value=config.adaptive_softmax_div_value)
        self.head = nn.Linear(width, config.vocab_size) if self.adaptive is None else None
        self.tied_weights: dict[str, str] = {}  # saved once, under the second name
        if config.tie_weights and self.head is not None:
            self.head.weight = self.backbone.embedding.weight
            self.tied_weights = {"head.weight": "backbone.embedding.weight"}
        if config.init_range:  # SGD at a high rate needs small starting logits (pytorch/examples, AWD-LSTM: 0.1)
            self._init_uniform(config.init_range)

    def _init_uniform(self, bound: float) -> None:
        embedding = self.backbone.embedding
        nn.init.uniform_(embedding.weight, -bound, bound)
        with torch.no_grad():
            embedding.weight[embedding.padding_idx].zero_()  # <pad> stays the zero vector
        if self.head is not None:
            nn.init.uniform_(self.head.weight, -bound, bound)
            nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: Tensor, lengths: Optional[Tensor] = None, state: Optional[State] = None,
                targets: Optional[Tensor] = None) -> LMOutput:
        """(B, T) ids -> (logits (B, T, V), loss or None, state); see the class docstring.

        With an adaptive softmax the logits are log-probabilities, and with ``targets`` they are
        None: the loss is the exact NLL of each target, computed without the full distribution.
        """
        outputs, state = self.backbone(input_ids, lengths, state)  # (B, T, H)
        hidden = self.output_dropout(outputs)
        if self.adaptive is not None and targets is not None:
            flat, wanted = hidden.flatten(0, 1), targets.to(hidden.device).flatten()
            kept = wanted != -100
            return LMOutput(None, self.adaptive(flat[kept].float(), wanted[kept]).loss, state)
        logits = self.logits(hidden)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().flatten(0, 1), targets.to(logits.device).flatten(), ignore_index=-100)
        return LMOutput(logits, loss, state)

    def logits(self, hidden: Tensor) -> Tensor:
        """(..., H) top-layer outputs -> (..., V) next-token logits."""
        if self.projection is not None:
            hidden = self.projection(hidden)
        if self.adaptive is not None:  # log-probabilities: the same softmax, argmax and samples as logits
            return self.adaptive.log_prob(hidden.reshape(-1, hidden.size(-1))).view(*hidden.shape[:-1], -1)
        assert self.head is not None
        return self.head(hidden)

    def never_sampled(self) -> list[int]:
        """<pad>, <unk> and <bos> are never sampled; nor is <eos> for char models (not in their streams)."""
        return [PAD_ID, UNK_ID, BOS_ID] + ([EOS_ID] if self.config.tokenizer_kind == "char" else [])

    @torch.inference_mode()
    def start_generation(self, input_ids: Tensor, rows: int) -> tuple["TokenStepper", Tensor]:
        """Run the prompt (T,) once: a stepper carrying its state for ``rows`` sequences, and their logits (rows, V)."""
        last_hidden, state = self.run_prompt(input_ids.to(self.device))  # (1, H)
        stepper = TokenStepper(self, state, rows)
        return stepper, stepper.head(last_hidden).expand(rows, -1)

    def run_prompt(self, ids: Tensor, chunk: int = 4096) -> tuple[Tensor, State]:
        """The prompt (T,) in chunks of ``chunk`` tokens, state carried: top output at its last step (1, H), state."""
        short = ids.numel() < 256 and ids.device.type == "cpu"  # oneDNN's per-call setup costs more than a short prompt
        state, outputs = None, None
        with _onednn_off() if short else contextlib.nullcontext():
            for start in range(0, ids.numel(), chunk):
                outputs, state = self.backbone(ids[start : start + chunk][None, :], None, state)  # (1, t, H)
        assert outputs is not None and state is not None  # the prompt has at least one token
        return outputs[:, -1], state

    def stream(self, input_ids: Tensor, max_new_tokens: Optional[int] = None, **settings: Any) -> Iterator[Tensor]:
        """Yield each new token, (num_samples,) ids, as it is sampled (see :func:`textrnn.models.generation.stream`);
        ``settings``: ``generation_config=``, ``stop_ids=`` and any
        :class:`~textrnn.models.generation_config.GenerationConfig` field by name."""
        return generation.stream(self, input_ids, max_new_tokens, **settings)

    def generate(self, input_ids: Tensor, max_new_tokens: Optional[int] = None, **settings: Any) -> Tensor:
        """All new tokens at once: (num_samples, number generated)."""
        return torch.stack(list(self.stream(input_ids, max_new_tokens, **settings)), dim=1)

    def explain(self, prompt: str, token: Optional[str] = None, steps: int = 64) -> dict:
        """Which prompt tokens drove the next token (default: the most likely), by integrated gradients on
        its log-probability (:func:`textrnn.models.explanation.explain_next_token`)."""
        from .explanation import explain_next_token

        return explain_next_token(self, prompt, token, steps)

    def stream_text(self, prompt: str = "", max_new_tokens: Optional[int] = None,
                    **settings: Any) -> Iterator[str]:
        """One sample's new text, a string a step (see :func:`textrnn.models.generation.stream_text`)."""
        return generation.stream_text(self, prompt, max_new_tokens, **settings)

    def stream_samples(self, prompt: str = "", max_new_tokens: Optional[int] = None,
                       **settings: Any) -> Iterator[list[str]]:
        """Each step's new text, one piece a sample (see :func:`textrnn.models.generation.stream_samples`)."""
        return generation.stream_samples(self, prompt, max_new_tokens, **settings)

    def generate_text(self, prompt: str = "", max_new_tokens: Optional[int] = None,
                      on_token: Optional[Callable] = None, **settings: Any) -> list[str]:
        """Sample continuations of ``prompt`` as text (see :func:`textrnn.models.generation.generate_text`)."""
        return generation.generate_text(self, prompt, max_new_tokens, on_token, **settings)


class TokenStepper:
    """A language model one token at a time for N rows: ``step(ids (N,)) -> logits (N, V)``, state carried.

    The recurrent stack is the encoder's :class:`~textrnn.models.encoder.FusedStep`; the output layer
    has the never-sampled ids folded into its bias as -inf.
    """

    def __init__(self, model: RNNLanguageModel, state: State, rows: int) -> None:
        self.embedding = model.backbone.embedding.weight
        self.cells: FusedStep = model.backbone.encoder.fused_step(state, rows)
        self.model = model
        banned = torch.zeros(model.config.vocab_size, device=self.embedding.device)
        banned[model.never_sampled()] = float("-inf")
        if model.head is not None:  # the mask folded into the head's bias: one addmm a step
            self.head_weight, self.head_bias = model.head.weight.t(), model.head.bias.detach() + banned
        self.banned, self.projection = banned, model.projection

    def head(self, hidden: Tensor) -> Tensor:
        """(N, H) top-layer state -> (N, V) logits (log-probabilities with an adaptive softmax)."""
        if self.model.adaptive is not None:
            return self.model.logits(hidden) + self.banned
        if self.projection is not None:
            hidden = self.projection(hidden)
        return torch.addmm(self.head_bias, hidden, self.head_weight)

    def step(self, token: Tensor) -> Tensor:
        """token (N,) -> next-token logits (N, V); updates the carried state."""
        return self.head(self.cells.step(self.embedding[token]))  # (N, E) -> (N, H) -> (N, V)

    def reorder(self, index: Tensor) -> None:
        """Row i of the state becomes row ``index[i]`` (beam search keeps the beams it extends)."""
        self.cells.reorder(index)


def _check_adaptive_softmax(config: RNNConfig) -> None:
    cutoffs = config.adaptive_softmax_cutoffs
    if cutoffs is None:
        return
    require(bool(isinstance(cutoffs, list) and cutoffs and all(isinstance(c, int) for c in cutoffs)
                 and cutoffs == sorted(set(cutoffs)) and cutoffs[0] > 0),
            f"model.adaptive_softmax_cutoffs must be increasing positive integers, got {cutoffs!r}")
    require(not config.tie_weights, "model.adaptive_softmax_cutoffs cannot tie weights: set model.tie_weights=false")
    require(config.vocab_size == 0 or cutoffs[-1] < config.vocab_size - 1,
            f"model.adaptive_softmax_cutoffs must all be below the vocabulary size ({config.vocab_size}) minus one, "
            f"got {cutoffs}; drop the last cutoff or use a full softmax")
    require(config.adaptive_softmax_div_value >= 1,
            f"model.adaptive_softmax_div_value must be at least 1, got {config.adaptive_softmax_div_value}")


@contextlib.contextmanager
def _onednn_off() -> Iterator[None]:
    with warnings.catch_warnings():  # torch warns about TF32 on Intel GPUs when flags change
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            yield

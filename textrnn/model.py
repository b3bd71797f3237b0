"""The models: :class:`RNNClassifier`, :class:`ClassifierEnsemble` and :class:`RNNLanguageModel`.

Each is built by composition from :mod:`textrnn.modules` and driven by one
:class:`~textrnn.config.RNNConfig`; each saves to and loads from a self-contained folder
(``config.json``, ``model.safetensors``, ``tokenizer.json``; see :mod:`textrnn.checkpoint`).

Training and inference share one path (nanoGPT's convention): ``forward`` returns the loss
alongside the logits when targets are given. Loss options (label smoothing, the auxiliary LM
loss weight) are arguments of ``forward``, passed by the task in training; evaluation calls
``forward`` without them and gets the plain loss.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Callable, Iterable, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import generation
from .checkpoint import PretrainedMixin
from .config import RNNConfig
from .encoder import FusedStep, State
from .errors import ConfigError, TextRNNError, require
from .modules import POOLINGS, AuxiliaryLMHead, RNNBackbone
from .tokenization import BOS_ID, EOS_ID, PAD_ID, UNK_ID, TextTokenizer


def build_backbone(config: RNNConfig) -> RNNBackbone:
    if config.vocab_size < 1:
        raise ConfigError("model vocab_size must be set to the tokenizer's vocabulary size")
    return RNNBackbone(
        config.vocab_size, config.embedding_dim, config.hidden_size, num_layers=config.num_layers, cell=config.cell,
        bidirectional=config.bidirectional, dropout=config.dropout, embedding_dropout=config.embedding_dropout,
        word_dropout=config.word_dropout, weight_dropout=config.weight_dropout, strategy=config.strategy,
        pad_id=config.pad_id,
    )



class _TextModel(PretrainedMixin, nn.Module):
    """What every model has: its config, its tokenizer and a device."""

    is_classifier = False  # what code outside the registry asks instead of comparing task names
    pipeline_tag = ""  # the Hub's name for what it does (model cards)
    train_command = ""  # the `textrnn` subcommand that trains it

    def __init__(self, config: RNNConfig, tokenizer: Optional[TextTokenizer]) -> None:
        super().__init__()
        type(self).check_config(config.validate())
        self.config, self.tokenizer = config, tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def clip_groups(self) -> list:
        """Parameter groups whose gradient norms are clipped separately: one, the whole model."""
        return [list(self.parameters())]

    def require_tokenizer(self) -> TextTokenizer:
        if self.tokenizer is None:
            raise TextRNNError("this model has no tokenizer; load it with from_pretrained or set model.tokenizer")
        return self.tokenizer


# ---------------------------------------------------------------------------- classifiers
class _Classifier(_TextModel):
    """Shared by the single classifier and the ensemble: label names, predict, build."""

    task = "classification"
    is_classifier = True
    pipeline_tag = "text-classification"
    train_command = "train-classifier"

    @classmethod
    def check_config(cls, config: RNNConfig) -> None:
        """Classifier rules on top of ``RNNConfig.validate`` (the auxiliary LM head reads the top layer)."""
        require(not config.reverse, "model.reverse makes a right-to-left language model: drop it here (a "
                "bidirectional classifier reads both ways; model.init_from_backward takes a reversed LM)")
        require(not config.aux_lm_head or not (config.bidirectional and config.num_layers > 1),
                "train.lm_loss_weight needs model.num_layers=1 when bidirectional (upper layers see the word each "
                "direction predicts): set model.num_layers=1 or train.lm_loss_weight=0")

    @classmethod
    def build(cls, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> "_Classifier":
        """The model a config describes: an ensemble when ``ensemble_size > 1``."""
        return (ClassifierEnsemble if config.ensemble_size > 1 else RNNClassifier)(config, tokenizer)

    @property
    def label_names(self) -> list[str]:
        return list(self.config.label_names or [str(i) for i in range(self.config.num_labels)])

    @property
    def multi_label(self) -> bool:
        return self.config.problem_type == "multi_label"

    def probabilities(self, logits: Tensor) -> Tensor:
        """(B, C) logits -> probabilities: a softmax over labels, or one sigmoid per label (multi-label)."""
        return torch.sigmoid(logits.float()) if self.multi_label else torch.softmax(logits.float(), dim=-1)

    def thresholds(self) -> list[float]:
        return list(self.config.thresholds or [0.5] * self.config.num_labels)

    def predict(self, texts: Iterable[str], batch_size: int = 64, max_length: Optional[int] = None) -> list[dict]:
        """Label names and probabilities for ``texts``, through the saved tokenizer.

        Returns one ``{"label": name, "probabilities": {name: p}}`` per text; a multi-label
        model gives ``{"labels": [names at or over their thresholds], "probabilities": ...}``.
        A text of several fields is one string joined by ``config.field_separator``. Texts
        longer than ``max_length`` tokens (default 10,000) keep their first ``max_length``
        tokens and say so with ``"truncated_to_tokens": max_length``. Texts are batched by
        length (:func:`textrnn.prediction.predict_stream`, which streams a file of any size).
        """
        from .prediction import predict_stream

        return list(predict_stream(self, texts, batch_size, max_length))

    def result_of(self, row: list) -> dict:
        """One text's probabilities (C,) -> its label (or labels at their thresholds) and named probabilities."""
        names = self.label_names
        if self.multi_label:
            chosen = [name for name, p, t in zip(names, row, self.thresholds()) if p >= t]
            return {"labels": chosen, "probabilities": dict(zip(names, row))}
        best = max(range(len(row)), key=row.__getitem__)
        return {"label": names[best], "probabilities": dict(zip(names, row))}


def classification_loss(logits: Tensor, labels: Tensor, multi_label: bool, label_smoothing: float = 0.0,
                        class_weights: Optional[Tensor] = None) -> Tensor:
    """Cross-entropy over labels, or binary cross-entropy per label for multi-label targets (B, C).

    ``class_weights`` weight each label's examples (single-label) or each label's positives
    (multi-label, ``pos_weight``); label smoothing moves a multi-label target ``y`` to
    ``y (1 - s) + s / 2``.
    """
    logits, labels = logits.float(), labels.to(logits.device)
    weights = class_weights.to(logits.device) if class_weights is not None else None
    if multi_label:
        targets = labels.float() * (1 - label_smoothing) + 0.5 * label_smoothing
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weights)
    return F.cross_entropy(logits, labels, weight=weights, label_smoothing=label_smoothing)


class RNNClassifier(_Classifier):
    """Text classifier: backbone -> pooling -> dropout -> linear head.

    ``forward(input_ids (B, T), lengths (B,), labels = None, label_smoothing=0, lm_loss_weight=0,
    class_weights=None) -> (logits (B, C), loss)``; ``loss`` is None without labels. Labels are
    ids (B,), or 0/1 rows (B, C) when ``config.problem_type`` is ``multi_label`` (one sigmoid
    per label, binary cross-entropy; see :func:`classification_loss`).

    Pooling over the encoder outputs (B, T, D*H), padding excluded, is one of
    :data:`textrnn.modules.POOLINGS` (``last``, ``mean``, ``max``, ``attention``); an empty
    sequence pools to zeros. ``label_smoothing = s`` trains against ``(1 - s)`` on the label
    plus ``s`` spread evenly over all labels. ``lm_loss_weight > 0`` adds that weight times the
    auxiliary LM loss (:class:`~textrnn.modules.AuxiliaryLMHead`, built when
    ``config.aux_lm_head``). The task passes both in training only.

    An ensemble of K classifiers is a :class:`ClassifierEnsemble`; ``RNNClassifier.build``
    and ``from_pretrained`` return one when ``config.ensemble_size > 1``.
    """

    def __init__(self, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> None:
        super().__init__(config, tokenizer)
        require(config.ensemble_size == 1, "RNNClassifier is one model: build an ensemble with RNNClassifier.build(config) "
                "or ClassifierEnsemble(config)")
        self.backbone = build_backbone(config)
        self.pooling = POOLINGS[config.pooling](self.backbone.encoder)
        self.output_dropout = nn.Dropout(config.output_dropout)
        self.head = nn.Linear(self.pooling.get_output_dim(), config.num_labels)
        self.aux_lm = None
        if config.aux_lm_head:
            self.aux_lm = AuxiliaryLMHead(config.hidden_size, config.embedding_dim, self.backbone.encoder.num_directions,
                                          config.output_dropout)

    def forward(self, input_ids: Tensor, lengths: Tensor, labels: Optional[Tensor] = None,
                label_smoothing: float = 0.0, lm_loss_weight: float = 0.0, class_weights: Optional[Tensor] = None):
        outputs, state = self.backbone(input_ids, lengths)  # (B, T, D*H)
        pooled = self.pooling(outputs, state, lengths)  # (B, D*H)
        logits = self.head(self.output_dropout(pooled))  # (B, C)
        if labels is None:
            return logits, None
        loss = classification_loss(logits, labels, self.multi_label, label_smoothing, class_weights)
        if lm_loss_weight:
            if self.aux_lm is None:
                raise ConfigError("lm_loss_weight needs a model built with model.aux_lm_head=true")
            loss = loss + lm_loss_weight * self.aux_lm(outputs, input_ids, lengths, self.backbone.embedding.weight)
        return logits, loss


class ClassifierEnsemble(_Classifier):
    """K classifiers with independent initializations, trained side by side, probabilities averaged.

    ``forward(input_ids (B, T), lengths (B,), labels (B,) = None, **loss_options) -> (logits (B, C), loss)``
    like :class:`RNNClassifier`. ``logits`` are the log of the members' mean probability (for
    multi-label, the logit of their mean sigmoid), so softmax/sigmoid/argmax on them score the
    ensemble. In training ``loss`` is the mean of the
    members' own losses: each member learns as if alone on the same batches. (Training the
    averaged prediction instead lets members lean on each other and loses the diversity an
    ensemble lives on.) In eval mode it is the cross-entropy of the ensemble's prediction,
    the loss of the model being evaluated. Members differ by initialization and dropout masks.

    Weights are named ``members.{k}.<RNNClassifier name>``; ``members[k]`` is an ordinary
    classifier that can be used or saved on its own. The ensemble has no backbone of its own:
    ask a member for one.
    """

    def __init__(self, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> None:
        super().__init__(config, tokenizer)
        member = config.to_dict() | {"ensemble_size": 1}
        self.members = nn.ModuleList(RNNClassifier(RNNConfig(**member), tokenizer) for _ in range(config.ensemble_size))

    def forward(self, input_ids: Tensor, lengths: Tensor, labels: Optional[Tensor] = None, **loss_options):
        results = [m(input_ids, lengths, labels, **loss_options) for m in self.members]
        logits = self.combine(torch.stack([logits for logits, _ in results]).float())  # (B, C)
        if labels is None:
            return logits, None
        if self.training:
            return logits, torch.stack([loss for _, loss in results]).mean()
        return logits, classification_loss(logits, labels, self.multi_label)

    def combine(self, member_logits: Tensor) -> Tensor:
        """(K, B, C) members' logits -> (B, C) logits of their mean probability."""
        k = math.log(len(self.members))
        if self.multi_label:  # log p - log(1 - p) of the mean sigmoid, in log space
            log_p = torch.logsumexp(F.logsigmoid(member_logits), dim=0) - k
            log_q = torch.logsumexp(F.logsigmoid(-member_logits), dim=0) - k
            return log_p - log_q
        return torch.logsumexp(torch.log_softmax(member_logits, dim=-1), dim=0) - k

    def clip_groups(self) -> list:
        """Each member's parameters: members' gradients are clipped separately."""
        return [list(m.parameters()) for m in self.members]


# ---------------------------------------------------------------------------- language model
class RNNLanguageModel(_TextModel):
    """Language model: backbone (unidirectional) -> dropout -> [projection] -> linear head.

    ``forward(input_ids (B, T), lengths=None, state=None, targets (B, T)=None)``
    returns ``(logits (B, T, V), loss, state)``. Target positions equal to -100 are ignored.

    With ``tie_weights`` the head reuses the embedding matrix (Press & Wolf 2017). The head's
    input must then be ``embedding_dim`` wide, so when ``hidden_size`` differs a linear
    ``hidden_size -> embedding_dim`` projection goes in front of the tied head.
    Generation (``stream``, ``generate``, ``generate_text``) is :mod:`textrnn.generation`.
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

    @classmethod
    def build(cls, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> "RNNLanguageModel":
        return cls(config, tokenizer)

    def __init__(self, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> None:
        super().__init__(config, tokenizer)
        self.backbone = build_backbone(config)
        self.output_dropout = nn.Dropout(config.output_dropout)
        width = self.backbone.get_output_dim()
        self.projection = None
        if config.tie_weights and width != config.embedding_dim:
            self.projection = nn.Linear(width, config.embedding_dim)
            width = config.embedding_dim
        self.head = nn.Linear(width, config.vocab_size)
        self.tied_weights: dict[str, str] = {}  # saved once, under the second name
        if config.tie_weights:
            self.head.weight = self.backbone.embedding.weight
            self.tied_weights = {"head.weight": "backbone.embedding.weight"}

    def forward(self, input_ids: Tensor, lengths: Optional[Tensor] = None, state: Optional[State] = None,
                targets: Optional[Tensor] = None):
        outputs, state = self.backbone(input_ids, lengths, state)  # (B, T, H)
        logits = self.logits(self.output_dropout(outputs))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().flatten(0, 1), targets.to(logits.device).flatten(), ignore_index=-100)
        return logits, loss, state

    def logits(self, hidden: Tensor) -> Tensor:
        """(..., H) top-layer outputs -> (..., V) next-token logits."""
        if self.projection is not None:
            hidden = self.projection(hidden)
        return self.head(hidden)

    def never_sampled(self) -> list[int]:
        """<pad>, <unk> and <bos> are never sampled; nor is <eos> for char models (not in their streams)."""
        return [PAD_ID, UNK_ID, BOS_ID] + ([EOS_ID] if self.config.tokenizer_kind == "char" else [])

    @torch.inference_mode()
    def start_generation(self, input_ids: Tensor, rows: int) -> tuple["TokenStepper", Tensor]:
        """Run the prompt (T,) once: a stepper carrying its state for ``rows`` sequences, and their first logits (rows, V)."""
        last_hidden, state = self.run_prompt(input_ids.to(self.device))  # (1, H)
        stepper = TokenStepper(self, state, rows)
        return stepper, stepper.head(last_hidden).expand(rows, -1)

    def run_prompt(self, ids: Tensor, chunk: int = 4096) -> tuple[Tensor, State]:
        """The prompt (T,) in chunks of ``chunk`` tokens, state carried: top output at its last step (1, H), state."""
        short = ids.numel() < 256 and ids.device.type == "cpu"  # oneDNN's per-call setup costs more than a short prompt
        state, outputs = None, None
        with _onednn_off() if short else contextlib.nullcontext():
            for start in range(0, ids.numel(), chunk):
                outputs, state = self.backbone(ids[start:start + chunk][None, :], None, state)  # (1, t, H)
        return outputs[:, -1], state

    def stream(self, input_ids: Tensor, max_new_tokens: int = 200, **sampling) -> Iterator[Tensor]:
        """Yield each new token, (num_samples,) ids, as it is sampled (see :func:`textrnn.generation.stream`)."""
        return generation.stream(self, input_ids, max_new_tokens, **sampling)

    def generate(self, input_ids: Tensor, max_new_tokens: int = 200, **sampling) -> Tensor:
        """All new tokens at once: (num_samples, number generated)."""
        return torch.stack(list(self.stream(input_ids, max_new_tokens, **sampling)), dim=1)

    def generate_text(self, prompt: str = "", max_new_tokens: int = 200, on_token: Optional[Callable] = None,
                      **sampling) -> list[str]:
        """Sample continuations of ``prompt`` as text (see :func:`textrnn.generation.generate_text`)."""
        return generation.generate_text(self, prompt, max_new_tokens, on_token, **sampling)


class TokenStepper:
    """A language model one token at a time for N rows: ``step(ids (N,)) -> logits (N, V)``, state carried.

    The recurrent stack is the encoder's :class:`~textrnn.encoder.FusedStep`; the output layer
    has the never-sampled ids folded into its bias as -inf.
    """

    def __init__(self, model: RNNLanguageModel, state: State, rows: int) -> None:
        self.embedding = model.backbone.embedding.weight
        self.cells: FusedStep = model.backbone.encoder.fused_step(state, rows)
        head_bias = model.head.bias.detach().clone()
        head_bias[model.never_sampled()] = float("-inf")
        self.head_weight, self.head_bias, self.projection = model.head.weight.t(), head_bias, model.projection

    def head(self, hidden: Tensor) -> Tensor:
        """(N, H) top-layer state -> (N, V) logits."""
        if self.projection is not None:
            hidden = self.projection(hidden)
        return torch.addmm(self.head_bias, hidden, self.head_weight)

    def step(self, token: Tensor) -> Tensor:
        """token (N,) -> next-token logits (N, V); updates the carried state."""
        return self.head(self.cells.step(self.embedding[token]))  # (N, E) -> (N, H) -> (N, V)

    def reorder(self, index: Tensor) -> None:
        """Row i of the state becomes row ``index[i]`` (beam search keeps the beams it extends)."""
        self.cells.reorder(index)


@contextlib.contextmanager
def _onednn_off() -> Iterator[None]:
    with warnings.catch_warnings():  # torch warns about TF32 on Intel GPUs when flags change
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            yield

"""The classifiers: :class:`RNNClassifier` and :class:`ClassifierEnsemble`, single- or multi-label.

Each is built by composition from :mod:`textrnn.models.modules` and driven by one
:class:`~textrnn.core.config.RNNConfig`; each saves to and loads from a self-contained folder
(:mod:`textrnn.models.pretrained`). ``forward`` returns the loss alongside the logits when
labels are given (nanoGPT's convention); loss options are arguments, passed by the task in
training only.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Optional, Sequence, Union, overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.config import RNNConfig
from ..core.errors import ConfigError, require
from ..core.runtime import eval_mode
from ..data.batching import pad_batch
from ..data.encoding import as_texts, encode_for_inference
from ..data.tokenization import TextTokenizer
from .base import ClassifierOutput, TextModel, build_backbone
from .distillation import DistillLoss
from .modules import POOLINGS, AuxiliaryLMHead, as_lengths


# ---------------------------------------------------------------------------- classifiers
class TextClassifier(TextModel):
    """What every classifier is, one model (:class:`RNNClassifier`) or an ensemble (:class:`ClassifierEnsemble`):
    label names, thresholds, probabilities, predict, explain, build. Functions that take any classifier take this."""

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
    def build(cls, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> "TextClassifier":
        """The model a config describes: an ensemble when ``ensemble_size > 1``."""
        return (ClassifierEnsemble if config.ensemble_size > 1 else RNNClassifier)(config, tokenizer)

    @property
    def label_names(self) -> list[str]:
        """The label names in id order (``"0"``, ``"1"``, ... when the config has none)."""
        return list(self.config.label_names or [str(i) for i in range(self.config.num_labels)])

    @property
    def multi_label(self) -> bool:
        """Whether labels are independent (a sigmoid each) rather than one of C (a softmax)."""
        return self.config.problem_type == "multi_label"

    def probabilities(self, logits: Tensor) -> Tensor:
        """(B, C) logits -> probabilities: a softmax over labels, or one sigmoid per label (multi-label)."""
        return torch.sigmoid(logits.float()) if self.multi_label else torch.softmax(logits.float(), dim=-1)

    def thresholds(self) -> list[float]:
        """A multi-label model's decision threshold per label (0.5 each unless tuned)."""
        return list(self.config.thresholds or [0.5] * self.config.num_labels)

    def parts(self) -> list["RNNClassifier"]:
        """The single classifiers inside: this one, or an ensemble's members."""
        return list(getattr(self, "members", [self]))

    def replace_head(self, label_names: Sequence[str], problem_type: Optional[str] = None) -> "TextClassifier":
        """A new output layer for ``label_names`` (fresh weights), keeping everything below it.

        The fine-tuning move for a new label set: the config follows (``num_labels``,
        ``label_names``, ``problem_type``; tuned thresholds are dropped), so the model saves a
        folder that loads and predicts the new labels. Returns the model.
        """
        names = [str(name) for name in label_names]
        require(bool(names) and len(set(names)) == len(names), f"replace_head needs distinct label names, got {names}")
        changes: dict[str, Any] = dict(num_labels=len(names), label_names=names, thresholds=None,
                       problem_type=problem_type or self.config.problem_type)
        type(self).check_config(dataclasses.replace(self.config, **changes).validate())
        for part in {id(m): m for m in [self, *self.parts()]}.values():
            part.config = dataclasses.replace(part.config, **changes)
        for member in self.parts():
            old = member.head
            member.head = nn.Linear(old.in_features, len(names)).to(device=old.weight.device, dtype=old.weight.dtype)
        return self

    def check_head(self) -> None:
        """A one-line error for an output layer swapped without :meth:`replace_head` (sized unlike the config)."""
        for member in self.parts():
            if member.head.out_features != self.config.num_labels:
                raise ConfigError(f"the classifier's head has {member.head.out_features} outputs but "
                                  f"config.num_labels is {self.config.num_labels}; give it new labels with "
                                  "model.replace_head(label_names)")

    @torch.no_grad()
    def encode(self, texts_or_ids: Union[str, Sequence[str], Tensor], lengths: Optional[Tensor] = None,
               batch_size: int = 64) -> Tensor:
        """Pooled features (N, D) for a head of your own: the pooling's output, before dropout and the head.

        Takes texts (through the saved tokenizer, in eval mode; a lone string is one text: (1, D)) or
        ids (B, T) with ``lengths`` (as the model is). An ensemble concatenates its members' features
        (N, K*D). For gradients through the backbone, call :meth:`features` instead.
        """
        if lengths is not None or isinstance(texts_or_ids, Tensor):
            return self.features(torch.as_tensor(texts_or_ids), lengths)
        tokenizer, rows, texts_or_ids = self.require_tokenizer(), [], list(as_texts(texts_or_ids))
        with eval_mode(self):
            for start in range(0, len(texts_or_ids), batch_size):
                ids, _ = encode_for_inference(tokenizer, texts_or_ids[start:start + batch_size], 10_000)
                padded, chunk_lengths = pad_batch(ids, self.config.pad_id)
                rows.append(self.features(padded.to(self.device), chunk_lengths))
        return torch.cat(rows) if rows else torch.zeros(0, self.features_dim(), device=self.device)

    def features(self, input_ids: Tensor, lengths: Optional[Tensor]) -> Tensor:
        """(B, T) ids, (B,) lengths -> pooled features (B, D), each member's side by side for an ensemble."""
        return torch.cat([member.pooled(input_ids, lengths) for member in self.parts()], dim=1)

    def features_dim(self) -> int:
        """D of :meth:`features`."""
        return sum(member.pooling.get_output_dim() for member in self.parts())

    @overload
    def predict(self, texts: str, batch_size: int = 64,  # type: ignore[overload-overlap]  # a str is one text
                max_length: Optional[int] = None, top_k: Optional[int] = None) -> dict: ...

    @overload
    def predict(self, texts: Iterable[str], batch_size: int = 64, max_length: Optional[int] = None,
                top_k: Optional[int] = None) -> list[dict]: ...

    def predict(self, texts: Union[str, Iterable[str]], batch_size: int = 64,
                max_length: Optional[int] = None, top_k: Optional[int] = None) -> Union[dict, list[dict]]:
        """Label names and probabilities for ``texts``, through the saved tokenizer.

        Returns one ``{"label": name, "probabilities": {name: p}}`` per text (for a lone string,
        that one result rather than a list of one, as a pipeline does); a multi-label
        model gives ``{"labels": [names at or over their thresholds], "probabilities": ...}``.
        A text of several fields is one string joined by ``config.field_separator``. Texts
        longer than ``max_length`` tokens (default 10,000) keep their first ``max_length``
        tokens and say so with ``"truncated_to_tokens": max_length``. Texts are batched by
        length (:func:`textrnn.models.prediction.predict_stream`, which streams a file of any size).
        ``top_k`` keeps the k most likely labels in ``probabilities``, most likely first.
        """
        from .prediction import predict_stream

        self.check_head()
        results = list(predict_stream(self, texts, batch_size, max_length, top_k=top_k))
        return results[0] if isinstance(texts, str) else results

    def explain(self, texts: Union[str, Iterable[str]], label: Optional[str] = None, steps: int = 64,
                method: str = "integrated_gradients") -> Union[dict, list[dict]]:
        """Which tokens drove the prediction (:mod:`textrnn.models.explanation`).

        Returns, per text, ``{"method", "label", "probability", "tokens", "attributions", "score",
        "attention"}``; ``attention`` is the attention pooling's weights (None for another pooling).
        By integrated gradients, ``attributions[t]`` is token t's share of the ``label``'s logit
        (default label: the predicted one), and they sum to ``score - baseline_score`` up to
        ``delta`` (both in the result too), which more ``steps`` shrink. By ``method="occlusion"``
        (what the static web page shows), it is how much the label's probability (``score``) falls
        when token t is deleted. A lone string gives one result.
        """
        from .explanation import explain_label

        self.check_head()
        results = [explain_label(self, text, label, steps, method) for text in as_texts(texts)]
        return results[0] if isinstance(texts, str) else results

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


class RNNClassifier(TextClassifier):
    """Text classifier: backbone -> pooling -> dropout -> linear head.

    ``forward(input_ids (B, T), lengths (B,), labels = None, label_smoothing=0, lm_loss_weight=0,
    class_weights=None) -> (logits (B, C), loss)``; ``loss`` is None without labels. Labels are
    ids (B,), or 0/1 rows (B, C) when ``config.problem_type`` is ``multi_label`` (one sigmoid
    per label, binary cross-entropy; see :func:`~textrnn.models.classifier.classification_loss`).

    Pooling over the encoder outputs (B, T, D*H), padding excluded, is one of
    ``textrnn.models.modules.POOLINGS`` (``last``, ``mean``, ``max``, ``attention``); an empty
    sequence pools to zeros. ``label_smoothing = s`` trains against ``(1 - s)`` on the label
    plus ``s`` spread evenly over all labels. ``lm_loss_weight > 0`` adds that weight times the
    auxiliary LM loss (:class:`~textrnn.models.modules.AuxiliaryLMHead`, built when
    ``config.aux_lm_head``). ``teacher_logits`` (B, C) make the loss a distillation loss
    (:class:`~textrnn.models.distillation.DistillLoss` ``distill``). The task passes these in training only.

    An ensemble of K classifiers is a :class:`ClassifierEnsemble`; ``RNNClassifier.build``
    and ``from_pretrained`` return one when ``config.ensemble_size > 1``.

    Example::

        from textrnn import RNNClassifier, TextTokenizer, pad_batch

        tok = TextTokenizer.train(["a fine film", "a dull film"], "word", min_freq=1)
        model = RNNClassifier.from_tokenizer(tok, label_names=["negative", "positive"], hidden_size=32)
        input_ids, lengths = pad_batch([tok.encode("a fine film"), tok.encode("dull")])  # (B, T), (B,)
        logits, loss = model(input_ids, lengths)  # a ClassifierOutput; loss is None without labels
        model.predict(["a fine film"])  # [{'label': ..., 'probabilities': {'negative': ..., 'positive': ...}}]
        model.save_pretrained("my_classifier")  # RNNClassifier.from_pretrained("my_classifier") loads it
    """

    def __init__(self, config: Optional[RNNConfig] = None, tokenizer: Optional[TextTokenizer] = None,
                 **architecture: Any) -> None:
        super().__init__(config, tokenizer, **architecture)
        config = self.config
        require(
            config.ensemble_size == 1,
            "RNNClassifier is one model: build an ensemble with RNNClassifier.build(config) "
            "or ClassifierEnsemble(config)",
        )
        self.backbone = build_backbone(config)
        self.pooling = POOLINGS[config.pooling](self.backbone.encoder)
        self.output_dropout = nn.Dropout(config.output_dropout)
        self.head = nn.Linear(self.pooling.get_output_dim(), config.num_labels)
        self.aux_lm = None
        if config.aux_lm_head:
            self.aux_lm = AuxiliaryLMHead(config.hidden_size, config.embedding_dim,
                                          self.backbone.encoder.num_directions, config.output_dropout)

    def forward(self, input_ids: Tensor, lengths: Optional[Tensor], labels: Optional[Tensor] = None,
                label_smoothing: float = 0.0, lm_loss_weight: float = 0.0,
                class_weights: Optional[Tensor] = None, teacher_logits: Optional[Tensor] = None,
                distill: Optional[DistillLoss] = None) -> ClassifierOutput:
        """(B, T) ids and (B,) lengths -> (logits (B, C), loss or None); see the class docstring."""
        lengths = as_lengths(lengths, input_ids)
        outputs, state = self.backbone(input_ids, lengths)  # (B, T, D*H)
        pooled = self.pooling(outputs, state, lengths)  # (B, D*H)
        logits = self.head(self.output_dropout(pooled))  # (B, C)
        if labels is None:
            return ClassifierOutput(logits, None)
        loss = classification_loss(logits, labels, self.multi_label, label_smoothing, class_weights)
        if teacher_logits is not None:  # distillation: the teacher's (B, C) logits, alpha of the loss
            rule = distill or DistillLoss()
            loss = rule.alpha * rule.soft(logits, teacher_logits, self.multi_label) + (1 - rule.alpha) * loss
        if lm_loss_weight:
            if self.aux_lm is None:
                raise ConfigError("lm_loss_weight needs a model built with model.aux_lm_head=true")
            loss = loss + lm_loss_weight * self.aux_lm(outputs, input_ids, lengths, self.backbone.embedding.weight)
        return ClassifierOutput(logits, loss)

    def pooled(self, input_ids: Tensor, lengths: Optional[Tensor]) -> Tensor:
        """(B, T) ids -> the pooled encoder outputs (B, D*H) that the head reads (before output dropout)."""
        lengths = as_lengths(lengths, input_ids)
        outputs, state = self.backbone(input_ids, lengths)  # (B, T, D*H)
        return self.pooling(outputs, state, lengths)


class ClassifierEnsemble(TextClassifier):
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

    def __init__(self, config: Optional[RNNConfig] = None, tokenizer: Optional[TextTokenizer] = None,
                 **architecture: Any) -> None:
        super().__init__(config, tokenizer, **architecture)
        config = self.config
        member = config.to_dict() | {"ensemble_size": 1}
        self.members = nn.ModuleList(RNNClassifier(RNNConfig(**member), tokenizer) for _ in range(config.ensemble_size))

    def forward(self, input_ids: Tensor, lengths: Optional[Tensor], labels: Optional[Tensor] = None,
                **loss_options: Any) -> ClassifierOutput:
        """Like :meth:`RNNClassifier.forward`; logits of the members' mean probability."""
        results = [m(input_ids, lengths, labels, **loss_options) for m in self.members]
        logits = self.combine(torch.stack([logits for logits, _ in results]).float())  # (B, C)
        if labels is None:
            return ClassifierOutput(logits, None)
        if self.training:
            return ClassifierOutput(logits, torch.stack([loss for _, loss in results]).mean())
        return ClassifierOutput(logits, classification_loss(logits, labels, self.multi_label))

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

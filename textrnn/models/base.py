"""What every textrnn model has: its config, its tokenizer, a device, and the backbone a config describes."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional, Self

import torch
from torch import Tensor, nn

from ..core.config import RNNConfig, build_dataclass
from ..core.errors import ConfigError, TextRNNError, require
from ..data.tokenization import PAD_ID, TextTokenizer
from .modules import RNNBackbone
from .pretrained import PretrainedMixin


def build_backbone(config: RNNConfig) -> RNNBackbone:
    """The embedding and encoder a config describes (:class:`~textrnn.models.modules.RNNBackbone`)."""
    if config.vocab_size < 1:
        raise ConfigError("model vocab_size must be set to the tokenizer's vocabulary size")
    return RNNBackbone(config.vocab_size, config.embedding_dim, config.hidden_size, num_layers=config.num_layers,
                       cell=config.cell, bidirectional=config.bidirectional, dropout=config.dropout,
                       embedding_dropout=config.embedding_dropout, word_dropout=config.word_dropout,
                       weight_dropout=config.weight_dropout, strategy=config.strategy, pad_id=config.pad_id,
                       block=config.block)


def resolve_config(task: str, config: Optional[RNNConfig], tokenizer: Optional[TextTokenizer],
                   architecture: dict) -> RNNConfig:
    """The config a model is built from: ``config``, or ``architecture`` keywords, with the class's task and
    what the tokenizer decides (``vocab_size`` when unset, ``tokenizer_kind``, ``pad_id``) filled in.

    One-line errors for keywords that are no config key, and for a config the tokenizer contradicts.
    """
    if config is not None and architecture:
        raise ConfigError(f"pass either an RNNConfig or keywords ({', '.join(architecture)}), not both; "
                          "dataclasses.replace(config, ...) changes a config")
    if config is None:
        label_names = architecture.get("label_names")
        if label_names is not None and "num_labels" not in architecture:
            architecture = {**architecture, "num_labels": len(label_names)}
        config = build_dataclass(RNNConfig, architecture, "model")
    changes: dict[str, Any] = {"task": task}
    if tokenizer is not None:
        require(config.vocab_size in (0, tokenizer.vocab_size),
                f"vocab_size={config.vocab_size} but the tokenizer has {tokenizer.vocab_size} entries; leave "
                "vocab_size out (from_tokenizer fills it) or pass the tokenizer the model was built for")
        changes |= {"vocab_size": tokenizer.vocab_size, "tokenizer_kind": tokenizer.kind, "pad_id": PAD_ID}
    return dataclasses.replace(config, **changes)


class ClassifierOutput(NamedTuple):
    """What a classifier's ``forward`` returns; a tuple, so ``logits, loss = model(...)`` works."""

    logits: Tensor  # (B, C)
    loss: Optional[Tensor]  # a scalar when labels were given, else None


class LMOutput(NamedTuple):
    """What a language model's ``forward`` returns; a tuple, so ``logits, loss, state = model(...)`` works."""

    logits: Optional[Tensor]  # (B, T, V); log-probabilities under an adaptive softmax, None there with targets
    loss: Optional[Tensor]  # a scalar when targets were given, else None
    state: Any  # the encoder's final state, to carry into the next window: (h, c) for an LSTM, else one tensor


class TextModel(PretrainedMixin, nn.Module):
    """What every model has: its config, its tokenizer and a device (the type the trainer, the server and the
    exporters take; :class:`~textrnn.RNNClassifier` and :class:`~textrnn.RNNLanguageModel` are its two kinds).

    Built from an :class:`~textrnn.core.config.RNNConfig`, or from its keys as keywords
    (``RNNClassifier(vocab_size=100, num_labels=2, hidden_size=128)``), or from a tokenizer
    (:meth:`from_tokenizer`). The class sets its own task, and a tokenizer sets the vocabulary
    size and kind, so a folder saved from a hand-built model loads as that model.
    """

    task = ""  # the registry's name for it (config.task)
    is_classifier = False  # read by the model card only (card.py is below the classes); elsewhere isinstance
    pipeline_tag = ""  # the Hub's name for what it does (model cards)
    train_command = ""  # the `textrnn` subcommand that trains it

    def __init__(self, config: Optional[RNNConfig] = None, tokenizer: Optional[TextTokenizer] = None,
                 **architecture: Any) -> None:
        super().__init__()
        config = resolve_config(type(self).task, config, tokenizer, architecture)
        type(self).check_config(config.validate())
        self.config, self.tokenizer = config, tokenizer

    @classmethod
    def check_config(cls, config: RNNConfig) -> None:
        """The model class's own rules on top of ``RNNConfig.validate`` (none here; subclasses add theirs)."""

    @classmethod
    def from_tokenizer(cls, tokenizer: TextTokenizer, **architecture: Any) -> Self:
        """A new model for ``tokenizer``'s ids: ``vocab_size``, ``tokenizer_kind`` and ``pad_id`` come from it."""
        return cls.build(resolve_config(cls.task, None, tokenizer, architecture), tokenizer)

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return next(self.parameters()).device

    def clip_groups(self) -> list:
        """Parameter groups whose gradient norms are clipped separately: one, the whole model."""
        return [list(self.parameters())]

    def require_tokenizer(self) -> TextTokenizer:
        """The model's tokenizer, or a one-line error saying how to give it one."""
        if self.tokenizer is None:
            raise TextRNNError("this model has no tokenizer; load it with from_pretrained or set model.tokenizer")
        return self.tokenizer

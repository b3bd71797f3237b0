"""What every textrnn model has: its config, its tokenizer, a device, and the backbone a config describes."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..core.config import RNNConfig
from ..core.errors import ConfigError, TextRNNError
from ..data.tokenization import TextTokenizer
from .modules import RNNBackbone
from .pretrained import PretrainedMixin


def build_backbone(config: RNNConfig) -> RNNBackbone:
    if config.vocab_size < 1:
        raise ConfigError("model vocab_size must be set to the tokenizer's vocabulary size")
    return RNNBackbone(config.vocab_size, config.embedding_dim, config.hidden_size, num_layers=config.num_layers,
                       cell=config.cell, bidirectional=config.bidirectional, dropout=config.dropout,
                       embedding_dropout=config.embedding_dropout, word_dropout=config.word_dropout,
                       weight_dropout=config.weight_dropout, strategy=config.strategy, pad_id=config.pad_id)


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

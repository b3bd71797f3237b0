"""A classifier started from a language model (ULMFiT's first step): ``model.init_from: RUN_OR_CHECKPOINT``.

The classifier takes the language model's tokenizer, so ids mean the same words, and gets an
exact copy of its embedding and of its encoder's weights::

    LM          embedding ─► layer 0 ─► layer 1 ─► head (dropped)
                    │           │          │
    classifier  embedding ─► layer 0 ─► layer 1 ─► pooling ─► head (new)
                             (forward direction; model.init_from_backward fills the backward one
                              from a right-to-left LM, trained with model.reverse=true)

Allowed shapes: the same cell, ``embedding_dim`` and ``hidden_size`` as the language model, and
at most its number of layers (the first layers are copied). In a bidirectional classifier only
layer 0 can be copied: an upper layer there reads both directions (2H wide), which no
left-to-right LM layer does, so upper layers start from random weights (and the copy says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..core.errors import ConfigError
from ..data.tokenization import TextTokenizer
from .base import TextModel
from .classifier import TextClassifier
from .hub import TOKENIZER_FILE, resolve_checkpoint

PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def lm_tokenizer(spec: str) -> TextTokenizer:
    """The tokenizer of the language model ``spec`` names (a checkpoint or a run folder)."""
    return TextTokenizer.from_file(Path(resolve_checkpoint(spec)) / TOKENIZER_FILE)


def check_compatible(classifier: TextModel, lm: TextModel, direction: int) -> None:
    """One-line errors for a language model whose weights cannot be copied into ``classifier``."""
    c, s = classifier.config, lm.config
    where = "model.init_from_backward" if direction else "model.init_from"
    if isinstance(lm, TextClassifier):
        raise ConfigError(f"{where} must name a language model checkpoint; it holds a classifier")
    for name in ("cell", "embedding_dim", "hidden_size", "vocab_size"):
        if getattr(c, name) != getattr(s, name):
            raise ConfigError(f"{where}: the language model has {name}={getattr(s, name)} but the classifier "
                              f"{getattr(c, name)}; set model.{name}={getattr(s, name)}")
    if c.num_layers > s.num_layers and not c.bidirectional:
        raise ConfigError(f"{where}: the language model has {s.num_layers} layer(s), the classifier {c.num_layers}; "
                          f"set model.num_layers to at most {s.num_layers}")
    if direction and not c.bidirectional:
        raise ConfigError("model.init_from_backward fills the backward direction: set model.bidirectional=true")
    if bool(s.reverse) != bool(direction):
        reads = "right to left (model.reverse=true)" if s.reverse else "left to right"
        raise ConfigError(f"{where}: that language model reads {reads}; model.init_from takes a left-to-right LM and "
                          "model.init_from_backward a right-to-left one (train it with model.reverse=true)")
    if classifier.require_tokenizer().tokenizer.to_str() != lm.require_tokenizer().tokenizer.to_str():
        raise ConfigError(f"{where}: the language model's tokenizer differs from the classifier's; train both on "
                          "one tokenizer (the forward LM's)")


@torch.no_grad()
def copy_from_language_model(classifier: Any, lm: Any, direction: int = 0) -> list[str]:
    """Copy ``lm``'s embedding (forward direction only) and encoder layers into every member of ``classifier``.

    Returns the names of the classifier parameters written (those of one member).
    """
    check_compatible(classifier, lm, direction)
    source = lm.backbone
    layers = 1 if classifier.config.bidirectional else classifier.config.num_layers
    written: list[str] = []
    for backbone in [m.backbone for m in getattr(classifier, "members", [classifier])]:
        written = []
        if direction == 0:
            backbone.embedding.weight.copy_(source.embedding.weight)
            written.append("backbone.embedding.weight")
        for layer in range(layers):
            for name in PARAMETERS:
                target = f"{name}_l{layer}" + ("_reverse" if direction else "")
                getattr(backbone.encoder, target).copy_(getattr(source.encoder, f"{name}_l{layer}"))
                written.append(f"backbone.encoder.{target}")
    return written

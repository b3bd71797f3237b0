"""What the models' own helpers read of a model, as structural types.

The model classes call :mod:`~textrnn.models.card`, :mod:`~textrnn.models.explanation`,
:mod:`~textrnn.models.prediction` and :mod:`~textrnn.models.pretrained` with themselves, so those
modules cannot import the classes (that is an import cycle, and the architecture test counts
type-only imports too). They name these Protocols instead: each says what a helper reads, and
mypy checks, where a model class passes itself, that the class has it.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Protocol, Union

import torch
from torch import Tensor

from ..core.config import RNNConfig
from ..core.runtime import Switchable
from ..data.tokenization import TextTokenizer


class Described(Protocol):
    """What a model card says of a model: its architecture and what it is."""

    config: RNNConfig
    is_classifier: bool
    pipeline_tag: str
    train_command: str


class ModelParts(Switchable, Protocol):
    """Any textrnn model as a module: its architecture, tokenizer, device, weights, and its forward."""

    config: RNNConfig

    @property
    def device(self) -> torch.device:
        """Where its parameters are."""
        ...

    def require_tokenizer(self) -> TextTokenizer:
        """Its tokenizer, or a one-line error when it has none."""
        ...

    def state_dict(self, *, prefix: str = "", keep_vars: bool = False) -> dict[str, Any]:
        """Its weights by name (``nn.Module.state_dict``)."""
        ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Its forward (``nn.Module.__call__``)."""
        ...


class Buildable(ModelParts, Protocol):
    """A model whose class builds it again from its config (the weights' shape check)."""

    @classmethod
    def build(cls, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> Any:
        """The model ``config`` describes."""
        ...


class Scorer(ModelParts, Protocol):
    """A classifier as its scoring helpers see it: logits to probabilities to labelled results."""

    @property
    def label_names(self) -> list[str]:
        """Its labels, in the head's order."""
        ...

    def probabilities(self, logits: Tensor) -> Tensor:
        """(B, C) logits -> (B, C) probabilities."""
        ...

    def result_of(self, row: list) -> dict:
        """One text's probabilities -> its result (label, score, ...)."""
        ...

    def explain(self, texts: Union[str, Iterable[str]], label: Optional[str] = None, steps: int = 64,
                method: str = "integrated_gradients") -> Union[dict, list[dict]]:
        """Which tokens drove a prediction."""
        ...


class Saved(Buildable, Described, Protocol):
    """What ``save_pretrained`` writes: the weights, the config, the tokenizer and the card."""

    tokenizer: Optional[TextTokenizer]

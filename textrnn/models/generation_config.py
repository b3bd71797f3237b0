"""``GenerationConfig``: every decoding setting, its one default and its one check.

The library (``model.generate_text(..., generation_config=, **settings)``), the ``textrnn
generate`` flags (made from these fields), the server's ``/generate`` body (validated into one of
these) and the pages (their controls start where :func:`fill_page` sets them) all read this class, so a
default changes here and nowhere else (transformers' ``GenerationConfig`` is the model)::

    GenerationConfig()                                  the defaults below
    GenerationConfig(temperature=0).replace(top_k=5)    a copy with changes (unknown names: one line)
    config.validate()                                   ranges; one-line TextRNNError naming the field
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

from ..core.errors import TextRNNError

MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-3, 100.0
MAX_STOP_STRINGS = 16


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class GenerationConfig:
    """How a language model decodes: sampling, the controls on top of it, and beam search."""

    max_new_tokens: int = _setting(200, "how many tokens to generate at most")
    temperature: float = _setting(0.8, "0 is greedy; below 1 sharper, above 1 flatter")
    top_k: Optional[int] = _setting(None, "sample from the k most likely tokens only")
    top_p: Optional[float] = _setting(None, "sample from the smallest set of tokens whose probability reaches p")
    num_samples: int = _setting(1, "how many continuations to sample at once")
    seed: Optional[int] = _setting(None, "a seed makes sampling repeatable (unset: drawn from torch's generator)")
    repetition_penalty: float = _setting(1.0, "> 1 discourages tokens already used (CTRL)")
    no_repeat_ngram_size: int = _setting(0, "never repeat an n-gram of this size (0: off)")
    min_new_tokens: int = _setting(0, "no stop token or stop string before this many tokens")
    num_beams: int = _setting(1, "beam search with this many beams (1: sampling)")
    stop: tuple[str, ...] = _setting((), "stop strings: the text ends just before the first one")

    def replace(self, **changes: Any) -> "GenerationConfig":
        """A copy with ``changes``; an unknown name is a one-line error listing the known ones."""
        unknown = sorted(set(changes) - set(field_names()))
        if unknown:
            raise TextRNNError(f"unknown generation setting(s) {', '.join(unknown)}; "
                               f"the settings are {', '.join(field_names())}")
        if "stop" in changes and not isinstance(changes["stop"], str):
            changes["stop"] = tuple(changes["stop"] or ())
        return dataclasses.replace(self, **changes)

    def validate(self) -> "GenerationConfig":
        """Types and ranges, each a one-line :class:`TextRNNError` naming the setting; returns self."""
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), _hints()[f.name])
        if self.max_new_tokens < 1:
            raise TextRNNError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        # a temperature of 1e-300 turns every logit into inf, and the softmax into NaN
        if not (self.temperature == 0 or MIN_TEMPERATURE <= self.temperature <= MAX_TEMPERATURE):
            raise TextRNNError(f"temperature must be 0 (greedy) or in [{MIN_TEMPERATURE}, {MAX_TEMPERATURE}], "
                               f"got {self.temperature}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise TextRNNError(f"seed must be in [0, 2**63), got {self.seed}")
        if self.top_k is not None and self.top_k < 1:
            raise TextRNNError(f"top_k must be at least 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise TextRNNError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.num_samples < 1:
            raise TextRNNError(f"num_samples must be at least 1, got {self.num_samples}")
        self._validate_controls()
        return self

    def _validate_controls(self) -> None:
        if not 0.01 <= self.repetition_penalty <= 100:  # NaN fails too; 1e-300 would overflow the logits
            raise TextRNNError(f"repetition_penalty must be in [0.01, 100] (1 means none), "
                               f"got {self.repetition_penalty}")
        if self.no_repeat_ngram_size < 0:
            raise TextRNNError(f"no_repeat_ngram_size must be >= 0 (0 means none), got {self.no_repeat_ngram_size}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise TextRNNError(
                f"min_new_tokens must be in [0, max_new_tokens={self.max_new_tokens}], got {self.min_new_tokens}")
        if self.num_beams < 1:
            raise TextRNNError(f"num_beams must be at least 1, got {self.num_beams}")
        if self.num_beams > 1 and self.num_samples > self.num_beams:
            raise TextRNNError(f"num_samples ({self.num_samples}) cannot exceed num_beams ({self.num_beams}): "
                               "beam search returns its best num_samples beams")
        if len(self.stop) > MAX_STOP_STRINGS or not all(isinstance(s, str) and s for s in self.stop):
            raise TextRNNError(f"stop must be at most {MAX_STOP_STRINGS} non-empty strings, got {list(self.stop)}")

    @classmethod
    def from_dict(cls, values: dict) -> "GenerationConfig":
        """The defaults with ``values`` (e.g. a request's JSON), validated."""
        if not isinstance(values, dict):
            raise TextRNNError(f"generation settings must be a mapping of name to value, got {type(values).__name__}")
        return cls().replace(**values).validate()

    def to_dict(self) -> dict:
        """The settings as JSON-ready values (``stop`` as a list)."""
        return {**dataclasses.asdict(self), "stop": list(self.stop)}


def field_names() -> tuple[str, ...]:
    """The settings, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(GenerationConfig))


def _hints() -> dict:
    return typing.get_type_hints(GenerationConfig)


def setting_type(name: str) -> Any:
    """A setting's type without its Optional: ``int``, ``float`` or ``tuple[str, ...]``."""
    hint = _hints()[name]
    args = typing.get_args(hint)
    return next(a for a in args if a is not type(None)) if typing.get_origin(hint) is typing.Union else hint


def _check_type(name: str, value: Any, hint: Any) -> None:
    """A setting's value against its annotation: ints are not bools, floats take ints, Optional takes None."""
    args = typing.get_args(hint)
    if value is None and type(None) in args:
        return
    base = setting_type(name)
    if typing.get_origin(base) is tuple:
        ok = isinstance(value, tuple)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    else:
        ok = isinstance(value, base) and not (base is int and isinstance(value, bool))
    if not ok:
        want = "a list of strings" if typing.get_origin(base) is tuple else _KINDS[base]
        raise TextRNNError(f"{name} must be {want}{' or null' if type(None) in args else ''}, got {value!r}")


_KINDS = {int: "an integer", float: "a number", str: "a string"}


def fill_page(html: str) -> str:
    """A page with its ``{{setting}}`` marks set to the defaults (on the sliders, top-k 0 and top-p 1 are off)."""
    d = GenerationConfig()
    values = {"temperature": d.temperature, "top_k": d.top_k or 0, "top_p": d.top_p or 1,
              "top_k_label": d.top_k or "off", "max_new_tokens": d.max_new_tokens}
    for name, value in values.items():
        html = html.replace("{{%s}}" % name, str(value))
    return html

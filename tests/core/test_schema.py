"""Dataclasses from mappings: an unknown key names the nearest one, a wrong type is one line, ints become floats."""

from __future__ import annotations

import dataclasses
from typing import Literal, Optional

import pytest

from textrnn import ConfigError
from textrnn.core.schema import build_dataclass


@dataclasses.dataclass
class Section:
    rate: float = 0.1
    steps: Optional[int] = None
    name: str = "x"


def test_values_are_checked_against_their_annotations():
    built = build_dataclass(Section, {"rate": 2, "steps": None, "name": "y"}, "train")
    assert built == Section(rate=2.0, steps=None, name="y") and isinstance(built.rate, float)
    for data, words in [({"rat": 1.0}, "unknown config key 'train.rat'; did you mean 'train.rate'?"),
                        ({"steps": "ten"}, "train.steps must be an integer, got 'ten'"),
                        ({"steps": True}, "train.steps must be an integer, got True"),
                        ({"name": None}, "train.name cannot be null"),
                        ([], "train must be a mapping of keys to values")]:
        with pytest.raises(ConfigError) as error:
            build_dataclass(Section, data, "train")
        assert words in str(error.value)


@dataclasses.dataclass
class Choices:
    mode: Literal["a", "b"] = "a"
    maybe: Optional[Literal["x"]] = None


def test_every_choice_key_is_a_literal_checked_by_one_function():
    """Choice keys are annotated ``Literal[...]`` (the tuples the implementing modules import are its values), and
    ``check_choices`` is their one check: a value outside it, or null where null is not allowed, is one line."""
    import typing

    from textrnn.core import config
    from textrnn.core.schema import check_choices, choices

    hints = {**typing.get_type_hints(config.RNNConfig), **{f"train.{k}": v for k, v in
                                                            typing.get_type_hints(config.TrainConfig).items()}}
    assert choices(hints["cell"]) == config.CELLS and choices(hints["pooling"]) == config.POOLINGS
    assert choices(hints["train.optimizer"]) == config.OPTIMIZERS and choices(hints["train.resume"]) == ("auto",)
    assert choices(hints["hidden_size"]) is None

    check_choices(Choices(), "section")  # defaults pass, null where Optional
    for bad, message in ((Choices(mode="c"), "section.mode must be one of a, b, got 'c'"),
                         (Choices(mode=None), "section.mode must be one of a, b, got None"),
                         (Choices(maybe="y"), "section.maybe must be one of x, got 'y'")):
        with pytest.raises(ConfigError, match=message):
            check_choices(bad, "section")

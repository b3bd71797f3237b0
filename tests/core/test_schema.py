"""Dataclasses from mappings: an unknown key names the nearest one, a wrong type is one line, ints become floats."""

from __future__ import annotations

import dataclasses
from typing import Optional

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

"""``GenerationConfig``: the one place of every decoding setting's default and check."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from textrnn import GenerationConfig, TextRNNError
from textrnn.cli import build_parser
from textrnn.models.generation_config import field_names, fill_page
from textrnn.serving.server import page

from ..helpers import char_tokenizer, language_model


def test_the_command_line_flags_are_the_fields_with_their_defaults():
    args = build_parser().parse_args(["generate", "--checkpoint", "x"])
    defaults = GenerationConfig()
    for name in field_names():
        want = getattr(defaults, name)
        assert getattr(args, name) == (list(want) if isinstance(want, tuple) else want), name
    assert build_parser().parse_args(["generate", "--checkpoint", "x", "--top-k", "5", "--stop", "a", "--stop", "b"]
                                     ).stop == ["a", "b"]


def test_the_pages_start_at_the_defaults():
    served = page()
    defaults = GenerationConfig()
    assert "{{" not in served
    assert f'value="{defaults.temperature}"' in served and f'value="{defaults.max_new_tokens}"' in served
    assert fill_page('<input value="{{temperature}}">') == f'<input value="{defaults.temperature}">'


@pytest.mark.parametrize("changes,message", [
    (dict(temperatur=0.5), "unknown generation setting(s) temperatur"),
    (dict(top_k=True), "top_k must be an integer or null, got True"),
    (dict(temperature="hot"), "temperature must be a number, got 'hot'"),
    (dict(temperature=float("nan")), "temperature must be a number"),
    (dict(seed=1.5), "seed must be an integer or null"),
    (dict(stop="END"), "stop must be a list of strings"),
    (dict(stop=[""]), "stop must be at most 16 non-empty strings"),
    (dict(max_new_tokens=0), "max_new_tokens must be at least 1"),
    (dict(temperature=1e-300), "temperature must be 0 (greedy) or in"),
    (dict(num_samples=3, num_beams=2), "num_samples (3) cannot exceed num_beams (2)"),
    (dict(min_new_tokens=300), "min_new_tokens must be in [0, max_new_tokens=200]"),
])
def test_one_validation_names_the_setting(changes, message):
    with pytest.raises(TextRNNError) as error:
        GenerationConfig.from_dict(changes)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_config_and_keywords_decode_alike():
    model = language_model(char_tokenizer())
    config = GenerationConfig(max_new_tokens=12, temperature=0.7, top_k=5, seed=3)
    by_config = model.generate_text("the", generation_config=config)
    assert by_config == model.generate_text("the", 12, temperature=0.7, top_k=5, seed=3)
    assert by_config == model.generate_text("the", generation_config=dataclasses.replace(config, max_new_tokens=99),
                                            max_new_tokens=12)  # a keyword wins over the config
    greedy = model.generate(torch.tensor([4, 5]), generation_config=GenerationConfig(temperature=0, max_new_tokens=6))
    assert greedy.shape == (1, 6)
    assert model.generate_text("the", seed=1) == model.generate_text("the", 200, temperature=0.8, seed=1)  # defaults

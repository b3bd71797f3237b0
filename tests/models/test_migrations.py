"""Checkpoints of earlier formats keep loading and give the same answers."""

import json
from pathlib import Path

import pytest

from textrnn import load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "format1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.mark.parametrize("name", ["classifier", "ensemble"])
def test_format1_classifiers_load_and_predict_the_same(name):
    assert json.loads((FIXTURES / name / "config.json").read_text())["format_version"] == 1
    model = load_model(FIXTURES / name)
    case = EXPECTED[name]
    got = model.predict(case["texts"])
    for mine, theirs in zip(got, case["predictions"], strict=True):
        assert mine["probabilities"].keys() == theirs["probabilities"].keys()
        for label, p in theirs["probabilities"].items():
            assert abs(mine["probabilities"][label] - p) < 1e-6, (label, mine, theirs)
        assert mine["label"] == theirs["label"]


def test_format1_language_model_generates_the_same_text():
    assert json.loads((FIXTURES / "language_model" / "config.json").read_text())["format_version"] == 1
    model = load_model(FIXTURES / "language_model")
    case = EXPECTED["language_model"]
    assert model.generate_text(case["prompt"], 40, temperature=0)[0] == case["greedy"]
    assert model.generate_text("All:", 30, temperature=0.8, seed=3, num_samples=2) == case["seeded"]


FORMAT3 = Path(__file__).resolve().parents[1] / "fixtures" / "format3"
EXPECTED3 = json.loads((FORMAT3 / "expected.json").read_text())


@pytest.mark.parametrize("name", ["classifier", "ensemble", "multi_label"])
def test_format3_classifiers_from_the_flat_layout_predict_the_same(name):
    """Written by the release before the layered layout (commit 88e46c4; see make_fixture.py)."""
    model = load_model(FORMAT3 / name)
    case = EXPECTED3[name]
    for mine, theirs in zip(model.predict(case["texts"]), case["predictions"], strict=True):
        assert mine.keys() == theirs.keys() and mine.get("label") == theirs.get("label")
        assert mine.get("labels") == theirs.get("labels")
        for label, p in theirs["probabilities"].items():
            assert abs(mine["probabilities"][label] - p) < 1e-6, (label, mine, theirs)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_format3_language_models_generate_the_same_text_through_every_decoding_path(cell):
    model = load_model(FORMAT3 / f"lm_{cell}")
    case = EXPECTED3[f"lm_{cell}"]
    assert model.generate_text("All:", 40, temperature=0)[0] == case["greedy"]
    assert model.generate_text("First", 30, temperature=0.9, top_k=10, seed=3, num_samples=2) == case["seeded"]
    controlled = model.generate_text("All:", 30, temperature=0, repetition_penalty=1.5, no_repeat_ngram_size=2)[0]
    assert controlled == case["controlled"]
    assert model.generate_text("All:", 20, num_beams=3, num_samples=2) == case["beams"]

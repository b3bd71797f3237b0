"""Checkpoints of earlier formats keep loading and give the same answers."""

import json
from pathlib import Path

import pytest

from textrnn import load_model

FIXTURES = Path(__file__).parent / "fixtures" / "format1"
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

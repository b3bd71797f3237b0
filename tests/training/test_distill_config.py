"""The distill section: built from a config, checked value by value."""

from __future__ import annotations

import pytest

from textrnn import load_config
from textrnn.core.errors import ConfigError
from textrnn.training.distill_config import DistillConfig, distill_config


def test_no_section_no_distillation():
    assert distill_config(load_config(None, [], task="classification")) is None


def test_the_section_builds_its_settings():
    config = load_config(None, ["distill.loss=kl", "distill.temperature=3", "distill.augment=10"],
                         task="classification")
    settings = distill_config(config)
    assert settings.loss_rule().loss == "kl" and settings.loss_rule().temperature == 3.0
    assert settings.augmentation().copies == 10


@pytest.mark.parametrize("override, words", [
    ("distill.loss=l1", "distill.loss must be one of mse, kl"),
    ("distill.alpha=1.5", "distill.alpha must be in [0, 1]"),
    ("distill.temperature=0", "distill.temperature must be positive"),
    ("distill.augment=-1", "distill.augment must be >= 0"),
    ("distill.mask_prob=0.7", "mask_prob + distill.swap_prob"),
    ("distill.teacher_batch_size=0", "distill.teacher_batch_size must be a positive integer"),
    ("distill.augmnet=3", "augment"),
])
def test_bad_values_are_one_line_errors(override, words):
    with pytest.raises(ConfigError, match=None) as caught:
        distill_config(load_config(None, [override, "distill.swap_prob=0.5"] if "mask" in override else [override],
                                   task="classification"))
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_defaults_are_tang_et_al_s_rates():
    settings = DistillConfig()
    assert (settings.mask_prob, settings.swap_prob, settings.ngram_prob, settings.max_ngram) == (0.1, 0.1, 0.25, 5)

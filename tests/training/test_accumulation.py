"""``train.accumulate_steps``: k batches make one update with the gradient of their union; resume stays exact."""

from __future__ import annotations

import contextlib

import pytest
import torch

from textrnn import ConfigError, load_config
from textrnn.training.accumulation import accumulate, groups
from textrnn.training.trainer import Trainer

from ..helpers import classifier_config

NO_DROPOUT = ("model.embedding_dropout=0", "model.output_dropout=0", "model.dropout=0")


def gradients(trainer: Trainer, batches: list[dict]) -> dict:
    trainer.model.zero_grad(set_to_none=True)
    accumulate(trainer.wrapped, trainer.task.step_loss, batches, contextlib.nullcontext)
    return {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.grad is not None}


def rows(batch: dict, part: slice) -> dict:
    return {key: value[part] for key, value in batch.items()}


def test_two_halves_accumulate_to_the_whole_batchs_gradient(tmp_path, sentiment_dir):
    trainer = Trainer(classifier_config(sentiment_dir, tmp_path / "run", *NO_DROPOUT, "train.label_smoothing=0.1"))
    batch = next(iter(trainer.task.train_loader.iterate(0)))  # 16 rows, sorted by length within the batch
    whole = gradients(trainer, [batch])
    uneven = gradients(trainer, [rows(batch, slice(0, 5)), rows(batch, slice(5, 16))])  # 5 + 11 rows
    assert whole.keys() == uneven.keys() and len(whole) > 4
    for name in whole:
        torch.testing.assert_close(uneven[name], whole[name], rtol=1e-5, atol=1e-7, msg=name)


def test_groups_split_an_epoch_and_keep_the_remainder():
    assert [len(g) for g in groups(iter([{}] * 8), 3)] == [3, 3, 2]
    assert list(groups(iter([]), 3)) == []


def test_the_plan_counts_updates_not_batches(tmp_path, sentiment_dir):
    one = Trainer(classifier_config(sentiment_dir, tmp_path / "a", "train.max_epochs=2"))
    three = Trainer(classifier_config(sentiment_dir, tmp_path / "b", "train.max_epochs=2", "train.accumulate_steps=3"))
    assert one.total_steps == 2 * 8 and three.total_steps == 2 * 3  # 120 rows / 16 = 8 batches: 3 + 3 + 2


def test_accumulate_steps_below_one_is_a_config_error():
    with pytest.raises(ConfigError, match="train.accumulate_steps must be at least 1, got 0"):
        load_config(None, ["train.accumulate_steps=0"])

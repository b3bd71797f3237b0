"""Evaluate a saved checkpoint on any dataset split (the ``textrnn evaluate`` command)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

from . import data as D
from .checkpoint import locate
from .checkpointer import saved_experiment
from .config import DataConfig, build_dataclass
from .registry import get_task


def training_data_config(checkpoint: str) -> DataConfig:
    """The data section the checkpoint was trained with, when its folder records it."""
    experiment = saved_experiment(locate(checkpoint))
    return build_dataclass(DataConfig, experiment.get("data", {}), "data") if experiment else DataConfig()


def evaluate_checkpoint(model, checkpoint: str, dataset: str, split: str, text_column: Optional[str],
                        label_column: Optional[str], batch_size: Optional[int] = None,
                        config_name: Optional[str] = None) -> dict:
    """Metrics of ``model`` on ``split`` of ``dataset``; columns (and, for the same dataset, its
    configuration) default to the training run's."""
    data = training_data_config(checkpoint)
    data.config_name = config_name or (data.config_name if dataset == data.dataset else None)
    data.dataset, data.text_column = dataset, text_column or data.text_column
    data.label_column = label_column or data.label_column
    with tempfile.TemporaryDirectory(prefix="textrnn-eval-") as tmp:
        raw = D.load_raw(dataset, tmp, data.config_name)
        task_class = get_task(model.task).task_class
        return task_class.evaluate_split(model, raw, data, split, batch_size or data.eval_batch_size, Path(tmp))

"""Evaluate a saved checkpoint on any dataset split (the ``textrnn evaluate`` command)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

import torch

from . import data as D
from .checkpoint import locate
from .config import DataConfig, ExperimentConfig, build_dataclass
from .distributed import Dist
from .errors import DataError
from .tasks import evaluate_classifier, evaluate_lm, lm_splits


def training_data_config(checkpoint: str) -> DataConfig:
    """The data section the checkpoint was trained with, when its folder records it."""
    state = locate(checkpoint) / "trainer_state.json"
    if state.is_file():
        saved = json.loads(state.read_text(encoding="utf-8")).get("experiment", {}).get("data", {})
        return build_dataclass(DataConfig, saved, "data")
    return DataConfig()


def evaluate_checkpoint(model, checkpoint: str, dataset: str, split: str, text_column: Optional[str],
                        label_column: Optional[str], batch_size: Optional[int] = None) -> dict:
    """Metrics of ``model`` on ``split`` of ``dataset``; columns default to the training run's."""
    data = training_data_config(checkpoint)
    data.dataset, data.text_column = dataset, text_column or data.text_column
    data.label_column = label_column or data.label_column
    batch_size = batch_size or data.eval_batch_size
    with tempfile.TemporaryDirectory(prefix="textrnn-eval-") as tmp:
        raw = D.load_raw(dataset, tmp)
        if model.task == "classification":
            return _evaluate_classifier(model, raw, data, split, batch_size)
        return _evaluate_lm(model, raw, data, split, batch_size, Path(tmp))


def _split(raw, split: str):
    if split not in raw:
        raise DataError(f"split {split!r} not found (available: {', '.join(raw)}); pass --split")
    return raw[split]


def _evaluate_classifier(model, raw, data: DataConfig, split: str, batch_size: int) -> dict:
    ds = _split(raw, split)
    text_col = D.require_column(ds, data.text_column, "text_column")
    label_col = D.require_column(ds, data.label_column, "label_column")
    names = model.label_names
    to_id = D.label_mapping(ds, label_col, names)
    encoded = D.encode_classification(ds, model.tokenizer, text_col, label_col, to_id, data.max_length)
    metrics = evaluate_classifier(model, encoded, len(names), batch_size, Dist(), model.device)
    return {"split": split, **metrics, "labels": names}


def _evaluate_lm(model, raw, data: DataConfig, split: str, batch_size: int, tmp: Path) -> dict:
    """On a named split, all of its text; on 'validation' of a corpus without one, the
    last ``validation_fraction`` of the training text, as training used."""
    config = ExperimentConfig(task="language_model", data=data)
    if split in raw:
        config.data.train_split, config.data.validation_split = split, split
        texts, _ = lm_splits(raw, config)
    elif split == "validation":
        _, texts = lm_splits(raw, config)
    else:
        raise DataError(f"split {split!r} not found (available: {', '.join(raw)}); pass --split")
    tokens = D.encode_stream(texts(), model.tokenizer, tmp / "eval.bin")
    with torch.no_grad():
        metrics = evaluate_lm(model, tokens, batch_size, data.seq_len, Dist(), model.device, model.tokenizer.kind == "char")
    return {"split": split, **metrics}

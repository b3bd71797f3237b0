"""The two tasks the training loop serves: data preparation, one training step, evaluation.

A task turns an :class:`~textrnn.config.ExperimentConfig` into a tokenizer, a model config,
a training loader and an ``evaluate(model)`` that returns a dict of metrics, reduced across
ranks so that a distributed evaluation equals a single-process one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from . import data as D
from .config import ExperimentConfig, RNNConfig
from .distributed import Dist, all_sum
from .errors import DataError
from .tokenization import PAD_ID, TextTokenizer


def to_device(batch: dict, device: torch.device) -> dict:
    """Move a batch to ``device``; lengths stay on the CPU (pack_padded_sequence wants them there)."""
    non_blocking = device.type == "cuda"
    return {k: v if k == "lengths" else v.to(device, non_blocking=non_blocking) for k, v in batch.items()}


def train_tokenizer(texts, config: ExperimentConfig) -> TextTokenizer:
    t = config.tokenizer
    return TextTokenizer.train(texts, t.kind, lowercase=t.lowercase, min_freq=t.min_freq, max_size=t.max_size, vocab_size=t.vocab_size)


# ---------------------------------------------------------------------------- classification
class ClassificationTask:
    metric = "accuracy"
    greater_is_better = True

    def __init__(self, config: ExperimentConfig, dist: Dist, device: torch.device, workdir: Path,
                 tokenizer: Optional[TextTokenizer] = None, label_names: Optional[list] = None) -> None:
        d = config.data
        raw = D.load_raw(d.dataset, str(workdir))
        train, valid = D.split_dataset(raw, d.train_split, d.validation_split, d.validation_fraction, config.train.seed)
        text_col = D.require_column(train, d.text_column, "text_column")
        label_col = D.require_column(train, d.label_column, "label_column")
        self.label_names = label_names or D.label_names_of(train, label_col)
        if len(self.label_names) < 2:
            raise DataError(f"column {label_col!r} has {len(self.label_names)} distinct label; a classifier needs at least 2")
        to_id = D.label_mapping(train, label_col, self.label_names)
        self.tokenizer = tokenizer or train_tokenizer(D.iter_column(train, text_col), config)
        encode = lambda ds: D.encode_classification(ds, self.tokenizer, text_col, label_col, to_id, d.max_length)  # noqa: E731
        D.require_column(valid, text_col, "text_column")
        D.require_column(valid, label_col, "label_column")
        self.train_set, self.valid_set = encode(train), encode(valid)
        self.dist, self.device, self.config = dist, device, config
        sampler = D.BucketBatchSampler(self.train_set["length"], d.batch_size, bucket_size=d.bucket_size,
                                       seed=config.train.seed, rank=dist.rank, world_size=dist.world_size)
        self.train_loader = D.ClassificationLoader(self.train_set, sampler, PAD_ID, pin_memory=device.type == "cuda")

    def model_config(self) -> RNNConfig:
        m = self.config.model
        m.task, m.vocab_size, m.pad_id = "classification", self.tokenizer.vocab_size, PAD_ID
        m.num_labels, m.label_names, m.tokenizer_kind = len(self.label_names), list(self.label_names), self.tokenizer.kind
        return m

    def new_epoch(self, epoch: int) -> None:
        self.train_loader.sampler.set_epoch(epoch)

    def step_loss(self, model, batch: dict, carry, autocast):
        batch = to_device(batch, self.device)
        with autocast():
            _, loss = model(batch["input_ids"], batch["lengths"], batch["labels"])
        return loss, carry, int(batch["lengths"].sum())

    def evaluate(self, model) -> dict:
        return evaluate_classifier(model, self.valid_set, len(self.label_names), self.config.data.eval_batch_size, self.dist, self.device)


@torch.no_grad()
def evaluate_classifier(model, encoded, num_labels: int, batch_size: int, dist: Dist, device: torch.device) -> dict:
    """Accuracy, macro-F1, confusion matrix and mean loss; exact across any number of ranks."""
    was_training = model.training
    model.eval()
    sampler = D.SortedBatches(encoded["length"], batch_size, dist.rank, dist.world_size)
    confusion = torch.zeros(num_labels, num_labels, dtype=torch.float64, device=device)
    loss_sum = torch.zeros(1, dtype=torch.float64, device=device)
    for batch in D.ClassificationLoader(encoded, sampler):
        batch = to_device(batch, device)
        logits, _ = model(batch["input_ids"], batch["lengths"])
        loss_sum += F.cross_entropy(logits.float(), batch["labels"], reduction="sum").double()
        flat = batch["labels"] * num_labels + logits.argmax(-1)
        confusion += torch.bincount(flat, minlength=num_labels ** 2).view(num_labels, num_labels).double()
    all_sum(confusion, dist)
    all_sum(loss_sum, dist)
    model.train(was_training)
    return classification_metrics(confusion.cpu(), float(loss_sum))


def classification_metrics(confusion: torch.Tensor, loss_sum: float) -> dict:
    """confusion[true, predicted] counts -> accuracy, macro-F1, loss, confusion matrix."""
    total = float(confusion.sum())
    tp = confusion.diag()
    precision = tp / confusion.sum(0).clamp(min=1)
    recall = tp / confusion.sum(1).clamp(min=1)
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall), torch.zeros_like(tp))
    return {
        "accuracy": float(tp.sum()) / max(total, 1.0),
        "macro_f1": float(f1.mean()),
        "loss": loss_sum / max(total, 1.0),
        "examples": int(total),
        "confusion_matrix": confusion.long().tolist(),
    }


# ---------------------------------------------------------------------------- language model
class LanguageModelTask:
    metric = "loss"
    greater_is_better = False

    def __init__(self, config: ExperimentConfig, dist: Dist, device: torch.device, workdir: Path,
                 tokenizer: Optional[TextTokenizer] = None, label_names=None) -> None:
        d = config.data
        raw = D.load_raw(d.dataset, str(workdir))
        train_texts, valid_texts = lm_splits(raw, config)
        self.tokenizer = tokenizer or train_tokenizer(train_texts(), config)
        cache = workdir / "data"
        self.train_tokens = D.encode_stream(train_texts(), self.tokenizer, cache / f"train.rank{dist.rank}.bin")
        self.valid_tokens = D.encode_stream(valid_texts(), self.tokenizer, cache / f"validation.rank{dist.rank}.bin")
        self.train_loader = D.LMStreamLoader(self.train_tokens, d.batch_size, d.seq_len, dist.rank, dist.world_size)
        self.dist, self.device, self.config = dist, device, config

    def model_config(self) -> RNNConfig:
        m = self.config.model
        m.task, m.vocab_size, m.pad_id, m.tokenizer_kind = "language_model", self.tokenizer.vocab_size, PAD_ID, self.tokenizer.kind
        return m

    def new_epoch(self, epoch: int) -> None:
        pass

    def step_loss(self, model, batch: dict, carry, autocast):
        batch = to_device(batch, self.device)
        # Truncated backprop: the state flows on from the previous window, but its history is
        # cut (detached); otherwise backward would run through every window since the start.
        state = detach_state(carry)
        with autocast():
            _, loss, state = model(batch["input_ids"], state=state, targets=batch["targets"])
        return loss, state, batch["input_ids"].numel()

    def evaluate(self, model) -> dict:
        return evaluate_lm(model, self.valid_tokens, self.config.data.eval_batch_size, self.config.data.seq_len,
                           self.dist, self.device, self.tokenizer.kind == "char")


def detach_state(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def lm_splits(raw, config: ExperimentConfig):
    """Two callables giving the train and validation texts.

    With a validation split in the data, it is used whole. Otherwise the training text is cut
    by character position: the first 1 - validation_fraction for training, the rest for
    validation (nanoGPT's split for tiny shakespeare).
    """
    d = config.data
    if d.train_split not in raw:
        raise DataError(f"split {d.train_split!r} not found (available: {', '.join(raw)}); set data.train_split")
    train = raw[d.train_split]
    column = D.require_column(train, d.text_column, "text_column")
    sep = lm_separator(raw, d.separator, d.dataset)
    valid_name = d.validation_split or next((n for n in D.VALIDATION_NAMES if n in raw), None)
    if valid_name is not None:
        valid = raw[valid_name]
        return (lambda: D.iter_text(train, column, sep)), (lambda: D.iter_text(valid, column, sep))
    total = D.count_chars(train, column, sep)
    if total < 2:
        raise DataError(f"the {d.train_split!r} split has no text; give a corpus with text in it")
    cut = int(total * (1 - d.validation_fraction))
    return (lambda: D.iter_text(train, column, sep, 0, cut)), (lambda: D.iter_text(train, column, sep, cut))


def lm_separator(raw, separator: Optional[str], dataset: str) -> str:
    """Between rows: nothing for text files (their rows keep their line breaks), else a newline."""
    if separator is not None:
        return separator
    builder = getattr(next(iter(raw.values())), "builder_name", None) or ""
    return "" if builder == "text" or dataset.startswith(D.BUILTIN_PREFIX) else "\n"


@torch.no_grad()
def evaluate_lm(model, tokens: np.ndarray, num_streams: int, seq_len: int, dist: Dist, device: torch.device,
                per_char: bool) -> dict:
    """Mean loss per token over the whole stream, state carried; the same for any number of ranks."""
    was_training = model.training
    model.eval()
    num_streams = max(1, min(num_streams, len(tokens) - 1))  # at least one token per stream
    loader = D.LMStreamLoader(tokens, num_streams, seq_len)
    mine = list(range(dist.rank, num_streams, dist.world_size))
    loader.starts = [loader.starts[i] for i in mine]
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    state = None
    for batch in (loader if mine else []):
        batch = to_device(batch, device)
        logits, _, state = model(batch["input_ids"], state=state)
        sums[0] += F.cross_entropy(logits.float().flatten(0, 1), batch["targets"].flatten(), reduction="sum").double()
        sums[1] += batch["targets"].numel()
    all_sum(sums, dist)
    model.train(was_training)
    loss = float(sums[0] / sums[1].clamp(min=1))
    metrics = {"loss": loss, "perplexity": math.exp(min(loss, 700)), "tokens": int(sums[1])}
    if per_char:
        metrics["bits_per_char"] = loss / math.log(2)
    return metrics

"""The tasks the training loop serves: data preparation, one training step, evaluation.

A task turns an :class:`~textrnn.config.ExperimentConfig` into a tokenizer, a model config
(a new one, with what the data decides filled in), a training loader, ``step_loss`` and an
``evaluate(model)`` that returns a dict of metrics, reduced across ranks so that a
distributed evaluation equals a single-process one. ``evaluate_split`` scores a saved model
on any split (the ``textrnn evaluate`` command). :mod:`textrnn.registry` maps task names to
these classes.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from . import batching as B
from . import data as D
from .checkpoint import TOKENIZER_FILE, read_config
from .config import DataConfig, ExperimentConfig, RNNConfig
from .distributed import Dist, all_sum
from .errors import ConfigError, DataError
from .runtime import eval_mode
from .tokenization import PAD_ID, TextTokenizer


def to_device(batch: dict, device: torch.device) -> dict:
    """Move a batch to ``device``; lengths stay on the CPU (pack_padded_sequence wants them there)."""
    non_blocking = device.type == "cuda"
    return {k: v if k == "lengths" else v.to(device, non_blocking=non_blocking) for k, v in batch.items()}


def train_tokenizer(texts, config: ExperimentConfig) -> TextTokenizer:
    t = config.tokenizer
    return TextTokenizer.train(texts, t.kind, lowercase=t.lowercase, min_freq=t.min_freq, max_size=t.max_size, vocab_size=t.vocab_size)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


# ---------------------------------------------------------------------------- classification
class ClassificationTask:
    """Single-label text classification: accuracy is the metric to select checkpoints on."""

    metric = "accuracy"
    greater_is_better = True

    @staticmethod
    def check_experiment(config: ExperimentConfig) -> None:
        _check(bool(config.data.label_column), "data.label_column is required to train a classifier")
        t, m = config.train, config.model
        _check(t.lm_loss_weight == 0 or not (m.bidirectional and m.num_layers > 1),
               "train.lm_loss_weight needs model.num_layers=1 when bidirectional (upper layers see the word each "
               "direction predicts): set model.num_layers=1 or train.lm_loss_weight=0")

    def __init__(self, config: ExperimentConfig, dist: Dist, device: torch.device, workdir: Path,
                 checkpoint: Optional[Path] = None) -> None:
        d = config.data
        raw = D.load_raw(d.dataset, str(workdir))
        train, valid = D.split_dataset(raw, d.train_split, d.validation_split, d.validation_fraction, config.train.seed)
        text_col = D.require_column(train, d.text_column, "text_column")
        label_col = D.require_column(train, d.label_column, "label_column")
        self.label_names = read_config(checkpoint).label_names if checkpoint else D.label_names_of(train, label_col)
        if len(self.label_names) < 2:
            raise DataError(f"column {label_col!r} has {len(self.label_names)} distinct label; a classifier needs at least 2")
        self.tokenizer = (TextTokenizer.from_file(checkpoint / TOKENIZER_FILE) if checkpoint
                          else train_tokenizer(D.iter_column(train, text_col), config))
        self.train_set = encode_split(train, self.tokenizer, d, self.label_names)
        self.valid_set = encode_split(valid, self.tokenizer, d, self.label_names)
        self.dist, self.device, self.config = dist, device, config
        sampler = B.BucketBatchSampler(self.train_set["length"], d.batch_size, bucket_size=d.bucket_size,
                                       seed=config.train.seed, rank=dist.rank, world_size=dist.world_size)
        self.train_loader = B.ClassificationLoader(self.train_set, sampler, PAD_ID, pin_memory=device.type == "cuda")

    def model_config(self) -> RNNConfig:
        """The experiment's model section with the data's values filled in (a new config)."""
        return dataclasses.replace(
            self.config.model_config(), vocab_size=self.tokenizer.vocab_size, pad_id=PAD_ID,
            num_labels=len(self.label_names), label_names=list(self.label_names), tokenizer_kind=self.tokenizer.kind,
            aux_lm_head=self.config.train.lm_loss_weight > 0,
        )

    def new_epoch(self, epoch: int) -> None:
        self.train_loader.sampler.set_epoch(epoch)

    def step_loss(self, model, batch: dict, carry, autocast):
        batch, t = to_device(batch, self.device), self.config.train
        with autocast():
            _, loss = model(batch["input_ids"], batch["lengths"], batch["labels"],
                            label_smoothing=t.label_smoothing, lm_loss_weight=t.lm_loss_weight)
        return loss, carry, int(batch["lengths"].sum())

    def evaluate(self, model) -> dict:
        return evaluate_classifier(model, self.valid_set, len(self.label_names), self.config.data.eval_batch_size,
                                   self.dist, self.device)

    @staticmethod
    def evaluate_split(model, raw, data: DataConfig, split: str, batch_size: int, workdir: Path) -> dict:
        """Metrics of a saved classifier on ``split``; its labels must be among the model's."""
        encoded = encode_split(D.require_split(raw, split, "--split"), model.tokenizer, data, model.label_names)
        metrics = evaluate_classifier(model, encoded, len(model.label_names), batch_size, Dist(), model.device)
        return {"split": split, **metrics, "labels": model.label_names}


def encode_split(ds, tokenizer: TextTokenizer, data: DataConfig, label_names: list):
    """Check a split's text and label columns, then encode it against ``label_names``."""
    text_col = D.require_column(ds, data.text_column, "text_column")
    label_col = D.require_column(ds, data.label_column, "label_column")
    to_id = D.label_mapping(ds, label_col, label_names)
    return D.encode_classification(ds, tokenizer, text_col, label_col, to_id, data.max_length)


@torch.no_grad()
def evaluate_classifier(model, encoded, num_labels: int, batch_size: int, dist: Dist, device: torch.device) -> dict:
    """Accuracy, macro-F1, confusion matrix and mean loss (forward's); exact across any number of ranks."""
    sampler = B.SortedBatches(encoded["length"], batch_size, dist.rank, dist.world_size)
    confusion = torch.zeros(num_labels, num_labels, dtype=torch.float64, device=device)
    loss_sum = torch.zeros(1, dtype=torch.float64, device=device)
    with eval_mode(model):
        for batch in B.ClassificationLoader(encoded, sampler):
            batch = to_device(batch, device)
            logits, loss = model(batch["input_ids"], batch["lengths"], batch["labels"])
            loss_sum += loss.double() * batch["labels"].numel()
            flat = batch["labels"] * num_labels + logits.argmax(-1)
            confusion += torch.bincount(flat, minlength=num_labels ** 2).view(num_labels, num_labels).double()
    all_sum(confusion, dist)
    all_sum(loss_sum, dist)
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
    """Next-token prediction on one token stream, truncated backprop with the state carried."""

    metric = "loss"
    greater_is_better = False

    @staticmethod
    def check_experiment(config: ExperimentConfig) -> None:
        for name in ("label_smoothing", "lm_loss_weight"):
            _check(getattr(config.train, name) == 0, f"train.{name} applies to classifiers only: set train.{name}=0")

    def __init__(self, config: ExperimentConfig, dist: Dist, device: torch.device, workdir: Path,
                 checkpoint: Optional[Path] = None) -> None:
        raw = D.load_raw(config.data.dataset, str(workdir))
        train_texts, valid_texts = lm_splits(raw, config.data)
        self.tokenizer = (TextTokenizer.from_file(checkpoint / TOKENIZER_FILE) if checkpoint
                          else train_tokenizer(train_texts(), config))
        cache = workdir / "data"
        self.train_tokens = D.encode_stream(train_texts(), self.tokenizer, cache / f"train.rank{dist.rank}.bin")
        self.valid_tokens = D.encode_stream(valid_texts(), self.tokenizer, cache / f"validation.rank{dist.rank}.bin")
        self.train_loader = B.LMStreamLoader(self.train_tokens, config.data.batch_size, config.data.seq_len, dist.rank, dist.world_size)
        self.dist, self.device, self.config = dist, device, config

    def model_config(self) -> RNNConfig:
        """The experiment's model section with the data's values filled in (a new config)."""
        return dataclasses.replace(self.config.model_config(), vocab_size=self.tokenizer.vocab_size, pad_id=PAD_ID,
                                   tokenizer_kind=self.tokenizer.kind)

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

    @staticmethod
    def evaluate_split(model, raw, data: DataConfig, split: str, batch_size: int, workdir: Path) -> dict:
        """On a named split, all of its text; on 'validation' of a corpus without one, the
        last ``validation_fraction`` of the training text, as training used."""
        if split in raw:
            texts, _ = lm_splits(raw, dataclasses.replace(data, train_split=split, validation_split=split))
        elif split == "validation":
            _, texts = lm_splits(raw, data)
        else:
            D.require_split(raw, split, "--split")
        tokens = D.encode_stream(texts(), model.tokenizer, workdir / "eval.bin")
        metrics = evaluate_lm(model, tokens, batch_size, data.seq_len, Dist(), model.device, model.tokenizer.kind == "char")
        return {"split": split, **metrics}


def detach_state(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def lm_splits(raw, d: DataConfig):
    """Two callables giving the train and validation texts.

    With a validation split in the data, it is used whole. Otherwise the training text is cut
    by character position: the first 1 - validation_fraction for training, the rest for
    validation (nanoGPT's split for tiny shakespeare).
    """
    train = D.require_split(raw, d.train_split, "data.train_split")
    column = D.require_column(train, d.text_column, "text_column")
    sep = lm_separator(raw, d.separator, d.dataset)
    valid_name = d.validation_split or next((n for n in D.VALIDATION_NAMES if n in raw), None)
    if valid_name is not None:
        valid = D.require_split(raw, valid_name, "data.validation_split")
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
    num_streams = max(1, min(num_streams, len(tokens) - 1))  # at least one token per stream
    loader = B.LMStreamLoader(tokens, num_streams, seq_len)
    mine = list(range(dist.rank, num_streams, dist.world_size))
    loader.starts = [loader.starts[i] for i in mine]
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    state = None
    with eval_mode(model):
        for batch in (loader if mine else []):
            batch = to_device(batch, device)
            _, loss, state = model(batch["input_ids"], state=state, targets=batch["targets"])
            sums[0] += loss.double() * batch["targets"].numel()
            sums[1] += batch["targets"].numel()
    all_sum(sums, dist)
    loss = float(sums[0] / sums[1].clamp(min=1))
    metrics = {"loss": loss, "perplexity": math.exp(min(loss, 700)), "tokens": int(sums[1])}
    if per_char:
        metrics["bits_per_char"] = loss / math.log(2)
    return metrics

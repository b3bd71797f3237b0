"""Scoring a model: the loops the tasks evaluate with, and ``textrnn evaluate`` on any split.

* language models: mean loss per token over a whole stream, state carried (:func:`evaluate_lm`);
* classifiers: length-sorted batches scored once (:func:`scored_batches`), reduced to
  accuracy/F1/confusion (:func:`evaluate_single`) or to probabilities for the multi-label
  metrics and thresholds (:func:`predict_rows`, :mod:`textrnn.training.metrics`);
* a saved model on a named split of any dataset (:func:`evaluate_checkpoint`).

Every figure is reduced across ranks, so a distributed evaluation equals a single-process one.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

import numpy as np
import torch
from torch import Tensor

from ..core.config import DataConfig, ExperimentConfig, build_dataclass
from ..core.distributed import Dist, all_sum, gather_objects
from ..core.runtime import eval_mode
from ..data.batching import ClassificationLoader, LMStreamLoader, SortedBatches
from ..data.cache import SCRATCH, PreparedCache, cache_key, cache_root
from ..data.encoding import column_array, encode_split, label_source, labelled
from ..data.labels import SINGLE, LabelSpec
from ..data.loading import VALIDATION_NAMES, load_raw, require_column, require_split, split_dataset
from ..data.preparation import source_parts, tokenizer_part
from ..data.streams import encode_stream, lm_splits
from ..models.base import TextModel
from ..models.classifier import TextClassifier
from ..models.hub import locate
from ..models.language_model import RNNLanguageModel
from .metrics import multi_label_metrics, single_label_metrics
from .run_folder import saved_experiment
from .task import to_device

if TYPE_CHECKING:  # annotations only: datasets is imported where data is loaded
    from datasets import Dataset, DatasetDict


@torch.no_grad()
def evaluate_lm(model: RNNLanguageModel, tokens: np.ndarray, num_streams: int, seq_len: int, dist: Dist,
                device: torch.device, per_char: bool) -> dict:
    """Mean loss per token over the whole stream, state carried; the same for any number of ranks."""
    num_streams = max(1, min(num_streams, len(tokens) - 1))  # at least one token per stream
    loader = LMStreamLoader(tokens, num_streams, seq_len)
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


def eval_budget_note(used: int, total: int, unit: str) -> str:
    """The note a run prints when its evaluations read part of the validation split."""
    return (f"note: evaluations read {used:,} of the {total:,} validation {unit} (train.eval_tokens; null reads "
            "all, and textrnn evaluate scores the whole split)")


def lm_eval_tokens(tokens: np.ndarray, budget: Optional[int]) -> np.ndarray:
    """The first ``budget`` tokens of a validation stream to predict (all when it is shorter, or no budget)."""
    return tokens if budget is None or len(tokens) <= budget + 1 else tokens[: budget + 1]


def eval_rows(encoded: Dataset, budget: Optional[int]) -> Dataset:
    """Rows of an encoded validation split holding at most ``budget`` tokens, drawn once (seed 0) and kept in
    their order; the whole split when it holds fewer."""
    lengths = column_array(encoded, "length")
    if budget is None or int(lengths.sum()) <= budget:
        return encoded
    order = np.random.default_rng(0).permutation(len(lengths))
    taken = order[: max(1, int(np.searchsorted(np.cumsum(lengths[order]), budget, side="right")))]
    return encoded.select(np.sort(taken))


# ---------------------------------------------------------------------------- evaluation
def scored_batches(model: TextClassifier, encoded: Dataset, batch_size: int, dist: Dist,
                   device: torch.device) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """(labels, logits, loss) of each of this rank's length-sorted batches, the model in eval mode."""
    sampler = SortedBatches(column_array(encoded, "length"), batch_size, dist.rank, dist.world_size)
    with eval_mode(model):
        for batch in ClassificationLoader(encoded, sampler):
            batch = to_device(batch, device)
            logits, loss = model(batch["input_ids"], batch["lengths"], batch["labels"])
            yield batch["labels"], logits, loss


@torch.no_grad()
def evaluate_single(model: TextClassifier, encoded: Dataset, batch_size: int, dist: Dist, device: torch.device) -> dict:
    """Accuracy, macro-F1, per-label figures, confusion matrix and mean loss (forward's); exact across ranks."""
    count = model.config.num_labels
    confusion = torch.zeros(count, count, dtype=torch.float64, device=device)
    loss_sum = torch.zeros(1, dtype=torch.float64, device=device)
    for labels, logits, loss in scored_batches(model, encoded, batch_size, dist, device):
        loss_sum += loss.double() * labels.numel()
        flat = labels * count + logits.argmax(-1)
        confusion += torch.bincount(flat, minlength=count ** 2).view(count, count).double()
    all_sum(confusion, dist)
    all_sum(loss_sum, dist)
    return single_label_metrics(confusion.cpu(), float(loss_sum), model.label_names)


@torch.no_grad()
def predict_rows(model: TextClassifier, encoded: Dataset, batch_size: int, dist: Dist,
                 device: torch.device) -> tuple[np.ndarray, np.ndarray, float]:
    """Probabilities and targets (N, C) of every example, gathered from all ranks, and the mean loss."""
    probs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    loss_sum = 0.0
    for labels, logits, loss in scored_batches(model, encoded, batch_size, dist, device):
        loss_sum += float(loss) * labels.numel()
        probs.append(model.probabilities(logits).cpu().numpy())
        targets.append(labels.cpu().numpy())
    parts = gather_objects((probs, targets, loss_sum), dist)
    all_probs = np.concatenate([p for part in parts for p in part[0]])
    all_targets = np.concatenate([t for part in parts for t in part[1]])
    return all_probs, all_targets, sum(part[2] for part in parts) / max(all_targets.size, 1)


def training_record(checkpoint: Optional[str]) -> tuple[DataConfig, Optional[int]]:
    """The data section the checkpoint was trained with and its seed, when its folder records them."""
    experiment = saved_experiment(locate(checkpoint)) if checkpoint else None
    if not experiment:
        return DataConfig(), None
    return build_dataclass(DataConfig, experiment.get("data", {}), "data"), experiment.get("train", {}).get("seed", 0)


def evaluate_checkpoint(model: TextModel, checkpoint: Optional[str], dataset: str, split: str,
                        text_column: Optional[str], label_column: Optional[str], batch_size: Optional[int] = None,
                        config_name: Optional[str] = None) -> dict:
    """Metrics of ``model`` on ``split`` of ``dataset``; columns (and, for the same dataset, its
    configuration and split rule) default to the training run's.

    On the dataset the run trained on, where training cut its validation split from the
    training split, ``validation`` and the training split's name mean those two parts again:
    the same rows, cut with the recorded fraction and seed.
    """
    data, seed = training_record(checkpoint)
    same = dataset == data.dataset
    data.config_name = config_name or (data.config_name if same else None)
    # config.json's record of the text fields, saved by any route
    fields = model.config.text_fields if isinstance(model, TextClassifier) else None
    recorded: Any = (fields[0] if len(fields) == 1 else list(fields)) if fields else data.text_column
    data.dataset, data.text_column = dataset, text_column or recorded
    data.label_column = label_column or data.label_column
    folder, meta = encoded_for_evaluation(model, data, split, seed if same else None)
    batch_size = batch_size or data.eval_batch_size
    if isinstance(model, RNNLanguageModel):
        tokens = np.memmap(folder / "tokens.bin", dtype=meta["dtype"], mode="r")
        return {"split": split, **lm_metrics(model, tokens, batch_size, data.seq_len)}
    assert isinstance(model, TextClassifier)  # the other task
    import datasets

    return {"split": split, **classifier_metrics(model, datasets.load_from_disk(str(folder / "split")), batch_size),
            "labels": model.label_names}


def encoded_for_evaluation(model: TextModel, data: DataConfig, split: str,
                           cut_seed: Optional[int]) -> tuple[Path, dict]:
    """A split encoded with the model's tokenizer, in the prepared-data cache: a second ``evaluate`` on the
    same data, split and model reads it instead of converting and encoding the split again."""
    experiment = ExperimentConfig(data=data)
    source, loaded = source_parts(experiment, None)
    fields = ("text_column", "field_separator", "label_column", "label_columns", "train_split",
              "validation_fraction", "max_length", "separator", "seq_len")
    parts = {"source": source, "split": split, "cut_seed": cut_seed, "reverse": model.config.reverse,
             "labels": model.label_names if isinstance(model, TextClassifier) else None,
             **{name: getattr(data, name) for name in fields}, **tokenizer_part(experiment, model.tokenizer)}

    def build(tmp: Path) -> dict:
        raw = loaded if loaded is not None else load_raw(data.dataset, str(tmp / SCRATCH), data.config_name,
                                                                   encoding=data.encoding)
        if isinstance(model, RNNLanguageModel):
            tokens = lm_split_tokens(model, raw, data, split, tmp / "tokens.bin")
            meta = {"dtype": str(tokens.dtype), "tokens": len(tokens)}
        else:
            assert isinstance(model, TextClassifier)  # the other task
            encoded = classifier_split_rows(model, raw, data, split, cut_seed)
            encoded.save_to_disk(str(tmp / "split"))
            meta = {"rows": len(encoded)}
        return meta

    cache = PreparedCache(cache_root(data.cache_dir), data.prepare_timeout)
    folder, meta, _ = cache.get(cache_key("eval", parts), build)
    return folder, meta


def split_to_score(raw: DatasetDict, data: DataConfig, split: str, cut_seed: Optional[int]) -> Dataset:
    """``split`` of ``raw``, or the part of the training split that training used under that name."""
    named = any(name in raw for name in VALIDATION_NAMES)
    cut = data.validation_split is None and data.train_split in raw and not named
    if cut_seed is not None and cut and split in ("validation", data.train_split):
        train, valid = split_dataset(raw, data.train_split, None, data.validation_fraction, cut_seed)
        return valid if split == "validation" else train
    return require_split(raw, split, "--split")


def evaluate_lm_split(model: RNNLanguageModel, raw: DatasetDict, data: DataConfig, split: str, batch_size: int,
                      workdir: Path) -> dict:
    """A language model's loss on ``split`` of ``raw`` (see :func:`lm_split_tokens`)."""
    tokens = lm_split_tokens(model, raw, data, split, workdir / "eval.bin")
    return {"split": split, **lm_metrics(model, tokens, batch_size, data.seq_len)}


def lm_metrics(model: RNNLanguageModel, tokens: np.ndarray, batch_size: int, seq_len: int) -> dict:
    """A saved language model's loss on a token stream, in one process (bits per character for a char model)."""
    per_char = model.require_tokenizer().kind == "char"
    return evaluate_lm(model, tokens, batch_size, seq_len, Dist(), model.device, per_char)


def lm_split_tokens(model: RNNLanguageModel, raw: DatasetDict, data: DataConfig, split: str, path: Path) -> np.memmap:
    """On a named split, all of its text; on 'validation' of a corpus without one, the last
    ``validation_fraction`` of the training text, as training used; encoded at ``path``."""
    if split in raw:
        texts, _ = lm_splits(raw, dataclasses.replace(data, train_split=split, validation_split=split))
    elif split == "validation":
        _, texts = lm_splits(raw, data)
    else:
        require_split(raw, split, "--split")
    return encode_stream(texts(), model.require_tokenizer(), path, model.config.reverse)


def classifier_split_rows(model: TextClassifier, raw: DatasetDict, data: DataConfig, split: str,
                          cut_seed: Optional[int],
                          flags: tuple[str, str] = ("--text-column", "--label-column")) -> Dataset:
    """``split``'s labelled rows, encoded against the model's tokenizer and labels; a missing column's error
    names ``flags`` (``textrnn evaluate``'s, or ``textrnn.evaluate``'s arguments)."""
    spec = LabelSpec(model.config.problem_type, model.label_names, label_source(data))
    rows = split_to_score(raw, data, split, cut_seed)
    names = data.text_column if isinstance(data.text_column, list) else [data.text_column]
    for name in names:
        require_column(rows, name, "text_column", flags[0])
    for name in spec.columns:
        require_column(rows, name, "label_column", flags[1])
    return labelled(encode_split(rows, model.require_tokenizer(), data, spec)[0], f"split {split!r}",
                    hint="evaluate needs labels; label it with textrnn predict instead")


def classifier_metrics(model: TextClassifier, encoded: Any, batch_size: int) -> dict:
    """A saved classifier's metrics on encoded rows, with its saved thresholds."""
    if model.config.problem_type == SINGLE:
        return evaluate_single(model, encoded, batch_size, Dist(), model.device)
    probs, targets, loss = predict_rows(model, encoded, batch_size, Dist(), model.device)
    return multi_label_metrics(probs, targets, model.thresholds(), model.label_names, loss)

"""The classification task: labels as the data brings them, class weights, evaluation, thresholds.

Single-label tasks select checkpoints on accuracy, multi-label tasks on macro-F1 at thresholds
tuned on the validation split (saved with each checkpoint, used by ``predict`` and
``evaluate``). Examples without a label are dropped from training and from scoring.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np
import torch

from ..core.config import DataConfig, ExperimentConfig, RNNConfig
from ..core.distributed import Dist
from ..core.errors import ConfigError, require
from ..data.batching import TEACHER_COLUMN, BucketBatchSampler, ClassificationLoader
from ..data.encoding import column_array, id_counts, label_array, label_source
from ..data.labels import MULTI, SINGLE, LabelSpec
from ..data.preparation import PreparedClassification, prepare_classification
from ..data.streaming import open_classification_stream
from ..data.tokenization import PAD_ID, TextTokenizer
from ..models.base import TextModel
from ..models.classifier import RNNClassifier, TextClassifier
from ..models.pretrained import read_config
from .distill_config import distill_config
from .evaluation import eval_budget_note, eval_rows, evaluate_single, predict_rows
from .metrics import multi_label_metrics, tune_thresholds
from .task import StepOutput, given_tokenizer, load_loader_state, loader_state, to_device

LOG = logging.getLogger(__name__)

if TYPE_CHECKING:  # annotations only
    from datasets import Dataset


class ClassificationTask:
    """Text classification, single- or multi-label (detected from the data)."""

    greater_is_better = True  # accuracy, or macro-F1 for multi-label: the metric is the instance's

    @staticmethod
    def check_experiment(config: ExperimentConfig) -> None:
        """Classifier rules on an experiment config; raises ConfigError before any data is read."""
        d = config.data
        require(bool(d.label_column or d.label_columns),
                "data.label_column (or data.label_columns) is required to train a classifier")
        require(not d.unlabeled or config.distill is not None, "data.unlabeled is more text for a language model "
                "(move it to pretrain.data.unlabeled) or for a teacher to label (textrnn distill)")
        distilling = distill_config(config)
        require(distilling is None or not d.streaming, "textrnn distill labels its whole transfer set first; "
                "set data.streaming=false")
        require(distilling is None or config.pretrain is None,
                "distill and pretrain are two runs: pretrain a classifier first, then distill into a fresh one")
        RNNClassifier.check_config(aux_lm_config(config))  # train.lm_loss_weight adds the head the model's rules cover

    def __init__(self, config: ExperimentConfig, dist: Dist, device: torch.device, workdir: Path,
                 checkpoint: Optional[Path] = None, raw: Any = None) -> None:
        self.data = d = config.data
        self.dist, self.device, self.config = dist, device, config
        if d.streaming:
            self._open_stream(config, checkpoint, raw)
        else:
            prepared = self.prepare(config, checkpoint, raw)
            self.tokenizer, self.spec, self.text_columns = prepared.tokenizer, prepared.spec, prepared.text_columns
            self.train_set, self.valid_set, self.data_note = prepared.train_set, prepared.valid_set, prepared.note
            self.sampler: Optional[BucketBatchSampler] = BucketBatchSampler(
                column_array(self.train_set, "length"), d.batch_size, bucket_size=d.bucket_size,
                seed=config.train.seed, rank=dist.rank, world_size=dist.world_size)
            self.train_loader: Any = ClassificationLoader(self.train_set, self.sampler, PAD_ID,
                                                          pin_memory=device.type == "cuda")
        self.class_weights = class_weight_tensor(config.train.class_weights, self.train_set, self.spec)
        self.eval_set = eval_rows(self.valid_set, config.train.eval_tokens)
        self.eval_note = (eval_budget_note(len(self.eval_set), len(self.valid_set), "rows")
                          if len(self.eval_set) < len(self.valid_set) else None)
        self.metric = "macro_f1" if self.spec.problem_type == MULTI else "accuracy"
        distilling = distill_config(config)
        self.distill = distilling.loss_rule() if distilling is not None else None
        if self.distill is not None and TEACHER_COLUMN not in self.train_set.column_names:
            raise ConfigError("a distill section trains on a teacher's outputs: run it with textrnn distill (or "
                              "textrnn.distill), or drop the distill section")

    def _open_stream(self, config: ExperimentConfig, checkpoint: Optional[Path], raw: Any) -> None:
        """``data.streaming``: batches as the data arrives; class weights and token counts from its first rows."""
        spec = saved_spec(checkpoint, config.data) if checkpoint else None
        s = open_classification_stream(config, given_tokenizer(config, checkpoint), spec, raw, self.dist.rank,
                                       self.dist.world_size)
        self.tokenizer, self.spec, self.text_columns, self.data_note = s.tokenizer, s.spec, s.text_columns, s.note
        self.train_set, self.valid_set, self.train_loader = s.sample_set, s.valid_set, s.train_loader
        self.sampler = None

    @staticmethod
    def prepare(config: ExperimentConfig, checkpoint: Optional[Path] = None, raw: Any = None,
                tokenizer: Optional[TextTokenizer] = None) -> PreparedClassification:
        """The run's tokenizer, labels and encoded splits, from the prepared-data cache (built there if missing).

        A resumed run keeps its checkpoint's tokenizer and labels; a classifier started from a
        language model (``model.init_from``, or ``tokenizer`` given) speaks that model's tokens.
        """
        tokenizer = tokenizer if tokenizer is not None and not checkpoint else given_tokenizer(config, checkpoint)
        spec = saved_spec(checkpoint, config.data) if checkpoint else None
        return prepare_classification(config, tokenizer, spec, raw)

    @property
    def label_names(self) -> list[str]:
        """The label names, in id order."""
        return list(self.spec.names)

    def model_config(self) -> RNNConfig:
        """The experiment's model section with the data's values filled in (a new config)."""
        d = self.data
        return dataclasses.replace(aux_lm_config(self.config), vocab_size=self.tokenizer.vocab_size, pad_id=PAD_ID,
                                   num_labels=len(self.spec.names), label_names=self.label_names,
                                   tokenizer_kind=self.tokenizer.kind, problem_type=self.spec.problem_type,
                                   text_fields=list(self.text_columns), field_separator=d.field_separator)

    def new_epoch(self, epoch: int) -> None:
        """The sampler reshuffles its length buckets for ``epoch`` (a stream reshuffles as it goes)."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def token_counts(self) -> np.ndarray:
        """How often each id occurs in the training split (pretrained vectors report their coverage against it)."""
        return id_counts(self.train_set, len(self.tokenizer))

    def step_loss(self, model: torch.nn.Module, batch: dict) -> StepOutput:
        """The classification loss of one batch, with the training-only loss options."""
        batch, t = to_device(batch, self.device), self.config.train
        teacher = {"teacher_logits": batch[TEACHER_COLUMN], "distill": self.distill} if self.distill else {}
        _, loss = model(batch["input_ids"], batch["lengths"], batch["labels"], label_smoothing=t.label_smoothing,
                        lm_loss_weight=t.lm_loss_weight, class_weights=self.class_weights, **teacher)
        return StepOutput(loss, int(batch["lengths"].sum()))

    def state_dict(self) -> dict:
        """A stream's position (nothing carries from one batch to the next; the sampler follows the epoch)."""
        return loader_state(self.train_loader, self.dist)

    def load_state_dict(self, state: dict, rank: int) -> None:
        """This rank's stream position."""
        load_loader_state(self.train_loader, state, rank)

    def reset_state(self) -> None:
        """Nothing to forget: each batch stands alone."""

    def evaluate(self, model: TextModel) -> dict:
        """Validation metrics (on ``train.eval_tokens`` worth of rows); a multi-label model's thresholds are tuned
        here and kept in its config."""
        assert isinstance(model, TextClassifier)  # the task built it
        batch_size = self.config.data.eval_batch_size
        if self.spec.problem_type == SINGLE:
            return evaluate_single(model, self.eval_set, batch_size, self.dist, self.device)
        probs, targets, loss = predict_rows(model, self.eval_set, batch_size, self.dist, self.device)
        t = self.config.train
        if t.threshold:
            thresholds = [t.threshold] * probs.shape[1]
        else:
            thresholds = tune_thresholds(probs, targets, t.threshold_per_label)
        model.config.thresholds = thresholds
        metrics = multi_label_metrics(probs, targets, thresholds, self.label_names, loss)
        metrics["macro_f1_at_0.5"] = multi_label_metrics(probs, targets, [0.5] * len(thresholds),
                                                         self.label_names)["macro_f1"]
        return metrics


# ---------------------------------------------------------------------------- data
def aux_lm_config(config: ExperimentConfig) -> RNNConfig:
    """The model section, with the auxiliary LM head that ``train.lm_loss_weight > 0`` needs."""
    return dataclasses.replace(config.model_config(), aux_lm_head=config.train.lm_loss_weight > 0)


def saved_spec(checkpoint: Path, data: DataConfig) -> LabelSpec:
    """The label schema a checkpoint was trained with, read from its config."""
    saved = read_config(checkpoint)
    return LabelSpec(saved.problem_type, list(saved.label_names or []), label_source(data))


def class_weight_tensor(setting: Union[None, str, list], encoded: Dataset, spec: LabelSpec) -> Optional[torch.Tensor]:
    """``train.class_weights`` as a tensor: explicit, or "balanced" from the training labels.

    Balanced single-label weights are ``N / (C * n_c)`` (scikit-learn's); balanced multi-label
    positive weights are ``negatives_c / positives_c`` (each label's positives then weigh as
    much as its negatives).
    """
    if setting is None:
        return None
    count = len(spec.names)
    if isinstance(setting, list):
        if len(setting) != count:
            raise ConfigError(
                f"train.class_weights has {len(setting)} weights but the data has {count} labels "
                f"({', '.join(spec.names)}); give one per label"
            )
        return torch.tensor(setting, dtype=torch.float32)
    labels = label_array(encoded)
    if spec.problem_type == SINGLE:
        counts = np.bincount(labels, minlength=count)
        return torch.tensor(len(labels) / (count * np.maximum(counts, 1)), dtype=torch.float32)
    positives = labels.sum(0)
    return torch.tensor((len(labels) - positives) / np.maximum(positives, 1), dtype=torch.float32)

"""The ``distill:`` section of a classifier config: the teacher, the transfer set and the loss.

::

    distill:
      teacher: runs/distill/sst2_teacher   # a transformers folder or Hub id, or a .jsonl/.parquet of outputs
      loss: mse                            # mse (Tang et al.) | kl (Hinton et al., at temperature)
      augment: 4                           # augmented copies of each training text (textrnn.data.augment)

``textrnn distill --teacher T`` sets ``teacher``; :mod:`textrnn.training.distillation` builds
and labels the transfer set, and the classification task trains on it with
:class:`~textrnn.models.distillation.DistillLoss`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..core.config import ExperimentConfig, build_dataclass
from ..core.errors import require
from ..core.schema import check_choices
from ..data.augment import Augmentation
from ..models.distillation import DistillLoss, DistillLossName


@dataclass
class DistillConfig:
    """The ``distill:`` section."""

    teacher: Optional[str] = None  # a transformers model (folder or Hub id) or a .jsonl/.parquet of its outputs
    # mse: logits regressed (Tang et al. 2019) | kl: softened distributions (Hinton et al. 2015)
    loss: DistillLossName = "mse"
    temperature: float = 2.0  # kl: both distributions softened by this
    alpha: float = 1.0  # the teacher's share of the loss; 1 - alpha goes to the gold labels
    augment: int = 4  # augmented copies tried per training text (0: the training texts only)
    mask_prob: float = 0.1  # augmentation: a word becomes <unk> (the teacher reads its mask token)
    swap_prob: float = 0.1  # augmentation: a word becomes another of its frequency band
    ngram_prob: float = 0.25  # augmentation: the copy is cut to one of its n-grams
    max_ngram: int = 5  # augmentation: the longest such n-gram
    teacher_batch_size: int = 64  # texts per teacher forward when labelling
    teacher_max_length: int = 128  # the teacher's tokens per text (longer texts are cut for the teacher only)
    seed: int = 0  # the augmentation's seed: students of other train.seed values share one labelled transfer set

    def validate(self) -> "DistillConfig":
        """One-line errors for values out of range."""
        check_choices(self, "distill")
        require(self.temperature > 0, f"distill.temperature must be positive, got {self.temperature}")
        require(0.0 <= self.alpha <= 1.0, f"distill.alpha must be in [0, 1], got {self.alpha}")
        require(self.augment >= 0, f"distill.augment must be >= 0 (copies per text), got {self.augment}")
        for name in ("mask_prob", "swap_prob", "ngram_prob"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"distill.{name} must be in [0, 1], got {value}")
        require(self.mask_prob + self.swap_prob <= 1.0, "distill.mask_prob + distill.swap_prob must be at most 1")
        require(self.max_ngram >= 1, f"distill.max_ngram must be positive, got {self.max_ngram}")
        for name in ("teacher_batch_size", "teacher_max_length"):
            require(getattr(self, name) >= 1, f"distill.{name} must be a positive integer, got {getattr(self, name)}")
        return self

    def augmentation(self) -> Augmentation:
        """The augmentation settings (:mod:`textrnn.data.augment`)."""
        return Augmentation(self.augment, self.mask_prob, self.swap_prob, self.ngram_prob, self.max_ngram)

    def loss_rule(self) -> DistillLoss:
        """The loss settings the model's forward takes."""
        return DistillLoss(self.loss, self.temperature, self.alpha)


def distill_config(config: ExperimentConfig) -> Optional[DistillConfig]:
    """The experiment's ``distill`` section, built and checked (None without one)."""
    if config.distill is None:
        return None
    return build_dataclass(DistillConfig, config.distill, "distill").validate()

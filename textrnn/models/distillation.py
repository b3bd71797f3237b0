"""The distillation losses: a student classifier's logits against a teacher's, mixed with the gold labels.

``mse`` (Tang et al. 2019): the mean squared difference of the logits, over rows and labels.
A logit carries what a probability flattens (how sure the teacher is past 0.99), and the
regression has no temperature to tune.

``kl`` (Hinton et al. 2015): the KL divergence from the teacher's to the student's
distribution, both softened by ``temperature`` ``T``, times ``T**2`` (which keeps the gradient's
scale as ``T`` changes). Single-label: softmax over labels, averaged over rows. Multi-label:
one Bernoulli per label (a sigmoid each), averaged over rows and labels.

Either way ``alpha`` weighs the teacher's part and ``1 - alpha`` the usual loss on the gold
labels (:func:`~textrnn.models.classifier.classification_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

DistillLossName = Literal["mse", "kl"]  # distill.loss
DISTILL_LOSSES = get_args(DistillLossName)


@dataclass(frozen=True)
class DistillLoss:
    """Which loss, its temperature (``kl`` only) and the teacher's share ``alpha`` in [0, 1]."""

    loss: DistillLossName = "mse"
    temperature: float = 2.0
    alpha: float = 1.0

    def soft(self, logits: Tensor, teacher: Tensor, multi_label: bool) -> Tensor:
        """The teacher part alone: (B, C) student and teacher logits -> a scalar."""
        logits, teacher = logits.float(), teacher.to(logits.device).float()
        if self.loss == "mse":
            return F.mse_loss(logits, teacher)
        t = self.temperature
        if multi_label:
            return t * t * binary_kl(teacher / t, logits / t).mean()
        log_q = F.log_softmax(logits / t, dim=-1)
        return t * t * F.kl_div(log_q, F.log_softmax(teacher / t, dim=-1), reduction="batchmean", log_target=True)


def binary_kl(teacher_logits: Tensor, student_logits: Tensor) -> Tensor:
    """KL(Bernoulli(sigmoid(t)) || Bernoulli(sigmoid(s))) for each entry, from logits (stable in log space)."""
    p = torch.sigmoid(teacher_logits)
    log_p, log_not_p = F.logsigmoid(teacher_logits), F.logsigmoid(-teacher_logits)
    log_q, log_not_q = F.logsigmoid(student_logits), F.logsigmoid(-student_logits)
    return p * (log_p - log_q) + (1 - p) * (log_not_p - log_not_q)

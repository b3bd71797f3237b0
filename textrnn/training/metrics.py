"""Classification metrics, single- and multi-label, and decision thresholds tuned on validation.

Definitions follow scikit-learn's defaults (``zero_division`` 0): a label that is never true
and never predicted has F1 0, and so does an example with no true and no predicted label in
``samples_f1``. The tests compare every figure with scikit-learn's.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)  # candidates when tuning


def _f1(tp, fp, fn):
    """Precision, recall and F1 from counts (arrays), 0 where undefined."""
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    return precision, recall, f1


def per_label(names: Sequence[str], precision: Any, recall: Any, f1: Any, support: Any) -> dict:
    """Precision, recall, F1 and support by label name."""
    return {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support)}


def single_label_metrics(confusion: torch.Tensor, loss_sum: float, names: Sequence[str]) -> dict:
    """confusion[true, predicted] counts -> accuracy, macro-F1, per-label P/R/F1, loss, confusion matrix."""
    c = confusion.double().numpy()
    total, tp = c.sum(), np.diag(c)
    precision, recall, f1 = _f1(tp, c.sum(0) - tp, c.sum(1) - tp)
    return {"accuracy": float(tp.sum() / max(total, 1.0)), "macro_f1": float(f1.mean()),
            "loss": loss_sum / max(total, 1.0), "examples": int(total),
            "per_label": per_label(names, precision, recall, f1, c.sum(1)),
            "confusion_matrix": confusion.long().tolist()}


def multi_label_metrics(probs: np.ndarray, targets: np.ndarray, thresholds: Sequence[float], names: Sequence[str],
                        loss: Optional[float] = None) -> dict:
    """probs, targets (N, C) -> micro/macro/samples F1, subset accuracy, Hamming loss, per-label figures."""
    predicted = probs >= np.asarray(thresholds)[None, :]  # (N, C)
    truth = targets > 0.5
    tp = (predicted & truth).sum(0)
    fp = (predicted & ~truth).sum(0)
    fn = (~predicted & truth).sum(0)
    precision, recall, f1 = _f1(tp, fp, fn)
    _, _, micro = _f1(tp.sum(), fp.sum(), fn.sum())
    row_tp = (predicted & truth).sum(1)
    _, _, row_f1 = _f1(row_tp, predicted.sum(1) - row_tp, truth.sum(1) - row_tp)
    metrics = {"micro_f1": float(micro), "macro_f1": float(f1.mean()),
               "samples_f1": float(row_f1.mean()) if len(row_f1) else 0.0,
               "subset_accuracy": float((predicted == truth).all(1).mean()) if len(truth) else 0.0,
               "hamming_loss": float((predicted != truth).mean()) if truth.size else 0.0, "examples": int(len(truth)),
                "thresholds": [float(t) for t in thresholds],
               "per_label": per_label(names, precision, recall, f1, truth.sum(0))}
    if loss is not None:
        metrics["loss"] = loss
    return metrics


def tune_thresholds(probs: np.ndarray, targets: np.ndarray, per_label_thresholds: bool = False) -> list[float]:
    """Decision thresholds that maximize macro-F1 on (probs, targets): one for all labels, or one each.

    Candidates are 0.05, 0.06, ..., 0.95; ties go to the candidate nearest 0.5.
    """
    truth = targets > 0.5
    order = np.argsort(np.abs(THRESHOLD_GRID - 0.5), kind="stable")  # nearest 0.5 first wins ties
    scores = []
    for t in THRESHOLD_GRID[order]:
        predicted = probs >= t
        tp = (predicted & truth).sum(0)
        scores.append(_f1(tp, predicted.sum(0) - tp, truth.sum(0) - tp)[2])  # (C,)
    table = np.stack(scores)  # (T, C)
    if per_label_thresholds:
        return [float(THRESHOLD_GRID[order][i]) for i in table.argmax(0)]
    best = float(THRESHOLD_GRID[order][table.mean(1).argmax()])
    return [best] * probs.shape[1]

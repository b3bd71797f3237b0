"""Classification metrics against hand-computed values and scikit-learn; threshold tuning."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

from textrnn.training.metrics import multi_label_metrics, single_label_metrics, tune_thresholds


def test_single_label_metrics_by_hand():
    # true: a a b b c ; predicted: a b b b a
    confusion = torch.tensor([[1, 1, 0], [0, 2, 0], [1, 0, 0]], dtype=torch.float64)
    m = single_label_metrics(confusion, loss_sum=2.5, names=["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(3 / 5) and m["loss"] == pytest.approx(0.5) and m["examples"] == 5
    assert m["per_label"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_label"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_label"]["b"]["recall"] == 1.0
    assert m["per_label"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_single_label_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    truth, predicted = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    predicted[:120] = truth[:120]
    confusion = torch.zeros(4, 4, dtype=torch.float64)
    np.add.at(confusion.numpy(), (truth, predicted), 1)
    m = single_label_metrics(confusion, 0.0, list("wxyz"))
    assert m["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert m["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    p, r, f, s = precision_recall_fscore_support(truth, predicted, labels=range(4), zero_division=0)
    for i, name in enumerate("wxyz"):
        assert m["per_label"][name] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})


def test_multi_label_metrics_by_hand():
    probs = np.array([[0.9, 0.2, 0.6], [0.1, 0.7, 0.4], [0.3, 0.3, 0.3]])
    targets = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=np.float32)
    m = multi_label_metrics(probs, targets, [0.5, 0.5, 0.5], ["x", "y", "z"], loss=0.25)
    # predicted rows: {x, z}, {y}, {}: tp 2, fp 1, fn 1
    assert m["micro_f1"] == pytest.approx(4 / 6)
    assert m["per_label"]["x"]["f1"] == 1.0 and m["per_label"]["y"]["f1"] == 1.0 and m["per_label"]["z"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx(2 / 3)
    # an empty/empty row scores 0, as in scikit-learn
    assert m["samples_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0.0) / 3)
    assert m["subset_accuracy"] == pytest.approx(1 / 3)
    assert m["hamming_loss"] == pytest.approx(2 / 9)
    assert m["per_label"]["z"]["support"] == 1 and m["loss"] == 0.25


def test_multi_label_metrics_match_scikit_learn():
    rng = np.random.default_rng(1)
    targets = (rng.random((400, 6)) < 0.2).astype(np.float32)
    probs = np.clip(targets * 0.5 + rng.random((400, 6)) * 0.6, 0, 1)
    thresholds = [0.3, 0.4, 0.5, 0.6, 0.5, 0.45]
    m = multi_label_metrics(probs, targets, thresholds, list("abcdef"))
    predicted = (probs >= np.array(thresholds)).astype(int)
    truth = targets.astype(int)
    assert m["micro_f1"] == pytest.approx(f1_score(truth, predicted, average="micro"))
    assert m["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0))
    assert m["samples_f1"] == pytest.approx(f1_score(truth, predicted, average="samples", zero_division=0))
    assert m["subset_accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert m["hamming_loss"] == pytest.approx(hamming_loss(truth, predicted))
    p, r, f, s = precision_recall_fscore_support(truth, predicted, zero_division=0)
    assert [m["per_label"][c]["f1"] for c in "abcdef"] == pytest.approx(list(f))
    assert [m["per_label"][c]["support"] for c in "abcdef"] == list(s)


def test_tuned_threshold_beats_one_half_on_a_planted_case():
    # A model whose probabilities are all too low: positives sit near 0.3, negatives near 0.1.
    rng = np.random.default_rng(2)
    targets = (rng.random((500, 4)) < 0.3).astype(np.float32)
    probs = np.where(targets > 0, 0.3, 0.1) + rng.normal(0, 0.03, targets.shape)
    at_half = multi_label_metrics(probs, targets, [0.5] * 4, list("abcd"))["macro_f1"]
    tuned = tune_thresholds(probs, targets)
    assert len(set(tuned)) == 1 and 0.15 <= tuned[0] <= 0.25
    assert multi_label_metrics(probs, targets, tuned, list("abcd"))["macro_f1"] > 0.95 > at_half
    # per label: label 3's positives sit higher, and its own threshold follows them
    probs[:, 3] += 0.4
    per_label = tune_thresholds(probs, targets, per_label_thresholds=True)
    assert 0.55 <= per_label[3] <= 0.65 and all(0.15 <= t <= 0.25 for t in per_label[:3])

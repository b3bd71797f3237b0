"""Classification as real datasets bring it: multi-label lists and 0/1 columns, several text
fields, string labels, missing labels, class weights. Each schema goes through train, evaluate
and predict on the command line."""


import json
import random
from pathlib import Path

import pytest
import torch

from textrnn import ConfigError, DataError, load_config, load_model
from textrnn.core.distributed import Dist
from textrnn.data.labels import MULTI, LabelEncoder, detect_labels
from textrnn.training.classification_task import ClassificationTask, class_weight_tensor

from ..conftest import cli

EMOTIONS = {"joy": ["great", "happy", "lovely"], "anger": ["awful", "furious", "hate"],
            "fear": ["scary", "afraid", "dark"]}


FAST = ["tokenizer.kind=word", "tokenizer.lowercase=true", "model.embedding_dim=16", "model.hidden_size=16",
        "model.bidirectional=true", "data.batch_size=16", "train.lr=0.02", "train.warmup_steps=2", "train.max_epochs=6",
        "train.eval_every=0", "train.progress=false"]


def emotion_rows(n: int, seed: int) -> list[dict]:
    rng, rows = random.Random(seed), []
    for _ in range(n):
        labels = sorted(rng.sample(sorted(EMOTIONS), rng.choice([0, 1, 1, 2])))
        words = [rng.choice(EMOTIONS[label]) for label in labels] + rng.sample(["the", "a", "day", "was", "it"], 3)
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "labels": labels})
    return rows


def write_list_labels(folder: Path, names=tuple(sorted(EMOTIONS))) -> Path:
    """parquet with labels = Sequence(ClassLabel), the Hub's go_emotions schema."""
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "labels": datasets.Sequence(datasets.ClassLabel(names=list(names)))})
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", 240, 0), ("validation", 60, 1)):
        rows = emotion_rows(n, seed)
        data = {"text": [r["text"] for r in rows], "labels": [[names.index(x) for x in r["labels"]] for r in rows]}
        datasets.Dataset.from_dict(data, features=features).to_parquet(str(folder / f"{split}.parquet"))
    return folder


def write_binary_columns(folder: Path) -> Path:
    """csv with one 0/1 column per label, as toxic-comment sets come."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", 240, 0), ("validation", 60, 1)):
        lines = ["comment,anger,fear,joy"] + [
            f"{r['text']},{int('anger' in r['labels'])},{int('fear' in r['labels'])},{int('joy' in r['labels'])}"
            for r in emotion_rows(n, seed)
        ]
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return folder


def write_title_body(folder: Path, test_labels: int = 1) -> Path:
    """jsonl with title, body and a string topic; the test split's labels are -1-like (missing)."""
    topics = {"sport": ["goal", "match", "team"], "money": ["bank", "market", "stock"],
              "science": ["atom", "lab", "cell"]}
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for split, n in (("train", 240), ("validation", 60), ("test", 20)):
        with open(folder / f"{split}.jsonl", "w") as handle:
            for _ in range(n):
                topic = rng.choice(sorted(topics))
                row = {"title": rng.choice(topics[topic]), "body": "news of the day " + rng.choice(["today", "again"]),
                       "topic": topic if split != "test" or not test_labels else None}
                handle.write(json.dumps(row) + "\n")
    return folder


def train_cli(tmp_path: Path, data: Path, *extra: str) -> Path:
    out = tmp_path / "run"
    proc = cli("train-classifier", "--config", str(tmp_path / "task.yaml"), f"data.dataset={data}",
                   f"train.output_dir={out}", *FAST, *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(autouse=True)
def task_yaml(tmp_path):
    (tmp_path / "task.yaml").write_text("task: classification\n")


def test_list_labels_train_a_multi_label_model_end_to_end(tmp_path):
    data = write_list_labels(tmp_path / "emotions")
    out = train_cli(tmp_path, data, "data.label_column=labels")
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["problem_type"] == "multi_label" and config["label_names"] == ["anger", "fear", "joy"]
    assert len(config["thresholds"]) == 3 and all(0 < t < 1 for t in config["thresholds"])
    proc = cli("evaluate", "--checkpoint", str(out), "--dataset", str(data))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss", "per_label", "loss"):
        assert key in metrics
    assert metrics["macro_f1"] > 0.8 and set(metrics["per_label"]["joy"]) == {"precision", "recall", "f1", "support"}
    proc = cli("predict", "--checkpoint", str(out), "a happy lovely day", "furious and afraid", "the day")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows[0]["labels"] == ["joy"] and set(rows[1]["labels"]) == {"anger", "fear"}
    assert all(set(r["probabilities"]) == {"anger", "fear", "joy"} for r in rows)


def test_binary_label_columns_train_a_multi_label_model(tmp_path):
    data = write_binary_columns(tmp_path / "toxic")
    out = train_cli(tmp_path, data, "data.text_column=comment", "data.label_columns=[anger,fear,joy]",
                    "train.class_weights=balanced", "train.threshold_per_label=true")
    model = load_model(out)
    assert model.config.problem_type == "multi_label" and model.label_names == ["anger", "fear", "joy"]
    proc = cli("evaluate", "--checkpoint", str(out), "--dataset", str(data))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["macro_f1"] > 0.8


def test_title_and_body_are_joined_and_missing_test_labels_are_said(tmp_path):
    data = write_title_body(tmp_path / "news")
    out = train_cli(tmp_path, data, "data.text_column=[title,body]", "data.label_column=topic")
    model = load_model(out)
    assert model.config.text_fields == ["title", "body"] and model.config.problem_type == "single_label"
    proc = cli("evaluate", "--checkpoint", str(out), "--dataset", str(data))
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert metrics["accuracy"] > 0.9 and set(metrics["per_label"]) == {"money", "science", "sport"}
    proc = cli("evaluate", "--checkpoint", str(out), "--dataset", str(data), "--split", "test")
    assert (
        proc.returncode == 2
        and "split 'test' has no labels" in proc.stderr
        and len(proc.stderr.strip().splitlines()) == 1
    )
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps({"title": "goal",
                                  "body": "news of the day"}) + "\n" + json.dumps({"text": "bank | news"}) + "\n")
    proc = cli("predict", "--checkpoint", str(out), "--input", str(inputs))
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["label"] for line in proc.stdout.splitlines()] == ["sport", "money"]
    assert model.predict(["goal | news of the day"])[0]["label"] == "sport"  # the documented join


@pytest.mark.parametrize(
    "extra,match",
    [
        (["train.threshold=1.5"], r"train.threshold must be in \(0, 1\)"),
        (["train.class_weights=[1.0,2.0]"], "train.class_weights has 2 weights but the data has 3 labels"),
        (["train.class_weights=heavy"], "train.class_weights must be 'balanced' or a list"),
    ],
)
def test_bad_multi_label_settings_are_one_line_errors(tmp_path, extra, match):
    data = write_list_labels(tmp_path / "emotions")
    proc = cli("train-classifier", "--config", str(tmp_path / "task.yaml"), f"data.dataset={data}",
                   "data.label_column=labels", f"train.output_dir={tmp_path / 'run'}", *FAST, *extra)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert __import__("re").search(match, proc.stderr), proc.stderr


def test_unknown_labels_and_non_binary_columns_are_one_line_errors(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["a", "b"], "labels": [["joy"], ["joy", "awe"]]})
    encoder = LabelEncoder(ds, ["labels"], ["anger", "joy"], MULTI)
    with pytest.raises(DataError, match="label 'awe' in column 'labels' is not one of the model's labels"):
        encoder.encode({"labels": ds["labels"][:]})
    bad = datasets.Dataset.from_dict({"text": ["a"], "toxic": [2], "insult": [0]})
    spec = detect_labels(bad, None, ["toxic", "insult"])
    with pytest.raises(DataError, match="label column 'toxic' holds 2; each of data.label_columns must hold 0 or 1"):
        LabelEncoder(bad, spec.columns, spec.names, MULTI).encode({"toxic": [2], "insult": [0]})


def test_missing_training_labels_are_dropped_and_balanced_weights_follow_the_counts(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    rows = (
        ["text,label"]
        + [f"good film {i},1" for i in range(30)]
        + [f"bad film {i},0" for i in range(10)]
        + [f"unknown {i},-1" for i in range(5)]
    )
    (data / "train.csv").write_text("\n".join(rows) + "\n")
    (data / "validation.csv").write_text("text,label\ngood film,1\nbad film,0\n")
    config = load_config(None, [f"data.dataset={data}", f"train.output_dir={tmp_path / 'run'}",
                                "train.class_weights=balanced"])
    task = ClassificationTask(config, Dist(), torch.device("cpu"), tmp_path / "run")
    assert len(task.train_set) == 40 and task.label_names == ["0", "1"]
    torch.testing.assert_close(task.class_weights, torch.tensor([40 / (2 * 10), 40 / (2 * 30)]))
    import datasets

    from textrnn.data.labels import LabelSpec

    rows = datasets.Dataset.from_dict({"labels": [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]})
    multi = class_weight_tensor("balanced", rows, LabelSpec(MULTI, ["a", "b"], ["labels"]))
    torch.testing.assert_close(multi, torch.tensor([(4 - 3) / 3, (4 - 1) / 1]))  # negatives / positives per label
    with pytest.raises(ConfigError, match="has 3 weights but the data has 2 labels"):
        class_weight_tensor([1.0, 2.0, 3.0], task.train_set, task.spec)


def test_multi_label_loss_and_ensemble_probabilities():
    from textrnn import ClassifierEnsemble, RNNConfig

    config = RNNConfig(vocab_size=20, embedding_dim=8, hidden_size=8, num_labels=3, problem_type="multi_label",
                       ensemble_size=2)
    torch.manual_seed(0)
    model = ClassifierEnsemble(config).eval()
    ids, lengths = torch.randint(4, 20, (4, 5)), torch.tensor([5, 3, 1, 0])
    targets = torch.tensor([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.float32)
    logits, loss = model(ids, lengths, targets)
    mean_prob = torch.stack([torch.sigmoid(m(ids, lengths)[0]) for m in model.members]).mean(0)
    torch.testing.assert_close(torch.sigmoid(logits), mean_prob)
    torch.testing.assert_close(loss, torch.nn.functional.binary_cross_entropy(mean_prob, targets))
    weights = torch.tensor([1.0, 3.0, 0.5])
    member = model.members[0]
    _, weighted = member(ids, lengths, targets, class_weights=weights)
    torch.testing.assert_close(weighted,
                               torch.nn.functional.binary_cross_entropy_with_logits(member(ids, lengths)[0], targets,
                                                                                     pos_weight=weights))

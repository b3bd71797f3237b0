"""``textrnn distill`` end to end: a tiny random transformers BERT (built here) or a file of outputs as the teacher."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
import yaml

from tests.conftest import cli
from tests.helpers import classifier_config, tiny_bert_teacher
from textrnn import TextTokenizer, distill, load_model
from textrnn.cli import main
from textrnn.core.errors import ConfigError, DataError
from textrnn.data.loading import NEGATIVE, POSITIVE, write_tiny_sentiment
from textrnn.training import teachers
from textrnn.training.distill_config import DistillConfig
from textrnn.training.distillation import TRANSFER_TOKENIZER, transfer_set
from textrnn.training.teachers import open_teacher

STEPS = "train.max_steps=12"


@pytest.fixture(scope="module")
def teacher_and_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    data = write_tiny_sentiment(root / "data", train=60, validation=20)
    return tiny_bert_teacher(root / "teacher", POSITIVE + NEGATIVE, ["neg", "pos"]), data


def count_teacher_calls(monkeypatch) -> list:
    """Count the BERT forwards (the library's class, wrapped to count: it still runs)."""
    from transformers import BertForSequenceClassification

    calls, forward = [], BertForSequenceClassification.forward
    monkeypatch.setattr(BertForSequenceClassification, "forward",
                        lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    return calls


def test_a_transformers_teacher_end_to_end_from_python(teacher_and_data, tmp_path, monkeypatch, capsys):
    teacher, data = teacher_and_data
    calls = count_teacher_calls(monkeypatch)
    result = distill(str(teacher), classifier_config(data, tmp_path / "run", STEPS, "distill.augment=3"))
    assert calls, "the teacher labelled the transfer set"
    assert "accuracy" in result.metrics and result.step == 12
    student = load_model(result.output_dir / "best")
    assert set(student.predict("loved it")["probabilities"]) == {"neg", "pos"}
    card = (result.output_dir / "best" / "README.md").read_text()
    assert "Distilled from the teacher `teacher`" in card and "distill --teacher teacher" in card
    saved = yaml.safe_load((result.output_dir / "config.yaml").read_text())
    assert saved["distill"]["teacher"] == str(teacher) and saved["distill"]["augment"] == 3
    assert "augmented" in capsys.readouterr().err
    exported = cli("export", "--checkpoint", str(result.output_dir / "best"), "--output", str(tmp_path / "s.onnx"))
    assert exported.returncode == 0, exported.stderr  # the student exports as any classifier (checked at export)


def test_the_transfer_set_holds_the_teachers_logits_and_a_second_run_labels_nothing(teacher_and_data, tmp_path,
                                                                                   monkeypatch):
    teacher, data = teacher_and_data
    config = classifier_config(data, tmp_path / "run", STEPS, "distill.augment=2")
    settings = DistillConfig(augment=2)
    folder = transfer_set(config, settings, str(teacher), None)
    train = datasets.load_from_disk(str(folder / "train"))
    texts, logits = train["sentence"], np.array(train["teacher_logits"])
    assert len(texts) > 60 and logits.shape == (len(texts), 2)
    direct = open_teacher(str(teacher)).logits(texts[:5] + texts[-5:], progress=False)
    np.testing.assert_allclose(logits[list(range(5)) + list(range(-5, 0))], direct, atol=1e-5)
    calls = count_teacher_calls(monkeypatch)
    assert transfer_set(config, settings, str(teacher), None) == folder
    distill(str(teacher), config)
    assert calls == [], "cached teacher outputs: no teacher forward the second time"
    other_student = classifier_config(data, tmp_path / "run2", STEPS, "distill.augment=2", "train.seed=7")
    assert transfer_set(other_student, settings, str(teacher), None) == folder
    assert calls == [], "a student of another train.seed shares the labelled transfer set"
    changed = transfer_set(config, DistillConfig(augment=2, mask_prob=0.3), str(teacher), None)
    assert changed != folder and calls, "other augmentation settings label anew"
    assert transfer_set(config, DistillConfig(augment=2, seed=1), str(teacher), None) != folder


def test_the_student_speaks_its_own_vocabulary(teacher_and_data, tmp_path):
    teacher, data = teacher_and_data
    config = classifier_config(data, tmp_path / "run", STEPS)
    folder = transfer_set(config, DistillConfig(augment=3), str(teacher), None)
    student = TextTokenizer.from_file(folder / TRANSFER_TOKENIZER)
    alone = TextTokenizer.train(POSITIVE + NEGATIVE, "word")
    assert "[CLS]" not in student.tokenizer.get_vocab() and "[MASK]" not in student.tokenizer.get_vocab()
    words = {w for w in student.tokenizer.get_vocab() if not w.startswith("<")}
    assert words <= {w for w in alone.tokenizer.get_vocab()}  # the training texts' words, none of the teacher's
    assert student.encode("<unk> film")[0] == student.encode("zzz film")[0]  # a masked word is the student's <unk>


def test_the_cli_distills_and_names_a_label_mismatch(teacher_and_data, tmp_path, capsys):
    teacher, data = teacher_and_data
    path = tmp_path / "c.yaml"
    path.write_text("task: classification\ndata:\n  text_column: sentence\n  batch_size: 16\nmodel:\n"
                    "  embedding_dim: 16\n  hidden_size: 16\ntrain:\n  progress: false\n")
    code = main(["distill", "--teacher", str(teacher), "--config", str(path), f"data.dataset={data}",
                 f"train.output_dir={tmp_path / 'run'}", STEPS, "distill.augment=1"])
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 12
    other = tiny_bert_teacher(tmp_path / "other", POSITIVE, ["negative", "positive"])
    code = main(["distill", "--teacher", str(other), "--config", str(path), f"data.dataset={data}",
                 f"train.output_dir={tmp_path / 'run2'}", STEPS])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: the teacher's labels (negative, positive) are not the data's")
    assert not (tmp_path / "run2").exists()


def test_a_file_of_outputs_is_a_teacher(teacher_and_data, tmp_path, monkeypatch):
    _, data = teacher_and_data
    rows = [{"text": t, "probabilities": {"pos": 0.9, "neg": 0.1}} for t in POSITIVE] + \
           [{"text": t, "probabilities": {"pos": 0.2, "neg": 0.8}} for t in NEGATIVE] + \
           [{"text": "a film nobody labelled", "probabilities": {"pos": 0.7, "neg": 0.3}}]
    path = tmp_path / "outputs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = classifier_config(data, tmp_path / "run", STEPS)
    folder = transfer_set(config, DistillConfig(), str(path), None)
    train = datasets.load_from_disk(str(folder / "train"))
    assert train["sentence"] == [r["text"] for r in rows]
    names = train.features["label"]
    labels = [names.int2str(x) if hasattr(names, "int2str") else x for x in train["label"]]
    assert labels == ["pos"] * 5 + ["neg"] * 5 + ["pos"]  # gold where the data labels the text, else the teacher's
    np.testing.assert_allclose(np.array(train["teacher_logits"])[0], np.log([0.1, 0.9]), rtol=1e-5)
    reads = []
    monkeypatch.setattr(teachers, "read_rows", lambda path: reads.append(path))
    result = distill(str(path), config)
    assert result.step == 10 and (result.output_dir / "best").exists()  # 11 rows: 1 batch an epoch, 10 epochs
    assert reads == [], "a cached transfer set reads neither the outputs file nor the data to label it"


def test_unlabeled_text_joins_the_transfer_set(teacher_and_data, tmp_path):
    teacher, data = teacher_and_data
    more = tmp_path / "more.csv"
    more.write_text("sentence\n" + "\n".join(f"{w} film and {v}" for w in ("odd", "fine") for v in ("plot", "cast")))
    config = classifier_config(data, tmp_path / "run", STEPS, "distill.augment=0", f"data.unlabeled=[{more}]")
    folder = transfer_set(config, DistillConfig(augment=0), str(teacher), None)
    train = datasets.load_from_disk(str(folder / "train"))
    assert len(train) == 64 and train["sentence"][-1] == "fine film and cast"
    logits = np.array(train["teacher_logits"])[-4:]
    assert train["label"][-4:] == [("neg", "pos")[i] for i in logits.argmax(1)]


def test_a_multi_label_teacher(tmp_path):
    rng = np.random.default_rng(0)
    words = ["joy", "anger", "fear"]
    rows = []
    for _ in range(60):
        active = [w for w in words if rng.random() < 0.4]
        rows.append({"text": " ".join(active + ["and", "so", "on"]), "labels": active})
    for split, part in (("train", rows[:45]), ("validation", rows[45:])):
        datasets.Dataset.from_list(part).to_parquet(str(tmp_path / f"{split}.parquet"))
    teacher = tiny_bert_teacher(tmp_path / "t", [r["text"] for r in rows], sorted(words), multi_label=True)
    config = classifier_config(tmp_path, tmp_path / "run", STEPS, "data.text_column=text",
                               "data.label_column=labels", "distill.loss=kl")
    result = distill(str(teacher), config)
    assert "macro_f1" in result.metrics
    single = tiny_bert_teacher(tmp_path / "single", [r["text"] for r in rows], sorted(words))
    with pytest.raises(DataError, match="the teacher is single-label"):
        distill(str(single), classifier_config(tmp_path, tmp_path / "run2", STEPS, "data.text_column=text",
                                               "data.label_column=labels"))


def test_a_distill_section_needs_the_distill_command(teacher_and_data, tmp_path):
    _, data = teacher_and_data
    from textrnn import train

    with pytest.raises(ConfigError, match="run it with textrnn distill"):
        train(classifier_config(data, tmp_path / "run", STEPS, "distill.loss=kl"))
    with pytest.raises(ConfigError, match="distill needs a teacher"):
        distill(None, classifier_config(data, tmp_path / "run", STEPS))


def test_a_resumed_student_finds_its_transfer_set(teacher_and_data, tmp_path, monkeypatch, capsys):
    """The run folder's config.yaml is the user's config: resuming keys the same transfer set (it relabelled once)."""
    teacher, data = teacher_and_data
    config = classifier_config(data, tmp_path / "run", "train.max_steps=6", "distill.augment=1")
    distill(str(teacher), config)
    calls = count_teacher_calls(monkeypatch)
    code = main(["distill", "--teacher", str(teacher), "--resume", str(tmp_path / "run"), STEPS])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 12
    assert calls == [], "resuming labels nothing"
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["validation_split"] is None  # the user's data settings, not the transfer folder's

"""Teachers: transformers folders (and Hub ids, the Hub mocked), files of outputs, labels matched by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import tiny_bert_teacher
from textrnn.core.errors import ConfigError, DataError
from textrnn.data.augment import MASK
from textrnn.training import teachers
from textrnn.training.teachers import OutputsTeacher, matched, open_teacher, probability_logits

TEXTS = ["a great film", "a dull film", "loved it", "hated it"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_labels_match_by_name_not_position():
    assert matched(["pos", "neg"], ["neg", "pos"], "t") == [1, 0]
    with pytest.raises(DataError, match="labels match by name") as caught:
        matched(["negative", "positive"], ["neg", "pos"], "the teacher")
    assert "negative, positive" in str(caught.value) and "neg, pos" in str(caught.value)


def test_a_transformers_folder_labels_texts_in_its_label_order(tmp_path):
    folder = tiny_bert_teacher(tmp_path / "t", TEXTS, ["neg", "pos"])
    teacher = open_teacher(str(folder), batch_size=3)
    assert teacher.label_names == ["neg", "pos"] and not teacher.multi_label
    logits = teacher.logits(TEXTS + [f"a {MASK} film"], progress=False)
    assert logits.shape == (5, 2) and logits.dtype == np.float32
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        alone = model(**tokenizer(["a [MASK] film"], return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(logits[4], alone[0], atol=1e-5)  # the student's <unk> is the teacher's [MASK]


def test_a_hub_id_goes_through_the_hub_download(tmp_path, monkeypatch):
    folder = tiny_bert_teacher(tmp_path / "t", TEXTS, ["neg", "pos"])
    import huggingface_hub

    asked = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id: asked.append(repo_id) or str(folder))
    teacher = open_teacher("someone/sst2-teacher")
    assert asked == ["someone/sst2-teacher"] and teacher.label_names == ["neg", "pos"]


def test_an_unreachable_hub_id_is_one_line(monkeypatch):
    with pytest.raises(ConfigError, match="not a local folder and the Hub did not give it"):
        open_teacher("nobody/no-such-teacher-here")
    with pytest.raises(ConfigError, match="is not a folder"):
        open_teacher("./missing-folder")


def test_a_folder_without_a_model_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has no transformers config"):
        open_teacher(str(tmp_path / "empty"))


def test_a_jsonl_of_logits_is_a_teacher(tmp_path):
    path = write_jsonl(tmp_path / "out.jsonl", [{"text": t, "logits": {"pos": i, "neg": -i}} for i, t in
                                                enumerate(TEXTS)])
    teacher = open_teacher(str(path))
    assert teacher.label_names == ["pos", "neg"] and teacher.texts == TEXTS
    np.testing.assert_allclose(teacher.logits(["loved it", "a great film"]), [[2, -2], [0, 0]])
    with pytest.raises(DataError, match="no output for 1 text"):
        teacher.logits(["never labelled"])


def test_probabilities_become_logits(tmp_path):
    np.testing.assert_allclose(probability_logits(np.array([[0.25, 0.75]]), False), np.log([[0.25, 0.75]]), rtol=1e-6)
    np.testing.assert_allclose(probability_logits(np.array([[0.5, 0.8]]), True), [[0.0, np.log(4)]], rtol=1e-6,
                               atol=1e-7)
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "out.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": "x", "probabilities": {"a": 0.9, "b": 0.1}}]), path)
    teacher = OutputsTeacher(path, multi_label=False)
    np.testing.assert_allclose(teacher.logits(["x"]), np.log([[0.9, 0.1]]), rtol=1e-6)


@pytest.mark.parametrize("rows, words", [
    ([{"text": "a", "scores": {"x": 1}}], "one of 'logits' or 'probabilities'"),
    ([{"text": "a", "logits": {"x": 1, "y": 2}}, {"text": "b", "logits": {"x": 1}}], "row 2: 'logits' must map"),
    ([{"text": 3, "logits": {"x": 1}}], "'text' must be a string"),
    ([{"text": "a", "logits": {"x": float("nan")}}], "finite numbers"),
])
def test_a_bad_outputs_file_is_one_line(tmp_path, rows, words):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows).replace("NaN", "NaN"), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        OutputsTeacher(path).label_names  # the file is read when first needed
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_line_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "logits": {"x": 1}}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2 is not JSON"):
        OutputsTeacher(path).label_names


def test_a_missing_extra_is_named(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_transformers(name, *args, **kwargs):
        if name == "transformers":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_transformers)
    with pytest.raises(ConfigError, match=r"pip install 'textrnn\[distill\]'"):
        teachers.TransformersTeacher("anything")

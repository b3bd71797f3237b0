"""Loading data: local folders, files and formats, missing paths, an unreachable Hub name, the cut validation split."""

import pytest

from textrnn import DataError, load_raw
from textrnn.data.labels import label_names_of
from textrnn.data.loading import require_column, split_dataset

from ..conftest import needs_shared


# ---------------------------------------------------------------- loading
def test_local_csv_folder_and_columns(sentiment_dir):
    raw = load_raw(str(sentiment_dir))
    assert set(raw) == {"train", "validation"}
    with pytest.raises(DataError, match=r"column 'text' not found \(available: sentence, label\)"):
        require_column(raw["train"], "text", "text_column")


@pytest.mark.parametrize("suffix,content", [
    (".tsv", "text\tlabel\nhello\tpos\nbye\tneg\n"),
    (".jsonl", '{"text": "hello", "label": "pos"}\n{"text": "bye", "label": "neg"}\n'),
    (".json", '[{"text": "hello", "label": "pos"}, {"text": "bye", "label": "neg"}]'),
])
def test_local_file_formats(tmp_path, suffix, content):
    path = tmp_path / f"data{suffix}"
    path.write_text(content)
    train = load_raw(str(path))["train"]
    assert train["text"] == ["hello", "bye"] and train["label"] == ["pos", "neg"]


def test_text_file_rows_concatenate_back_to_the_file(corpus_file):
    train = load_raw(str(corpus_file))["train"]
    assert "".join(train["text"]) == corpus_file.read_text()


def test_missing_path_empty_file_and_unknown_type(tmp_path):
    with pytest.raises(DataError, match="path not found"):
        load_raw(str(tmp_path / "nope.csv"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_raw(str(empty))
    odd = tmp_path / "data.xyz"
    odd.write_text("x")
    with pytest.raises(DataError, match="unknown file type"):
        load_raw(str(odd))


def test_unreachable_hub_name_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="could not load dataset 'no-such-user/no-such-data'"):
        load_raw("no-such-user/no-such-data")


def test_shared_sst2_loads_with_hub_schema():
    path = needs_shared("sst2")
    raw = load_raw(str(path))
    assert raw["train"].features["label"].names == ["negative", "positive"]
    assert label_names_of(raw["train"], "label") == ["negative", "positive"]


# ---------------------------------------------------------------- splits and labels
def test_validation_is_cut_from_train_with_a_seed(tmp_path):
    import datasets

    ds = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": [str(i) for i in range(100)],
                                                                    "label": [0, 1] * 50})})
    a = split_dataset(ds, "train", None, 0.1, seed=3)
    b = split_dataset(ds, "train", None, 0.1, seed=3)
    assert len(a[1]) == 10 and a[1]["text"] == b[1]["text"]
    assert not set(a[0]["text"]) & set(a[1]["text"])


@pytest.mark.parametrize("text", ["\ufeffa line\r\nnext\rthird\u2028still third\x0cform\n\nlast without end",
                                  "one line", "x\n" * 50_000 + "tail"])
def test_a_text_file_read_straight_has_the_rows_the_text_builder_gives(tmp_path, text):
    from textrnn.data.loading import TextFile, load_raw

    path = tmp_path / "corpus.txt"
    path.write_bytes(text.encode("utf-8"))
    expected = load_raw(str(path), str(tmp_path / "run"))["train"]["text"]
    rows = [row for batch in TextFile(path).iter() for row in batch["text"]]
    assert rows == list(expected)

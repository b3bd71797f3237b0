
import numpy as np
import pytest

from textrnn import DataError, TextTokenizer, load_raw
from textrnn import data as D
from textrnn.labels import LabelEncoder, label_names_of

from .conftest import needs_shared


# ---------------------------------------------------------------- loading
def test_local_csv_folder_and_columns(sentiment_dir):
    raw = load_raw(str(sentiment_dir))
    assert set(raw) == {"train", "validation"}
    with pytest.raises(DataError, match=r"column 'text' not found \(available: sentence, label\)"):
        D.require_column(raw["train"], "text", "text_column")


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

    ds = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": [str(i) for i in range(100)], "label": [0, 1] * 50})})
    a = D.split_dataset(ds, "train", None, 0.1, seed=3)
    b = D.split_dataset(ds, "train", None, 0.1, seed=3)
    assert len(a[1]) == 10 and a[1]["text"] == b[1]["text"]
    assert not set(a[0]["text"]) & set(a[1]["text"])


def test_labels_from_strings_ints_and_bad_types():
    import datasets

    strings = datasets.Dataset.from_dict({"label": ["pos", "neg", "pos"]})
    assert label_names_of(strings, "label") == ["neg", "pos"]
    assert LabelEncoder(strings, ["label"], ["neg", "pos"], "single_label").encode({"label": ["pos"]}) == [1]
    ints = datasets.Dataset.from_dict({"label": [3, 7, 3]})
    assert label_names_of(ints, "label") == ["3", "7"]
    assert LabelEncoder(ints, ["label"], ["3", "7"], "single_label").encode({"label": [7]}) == [1]
    floats = datasets.Dataset.from_dict({"label": [0.5, 1.5]})
    with pytest.raises(DataError, match="labels must be integers, strings, bools, or lists of them"):
        label_names_of(floats, "label")
    with pytest.raises(DataError, match="not one of the model's labels"):
        LabelEncoder(strings, ["label"], ["neg", "pos"], "single_label").encode({"label": ["maybe"]})


# ---------------------------------------------------------------- encoding and batches
def test_encode_classification_via_map_with_truncation_and_empty_text():
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["a b c d e", "", "   ", None], "label": ["x", "y", "x", "y"]})
    tok = TextTokenizer.train(["a b c d e"], "word")
    labels = LabelEncoder(ds, ["label"], ["x", "y"], "single_label")
    enc = D.encode_classification(ds, tok, ["text"], labels, max_length=3)
    assert enc["length"] == [3, 0, 0, 0]
    assert enc["labels"] == [0, 1, 0, 1]
    assert enc.cache_files == []  # an in-memory dataset encodes in memory


def test_encoding_a_local_file_is_cached_in_the_run_folder_and_reused(tmp_path, sentiment_dir):
    raw = load_raw(str(sentiment_dir / "train.csv"), str(tmp_path / "run"))
    tok = TextTokenizer.train(raw["train"]["sentence"], "word")
    labels = LabelEncoder(raw["train"], ["label"], ["neg", "pos"], "single_label")
    first = D.encode_classification(raw["train"], tok, ["sentence"], labels)
    files = [f["filename"] for f in first.cache_files]
    assert files and all(f.startswith(str(tmp_path / "run" / "data" / "hf_cache")) for f in files)
    again = D.encode_classification(raw["train"], tok, ["sentence"], labels)
    assert [f["filename"] for f in again.cache_files] == files  # same inputs: the cached encoding is reused
    other = D.encode_classification(raw["train"], tok, ["sentence"], labels, max_length=2)
    assert [f["filename"] for f in other.cache_files] != files


def test_encode_stream_is_compact_and_matches_tokenizer(tmp_path, corpus_file):
    text = corpus_file.read_text()
    tok = TextTokenizer.train([text], "char")
    tokens = D.encode_stream([text[:1000], text[1000:]], tok, tmp_path / "s.bin", chunk_chars=300)
    assert tokens.dtype == np.uint8 and isinstance(tokens, np.memmap)
    assert tokens.tolist() == tok.encode(text)
    word = TextTokenizer.train([text], "word")
    wtokens = D.encode_stream(["a b", "c"], word, tmp_path / "w.bin")
    assert wtokens[2] == 3 and wtokens[-1] == 3  # <eos> after every row


def test_a_reversed_stream_is_the_stream_last_token_first_whatever_the_chunk(tmp_path, corpus_file):
    text = corpus_file.read_text()
    tok = TextTokenizer.train([text], "char")
    forward = D.encode_stream([text[:1000], text[1000:]], tok, tmp_path / "f.bin")
    for chunk in (7, 300, 1 << 22):  # 7 and 300 do not divide the length: the first chunk is a short one
        backward = D.encode_stream([text[:1000], text[1000:]], tok, tmp_path / f"b{chunk}.bin", reverse=True,
                                   chunk_chars=chunk)
        assert isinstance(backward, np.memmap) and backward.tolist() == forward.tolist()[::-1]
    word = TextTokenizer.train([text], "word")
    a, b, c = (word.encode(w)[0] for w in "abc")
    assert D.encode_stream(["a b", "c"], word, tmp_path / "w.bin", reverse=True).tolist() == [3, c, 3, b, a]


def test_iter_text_cuts_by_character_position():
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["abc\n", "defg\n", "h\n"]})
    whole = "".join(D.iter_text(ds, "text", ""))
    assert whole == "abc\ndefg\nh\n"
    cut = int(len(whole) * 0.9)
    assert "".join(D.iter_text(ds, "text", "", 0, cut)) + "".join(D.iter_text(ds, "text", "", cut)) == whole
    assert "".join(D.iter_text(ds, "text", "", 2, 6)) == whole[2:6]

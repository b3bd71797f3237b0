
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from textrnn import BucketBatchSampler, DataError, LMStreamLoader, TextTokenizer, load_raw, pad_batch
from textrnn import data as D

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
    assert D.label_names_of(raw["train"], "label") == ["negative", "positive"]


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
    assert D.label_names_of(strings, "label") == ["neg", "pos"]
    assert D.label_mapping(strings, "label", ["neg", "pos"])("pos") == 1
    ints = datasets.Dataset.from_dict({"label": [3, 7, 3]})
    assert D.label_names_of(ints, "label") == ["3", "7"]
    assert D.label_mapping(ints, "label", ["3", "7"])(7) == 1
    floats = datasets.Dataset.from_dict({"label": [0.5, 1.5]})
    with pytest.raises(DataError, match="labels must be integers or strings"):
        D.label_names_of(floats, "label")
    with pytest.raises(DataError, match="not one of the model's labels"):
        D.label_mapping(strings, "label", ["neg", "pos"])("maybe")


# ---------------------------------------------------------------- encoding and batches
def test_encode_classification_via_map_with_truncation_and_empty_text():
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["a b c d e", "", "   ", None], "label": ["x", "y", "x", "y"]})
    tok = TextTokenizer.train(["a b c d e"], "word")
    to_id = D.label_mapping(ds, "label", ["x", "y"])
    enc = D.encode_classification(ds, tok, "text", "label", to_id, max_length=3)
    assert enc["length"] == [3, 0, 0, 0]
    assert enc["labels"] == [0, 1, 0, 1]
    assert enc.cache_files == [] or all("cache" in f["filename"] for f in enc.cache_files)


def test_pad_batch_shapes_and_dtypes():
    input_ids, lengths = pad_batch([[5, 6, 7], [8], []])
    assert input_ids.shape == (3, 3) and input_ids.dtype == torch.int64
    assert lengths.tolist() == [3, 1, 0] and lengths.dtype == torch.int64 and lengths.device.type == "cpu"
    assert input_ids.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]


def test_collate_batch_from_loader(sentiment_dir):
    raw = load_raw(str(sentiment_dir))
    tok = TextTokenizer.train(raw["train"]["sentence"], "word")
    enc = D.encode_classification(raw["train"], tok, "sentence", "label", D.label_mapping(raw["train"], "label", ["neg", "pos"]))
    loader = D.ClassificationLoader(enc, BucketBatchSampler(enc["length"], 16, seed=0))
    batch = next(iter(loader))
    B, T = batch["input_ids"].shape
    assert batch["lengths"].shape == (B,) and batch["labels"].shape == (B,)
    assert int(batch["lengths"].max()) == T
    assert batch["labels"].dtype == torch.int64
    assert sum(len(b["labels"]) for b in loader) == len(enc)


def test_sampler_yields_every_index_once_and_is_reproducible():
    lengths = np.random.default_rng(0).integers(1, 50, size=1003)
    s = BucketBatchSampler(lengths, 32, seed=7)
    order = [i for b in s for i in b]
    assert sorted(order) == list(range(1003))
    assert order == [i for b in BucketBatchSampler(lengths, 32, seed=7) for i in b]
    s.set_epoch(1)
    assert [i for b in s for i in b] != order


@pytest.mark.parametrize("n,world", [(1003, 2), (1000, 3), (17, 4)])
def test_sampler_shards_disjointly_and_equally(n, world):
    lengths = np.arange(n) % 37
    shards = [[i for b in BucketBatchSampler(lengths, 8, seed=1, rank=r, world_size=world) for i in b] for r in range(world)]
    flat = [i for s in shards for i in s]
    assert sorted(flat) == list(range(n))  # every index once, no duplicates
    assert len({len(BucketBatchSampler(lengths, 8, rank=r, world_size=world)) for r in range(world)}) == 1


def test_bucketing_cuts_padding():
    lengths = np.random.default_rng(0).lognormal(2.5, 0.8, size=5000).astype(int) + 1
    padded = lambda batches: sum(len(b) * lengths[b].max() for b in batches)  # noqa: E731
    bucketed = padded(BucketBatchSampler(lengths, 64, seed=0).batches())
    random_batches = np.array_split(np.random.default_rng(0).permutation(5000), 5000 // 64)
    real = lengths.sum()
    assert (padded(random_batches) - real) > 3 * (bucketed - real)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 4), st.integers(1, 16), st.integers(0, 5))
def test_sampler_coverage_property(n, world, batch, seed):
    lengths = np.arange(n) % 11
    if n // world < -(-(-(-n // world)) // batch):
        with pytest.raises(DataError):
            BucketBatchSampler(lengths, batch, rank=0, world_size=world)
        return
    seen = [i for r in range(world) for b in BucketBatchSampler(lengths, batch, seed=seed, rank=r, world_size=world) for i in b]
    assert sorted(seen) == list(range(n))


# ---------------------------------------------------------------- language-model streams
def test_lm_stream_targets_shift_by_one_and_streams_continue():
    tokens = np.arange(103, dtype=np.uint16)
    loader = LMStreamLoader(tokens, batch_size=4, seq_len=10)
    batches = list(loader)
    steps = (103 - 1) // 4
    assert len(batches) == -(-steps // 10)
    for b in batches:
        assert torch.equal(b["targets"][:, :-1], b["input_ids"][:, 1:])
        assert torch.equal(b["targets"], b["input_ids"] + 1)
    first, second = batches[0]["input_ids"], batches[1]["input_ids"]
    assert torch.equal(second[:, 0], first[:, -1] + 1)  # each row continues its own stream
    assert [int(r[0]) for r in first] == [0, steps, 2 * steps, 3 * steps]


def test_lm_stream_ranks_own_disjoint_streams():
    tokens = np.arange(401, dtype=np.uint16)
    rows = [LMStreamLoader(tokens, 2, 50, rank=r, world_size=2).iterate().__next__()["input_ids"][:, 0].tolist() for r in range(2)]
    assert rows == [[0, 100], [200, 300]]


def test_encode_stream_is_compact_and_matches_tokenizer(tmp_path, corpus_file):
    text = corpus_file.read_text()
    tok = TextTokenizer.train([text], "char")
    tokens = D.encode_stream([text[:1000], text[1000:]], tok, tmp_path / "s.bin", chunk_chars=300)
    assert tokens.dtype == np.uint8 and isinstance(tokens, np.memmap)
    assert tokens.tolist() == tok.encode(text)
    word = TextTokenizer.train([text], "word")
    wtokens = D.encode_stream(["a b", "c"], word, tmp_path / "w.bin")
    assert wtokens[2] == 3 and wtokens[-1] == 3  # <eos> after every row


def test_lm_stream_on_too_little_text_is_an_error(tmp_path):
    tok = TextTokenizer.train(["ab"], "char")
    with pytest.raises(DataError, match="fewer than 2 tokens"):
        D.encode_stream(["a"], tok, tmp_path / "x.bin")
    with pytest.raises(DataError, match="too few"):
        LMStreamLoader(np.arange(5), batch_size=8, seq_len=4)


def test_iter_text_cuts_by_character_position():
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["abc\n", "defg\n", "h\n"]})
    whole = "".join(D.iter_text(ds, "text", ""))
    assert whole == "abc\ndefg\nh\n"
    cut = int(len(whole) * 0.9)
    assert "".join(D.iter_text(ds, "text", "", 0, cut)) + "".join(D.iter_text(ds, "text", "", cut)) == whole
    assert "".join(D.iter_text(ds, "text", "", 2, 6)) == whole[2:6]

"""Padding, length-bucketed sampling, loaders and LM streams (textrnn.data.batching)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from textrnn import (
    BucketBatchSampler,
    ClassificationLoader,
    DataError,
    LMStreamLoader,
    TextTokenizer,
    load_raw,
    pad_batch,
)
from textrnn.data.encoding import encode_classification
from textrnn.data.labels import LabelEncoder
from textrnn.data.streams import encode_stream


def test_pad_batch_shapes_and_dtypes():
    input_ids, lengths = pad_batch([[5, 6, 7], [8], []])
    assert input_ids.shape == (3, 3) and input_ids.dtype == torch.int64
    assert lengths.tolist() == [3, 1, 0] and lengths.dtype == torch.int64 and lengths.device.type == "cpu"
    assert input_ids.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]


def test_collate_batch_from_loader(sentiment_dir):
    raw = load_raw(str(sentiment_dir))
    tok = TextTokenizer.train(raw["train"]["sentence"], "word")
    enc = encode_classification(raw["train"], tok, ["sentence"],
                                LabelEncoder(raw["train"], ["label"], ["neg", "pos"], "single_label"))
    loader = ClassificationLoader(enc, BucketBatchSampler(enc["length"], 16, seed=0))
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
    shards = [[i for b in BucketBatchSampler(lengths, 8, seed=1, rank=r,
                                             world_size=world) for i in b] for r in range(world)]
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
    seen = [i for r in range(world) for b in BucketBatchSampler(lengths, batch, seed=seed, rank=r,
                                                                world_size=world) for i in b]
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
    rows = [
        LMStreamLoader(tokens, 2, 50, rank=r, world_size=2).iterate().__next__()["input_ids"][:, 0].tolist()
        for r in range(2)
    ]
    assert rows == [[0, 100], [200, 300]]


def test_lm_stream_on_too_little_text_is_an_error(tmp_path):
    tok = TextTokenizer.train(["ab"], "char")
    with pytest.raises(DataError, match="fewer than 2 tokens"):
        encode_stream(["a"], tok, tmp_path / "x.bin")
    with pytest.raises(DataError, match="too few"):
        LMStreamLoader(np.arange(5), batch_size=8, seq_len=4)

"""Streaming: ranks split the stream, windows and batches carry every row once, and a streamed run resumes exactly."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from textrnn import ConfigError, TextTokenizer
from textrnn.data.labels import LabelEncoder, detect_labels
from textrnn.data.loading import NEGATIVE, POSITIVE
from textrnn.data.streaming import StreamCursor, StreamingClassificationLoader, StreamingLMLoader, rank_stream
from textrnn.training.api import train

from ..conftest import CORPUS, assert_same_weights
from ..helpers import classifier_config, lm_config


def one_pass(cursor: StreamCursor) -> list:
    """The rows of one pass of a stream, group by group."""
    rows = []
    while True:
        group = cursor.next_group()
        if cursor.epoch:
            return rows
        rows += group


@pytest.mark.parametrize("shards", [1, 4])
def test_ranks_split_a_pass_with_no_row_seen_twice(shards):
    ids = [f"row{i}" for i in range(103)]
    stream = datasets.Dataset.from_dict({"text": ids}).to_iterable_dataset(num_shards=shards)
    seen = [[row["text"] for row in one_pass(StreamCursor(rank_stream(stream, rank, 2), 10))] for rank in (0, 1)]
    assert not set(seen[0]) & set(seen[1]) and sorted(seen[0] + seen[1]) == sorted(ids)
    assert abs(len(seen[0]) - len(seen[1])) <= 26  # shards or every other row: close to half each


def lm_loader(texts, batch_size, steps=100):
    tokenizer = TextTokenizer.train(texts, "char")
    stream = datasets.Dataset.from_dict({"text": texts}).to_iterable_dataset()
    return tokenizer, StreamingLMLoader(rank_stream(stream, 0, 1), tokenizer, "text", "", batch_size, 8, steps)


def test_one_streamed_lm_stream_is_the_text_in_order_window_after_window():
    lines = CORPUS.splitlines(keepends=True)
    tokenizer, loader = lm_loader(lines, batch_size=1)
    windows = [w for _, w in zip(range(40), loader.iterate())]
    inputs = torch.cat([w["input_ids"][0] for w in windows])
    assert tokenizer.decode(inputs.tolist()) == CORPUS[: len(inputs)]
    assert all(torch.equal(w["targets"][0, :-1], w["input_ids"][0, 1:]) for w in windows)
    for before, after in zip(windows, windows[1:]):  # each window continues the last: the state carries over
        assert before["targets"][0, -1] == after["input_ids"][0, 0]


@pytest.mark.parametrize("used", [35, 2100])  # in the first pass of the 3,000 lines, and in the second
def test_a_streamed_loader_resumes_from_its_state_without_reading_from_the_start(used):
    lines = [f"line {i} of the text\n" for i in range(3000)]
    _, straight = lm_loader(lines, batch_size=4)
    expected = [w["input_ids"] for _, w in zip(range(used + 25), straight.iterate())]
    _, first = lm_loader(lines, batch_size=4)
    run = first.iterate()
    for _ in range(used):
        next(run)
    state = first.state_dict()
    assert state["dataset"] is not None and state["taken"] > 0  # mid-group: its start and what was used of it
    assert state["epoch"] == (used > 2100 - 50)  # 64,890 characters are about 2,028 windows of 4 streams x 8
    _, resumed = lm_loader(lines, batch_size=4)
    resumed.load_state_dict(state)
    again = [w["input_ids"] for _, w in zip(range(25), resumed.iterate(used))]
    assert len(again) == 25 and all(torch.equal(a, b) for a, b in zip(again, expected[used:]))


def classification_loader(rows, buffer, seed=0, steps=1000):
    data = datasets.Dataset.from_dict(rows)
    tokenizer = TextTokenizer.train(rows["sentence"], "word")
    spec = detect_labels(data, "label", None)
    labels = LabelEncoder(data, spec.columns, spec.names, spec.problem_type)
    return tokenizer, spec, StreamingClassificationLoader(
        rank_stream(data.to_iterable_dataset(), 0, 1), tokenizer, labels, ["sentence"], " | ", 8, 2, buffer, seed,
        steps)


def test_streamed_classification_batches_hold_each_row_once_a_pass_with_its_own_label():
    rng = np.random.default_rng(0)
    texts = [f"{rng.choice(POSITIVE if i % 3 else NEGATIVE)} number{i}" for i in range(100)]
    rows = {"sentence": texts, "label": ["pos" if i % 3 else "neg" for i in range(100)]}
    tokenizer, spec, loader = classification_loader(rows, buffer=30)
    seen = []
    for _, batch in zip(range(14), loader.iterate()):  # 100 rows in groups of 30: 4 + 4 + 4 + 2 batches
        for ids, length, label in zip(batch["input_ids"], batch["lengths"], batch["labels"]):
            text = tokenizer.decode(ids[:length].tolist())
            seen.append(text)
            assert (spec.names[label] == "pos") == any(text.startswith(p) for p in POSITIVE), text
    assert sorted(seen) == sorted(texts)
    lengths = [b["lengths"] for _, b in zip(range(4), classification_loader(rows, buffer=30)[2].iterate())]
    assert all(int(x.max() - x.min()) <= 6 for x in lengths)  # bucketed: neighbours have similar lengths


@pytest.mark.parametrize("used", [7, 17, 30])  # mid-group in the first pass, in the second, in the third
def test_a_streamed_classification_loader_resumes_mid_group_in_any_pass(used):
    rows = {"sentence": [f"{POSITIVE[i % 5]} n{i}" for i in range(90)], "label": [i % 2 for i in range(90)]}
    expected = [b["input_ids"] for _, b in zip(range(used + 12), classification_loader(rows, buffer=40)[2].iterate())]
    _, _, first = classification_loader(rows, buffer=40)
    run = first.iterate()
    for _ in range(used):
        next(run)
    _, _, resumed = classification_loader(rows, buffer=40)
    resumed.load_state_dict(first.state_dict())
    again = [b["input_ids"] for _, b in zip(range(12), resumed.iterate(used))]
    assert len(again) == 12 and all(torch.equal(a, b) for a, b in zip(again, expected[used:]))


def resumed_again_and_again(make, cuts: list, total: int) -> list:
    """The batches a loader gives when the run stops at each of ``cuts`` and resumes from its state in a new one."""
    seen, state, done = [], None, 0
    for end in [*cuts, total]:
        loader = make()
        if state is not None:
            loader.load_state_dict(state)
        run = loader.iterate(done)
        seen += [next(run)["input_ids"] for _ in range(end - done)]
        state, done = loader.state_dict(), end
    return seen


def random_cuts(seed: int, total: int) -> list:
    """2 to 4 stops; every other seed puts the second a few batches after the first (in the group resumed into)."""
    rng = np.random.default_rng(seed)
    cuts = sorted(int(c) for c in rng.choice(np.arange(1, total - 5), size=int(rng.integers(2, 5)), replace=False))
    return sorted({cuts[0], cuts[0] + 3, *cuts[2:]}) if seed % 2 else cuts


@pytest.mark.parametrize("seed", range(6))
def test_a_streamed_lm_loader_resumed_again_and_again_sees_the_uninterrupted_windows(seed):
    lines = [f"line {i} of the text\n" for i in range(3000)]
    total = 2300  # into the second pass
    expected = [w["input_ids"] for _, w in zip(range(total), lm_loader(lines, batch_size=4)[1].iterate())]
    seen = resumed_again_and_again(lambda: lm_loader(lines, batch_size=4)[1], random_cuts(seed, total), total)
    assert len(seen) == total and all(torch.equal(a, b) for a, b in zip(seen, expected))


@pytest.mark.parametrize("seed", range(6))
def test_a_streamed_classification_loader_resumed_again_and_again_sees_the_uninterrupted_batches(seed):
    rows = {"sentence": [f"{POSITIVE[i % 5]} n{i}" for i in range(90)], "label": [i % 2 for i in range(90)]}
    total = 40  # three passes of 90 rows in groups of 40
    expected = [b["input_ids"] for _, b in zip(range(total), classification_loader(rows, buffer=40)[2].iterate())]
    seen = resumed_again_and_again(lambda: classification_loader(rows, buffer=40)[2], random_cuts(seed, total), total)
    assert len(seen) == total and all(torch.equal(a, b) for a, b in zip(seen, expected))


@pytest.mark.parametrize("kind", ["classification", "language_model"])
def test_a_streamed_run_resumed_from_a_checkpoint_ends_as_the_uninterrupted_run(tmp_path, sentiment_dir,
                                                                                corpus_file, kind):
    make, data = (classifier_config, sentiment_dir) if kind == "classification" else (lm_config, corpus_file)
    extra = ("data.streaming=true", "data.shuffle_buffer=100", "data.validation_rows=20", "train.max_steps=12",
             "train.eval_every=3")
    full = train(make(data, tmp_path / "full", *extra))
    middle = tmp_path / "full" / "checkpoints" / "step-00000003"
    state = torch.load(middle / "trainer_state.pt", weights_only=True)
    assert len(state["loader_states"]) == 1 and state["loader_states"][0]["dataset"] is not None
    resumed = train(make(data, tmp_path / "resumed", *extra), resume=str(middle))
    assert_same_weights(tmp_path / "full" / "last", tmp_path / "resumed" / "last")
    assert resumed.last_metrics["loss"] == pytest.approx(full.last_metrics["loss"], rel=1e-6)
    # a second resume, from a checkpoint the resumed run wrote: its stream position is the one it reached
    # (the audit's repro: it recorded the pass's start, and the run after it trained on rows again)
    train(make(data, tmp_path / "again", *extra), resume=str(tmp_path / "resumed" / "checkpoints" / "step-00000006"))
    assert_same_weights(tmp_path / "full" / "last", tmp_path / "again" / "last")


def test_streaming_settings_that_cannot_work_are_one_line_errors(tmp_path, corpus_file):
    with pytest.raises(ConfigError, match="data.streaming needs train.max_steps"):
        lm_config(corpus_file, tmp_path / "r", "data.streaming=true")
    with pytest.raises(ConfigError, match="model.reverse reads the text last token first, which a stream cannot"):
        train(lm_config(corpus_file, tmp_path / "r", "data.streaming=true", "train.max_steps=2", "model.reverse=true"))

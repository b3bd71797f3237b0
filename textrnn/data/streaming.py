"""Streaming (``data.streaming: true``): data read as it arrives, for corpora bigger than disk or not worth fetching.

Nothing is prepared ahead. Each rank reads its own part of the stream
(``datasets.distributed.split_dataset_by_node``), so no example is seen twice in a pass across
ranks. The tokenizer is trained on the first ``tokenizer.sample_texts`` texts (or given with
``tokenizer.from_file``); validation is the first ``data.validation_rows`` rows of the validation
split, or of the training stream, which training then skips. A stream has no length, so a
streamed run needs ``train.max_steps``; a pass that ends starts the next one.

Both loaders resume exactly: their ``state_dict`` is the stream's own (``IterableDataset.state_dict``,
taken where the current group of rows began) plus what of that group was used, so a resumed run
sees the very batches an uninterrupted one would::

    language model   rows -> ids -> each row appended to the stream that is shortest -> (B, T) windows
    classification   rows, data.shuffle_buffer at a time -> shuffled -> sorted by length in buckets -> batches
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch

from ..core.config import ExperimentConfig
from ..core.errors import DataError
from .batching import BucketBatchSampler, pad_batch
from .encoding import encode_split, iter_texts, join_fields, labelled, labelled_rows, text_columns
from .labels import LabelEncoder, LabelSpec, detect_labels
from .loading import VALIDATION_NAMES, load_raw, require_column, require_split
from .preparation import check_label_count
from .streams import encode_stream, iter_text, lm_separator
from .tokenization import EOS_ID, PAD_ID, TextTokenizer, train_tokenizer

GROUP_ROWS = 1000  # rows a language-model stream reads and encodes at once


class StreamCursor:
    """Rows of a per-rank stream in groups, with the state to come back to the start of the current group."""

    def __init__(self, stream: Callable[[], Any], group: int) -> None:
        self.stream, self.group = stream, group
        self.dataset: Any = None
        self.rows: Iterator[dict] = iter(())
        self.epoch = 0
        self.group_start: Optional[dict] = None  # the dataset's state where the current group began
        self.loaded: Optional[dict] = None  # a state loaded but not yet read from

    def start(self, state: Optional[dict] = None, epoch: int = 0) -> None:
        """Open the stream at the beginning of pass 0, or where ``state`` (taken in pass ``epoch``) says.

        The pass is set first: ``datasets`` applies a loaded state only to the pass it was taken in.
        """
        self.dataset, self.epoch, self.loaded = self.stream(), epoch, state
        self.dataset.set_epoch(epoch)
        if state is not None:
            self.dataset.load_state_dict(state)
        self.rows = iter(self.dataset)

    def next_group(self) -> list[dict]:
        """The next ``group`` rows; at the end of a pass the next pass begins (an empty stream is an error)."""
        if self.dataset is None:
            self.start()
        # datasets applies a loaded state lazily: until a row is read, state_dict() still says the pass's start,
        # so the first group after a resume begins where the loaded state says
        self.group_start, self.loaded = (self.loaded if self.loaded is not None else self.dataset.state_dict()), None
        rows = list(itertools.islice(self.rows, self.group))
        if rows:
            return rows
        self.epoch += 1
        self.dataset.set_epoch(self.epoch)
        self.rows = iter(self.dataset)
        self.group_start = self.dataset.state_dict()
        rows = list(itertools.islice(self.rows, self.group))
        if not rows:
            raise DataError("the training stream has no rows for this process; give more data or use fewer processes")
        return rows


# ---------------------------------------------------------------------------- language models
class StreamLoader:
    """What both streaming loaders share: a length in steps (a stream has none of its own), and ``iterate(start)``,
    which passes over the first ``start`` batches by making and dropping them, unless ``load_state_dict`` already
    put the loader where it was (``resumed``: ``start`` is then counted). A loader makes its next batch in
    ``next_batch`` and records its position in ``state_dict``."""

    steps: int
    resumed: bool

    def __len__(self) -> int:
        return self.steps

    def next_batch(self) -> dict:
        """The next batch (each loader makes its own)."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Where the loader is in its stream (each loader records its own position)."""
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where :meth:`state_dict` was taken (sets ``resumed``)."""
        raise NotImplementedError

    def iterate(self, start: int = 0) -> Iterator[dict]:
        """Batches from here on."""
        for _ in range(0 if self.resumed else start):
            self.next_batch()
        while True:
            yield self.next_batch()

    def __iter__(self) -> Iterator[dict]:
        return self.iterate(0)


class StreamingLMLoader(StreamLoader):
    """(B, T) windows of B token streams filled from a row stream, each row going to the shortest stream.

    Each stream carries its RNN state from window to window as :class:`~textrnn.data.batching.LMStreamLoader`'s
    do; a stream is a run of whole rows (documents), one after another.
    """

    def __init__(self, stream: Callable[[], Any], tokenizer: TextTokenizer, column: str, separator: str,
                 batch_size: int, seq_len: int, steps: int) -> None:
        self.cursor = StreamCursor(stream, GROUP_ROWS)
        self.tokenizer, self.column, self.separator = tokenizer, column, separator
        self.batch_size, self.seq_len, self.steps = batch_size, seq_len, steps
        self.buffers = [np.zeros(0, dtype=np.int64) for _ in range(batch_size)]
        self.pending: list[np.ndarray] = []  # encoded rows of the current group not yet handed to a stream
        self.taken = 0  # rows of the current group handed out
        self.resumed = False

    def state_dict(self) -> dict:
        """Where the stream is: its state at the current group, rows of it used, and each stream's unused ids."""
        return {"dataset": self.cursor.group_start, "epoch": self.cursor.epoch, "taken": self.taken,
                "buffers": [b.tolist() for b in self.buffers]}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where :meth:`state_dict` was taken."""
        self.cursor.start(state["dataset"], state["epoch"])
        self.pending = self.encode_rows(self.cursor.next_group())[state["taken"]:]
        self.taken = state["taken"]
        self.buffers = [np.asarray(b, dtype=np.int64) for b in state["buffers"]]
        self.resumed = True

    def next_batch(self) -> dict:
        """The next (B, T) window, topping up each short stream with the next row."""
        need = self.seq_len + 1
        while min(len(b) for b in self.buffers) < need:
            if not self.pending:
                self.pending, self.taken = self.encode_rows(self.cursor.next_group()), 0
            shortest = min(range(self.batch_size), key=lambda i: len(self.buffers[i]))
            self.buffers[shortest] = np.concatenate([self.buffers[shortest], self.pending.pop(0)])
            self.taken += 1
        block = torch.from_numpy(np.stack([b[:need] for b in self.buffers]))  # (B, T + 1)
        self.buffers = [b[self.seq_len:] for b in self.buffers]  # the last target is the next window's first input
        return {"input_ids": block[:, :-1], "targets": block[:, 1:]}

    def encode_rows(self, rows: list[dict]) -> list[np.ndarray]:
        """Each row's ids (word and BPE rows end with ``<eos>``), as a prepared stream holds them."""
        texts = [(row[self.column] or "") + self.separator for row in rows]
        values, offsets = self.tokenizer.encode_flat(texts)
        pieces = np.split(values.astype(np.int64), offsets[1:-1])
        if self.tokenizer.kind != "char":  # word and BPE rows end with <eos>, as in a prepared stream
            pieces = [np.append(piece, EOS_ID) for piece in pieces]
        return pieces


# ---------------------------------------------------------------------------- classification
class StreamingClassificationLoader(StreamLoader):
    """Batches of a row stream: ``shuffle_buffer`` rows at a time, shuffled, bucketed by length, batched.

    Within one group the order is :class:`~textrnn.data.batching.BucketBatchSampler`'s, seeded by
    (seed, epoch, group), so a resumed loader rebuilds the group it was in and skips what it used.
    """

    def __init__(self, stream: Callable[[], Any], tokenizer: TextTokenizer, labels: LabelEncoder, text_columns: list,
                 separator: str, batch_size: int, bucket_size: int, shuffle_buffer: int, seed: int, steps: int,
                 max_length: Optional[int] = None) -> None:
        self.cursor = StreamCursor(stream, shuffle_buffer)
        self.tokenizer, self.labels, self.text_columns, self.separator = tokenizer, labels, text_columns, separator
        self.batch_size, self.bucket_size, self.seed, self.steps = batch_size, bucket_size, seed, steps
        self.max_length = max_length
        self.groups = 0  # groups read so far (the seed of each one's order)
        self.batches: list[dict] = []  # the current group's batches not yet yielded
        self.done = 0  # batches of the current group yielded
        self.resumed = False

    def state_dict(self) -> dict:
        """The stream's state where the current group began, the group's number and the batches used of it."""
        return {"dataset": self.cursor.group_start, "epoch": self.cursor.epoch, "groups": self.groups,
                "done": self.done}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where :meth:`state_dict` was taken."""
        self.cursor.start(state["dataset"], state["epoch"])
        self.groups = state["groups"] - 1
        self._next_group()
        self.batches, self.done = self.batches[state["done"]:], state["done"]
        self.resumed = True

    def next_batch(self) -> dict:
        """The current group's next batch, reading the next group when it is used up."""
        if not self.batches:
            self._next_group()
        self.done += 1
        return self.batches.pop(0)

    def _next_group(self) -> None:
        rows = self.cursor.next_group()
        columns = {name: [row[name] for row in rows] for name in rows[0]}
        values, offsets = self.tokenizer.encode_flat(join_fields(columns, self.text_columns, self.separator))
        ids = np.split(values.astype(np.int64), offsets[1:-1])
        ids = [row[: self.max_length] for row in ids] if self.max_length else ids
        labels = np.asarray(self.labels.encode(columns))
        keep = labelled_rows(labels)
        sampler = BucketBatchSampler([len(ids[i]) for i in keep], min(self.batch_size, max(len(keep), 1)),
                                     bucket_size=self.bucket_size, seed=self.seed)
        sampler.set_epoch(self.groups)
        self.groups += 1
        self.batches = [padded([ids[keep[i]] for i in batch], labels[keep[batch]]) for batch in sampler.batches()
                        if len(batch)]
        self.done = 0


def padded(rows: list, labels: np.ndarray) -> dict:
    """A classification batch (see :mod:`textrnn.data.batching`) from id arrays and their labels."""
    input_ids, lengths = pad_batch(rows, PAD_ID)
    target = torch.from_numpy(labels.astype(np.float32) if labels.ndim == 2 else labels.astype(np.int64))
    return {"input_ids": input_ids, "lengths": lengths, "labels": target}


# ---------------------------------------------------------------------------- opening a stream
def stream_splits(config: ExperimentConfig, raw: Any = None) -> tuple[Any, Any, Any]:
    """(the splits as streams, the training stream, validation as a small in-memory ``Dataset``).

    Validation is the first ``data.validation_rows`` rows of the validation split (named, or a
    standard name), else of the training stream, which then starts after them.
    """
    import datasets

    d = config.data
    source = ({name: split.to_iterable_dataset() for name, split in raw.items()} if raw is not None
              else load_raw(d.dataset, None, d.config_name, streaming=True, encoding=d.encoding))
    train = require_split(source, d.train_split, "data.train_split")
    name = d.validation_split or next((n for n in VALIDATION_NAMES if n in source), None)
    if name is None:
        rows, train = list(train.take(d.validation_rows)), train.skip(d.validation_rows)
    else:
        rows = list(require_split(source, name, "data.validation_split").take(d.validation_rows))
    if not rows:
        raise DataError(f"the validation rows of {d.dataset} are empty; give data, or set data.validation_split")
    return source, train, datasets.Dataset.from_list(rows, features=train.features)


def rank_stream(train: Any, rank: int, world_size: int) -> Callable[[], Any]:
    """A fresh copy of this rank's part of the stream for each call (whole shards where they divide evenly)."""
    from datasets.distributed import split_dataset_by_node

    return lambda: split_dataset_by_node(train, rank=rank, world_size=world_size)


def sample_rows(train: Any, count: int) -> Any:
    """The first ``count`` rows of the training stream, in memory: what the tokenizer and labels learn from."""
    import datasets

    rows = list(train.take(count))
    if not rows:
        raise DataError("the training stream has no rows; give a dataset with examples in it")
    return datasets.Dataset.from_list(rows, features=train.features)



@dataclass
class StreamedLM:
    """A streamed language model's tokenizer, training loader, validation tokens and the sample's ids."""

    tokenizer: TextTokenizer
    train_loader: StreamingLMLoader
    valid_tokens: np.ndarray
    sample_ids: np.ndarray  # the ids of the tokenizer's sample: token counts for vectors' coverage
    note: str


def open_lm_stream(config: ExperimentConfig, tokenizer: Optional[TextTokenizer], raw: Any, rank: int,
                   world_size: int, workdir: Path) -> StreamedLM:
    """Everything a language model trains on from a stream (see the module docstring)."""
    d = config.data
    source, train, valid = stream_splits(config, raw)
    column = require_column(valid, d.text_column, "text_column")
    separator = lm_separator(source, d.separator, d.dataset)
    sample = sample_rows(train, config.tokenizer.sample_texts)
    texts = lambda: ((text or "") + separator for text in sample[column])  # noqa: E731
    tokenizer = tokenizer or train_tokenizer(texts, config.tokenizer)
    valid_tokens = encode_stream(iter_text(valid, column, separator), tokenizer,
                                 workdir / "data" / f"validation.rank{rank}.bin")
    loader = StreamingLMLoader(rank_stream(train, rank, world_size), tokenizer, column, separator, d.batch_size,
                               d.seq_len, int(config.train.max_steps or 0))
    sample_ids = np.concatenate(loader.encode_rows(list(sample)) or [np.zeros(0, np.int64)])
    note = (f"data: streaming {d.dataset} (tokenizer from its first {len(sample):,} texts, validation "
            f"{len(valid):,} rows, {len(valid_tokens):,} tokens)")
    return StreamedLM(tokenizer, loader, valid_tokens, sample_ids, note)


@dataclass
class StreamedClassification:
    """A streamed classifier's tokenizer, labels, text fields, training loader and encoded validation rows."""

    tokenizer: TextTokenizer
    spec: LabelSpec
    text_columns: list
    train_loader: StreamingClassificationLoader
    sample_set: Any  # the encoded sample: class weights and token counts come from it
    valid_set: Any
    note: str


def open_classification_stream(config: ExperimentConfig, tokenizer: Optional[TextTokenizer], spec: Optional[LabelSpec],
                               raw: Any, rank: int, world_size: int) -> StreamedClassification:
    """Everything a classifier trains on from a stream; labels are the sample's (or a ClassLabel's) names."""
    d = config.data
    _, train, valid = stream_splits(config, raw)
    sample = sample_rows(train, config.tokenizer.sample_texts)
    columns = text_columns(sample, d)
    spec = spec or detect_labels(sample, d.label_column, d.label_columns)
    check_label_count(spec)
    tokenizer = tokenizer or train_tokenizer(lambda: iter_texts(sample, columns, d.field_separator), config.tokenizer)
    encoder = LabelEncoder(sample, spec.columns, spec.names, spec.problem_type)
    loader = StreamingClassificationLoader(rank_stream(train, rank, world_size), tokenizer, encoder, columns,
                                           d.field_separator, d.batch_size, d.bucket_size, d.shuffle_buffer,
                                           config.train.seed, int(config.train.max_steps or 0), d.max_length)
    valid_set = labelled(encode_split(valid, tokenizer, d, spec)[0], "the validation rows")
    sample_set = labelled(encode_split(sample, tokenizer, d, spec)[0], "the first rows of the training stream")
    note = (f"data: streaming {d.dataset} (tokenizer and labels from its first {len(sample):,} rows, validation "
            f"{len(valid_set):,} rows)")
    return StreamedClassification(tokenizer, spec, columns, loader, sample_set, valid_set, note)

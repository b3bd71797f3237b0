"""From encoded examples to batches: padding, length-bucketed sampling, loaders, LM streams.

Classification batches are dicts of::

    input_ids (B, T) int64, padded with <pad> = 0
    lengths   (B,)   int64, on CPU (what pack_padded_sequence wants)
    labels    (B,)   int64 ids, or (B, C) float32 0/1 rows for multi-label

built from length-bucketed batches, so little of T is padding. Language-model data is one
flat token stream laid out as B parallel streams for truncated backprop through time
(see :class:`LMStreamLoader`).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from ..core.errors import DataError
from .tokenization import PAD_ID

TEACHER_COLUMN = "teacher_logits"  # (C,) teacher logits per row of a transfer set (textrnn.training.distillation)


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int = PAD_ID) -> tuple[Tensor, Tensor]:
    """Id lists -> input_ids (B, T) int64 padded with pad_id, lengths (B,) int64 (T >= 1)."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    steps = max(int(lengths.max(initial=0)), 1)
    out = np.full((len(rows), steps), pad_id, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return torch.from_numpy(out), torch.from_numpy(lengths)


# ---------------------------------------------------------------------------- sampling
class BucketBatchSampler:
    """Length-bucketed batches: shuffle, sort by length within chunks, shuffle the batches.

    Per epoch (seeded by ``seed + epoch``, so the order is reproducible):

    1. shuffle all indices, then give rank ``r`` every ``world_size``-th one from ``r``;
    2. cut this rank's indices into chunks of ``batch_size * bucket_size`` and sort each
       chunk by length, so neighbours have similar lengths;
    3. cut into batches and shuffle their order.

    Every index appears exactly once per epoch across all ranks (no padding duplicates), and
    every rank gets the same number of batches, which DistributedDataParallel needs: a rank
    whose shard is shorter gets batches one example smaller.
    """

    def __init__(self, lengths: Union[Sequence[int], np.ndarray], batch_size: int, *, bucket_size: int = 100,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.bucket_size = batch_size, bucket_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        shard = math.ceil(len(self.lengths) / world_size)
        self.num_batches = math.ceil(shard / batch_size)
        if len(self.lengths) // world_size < self.num_batches:
            raise DataError(
                f"{len(self.lengths)} examples are too few for {world_size} processes; use fewer processes or more data"
            )

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (every rank passes the same one)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def batches(self) -> list[np.ndarray]:
        """This rank's batches of the epoch: example indices, each batch of similar lengths."""
        rng = np.random.default_rng([self.seed, self.epoch])
        mine = rng.permutation(len(self.lengths))[self.rank :: self.world_size]
        chunk = self.batch_size * self.bucket_size
        parts = [
            c[np.argsort(self.lengths[c], kind="stable")]
            for c in np.array_split(mine, max(1, math.ceil(len(mine) / chunk)))
        ]
        batches = np.array_split(np.concatenate(parts), self.num_batches)
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches():
            yield batch.tolist()


class SortedBatches:
    """Evaluation batches: all examples sorted by length (least padding), rank r taking every
    world_size-th, in a fixed order. Ranks may get different numbers of batches."""

    def __init__(self, lengths: Union[Sequence[int], np.ndarray], batch_size: int, rank: int = 0,
                 world_size: int = 1) -> None:
        mine = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")[rank::world_size]
        self._batches = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]

    def __len__(self) -> int:
        return len(self._batches)

    def batches(self) -> list[np.ndarray]:
        """This rank's batches, longest first."""
        return self._batches


class ClassificationLoader:
    """Batches of an encoded split, in the order of a :class:`BucketBatchSampler`.

    ``iterate(start)`` skips the first ``start`` batches of the epoch, which is how a resumed
    run continues mid-epoch.
    """

    def __init__(self, encoded: Any, sampler: Union[BucketBatchSampler, SortedBatches], pad_id: int = PAD_ID,
                 pin_memory: bool = False) -> None:
        self.encoded, self.sampler, self.pad_id, self.pin_memory = encoded, sampler, pad_id, pin_memory

    def __len__(self) -> int:
        return len(self.sampler)

    def iterate(self, start: int = 0) -> Iterator[dict]:
        """Padded batches from the ``start``-th on (a resumed run skips those it trained on).

        A background thread gathers and pads the next batches while the model trains on this one
        (Arrow and NumPy release the GIL), so a step does not wait for its data.
        """
        return prefetch((self.batch(indices) for indices in self.sampler.batches()[start:]), depth=4)

    def batch(self, indices: np.ndarray) -> dict:
        """One padded batch of the examples at ``indices``: a vectorized gather, no Python per row."""
        rows = self.encoded.with_format("arrow")[indices.tolist()]
        input_ids, lengths = pad_flat(rows["input_ids"], self.pad_id)
        labels = label_tensor(rows["labels"])
        out = {"input_ids": input_ids, "lengths": lengths, "labels": labels}
        if TEACHER_COLUMN in rows.column_names:  # (B, C) float32, a fixed-size row per text
            column = rows[TEACHER_COLUMN].combine_chunks()
            values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
            out[TEACHER_COLUMN] = torch.from_numpy(values.reshape(len(column), -1))
        if self.pin_memory:
            out["input_ids"], out["labels"] = out["input_ids"].pin_memory(), out["labels"].pin_memory()
        return out

    def __iter__(self) -> Iterator[dict]:
        return self.iterate(0)


def pad_flat(column: Any, pad_id: int = PAD_ID) -> tuple[Tensor, Tensor]:
    """An Arrow list column of ids -> input_ids (B, T) int64 padded with ``pad_id``, lengths (B,) (T >= 1)."""
    lists = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    offsets = lists.offsets.to_numpy()
    values = lists.values.to_numpy(zero_copy_only=False)[offsets[0]:offsets[-1]]
    lengths = np.diff(offsets).astype(np.int64)
    out = np.full((len(lengths), max(int(lengths.max(initial=0)), 1)), pad_id, dtype=np.int64)
    out[np.arange(out.shape[1]) < lengths[:, None]] = values  # row-major order: each row's ids, left-aligned
    return torch.from_numpy(out), torch.from_numpy(lengths)


def label_tensor(column: Any) -> Tensor:
    """An Arrow label column -> (B,) int64 ids, or (B, C) float32 0/1 rows for multi-label."""
    if pa_is_list(column.type):
        lists = column.combine_chunks()
        width = len(lists[0]) if len(lists) else 0
        rows = lists.flatten().to_numpy(zero_copy_only=False).reshape(len(lists), width)  # flatten: offsets honoured
        return torch.from_numpy(rows.astype(np.float32))
    return torch.from_numpy(column.to_numpy().astype(np.int64))


def pa_is_list(arrow_type: Any) -> bool:
    """Whether an Arrow type is a (fixed-size or variable) list."""
    import pyarrow as pa

    return pa.types.is_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type) or pa.types.is_large_list(
        arrow_type)


def prefetch(items: Iterator[Any], depth: int = 4) -> Iterator[Any]:
    """``items``, produced up to ``depth`` ahead by a background thread; its errors are raised here.

    The thread stops when the consumer stops early (a closed generator sets ``done``), so an
    abandoned epoch leaves no thread behind.
    """
    import queue
    import threading

    slots: queue.Queue = queue.Queue(maxsize=depth)
    done = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for item in items:
                while not done.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if done.is_set():
                    return
            slots.put((end, None))
        except BaseException as exc:  # handed to the consumer, raised in its thread
            slots.put((end, exc))

    thread = threading.Thread(target=produce, name="textrnn-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        done.set()


class LMStreamLoader:
    """A token stream cut into S parallel streams, walked in windows of ``seq_len``.

    With N tokens, S = batch_size * world_size streams of L = (N - 1) // S steps each::

        tokens    a b c d e f g h i j k l m          N = 13, S = 3, L = 4
        stream 0  a b c d (e)                         inputs a b c d, targets b c d e
        stream 1  e f g h (i)
        stream 2  i j k l (m)

        batch 0 = columns [0, seq_len) of every stream, batch 1 = the next columns, ...

    Consecutive batches continue each stream, so the RNN state at the end of one batch is
    the right initial state for the next: that is stateful truncated backprop. Targets are
    the inputs shifted by one token. Rank ``r`` of ``world_size`` owns streams
    ``[r * batch_size, (r + 1) * batch_size)``. The last ``(N - 1) % S`` tokens are unused.
    """

    def __init__(self, tokens: np.ndarray, batch_size: int, seq_len: int, rank: int = 0, world_size: int = 1) -> None:
        streams = batch_size * world_size
        self.steps = (len(tokens) - 1) // streams
        if self.steps < 1:
            raise DataError(
                f"{len(tokens)} tokens are too few for {streams} streams; lower data.batch_size or add text"
            )
        self.tokens, self.seq_len = tokens, seq_len
        self.starts = [(rank * batch_size + i) * self.steps for i in range(batch_size)]

    def __len__(self) -> int:
        return math.ceil(self.steps / self.seq_len)

    def iterate(self, start: int = 0) -> Iterator[dict]:
        """(B, T) windows of the streams from the ``start``-th on, each with its shifted targets."""
        for window in range(start, len(self)):
            lo = window * self.seq_len
            hi = min(lo + self.seq_len, self.steps)
            block = np.stack([self.tokens[s + lo : s + hi + 1] for s in self.starts]).astype(np.int64)  # (B, t+1)
            ids = torch.from_numpy(block)
            yield {"input_ids": ids[:, :-1], "targets": ids[:, 1:]}

    def __iter__(self) -> Iterator[dict]:
        return self.iterate(0)

"""Classification splits to ``input_ids``/``length``/``labels`` columns (``Dataset.map``), and texts for inference.

Batching the encoded splits is :mod:`textrnn.data.batching`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from ..core.config import DataConfig
from ..core.errors import DataError
from .batching import TEACHER_COLUMN
from .labels import LabelEncoder, LabelSpec
from .loading import column_chunks, require_column
from .tokenization import TextTokenizer

MAX_CHARS_PER_TOKEN = 64  # inference pre-truncates text to max_length * this many characters


def iter_texts(ds: Any, columns: Sequence[str], separator: str = " | ") -> Iterator[str]:
    """The texts of one or several columns (joined by ``separator``), 1,000 rows at a time; None is ""."""
    for batch in ds.iter(batch_size=1000):
        yield from join_fields(batch, columns, separator)


# ---------------------------------------------------------------------------- encoding
def join_fields(columns: dict, text_columns: Sequence[str], separator: str) -> list[str]:
    """One text per row from one or several text columns: ``title + separator + body``.

    Missing fields (None) count as empty; with one column this is that column's texts.
    """
    fields = [[t if isinstance(t, str) else "" for t in columns[name]] for name in text_columns]
    return fields[0] if len(fields) == 1 else [separator.join(parts) for parts in zip(*fields)]


def encode_classification(ds: Any, tokenizer: TextTokenizer, text_columns: Sequence[str], labels: Any=None,
                          max_length: Optional[int] = None, separator: str = " | ") -> Any:
    """Tokenize a split with ``Dataset.map(batched=True)``: cached, memory-mapped, Rust-side batch encoding.

    Produces ``input_ids`` (truncated to ``max_length``), ``length`` and, with a
    :class:`~textrnn.data.labels.LabelEncoder`, ``labels`` (ids, or 0/1 rows for multi-label; -1
    where a label is missing). Batches travel as Arrow tables and the ids as one flat array
    plus offsets, so no Python work is done per text.
    """
    import pyarrow as pa

    wanted = list(text_columns) + (labels.columns if labels is not None else [])

    def encode(batch: "pa.Table") -> "pa.Table":
        columns = {name: batch.column(name).to_pylist() for name in wanted}
        values, offsets = tokenizer.encode_flat(join_fields(columns, text_columns, separator))
        full = np.diff(offsets)
        if max_length is not None:
            values, offsets = truncate_flat(values, offsets, max_length)
        out = {"input_ids": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, pa.int32())),
               "length": pa.array(np.diff(offsets), pa.int64())}
        if max_length is not None:  # what the cap cut, for its warning (encode_split reads and drops it)
            out["full_length"] = pa.array(full, pa.int64())
        if labels is not None:
            out["labels"] = pa.array(labels.encode(columns), labels.arrow_type())
        return pa.table(out)

    # datasets would fingerprint the closure by pickling it, tokenizer and all: that costs
    # more than the encoding. Our own key names exactly what the output depends on.
    key = [ds._fingerprint, tokenizer.tokenizer.to_str(), list(text_columns), separator, max_length,
           labels.key() if labels is not None else None, "full_length"]
    fingerprint = hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()[:32]
    return ds.with_format("arrow").map(encode, batched=True, batch_size=20000, remove_columns=ds.column_names,
                                       desc="encoding", new_fingerprint=fingerprint).with_format(None)


def truncate_flat(values: np.ndarray, offsets: np.ndarray, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first ``max_length`` ids of every row of a flat (values, offsets) batch."""
    lengths = np.diff(offsets)
    position = np.arange(len(values)) - np.repeat(offsets[:-1], lengths)  # index within its row
    kept = np.minimum(lengths, max_length)
    return values[position < max_length], np.concatenate([[0], np.cumsum(kept)]).astype(np.int64)


def require_unicode(text: str, what: str) -> None:
    """A one-line error unless ``text`` is valid Unicode (a lone surrogate, from JSON's \\ud800, is not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(f"{what} is not valid Unicode (a lone surrogate at character {exc.start}); "
                        "send UTF-8 text") from None


def as_texts(texts: Union[str, Iterable[str]]) -> Iterable[str]:
    """``texts`` to iterate over: a lone string is one text, never its characters one by one."""
    return [texts] if isinstance(texts, str) else texts


def encode_for_inference(tokenizer: TextTokenizer, texts: Sequence[str], limit: int) -> tuple[list, list]:
    """Encode texts for prediction in bounded memory, keeping the first ``limit`` tokens.

    Text beyond ``limit * 64`` characters is dropped before tokenizing, so a huge input costs
    no more than a long one. Returns the id lists and, per text, whether it was cut.
    """
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"text {i} is {type(text).__name__}, not a string; pass strings (a list of them, or one)")
    cut = [t[: limit * MAX_CHARS_PER_TOKEN + 1] for t in texts]
    rows = tokenizer.encode_batch(cut)
    return [row[:limit] for row in rows], [len(row) > limit for row in rows]


def text_columns(ds: Any, data: DataConfig) -> list:
    """The text column(s) a split must have, checked."""
    names = data.text_column if isinstance(data.text_column, list) else [data.text_column]
    return [require_column(ds, name, "text_column") for name in names]


def label_source(data: DataConfig) -> list:
    """The label column(s) a data section names: ``label_columns``, else ``label_column``."""
    return list(data.label_columns) if data.label_columns else [data.label_column]


def encode_split(ds: Any, tokenizer: TextTokenizer, data: DataConfig, spec: LabelSpec) -> tuple[Any, list]:
    """Check a split's text and label columns, then encode it against the spec's label names.

    Returns the encoded split and ``[texts cut to data.max_length, the longest one's tokens]``."""
    labels = LabelEncoder(ds, spec.columns, spec.names, spec.problem_type)
    encoded = encode_classification(ds, tokenizer, text_columns(ds, data), labels, data.max_length,
                                    data.field_separator)
    if TEACHER_COLUMN in ds.column_names:  # a transfer set's teacher outputs ride along, row for row
        import datasets

        encoded = datasets.concatenate_datasets([encoded, ds.select_columns([TEACHER_COLUMN])], axis=1)
    if "full_length" not in encoded.column_names:
        return encoded, [0, 0]
    full = column_array(encoded, "full_length")
    cut = [int((full > (data.max_length or 0)).sum()), int(full.max(initial=0))]
    return encoded.remove_columns("full_length"), cut


def cut_warning(cut: list, rows: int, what: str, max_length: Optional[int]) -> Optional[str]:
    """The warning for texts cut to ``data.max_length`` (None when none was)."""
    if not cut or not cut[0]:
        return None
    return (f"warning: {cut[0]:,} of {rows:,} texts of {what} are longer than data.max_length={max_length} tokens "
            f"(the longest: {cut[1]:,}) and keep their first {max_length}; raise data.max_length (null: no cap) to "
            "read more of them")


def column_array(encoded: Any, name: str, batch_size: int = 1 << 20) -> np.ndarray:
    """A numeric column as one array, read a million rows at a time through Arrow (no per-row Python)."""
    parts = [chunk.to_numpy() for chunk in column_chunks(encoded, name, batch_size)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def id_counts(encoded: Any, size: int, batch_size: int = 100_000) -> np.ndarray:
    """How often each id occurs in the ``input_ids`` of an encoded split, (size,) int64, a batch at a time."""
    counts = np.zeros(size, dtype=np.int64)
    for chunk in column_chunks(encoded, "input_ids", batch_size):
        ids = chunk.combine_chunks().flatten().to_numpy()
        counts += np.bincount(ids, minlength=size)[:size]
    return counts


def label_array(encoded: Any) -> np.ndarray:
    """The ``labels`` column as an array: (N,) ids or (N, C) rows."""
    labels = encoded.select_columns(["labels"]).with_format("numpy")[:]["labels"]
    return np.stack(labels) if labels.dtype == object else np.asarray(labels)


def labelled_rows(labels: np.ndarray) -> np.ndarray:
    """The indices of rows that have a label: (N,) ids, or (N, C) rows; a missing one is encoded as -1."""
    return np.flatnonzero(labels >= 0 if labels.ndim == 1 else (labels >= 0).all(1))


def labelled(encoded: Any, what: str,
             hint: str = "give labels, or set data.validation_split to a labelled split") -> Any:
    """The examples that have a label (a missing one is encoded as -1); none at all is an error."""
    keep = labelled_rows(label_array(encoded))
    if len(keep) == 0:
        raise DataError(f"{what} has no labels (every label is -1 or missing); {hint}")
    return encoded if len(keep) == len(encoded) else encoded.select(keep)

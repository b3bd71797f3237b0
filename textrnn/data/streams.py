"""Language-model text: the train/validation texts of a corpus, and one flat memory-mapped token file.

A corpus without a validation split is cut by character position, the first 1 -
``validation_fraction`` for training (nanoGPT's split). ``encode_stream`` writes the ids
chunk by chunk, so memory stays bounded whatever the corpus size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

from ..core.config import DataConfig
from ..core.errors import DataError
from .loading import BUILTIN_PREFIX, VALIDATION_NAMES, load_raw, require_column, require_split
from .tokenization import EOS_ID, TextTokenizer


# ---------------------------------------------------------------------------- language modelling
def iter_text(ds: Any, column: str, separator: str, start: int = 0, stop: Optional[int] = None) -> Iterator[str]:
    """Texts of rows (each followed by ``separator``) restricted to characters [start, stop)."""
    position = 0
    for batch in ds.iter(batch_size=1000):
        for text in batch[column]:
            piece = (text or "") + separator
            end = position + len(piece)
            if end > start and (stop is None or position < stop):
                lo, hi = max(start - position, 0), len(piece) if stop is None else min(stop - position, len(piece))
                yield piece[lo:hi]
            position = end
            if stop is not None and position >= stop:
                return


def count_chars(ds: Any, column: str, separator: str) -> int:
    """Characters of a column's rows, each followed by ``separator``."""
    return sum(len(t or "") + len(separator) for batch in ds.iter(batch_size=1000) for t in batch[column])


def encode_stream(texts: Iterable[str], tokenizer: TextTokenizer, path: Path, reverse: bool = False,
                  chunk_chars: int = 1 << 22) -> np.memmap:
    """Encode texts into one flat token file (uint8/16/32) and memory-map it.

    Char tokenizers go through a NumPy lookup table over chunks of ``chunk_chars``; other
    kinds encode rows in batches and end each row with ``<eos>``. Memory stays bounded by the
    chunk size, whatever the corpus size. ``reverse`` stores the stream last token first, the
    text a right-to-left language model reads (``a b <eos> c <eos>`` -> ``<eos> c <eos> b a``:
    each row reversed, and ``<eos>`` now opens the row it closed).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    forward = path.with_name(path.name + ".forward") if reverse else path
    count = 0
    with open(forward, "wb") as out:
        for ids in _encoded_chunks(texts, tokenizer, chunk_chars):
            ids.tofile(out)
            count += len(ids)
    if count < 2:
        raise DataError("the corpus has fewer than 2 tokens; give a dataset with text in it")
    if reverse:
        _write_reversed(np.memmap(forward, dtype=tokenizer.id_dtype, mode="r"), path, chunk_chars)
        forward.unlink()
    return np.memmap(path, dtype=tokenizer.id_dtype, mode="r")


def _write_reversed(tokens: np.memmap, target: Path, chunk: int) -> None:
    """``tokens`` last first, written to ``target`` chunk by chunk (memory stays one chunk)."""
    with open(target, "wb") as out:
        for end in range(len(tokens), 0, -chunk):
            tokens[max(0, end - chunk):end][::-1].tofile(out)


def stream_counts(tokens: np.ndarray, size: int, chunk: int = 1 << 24) -> np.ndarray:
    """How often each id occurs in a token stream, (size,) int64, counted a chunk at a time (no int64 copy)."""
    counts = np.zeros(size, dtype=np.int64)
    for start in range(0, len(tokens), chunk):
        counts += np.bincount(tokens[start:start + chunk], minlength=size)[:size]
    return counts


def _encoded_chunks(texts: Iterable[str], tokenizer: TextTokenizer, chunk_chars: int) -> Iterator[np.ndarray]:
    buffer: list[str] = []
    size = 0
    for text in texts:
        buffer.append(text)
        size += len(text)
        if size >= chunk_chars:
            yield _encode_rows(buffer, tokenizer)
            buffer, size = [], 0
    if buffer:
        yield _encode_rows(buffer, tokenizer)


def _encode_rows(rows: list[str], tokenizer: TextTokenizer) -> np.ndarray:
    if tokenizer.kind == "char":
        return tokenizer.encode_chars("".join(rows))
    values, offsets = tokenizer.encode_flat(rows)  # each row then ends with <eos>, inserted without a Python loop
    return np.insert(values, offsets[1:], EOS_ID).astype(tokenizer.id_dtype, copy=False)


def lm_splits(raw: Any, d: DataConfig) -> tuple[Callable[[], Iterator[str]], Callable[[], Iterator[str]]]:
    """Two callables giving the train and validation texts.

    With a validation split in the data, it is used whole. Otherwise the training text is cut
    by character position: the first 1 - validation_fraction for training, the rest for
    validation (nanoGPT's split for tiny shakespeare).
    """
    train = require_split(raw, d.train_split, "data.train_split")
    column = require_column(train, d.text_column, "text_column")
    sep = lm_separator(raw, d.separator, d.dataset)
    if not validation_is_cut(raw, d):
        valid_name = d.validation_split or next(n for n in VALIDATION_NAMES if n in raw)
        valid = require_split(raw, valid_name, "data.validation_split")
        return (lambda: iter_text(train, column, sep)), (lambda: iter_text(valid, column, sep))
    total = count_chars(train, column, sep)
    if total < 2:
        raise DataError(f"the {d.train_split!r} split has no text; give a corpus with text in it")
    cut = int(total * (1 - d.validation_fraction))
    return (lambda: iter_text(train, column, sep, 0, cut)), (lambda: iter_text(train, column, sep, cut))


UNLABELED_KEYS = ("dataset", "config_name", "split", "text_column")


def unlabeled_texts(d: DataConfig, raw: Any, workdir: Path) -> list:
    """Callables giving the text of each ``data.unlabeled`` source, more training text for a language model.

    A source is a path or Hub name (its ``train`` split, the ``text_column`` of the data or
    ``text``), or a dict of ``dataset`` (default: the data's own, so ``{split: unsupervised}``
    or ``{text_column: review_title}`` reads more of it), ``config_name``, ``split`` and ``text_column``.
    ``raw`` is the data's own DatasetDict, already loaded: a source naming neither a dataset nor a
    configuration reads it rather than loading it again.
    """
    sources = []
    for i, entry in enumerate(d.unlabeled or []):
        spec = {"dataset": entry} if isinstance(entry, str) else entry
        if not isinstance(spec, dict) or set(spec) - set(UNLABELED_KEYS):
            raise DataError(f"data.unlabeled[{i}] must be a path/Hub name or a dict of {', '.join(UNLABELED_KEYS)}; "
                            f"got {entry!r}")
        name = spec.get("dataset", d.dataset)
        source = raw if not {"dataset", "config_name"} & set(spec) else load_raw(
            name, str(workdir), spec.get("config_name", d.config_name if "dataset" not in spec else None))
        split_name = spec.get("split", "train")
        split = require_split(source, split_name, f"data.unlabeled[{i}].split")
        if source is raw and split_name == d.train_split and validation_is_cut(raw, d):
            raise DataError(
                f"data.unlabeled[{i}] reads the {split_name!r} split, whose last {d.validation_fraction:.0%} "
                "is the validation text here; name another split or dataset"
            )
        default = d.text_column if d.text_column in split.column_names else "text"
        column = require_column(split, spec.get("text_column", default), f"unlabeled[{i}].text_column")
        sep = lm_separator(source, d.separator, name)
        sources.append(lambda split=split, column=column, sep=sep: iter_text(split, column, sep))
    return sources


def validation_is_cut(raw: Any, d: DataConfig) -> bool:
    """Whether validation is the tail of the training text (no validation split named or present)."""
    return d.validation_split is None and not any(n in raw for n in VALIDATION_NAMES)


def lm_separator(raw: Any, separator: Optional[str], dataset: str) -> str:
    """Between rows: nothing for text files (their rows keep their line breaks), else a newline."""
    if separator is not None:
        return separator
    builder = getattr(next(iter(raw.values())), "builder_name", None) or ""
    return "" if builder == "text" or dataset.startswith(BUILTIN_PREFIX) else "\n"

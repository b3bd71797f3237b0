"""Batch prediction over files of any size: streamed in, length-sorted within chunks, written back in order.

::

    input file ──► chunk of 2,048 texts ──► tokenize (Rust, parallel) ──► sort by length
                                                                            │
    output, in input order ◄── put each result back at its index ◄── batches of similar length

Sorting a chunk by length means a batch pads its texts to a similar length, so little work
goes to padding; the chunk bounds memory, which does not grow with the file. ``evaluate``
sorts the same way (:class:`textrnn.data.batching.SortedBatches`).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from contextlib import contextmanager
from itertools import islice
from typing import IO, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch

from ..core.errors import DataError
from ..core.runtime import eval_mode
from ..data.batching import pad_batch
from ..data.encoding import encode_for_inference

CHUNK = 2048
DEFAULT_MAX_TOKENS = 10_000


@torch.no_grad()
def predict_stream(model, texts: Iterable[str], batch_size: int = 64, max_length: Optional[int] = None,
                   chunk_size: int = CHUNK) -> Iterator[dict]:
    """One result per text, in input order (see ``_Classifier.predict`` for the fields), streamed."""
    tokenizer, limit = model.require_tokenizer(), max_length or DEFAULT_MAX_TOKENS
    texts = iter(texts)
    with eval_mode(model):
        while chunk := list(islice(texts, chunk_size)):
            ids, cut = encode_for_inference(tokenizer, chunk, limit)
            results: list = [None] * len(chunk)
            order = np.argsort([len(row) for row in ids], kind="stable")
            for start in range(0, len(order), batch_size):
                members = order[start:start + batch_size]
                input_ids, lengths = pad_batch([ids[i] for i in members], model.config.pad_id)
                logits, _ = model(input_ids.to(model.device), lengths)
                for i, row in zip(members, model.probabilities(logits).cpu().tolist()):
                    results[i] = model.result_of(row) | ({"truncated_to_tokens": limit} if cut[i] else {})
            yield from results


def read_texts(path: str, fields: Sequence[str] = ("text",), separator: str = " | ") -> Iterator[str]:
    """Texts of a file, streamed: one per line, or jsonl (first line ``{``) with a ``text`` field or the
    model's text fields, joined by ``separator``. UTF-8; a BOM is dropped; blank jsonl lines are skipped."""
    with open_text(path) as handle:
        blank = 0
        for line in handle:
            if line.strip():
                break
            blank += 1
        else:
            raise DataError(f"{path} is empty; give one text per line")
        is_json = line.lstrip().startswith("{")
        if not is_json:
            yield from [""] * blank  # in a plain file a blank line is a text too
        yield from _texts_of(line, blank + 1, path, is_json, list(fields), separator)
        for number, line in enumerate(handle, blank + 2):
            yield from _texts_of(line, number, path, is_json, list(fields), separator)


@contextmanager
def open_text(path: str) -> Iterator[IO[str]]:
    if not os.path.isfile(path):
        raise DataError(f"input file not found: {path}")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        try:
            yield handle
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path} is not UTF-8 (bad byte near offset {exc.start}); convert it, e.g. iconv -t UTF-8"
            ) from None


def _texts_of(line: str, number: int, path: str, is_json: bool, fields: list, separator: str) -> Iterator[str]:
    line = line.rstrip("\r\n")
    if not is_json:
        yield line
    elif line.strip():
        yield json_text(line, number, path, fields, separator)


def json_text(line: str, number: int, path: str, fields: list, separator: str) -> str:
    """A jsonl row's text: the model's text fields joined, or a ready-made ``text``."""
    try:
        row = json.loads(line)
        if isinstance(row, dict) and all(name in row for name in fields):
            return separator.join("" if row[name] is None else str(row[name]) for name in fields)
        return str(row["text"])
    except (ValueError, KeyError, TypeError):
        wanted = " and ".join(f"'{name}'" for name in dict.fromkeys([*fields, "text"]))
        raise DataError(f"{path} line {number} is not a JSON object with a {wanted} field") from None


class PredictionWriter:
    """Results as jsonl (``{"index", "label"/"labels", "probabilities"}``) or csv (one probability column per label)."""

    def __init__(self, handle: IO[str], fmt: str, label_names: list) -> None:
        self.handle, self.fmt, self.label_names = handle, fmt, label_names
        self.csv = csv.writer(handle) if fmt == "csv" else None
        if self.csv is not None:
            self.csv.writerow(["index", "label", *[f"p_{name}" for name in label_names]])

    def write(self, index: int, result: dict) -> None:
        if self.csv is None:
            self.handle.write(json.dumps({"index": index, **result}) + "\n")
            return
        label = result["label"] if "label" in result else "|".join(result["labels"])
        self.csv.writerow([index, label, *[f"{result['probabilities'][n]:.6g}" for n in self.label_names]])


def output_format(path: Optional[str], fmt: Optional[str]) -> str:
    """``--format``, else the output file's extension (``.csv``), else jsonl."""
    chosen = fmt or ("csv" if path and path.lower().endswith(".csv") else "jsonl")
    if chosen not in ("jsonl", "csv"):
        raise DataError(f"unknown output format {chosen!r}; use jsonl or csv")
    if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise DataError(f"output folder {os.path.dirname(path)} does not exist; create it or choose another --output")
    return chosen


@contextmanager
def output_stream(path: Optional[str]) -> Iterator[IO[str]]:
    """stdout, or a file written under a temporary name and renamed when complete (no half files)."""
    if path is None:
        yield sys.stdout
        return
    temporary = f"{path}.partial"
    with open(temporary, "w", encoding="utf-8", newline="") as handle:
        yield handle
    os.replace(temporary, path)


def progress(total: Optional[int], enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, file=sys.stderr, unit="text", dynamic_ncols=True, desc="predict",
                mininterval=0.5)


def count_lines(path: str) -> int:
    """Lines in a file, read in 1 MB blocks (the progress bar's total)."""
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))

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
from contextlib import contextmanager, suppress
from itertools import islice
from typing import IO, Any, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch

from ..core.durable import durable_replace
from ..core.errors import DataError, one_line
from ..core.runtime import eval_mode
from ..data.batching import pad_batch
from ..data.encoding import as_texts, encode_for_inference
from ..data.loading import not_utf8, python_encoding
from .contract import Scorer

CHUNK = 2048
DEFAULT_MAX_TOKENS = 10_000


@torch.no_grad()
def predict_stream(model: Scorer, texts: Iterable[str], batch_size: int = 64, max_length: Optional[int] = None,
                   chunk_size: int = CHUNK, top_k: Optional[int] = None, explain: bool = False) -> Iterator[dict]:
    """One result per text, in input order (see ``TextClassifier.predict`` for the fields), streamed; ``explain``
    adds each text's ``explanation`` (``model.explain(text)``: the predicted label's token attributions)."""
    for name, value in (("batch_size", batch_size), ("max_length", max_length), ("top_k", top_k)):
        if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1):
            raise DataError(f"{name} must be an integer of at least 1, got {value} (--{name.replace('_', '-')} on the "
                            "command line)")
    tokenizer, limit = model.require_tokenizer(), max_length or DEFAULT_MAX_TOKENS
    texts = iter(as_texts(texts))
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
            if explain:
                for result, text, row in zip(results, chunk, ids):  # a text with no tokens has nothing to explain
                    result["explanation"] = model.explain(text) if row else None
            yield from (keep_top_k(result, top_k) for result in results)


def keep_top_k(result: dict, top_k: Optional[int]) -> dict:
    """A result whose ``probabilities`` keep the ``top_k`` most likely labels, most likely first (None: all)."""
    if top_k is None:
        return result
    ranked = sorted(result["probabilities"].items(), key=lambda item: -item[1])[:top_k]
    return {**result, "probabilities": dict(ranked)}


TABLES = (".csv", ".tsv", ".parquet")


def read_texts(path: str, fields: Sequence[str] = ("text",), separator: str = " | ",
               encoding: str = "utf-8") -> Iterator[str]:
    """Texts of a file, streamed, in row order, joined by ``separator`` when there are several ``fields``:

    * ``.csv``, ``.tsv``, ``.parquet``: the ``fields`` columns of each row (a header names them);
    * jsonl (first line ``{``): the ``fields`` of each object, or its ``text``; blank lines are skipped;
    * any other file: one text per line.

    UTF-8 unless ``encoding`` says otherwise (``--encoding``); a UTF-8 BOM is dropped.
    """
    if os.path.splitext(path)[1].lower() in TABLES:
        yield from table_texts(path, list(fields), separator, encoding)
        return
    with open_text(path, encoding) as handle:
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
def open_text(path: str, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text file for reading (UTF-8 by default, a BOM dropped); a one-line error if missing or not in
    ``encoding``."""
    if not os.path.isfile(path):
        raise DataError(f"input file not found: {path}")
    with open(path, encoding=python_encoding(encoding), newline="") as handle:
        try:
            yield handle
        except UnicodeDecodeError as exc:
            raise DataError(not_utf8(path, exc.start, encoding, "--encoding")) from None


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
        if isinstance(locals().get("row"), dict):
            missing = next(name for name in fields if name not in row)
            raise DataError(f"column {missing!r} not found in {path} line {number} (available: {', '.join(row)}); "
                            "pass --text-column with one of them") from None
        wanted = " and ".join(f"'{name}'" for name in dict.fromkeys([*fields, "text"]))
        raise DataError(f"{path} line {number} is not a JSON object with a {wanted} field") from None


def table_texts(path: str, fields: list, separator: str, encoding: str = "utf-8") -> Iterator[str]:
    """The ``fields`` columns of a csv, tsv or parquet file, joined by ``separator``, a batch of rows at a time."""
    names, batches = open_table(path, fields, encoding)
    for name in fields:
        if name not in names:
            raise DataError(f"column {name!r} not found in {path} (available: {', '.join(names)}); "
                            "pass --text-column with one of them")
    for batch in batches:
        columns = [batch.column(name).to_pylist() for name in fields]
        for values in zip(*columns):
            yield separator.join("" if value is None else str(value) for value in values)


def open_table(path: str, fields: list, encoding: str = "utf-8") -> tuple[list, Iterator]:
    """A table's column names and an iterator of its Arrow record batches (read as they are needed)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    if not os.path.isfile(path):
        raise DataError(f"input file not found: {path}")
    try:
        if path.lower().endswith(".parquet"):
            table = pq.ParquetFile(path)
            return table.schema_arrow.names, table.iter_batches(batch_size=4096)
        parse = pa_csv.ParseOptions(delimiter="\t" if path.lower().endswith(".tsv") else ",", newlines_in_values=True)
        convert = pa_csv.ConvertOptions(column_types={name: pa.string() for name in fields})  # "007" stays "007"
        read = pa_csv.ReadOptions(encoding=python_encoding(encoding).replace("utf-8-sig", "utf8"))
        reader = pa_csv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        return reader.schema.names, iter(reader)
    except (pa.ArrowException, OSError) as exc:
        hint = "pass --encoding with its encoding (e.g. --encoding latin-1)" if "UTF8" in str(exc) else "check the file"
        raise DataError(f"could not read {path} as a table ({one_line(exc)}); {hint}") from None


def count_rows(path: str) -> Optional[int]:
    """Texts in an input file, for the progress bar: a parquet file's row count, a csv's is unknown (None)."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return None if suffix in TABLES else count_lines(path)


class PredictionWriter:
    """Results as jsonl (``{"index", "label"/"labels", "probabilities"}``) or csv (one probability column per label)."""

    def __init__(self, handle: IO[str], fmt: str, label_names: list) -> None:
        self.handle, self.fmt, self.label_names = handle, fmt, label_names
        self.csv = csv.writer(handle) if fmt == "csv" else None
        if self.csv is not None:
            self.csv.writerow(["index", "label", *[f"p_{name}" for name in label_names]])

    def write(self, index: int, result: dict) -> None:
        """Write one text's result (its input index, label(s) and probabilities)."""
        if self.csv is None:
            self.handle.write(json.dumps({"index": index, **result}) + "\n")
            return
        label = result["label"] if "label" in result else "|".join(result["labels"])
        probs = result["probabilities"]  # with top_k, the other labels' columns stay empty
        self.csv.writerow([index, label, *[f"{probs[n]:.6g}" if n in probs else "" for n in self.label_names]])


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
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            yield handle
        durable_replace(temporary, path)
    except BaseException:  # a bad row part way, Ctrl-C: no half file is left behind, under either name
        with suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def progress(total: Optional[int], enabled: bool) -> Any:
    """A progress bar on stderr for ``total`` texts (None: count without a total)."""
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, file=sys.stderr, unit="text", dynamic_ncols=True, desc="predict",
                mininterval=0.5)


def count_lines(path: str) -> int:
    """Lines in a file, read in 1 MB blocks (the progress bar's total)."""
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))

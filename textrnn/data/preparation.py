"""Preparation: a config's data to a tokenizer and encoded splits, once, in the shared cache (:mod:`.cache`).

::

    prepare_language_model(config) -> PreparedLM             tokenizer.json, train.bin, validation.bin
    prepare_classification(config) -> PreparedClassification tokenizer.json, train/, validation/ (Arrow)

The key holds what the result depends on: the data (a local file's size, time and sampled
hash; a loaded dataset's fingerprints), its columns and split rule, the tokenizer (its settings,
or the JSON of one given), ``reverse`` and ``max_length``. A second run, a rank, or ``textrnn
prepare`` before training, finds the folder and memory-maps it: nothing is encoded again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..core.config import ExperimentConfig
from ..core.errors import DataError, one_line
from .cache import SCRATCH, PreparedCache, cache_key, cache_root, dataset_identity, local_identity
from .encoding import column_array, cut_warning, encode_split, iter_texts, labelled, text_columns
from .labels import SINGLE, LabelSpec, detect_labels
from .loading import BUILTIN_PREFIX, IN_MEMORY, TextFile, load_raw, plain_text_file, split_dataset
from .streams import encode_stream, lm_splits, unlabeled_texts, validation_is_cut
from .tokenization import TextTokenizer, train_tokenizer

TOKENIZER_JSON = "tokenizer.json"
LOG = logging.getLogger(__name__)


@dataclass
class PreparedLM:
    """A language model's prepared data: its tokenizer and two memory-mapped token streams."""

    tokenizer: TextTokenizer
    train_tokens: np.ndarray
    valid_tokens: np.ndarray
    folder: Path
    meta: dict
    note: str = ""  # one line: found or prepared, where, and what it holds


@dataclass
class PreparedClassification:
    """A classifier's prepared data: tokenizer, label schema, text fields and two encoded Arrow splits."""

    tokenizer: TextTokenizer
    spec: LabelSpec
    text_columns: list
    train_set: Any
    valid_set: Any
    folder: Path
    meta: dict
    note: str = ""  # one line: found or prepared, where, and what it holds


# ---------------------------------------------------------------------------- keys
def source_parts(config: ExperimentConfig, raw: Any) -> tuple[dict, Any]:
    """(what identifies the data, the DatasetDict if it had to be loaded to know): local files by
    their stat and sampled hash, built-ins by the Python that makes them, the rest by fingerprints."""
    d = config.data
    parts: dict = {"dataset": d.dataset, "config_name": d.config_name, "encoding": d.encoding}
    if raw is not None:
        return {**parts, "dataset": IN_MEMORY, "fingerprints": dataset_identity(raw), "rows": split_rows(raw)}, raw
    if d.dataset.startswith(BUILTIN_PREFIX):
        return {**parts, "python": sys.version}, None
    local = local_identity(d.dataset)
    if local is not None:
        return {**parts, "files": local}, None
    raw = load_raw(d.dataset, None, d.config_name, encoding=d.encoding)  # a Hub dataset: the HF cache maps it
    return {**parts, "fingerprints": dataset_identity(raw), "rows": split_rows(raw)}, raw


def split_rows(raw: Any) -> dict:
    """Rows of each split (an empty validation split means validation is cut from train)."""
    return {name: getattr(split, "num_rows", None) for name, split in raw.items()}


def split_names(source: dict) -> Optional[set]:
    """The splits with rows that the data is known to have without loading it (None: unknown, so the key
    holds the seed that a cut would use). A folder of files is unknown: which names ``datasets`` maps to a
    validation split (``train_validated.csv``?) and whether it has rows is decided only when it loads."""
    if "fingerprints" in source:
        rows = source.get("rows", {})
        return {name for name in source["fingerprints"] if rows.get(name) != 0}
    files = source.get("files")
    if isinstance(files, dict):
        return {"train"}  # one file is one training split
    return None


def tokenizer_part(config: ExperimentConfig, tokenizer: Optional[TextTokenizer]) -> dict:
    """A tokenizer given (a checkpoint's, a language model's) by its JSON, else the settings that train one."""
    if tokenizer is not None:
        return {"tokenizer_sha256": hashlib.sha256(tokenizer.tokenizer.to_str().encode()).hexdigest()}
    settings = dataclasses.asdict(config.tokenizer)
    return {"tokenizer": {k: v for k, v in settings.items() if k not in ("sample_texts", "from_file")}}


def configured_tokenizer(config: ExperimentConfig) -> Optional[TextTokenizer]:
    """``tokenizer.from_file`` loaded (a ``tokenizer.json``, or a folder that holds one), else None."""
    path = config.tokenizer.from_file
    if not path:
        return None
    folder = Path(os.path.expanduser(path))
    return TextTokenizer.from_file(folder / TOKENIZER_JSON if folder.is_dir() else folder)


def data_parts(config: ExperimentConfig, source: dict, fields: tuple) -> dict:
    """The part of a cache key the data section decides: ``fields`` of it, the source, and the seed of a cut."""
    d = config.data
    parts = {name: getattr(d, name) for name in fields}
    known = split_names(source)  # None: unknown, so validation may be cut from train
    cut = validation_is_cut(known if known is not None else set(), d)
    return {**parts, "source": source, "cut_seed": config.train.seed if cut else None}


LM_FIELDS = ("text_column", "train_split", "validation_split", "validation_fraction", "separator", "unlabeled")
CLASSIFICATION_FIELDS = ("text_column", "field_separator", "label_column", "label_columns", "train_split",
                         "validation_split", "validation_fraction", "max_length")


def unlabeled_parts(config: ExperimentConfig) -> list:
    """The identity of each local ``data.unlabeled`` source (Hub ones are named in the config)."""
    entries = config.data.unlabeled or []
    names = [entry if isinstance(entry, str) else entry.get("dataset") for entry in entries if entry]
    return [local_identity(name) for name in names if isinstance(name, str)]


# ---------------------------------------------------------------------------- the cache, found or built
def open_cache(config: ExperimentConfig, kind: str, parts: dict, build: Callable[[Path], dict],
               reusable: Optional[Callable[[Path, dict], bool]] = None) -> tuple[Path, dict, str]:
    """The folder of ``parts`` (built if missing), its meta and a one-line note of which.

    ``reusable``: with a tokenizer given, the folder its settings built is used when it holds
    that very tokenizer (a resumed run finds its first run's data).
    """
    cache = PreparedCache(cache_root(config.data.cache_dir), config.data.prepare_timeout)
    if reusable is not None:
        settings = {key: value for key, value in parts.items() if key not in ("tokenizer_sha256", "labels")}
        trained = cache.find(cache_key(kind, {**settings, **tokenizer_part(config, None)}))
        if trained is not None and reusable(*trained):
            return (*trained, f"data: found {trained[0]} ({summary(trained[1])})")
    start = time.monotonic()
    folder, meta, built = cache.get(cache_key(kind, parts), build)
    what = f"prepared in {time.monotonic() - start:.1f} s into" if built else "found"
    return folder, meta, f"data: {what} {folder} ({summary(meta)})"


def summary(meta: dict) -> str:
    """Rows, tokens, vocabulary and size of a cache folder, in one line."""
    rows = meta.get("rows")
    tokens = meta["tokens"]
    size = sum(meta.get("files", {}).values()) / 1e6
    text = f"{tokens['train']:,} training and {tokens['validation']:,} validation tokens"
    if rows:
        text = f"{rows['train']:,} training and {rows['validation']:,} validation rows, " + text
    return f"{text}, vocabulary {meta['vocab_size']:,}, {size:,.1f} MB, {meta['seconds'] / 60:.1f} min to prepare"


def same_tokenizer(folder: Path, tokenizer: TextTokenizer) -> bool:
    """Whether the cache folder holds exactly ``tokenizer``."""
    return TextTokenizer.from_file(folder / TOKENIZER_JSON).tokenizer.to_str() == tokenizer.tokenizer.to_str()


# ---------------------------------------------------------------------------- language models
def prepare_language_model(config: ExperimentConfig, tokenizer: Optional[TextTokenizer] = None,
                           raw: Any = None) -> PreparedLM:
    """Tokenizer plus train/validation token files of a language-model config, from the cache or built there.

    ``tokenizer``: one to keep (a resumed run's); else one is trained as ``config.tokenizer`` says.
    ``raw``: a DatasetDict in memory, read instead of ``config.data.dataset``.
    """
    source, loaded = source_parts(config, raw)
    parts = {**data_parts(config, source, LM_FIELDS), "unlabeled_sources": unlabeled_parts(config),
             "reverse": config.model.reverse, **tokenizer_part(config, tokenizer)}

    def build(tmp: Path) -> dict:
        start = time.monotonic()
        text_file = plain_text_file(config.data.dataset) if loaded is None and not config.data.unlabeled else None
        d = config.data
        data = ({"train": TextFile(text_file, d.encoding)} if text_file is not None else loaded if loaded is not None
                else load_raw(d.dataset, str(tmp / SCRATCH), d.config_name, encoding=d.encoding))
        train_texts, valid_texts = lm_splits(data, config.data)
        extra = unlabeled_texts(config.data, data, tmp / SCRATCH)
        texts = (lambda: itertools.chain(train_texts(), *(more() for more in extra))) if extra else train_texts
        tok = tokenizer or train_tokenizer(texts, config.tokenizer)
        tok.save(tmp / TOKENIZER_JSON)
        train = encode_stream(texts(), tok, tmp / "train.bin", config.model.reverse)
        valid = encode_stream(valid_texts(), tok, tmp / "validation.bin", config.model.reverse)
        return {"kind": "language_model", "dtype": str(train.dtype), "vocab_size": tok.vocab_size,
                "tokenizer_kind": tok.kind, "tokens": {"train": len(train), "validation": len(valid)},
                "seconds": time.monotonic() - start, "key": parts}

    reusable = (lambda folder, _: same_tokenizer(folder, tokenizer)) if tokenizer is not None else None
    folder, meta, note = open_cache(config, "lm", parts, build, reusable)

    def read() -> PreparedLM:
        tok = TextTokenizer.from_file(folder / TOKENIZER_JSON)
        tokens = [np.memmap(folder / f"{split}.bin", dtype=meta["dtype"], mode="r") for split in SPLITS]
        for part in tokens:  # bytes changed in place keep the size: ids past the vocabulary give them away
            if len(part) and int(part.max()) >= tok.vocab_size:
                raise ValueError(f"an id past the vocabulary of {tok.vocab_size} in {part.filename}")
        return PreparedLM(tok, tokens[0], tokens[1], folder, meta, note)

    return read_prepared(folder, read)


# ---------------------------------------------------------------------------- classification
def prepare_classification(config: ExperimentConfig, tokenizer: Optional[TextTokenizer] = None,
                           spec: Optional[LabelSpec] = None, raw: Any = None) -> PreparedClassification:
    """Tokenizer, labels and encoded train/validation splits of a classifier config, from the cache or built there.

    ``tokenizer`` and ``spec``: ones to keep (a resumed run's, a language model's tokenizer);
    else they are trained and detected from the training split.
    """
    source, loaded = source_parts(config, raw)
    given = {"labels": [spec.problem_type, spec.names]} if spec is not None else {}
    parts = {**data_parts(config, source, CLASSIFICATION_FIELDS), **tokenizer_part(config, tokenizer), **given}

    def build(tmp: Path) -> dict:
        start = time.monotonic()
        data = loaded if loaded is not None else load_raw(config.data.dataset, str(tmp / SCRATCH),
                                                         config.data.config_name, encoding=config.data.encoding)
        d = config.data
        train, valid = split_dataset(data, d.train_split, d.validation_split, d.validation_fraction, config.train.seed)
        columns = text_columns(train, d)
        labels = spec or detect_labels(train, d.label_column, d.label_columns)
        check_label_count(labels)
        tok = tokenizer or train_tokenizer(lambda: iter_texts(train, columns, d.field_separator), config.tokenizer)
        tok.save(tmp / TOKENIZER_JSON)
        (train_set, train_cut), (valid_set, valid_cut) = (encode_split(part, tok, d, labels) for part in (train, valid))
        train_set = labelled(train_set, f"the {d.train_split!r} split")
        valid_set = labelled(valid_set, "the validation split")
        train_set.save_to_disk(str(tmp / "train"))
        valid_set.save_to_disk(str(tmp / "validation"))
        return {"kind": "classification", "vocab_size": tok.vocab_size, "tokenizer_kind": tok.kind,
                "labels": {"problem_type": labels.problem_type, "names": labels.names, "columns": labels.columns},
                "text_columns": columns, "rows": {"train": len(train_set), "validation": len(valid_set)},
                "cut": {"train": train_cut, "validation": valid_cut},
                "tokens": {"train": _token_total(train_set), "validation": _token_total(valid_set)},
                "seconds": time.monotonic() - start, "key": parts}

    reusable = None
    if tokenizer is not None:
        reusable = lambda folder, meta: same_tokenizer(folder, tokenizer) and (  # noqa: E731
            spec is None or cached_spec(meta).names == spec.names)
    folder, meta, note = open_cache(config, "classification", parts, build, reusable)
    for split, cut in meta.get("cut", {}).items():
        warning = cut_warning(cut, meta["rows"][split], f"the {split} split", config.data.max_length)
        if warning:
            LOG.info(warning)
    import datasets

    def read() -> PreparedClassification:
        sets = [datasets.load_from_disk(str(folder / split)) for split in ("train", "validation")]
        return PreparedClassification(TextTokenizer.from_file(folder / TOKENIZER_JSON), cached_spec(meta),
                                      list(meta["text_columns"]), sets[0], sets[1], folder, meta, note)

    return read_prepared(folder, read)


SPLITS = ("train", "validation")


def read_prepared(folder: Path, read: Callable[[], Any]) -> Any:
    """``read()`` of a cache folder; a folder corrupted in place (same sizes, other bytes) is a one-line error
    that names the folder to delete, since it is rebuilt on the next run without it."""
    try:
        return read()
    except Exception as exc:  # tokenizers, Arrow and numpy each fail their own way on bytes they did not write
        raise DataError(f"prepared data in {folder} is corrupt ({one_line(exc)}); delete that folder "
                        f"(rm -r {folder}) and run again: it is prepared anew") from None


def cached_spec(meta: dict) -> LabelSpec:
    """The label schema a classification cache folder's meta records."""
    labels = meta["labels"]
    return LabelSpec(labels["problem_type"], list(labels["names"]), list(labels["columns"]))


def _token_total(encoded: Any) -> int:
    return int(column_array(encoded, "length").sum())


def check_label_count(spec: LabelSpec) -> None:
    """A one-line error unless there are labels enough to classify (2 for single-label, 1 for multi-label)."""
    least = 2 if spec.problem_type == SINGLE else 1
    if len(spec.names) < least:
        raise DataError(
            f"column {spec.columns[0]!r} has {len(spec.names)} distinct label; a classifier needs at least 2"
        )


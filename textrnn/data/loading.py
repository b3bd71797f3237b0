"""From a Hub name, local files, a URL or a built-in corpus to a ``DatasetDict``; splits and columns.

Empty and whitespace-only texts are kept: they encode to zero tokens, the encoder returns
its initial state for a length-0 sequence, and a classifier then predicts from its output
bias alone. Nothing downstream crashes on them (tests check this).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Optional

from ..core.errors import DataError, one_line
from .memory import IN_MEMORY

LOCAL_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet",
                  ".txt": "text", ".text": "text"}


VALIDATION_NAMES = ("validation", "valid", "dev")


BUILTIN_PREFIX = "textrnn:"


# ---------------------------------------------------------------------------- loading
def load_raw(dataset: str, workdir: Optional[str] = None, config_name: Optional[str] = None,
             streaming: bool = False, encoding: str = "utf-8") -> Any:
    """Load a ``DatasetDict`` from a Hub name, a local folder or file, or the built-in corpus.

    ``config_name`` picks a Hub dataset's configuration (``go_emotions``' ``simplified``). Local
    data is cached (Arrow files, encodings) under ``workdir/data/hf_cache``; Hub datasets use the
    Hugging Face cache. ``streaming``: an ``IterableDatasetDict`` read as it arrives, nothing cached.
    ``encoding`` is local text files' (``data.encoding``).
    """
    import datasets

    datasets.disable_progress_bars()
    if dataset == IN_MEMORY:
        raise DataError("this run trained on data given in Python (data.dataset is textrnn:in_memory); pass the "
                        "data to textrnn.train(train_data=...) again, or set data.dataset to files")
    if dataset.startswith(BUILTIN_PREFIX):
        dataset = builtin_corpus(dataset, workdir or ".")
    if dataset.startswith(("http://", "https://")):
        return _load_url(dataset)
    path = Path(os.path.expanduser(dataset))
    cache = str(Path(workdir) / "data" / "hf_cache") if workdir else None
    stream = {"streaming": True} if streaming else {}
    try:
        if path.is_file():
            return _load_file(path, cache, stream, encoding)
        if path.is_dir():
            return _load_folder(path, config_name, cache, stream)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(_read_error(dataset, exc, path.suffix, encoding)) from None
    if path.suffix in LOCAL_BUILDERS or dataset.startswith((".", "/", "~")) or dataset.count("/") > 1:
        raise DataError(f"dataset path not found: {dataset}; check the path, or give a Hub name like stanfordnlp/sst2")
    try:
        return datasets.load_dataset(dataset, config_name, **stream)
    except Exception as exc:  # unknown names and network failures both end here
        raise DataError(f"could not load dataset {dataset!r} from the Hugging Face Hub ({one_line(exc)}); "
                        "check the name, or use local files") from None


def _load_folder(path: Path, config_name: Optional[str], cache: Optional[str], stream: dict):
    """A local dataset folder. A plain folder of data files has one configuration, so the Hub
    config name of the dataset it copies (``simplified``) does not apply to it and is not passed."""
    import datasets

    try:
        return datasets.load_dataset(str(path), config_name, cache_dir=cache, **stream)
    except ValueError as exc:
        if config_name is None or "Available: ['default']" not in str(exc):
            raise
    return datasets.load_dataset(str(path), cache_dir=cache, **stream)


def _load_url(url: str):
    """A data file on the web (for example the public tiny shakespeare text file)."""
    import datasets

    suffix = Path(url.split("?")[0]).suffix.lower()
    builder = LOCAL_BUILDERS.get(suffix)
    if builder is None:
        raise DataError(f"unknown file type {suffix!r} for {url}; use .csv, .tsv, .json, .jsonl, .parquet or .txt")
    extra = {"keep_linebreaks": True} if builder == "text" else {"delimiter": "\t"} if suffix == ".tsv" else {}
    try:
        return datasets.load_dataset(builder, data_files={"train": url}, **extra)
    except Exception as exc:
        raise DataError(f"could not download {url} ({one_line(exc)}); download it and pass the local path") from None


def _load_file(path: Path, cache_dir: Optional[str] = None, stream: Optional[dict] = None,
               encoding: str = "utf-8"):
    import datasets

    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; give a file with data in it")
    builder = LOCAL_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise DataError(
            f"unknown file type {path.suffix!r} for {path}; use .csv, .tsv, .json, .jsonl, .parquet or .txt"
        )
    # utf-8-sig: a leading byte-order mark is dropped instead of sticking to the first column name.
    kwargs: dict = {"data_files": {"train": str(path)}, "encoding": python_encoding(encoding), "cache_dir": cache_dir}
    if path.suffix.lower() == ".tsv":
        kwargs["delimiter"] = "\t"
    if builder == "text":
        kwargs["keep_linebreaks"] = True  # rows concatenate back to the file (CRLF reads as LF)
    elif builder == "parquet":
        del kwargs["encoding"]
    return datasets.load_dataset(builder, **kwargs, **(stream or {}))


def column_chunks(ds: Any, name: str, batch_size: int = 1 << 20) -> Iterator[Any]:
    """One column of the rows ``ds`` holds, as Arrow arrays of up to ``batch_size`` rows, in order.

    A split cut by ``train_test_split`` or ``select`` is an indices mapping over a bigger table;
    ``Dataset.iter`` turns that mapping into Python ints row by row (hundreds of MB for a million
    rows), and ``unique``/``flatten_indices`` copy the split. Here only the one column is gathered,
    by Arrow, through the mapping.
    """
    column = ds.data.column(name)
    mapping = getattr(ds, "_indices", None)
    rows = len(column) if mapping is None else len(mapping)
    for start in range(0, rows, batch_size):
        if mapping is None:
            yield column.slice(start, batch_size)
        else:
            yield column.take(mapping.column(0).slice(start, batch_size))


def python_encoding(encoding: str) -> str:
    """The codec that reads ``data.encoding``: utf-8 as utf-8-sig, so a leading byte-order mark is dropped."""
    import codecs

    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"data.encoding {encoding!r} is not a text encoding Python knows; use e.g. utf-8 or "
                        "latin-1") from None
    return "utf-8-sig" if name == "utf-8" else name


def not_utf8(path: Any, offset: int, encoding: str, setting: str = "data.encoding") -> str:
    """The one-line error for a text file that is not in ``encoding``; ``setting`` is where to name another
    (``data.encoding``, or a command's ``--encoding``)."""
    shown = "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    fix = (f"set {setting} to the file's encoding (e.g. {setting}=latin-1)" if setting.startswith("data.")
           else f"pass {setting} with the file's encoding (e.g. {setting} latin-1)")
    return f"{path} is not {shown} (bad byte at offset {offset}); {fix}, or convert it: iconv -f latin1 -t utf-8"


class TextFile:
    """A local text file read as the ``text`` builder's ``train`` split (lines, line breaks kept), without
    converting it to Arrow first: a language model's preparation reads it straight, in bounded memory.

    Rows equal ``load_dataset("text", keep_linebreaks=True)``'s: lines split on ``\\n`` after universal
    newline translation, a leading byte-order mark dropped.
    """

    builder_name = "text"
    column_names = ["text"]

    def __init__(self, path: Path, encoding: str = "utf-8") -> None:
        self.path, self.encoding = path, encoding

    def iter(self, batch_size: int = 1000) -> Any:
        """``{"text": [line, ...]}`` batches of about 4 MB of text (``batch_size`` is not used)."""
        with open(self.path, encoding=python_encoding(self.encoding)) as handle:
            while True:
                try:
                    lines = handle.readlines(1 << 22)
                except UnicodeDecodeError as exc:
                    raise DataError(not_utf8(self.path, exc.start, self.encoding)) from None
                if not lines:
                    return
                yield {"text": lines}


def plain_text_file(dataset: str) -> Optional[Path]:
    """The path, when ``dataset`` is a local ``.txt``/``.text`` file with text in it."""
    path = Path(os.path.expanduser(dataset))
    ok = path.suffix.lower() in (".txt", ".text") and path.is_file() and path.stat().st_size > 0
    return path if ok else None


def _read_error(dataset: str, exc: BaseException, suffix: str, encoding: str = "utf-8") -> str:
    cause = _root_cause(exc)
    if isinstance(cause, UnicodeDecodeError):
        return not_utf8(dataset, cause.start, encoding)
    if "first 0 values" in str(cause):  # datasets cannot type a column of a file with no rows
        return f"{dataset}: a data file has no rows; give every split at least one example"
    return f"could not read dataset {dataset} ({one_line(cause)}); check the files are valid {suffix or 'data'} files"


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]  # one of them is not None
    return exc


BUILTINS = ("textrnn:python_docs", "textrnn:tiny_sentiment")


POSITIVE = ["great fun film", "a wonderful moving story", "loved it", "brilliant acting and a clever plot",
            "charming and funny"]


NEGATIVE = ["boring mess", "a dull tedious film", "hated it", "awful acting and a silly plot", "bland and lifeless"]


def builtin_corpus(name: str, workdir: str) -> str:
    """Materialize a built-in dataset under ``workdir`` and return its path.

    ``textrnn:python_docs`` is the docstrings of Python's own standard library: real English
    prose that exists on every machine that has Python, so the demo runs offline.
    ``textrnn:tiny_sentiment`` is a toy two-label set for smoke tests (see write_tiny_sentiment).
    """
    if name not in BUILTINS:
        raise DataError(f"unknown built-in dataset {name!r}; built-in datasets are {', '.join(BUILTINS)}")
    if name == "textrnn:tiny_sentiment":
        return str(write_tiny_sentiment(Path(workdir) / "data" / "tiny_sentiment"))
    target = Path(workdir) / "data" / "python_docs.txt"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(python_docstrings(), encoding="utf-8")
        os.replace(tmp, target)
    return str(target)


def write_tiny_sentiment(folder: Path, train: int = 120, validation: int = 30, seed: int = 0) -> Path:
    """train.csv and validation.csv with columns sentence, label (pos/neg): a toy task."""
    import csv
    import random

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train), ("validation", validation)):
        with open(folder / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sentence", "label"])
            for _ in range(n):
                label = rng.choice(["pos", "neg"])
                writer.writerow([rng.choice(POSITIVE if label == "pos" else NEGATIVE), label])
    return folder


def python_docstrings(max_chars: int = 1_200_000) -> str:
    """Docstrings of the standard library's modules, classes and functions, in a fixed order."""
    import ast
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    skip = ("test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo", "__phello__")
    parts: list[str] = []
    total = 0
    for file in sorted(root.rglob("*.py")):
        if any(part in skip for part in file.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 40:
                    parts.append(doc.strip() + "\n\n")
                    total += len(parts[-1])
        if total >= max_chars:
            break
    return "".join(parts)


def require_column(ds: Any, name: Optional[str], role: str, setting: Optional[str] = None) -> str:
    """``name`` if ``ds`` has that column, else a one-line error naming the setting to change (``data.{role}``
    unless ``setting`` names a command-line flag) and the columns there are."""
    if name not in ds.column_names:
        fix = f"pass {setting} with one of them" if setting else f"set data.{role} to one of them"
        raise DataError(f"column {name!r} not found (available: {', '.join(ds.column_names)}); {fix}")
    return str(name)


def require_split(dsdict: Any, name: str, setting: str) -> Any:
    """The split ``name`` of a DatasetDict, else a one-line error naming the splits and ``setting`` to change."""
    if name not in dsdict:
        raise DataError(f"split {name!r} not found (available: {', '.join(dsdict)}); set {setting}")
    return dsdict[name]


def split_dataset(dsdict: Any, train_split: str, validation_split: Optional[str], fraction: float,
                  seed: int) -> tuple[Any, Any]:
    """(train, validation). Validation is the named split, a standard one, or cut from train."""
    train = require_split(dsdict, train_split, "data.train_split")
    if len(train) == 0:
        raise DataError(f"the {train_split!r} split is empty; give a dataset with training examples")
    if validation_split is not None:
        return train, require_split(dsdict, validation_split, "data.validation_split")
    for name in VALIDATION_NAMES:
        if name in dsdict and len(dsdict[name]) > 0:
            return train, dsdict[name]
    if len(train) < 2:
        raise DataError(
            "need at least 2 training examples to cut a validation split; add data or set data.validation_split"
        )
    parts = train.train_test_split(test_size=fraction, seed=seed)
    return parts["train"], parts["test"]

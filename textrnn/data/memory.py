"""Data a Python user already holds, as the ``DatasetDict`` every task reads.

``train(train_data=...)`` takes any of these (and ``validation_data=`` the same way)::

    a datasets.DatasetDict            its splits, as loaded from the Hub or files
    a datasets.Dataset                the training split
    a pandas.DataFrame                the training split, one column per field
    (texts, labels)                   two equal-length lists: a classifier's data
    [text, text, ...]                 a list of strings: a language model's text
    {"column": [values], ...}         columns by name

Columns are named as ``data.text_column`` and ``data.label_column`` say (``text`` and
``label`` by default), so one config serves files and memory alike.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
from typing import Any, Iterator, Optional, Sequence, Union

from ..core.errors import DataError, one_line

LOG = logging.getLogger(__name__)

IN_MEMORY = "textrnn:in_memory"  # data.dataset of a run whose data came from Python


@contextlib.contextmanager
def datasets_progress(enabled: bool) -> Iterator[None]:
    """``datasets``' own progress bars (encoding, saving) off inside the block unless ``enabled``
    (``train.progress: false`` silences them too); restored after."""
    import datasets

    was = datasets.is_progress_bar_enabled()
    if not enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was and not enabled:
            datasets.enable_progress_bars()


def as_dataset_dict(train_data: Any, validation_data: Any = None, text_column: Union[str, list] = "text",
                    label_column: Optional[str] = "label", label_names: Optional[Sequence[str]] = None) -> Any:
    """``train_data`` (and ``validation_data``) as a ``DatasetDict`` with ``train`` (and ``validation``) splits.

    Every split is checked before any work: rows, text columns of strings, labels of one type (see
    :func:`checked`); rows whose text or label is None are dropped and counted (a note). ``label_names``
    names integer labels 0..C-1 (a pandas frame of ints, say).
    """

    with datasets_progress(False):  # the checks' filters and casts are no step of the user's to watch
        return _checked_dict(train_data, validation_data, text_column, label_column, label_names)


def _checked_dict(train_data: Any, validation_data: Any, text_column: Union[str, list], label_column: Optional[str],
                  label_names: Optional[Sequence[str]]) -> Any:
    import datasets

    if isinstance(train_data, datasets.DatasetDict):
        if validation_data is not None:
            raise DataError("train_data is a DatasetDict with its own splits; pass validation_data only with a "
                            "single split (or name the split in data.validation_split)")
        where = {str(split): f"train_data[{str(split)!r}]" for split in train_data}
        splits = dict(train_data)
    else:
        splits = {"train": train_data} if validation_data is None else {"train": train_data,
                                                                         "validation": validation_data}
        where = {"train": "train_data", "validation": "validation_data"}
    return datasets.DatasetDict({  # a DatasetDict's other splits may be empty (validation is then cut from train)
        str(split): checked(as_dataset(data, where[str(split)], _first(text_column), label_column),
                            where[str(split)], text_column, label_column, label_names,
                            may_be_empty=isinstance(train_data, datasets.DatasetDict) and str(split) != "train")
        for split, data in splits.items()})


def _first(text_column: Union[str, list]) -> str:
    return text_column if isinstance(text_column, str) else "text"


def as_dataset(data: Any, name: str, text_column: str, label_column: Optional[str]) -> Any:
    """One split as a ``datasets.Dataset``, from any of the forms the module docstring lists."""
    import datasets

    if isinstance(data, datasets.Dataset):
        return data
    if isinstance(data, (list, tuple)) and len(data) == 0:
        raise DataError(f"{name} is empty; give at least one text")
    columns = _columns_of(data, name, text_column, label_column)
    for column, values in columns.items():
        _require_one_type(values, name, column)
    try:
        if type(data).__name__ == "DataFrame":
            return datasets.Dataset.from_pandas(data, preserve_index=False)
        return datasets.Dataset.from_dict(columns)
    except Exception as exc:  # pyarrow's conversions: a value it cannot type
        raise DataError(f"{name} cannot be read as a table ({one_line(exc)}); give each column values of "
                        "one type") from None


def _columns_of(data: Any, name: str, text_column: str, label_column: Optional[str]) -> dict:
    """The columns of an in-memory split by name, as sequences."""
    if type(data).__name__ == "DataFrame" and hasattr(data, "to_dict"):  # pandas, without importing it
        return {str(column): data[column].tolist() for column in data.columns}
    if isinstance(data, dict):
        return {str(key): list(values) for key, values in data.items()}
    if isinstance(data, (list, tuple)) and all(isinstance(text, str) for text in data):
        return {text_column: list(data)}
    if isinstance(data, (list, tuple)) and len(data) == 2 and all(isinstance(part, (list, tuple)) for part in data):
        texts, labels = data
        if len(texts) != len(labels):
            raise DataError(f"{name} has {len(texts)} texts but {len(labels)} labels; give one label per text")
        return {text_column: list(texts), label_column or "label": list(labels)}
    if isinstance(data, (list, tuple)):
        bad = next(i for i, text in enumerate(data) if not isinstance(text, str))
        raise DataError(f"{name} is a list, but item {bad} is {type(data[bad]).__name__}: give a list of strings "
                        "(a language model's text) or (texts, labels)")
    raise DataError(f"{name} must be a DatasetDict, Dataset, pandas DataFrame, (texts, labels), a list of strings "
                    f"or a dict of columns; got {type(data).__name__}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int"
    if isinstance(value, float) and value.is_integer():
        return "int"  # pandas makes an int column with a missing value float
    return "float" if isinstance(value, numbers.Real) else type(value).__name__


def _require_one_type(values: Sequence, name: str, column: str) -> None:
    kinds = sorted({_kind(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))})
    if len(kinds) > 1:
        raise DataError(f"{name} column {column!r} mixes {' and '.join(kinds)} values; give every value one type "
                        "(all strings or all integers)")


def checked(ds: Any, name: str, text_column: Union[str, list], label_column: Optional[str],
            label_names: Optional[Sequence[str]] = None, may_be_empty: bool = False) -> Any:
    """A split checked before any work: not empty, texts are strings, labels are ints, strings, bools or lists of
    them; rows whose text or label is None are dropped (and counted); integer labels named by ``label_names``."""
    import datasets

    texts = [text_column] if isinstance(text_column, str) else list(text_column)
    for column in texts:
        kind = ds.features.get(column)
        if kind is not None and getattr(kind, "dtype", "string") not in ("string", "large_string", "null"):
            raise DataError(f"{name} column {column!r} holds {getattr(kind, 'dtype', kind)} values, not text; "
                            f"convert it to strings (frame[{column!r}].astype(str)) or set data.text_column")
    labelled = label_column is not None and label_column in ds.column_names
    if labelled and isinstance(ds.features[label_column], dict):
        raise DataError(f"{name} column {label_column!r} holds mappings; labels must be integers, strings, bools, "
                        "or lists of them (multi-label)")
    wanted = [c for c in texts if c in ds.column_names] + ([label_column] if labelled else [])
    before = len(ds)
    if any(_nulls(ds, column) for column in wanted):  # Arrow's count: no pass over rows without them
        ds = ds.filter(lambda row: all(row[c] is not None for c in wanted), desc=None)
    if len(ds) == 0 and not may_be_empty:
        raise DataError(f"{name} is empty" + (f" once the {before} rows with a missing text or label are dropped"
                                                 if before else "") + "; give at least one row")
    if len(ds) < before:
        LOG.info(f"note: {name}: dropped {before - len(ds)} of {before} rows whose text or label is None")
    if labelled and getattr(ds.features[label_column], "dtype", None) == "float64":
        if not _whole(ds[label_column]):
            raise DataError(f"{name} column {label_column!r} holds fractional numbers (labels are float64); labels "
                            "must be integers, strings, bools, or lists of them")
        ds = ds.cast_column(label_column, datasets.Value("int64"))  # ints that pandas made float by a None
    return _named(ds, name, str(label_column), label_names) if labelled and label_names is not None else ds


def _whole(values: Sequence) -> bool:
    """Whether every value is a whole number (0.0, 1.0): integer labels, not 0.5."""
    return all(float(v).is_integer() for v in values)


def _nulls(ds: Any, column: str) -> int:
    mapping = getattr(ds, "_indices", None)
    return ds.data.column(column).null_count if mapping is None else sum(1 for v in ds[column] if v is None)


def _named(ds: Any, name: str, column: str, label_names: Sequence[str]) -> Any:
    """Integer labels 0..C-1 cast to a ClassLabel of ``label_names`` (lists of them for multi-label)."""
    import datasets

    names = [str(n) for n in label_names]
    feature = ds.features[column]
    many = isinstance(feature, (datasets.Sequence, list))
    inner = feature.feature if isinstance(feature, datasets.Sequence) else feature[0] if many else feature
    if isinstance(inner, datasets.ClassLabel):
        raise DataError(f"{name} column {column!r} already names its labels ({', '.join(inner.names)}); "
                        "drop label_names=")
    if not str(getattr(inner, "dtype", "")).startswith(("int", "uint")):
        raise DataError(f"label_names= names integer labels 0..{len(names) - 1}, but {name} column {column!r} "
                        f"holds {getattr(inner, 'dtype', inner)}; drop label_names=")
    flat = [v for row in ds[column] for v in (row if many else [row])]
    bad = [v for v in flat if not 0 <= v < len(names)]
    if bad:
        raise DataError(f"{name} has label {bad[0]}, but label_names= gives {len(names)} names (labels 0.."
                        f"{len(names) - 1}); give one name per label")
    label = datasets.ClassLabel(names=names)
    return ds.cast_column(column, datasets.Sequence(label) if many else label)

"""Labels as datasets bring them, for single- and multi-label classification.

The schema is detected from the data (and recorded in ``config.json`` as ``problem_type``):

========================================================  =================  ==================================
what the split holds                                      config keys        problem
========================================================  =================  ==================================
one ``ClassLabel``, int, string or bool                   ``label_column``   single_label: one id per example
a list column (``Sequence(ClassLabel)``, ints, strings)   ``label_column``   multi_label: a 0/1 row per example
several 0/1 (or bool) columns                             ``label_columns``  multi_label: one label per column
========================================================  =================  ==================================

A missing label (``None``, or -1 as GLUE's test splits carry) is allowed: it encodes as -1
(single-label) or a row of -1 (multi-label). Training drops such examples, evaluation scores
only the labelled ones, and ``predict`` never needs labels. An empty list is a labelled
example with no label set.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..core.config import PROBLEM_TYPES, ProblemType
from ..core.errors import DataError
from .loading import column_chunks, require_column

SINGLE, MULTI = PROBLEM_TYPES


@dataclass
class LabelSpec:
    """What the labels are: the problem type, the label names and the columns they come from."""

    problem_type: ProblemType
    names: list
    columns: list


def _is_list(feature) -> bool:
    return hasattr(feature, "feature") and not hasattr(feature, "names")  # Sequence / List / LargeList


def detect_labels(ds: Any, label_column: Optional[str], label_columns: Optional[Sequence[str]]) -> LabelSpec:
    """The label schema of a (training) split."""
    if label_columns:
        columns = [require_column(ds, column, "label_columns") for column in label_columns]
        return LabelSpec(MULTI, list(columns), columns)
    column = require_column(ds, label_column, "label_column")
    feature = ds.features[column]
    if _is_list(feature):
        return LabelSpec(MULTI, _list_names(ds, column, feature.feature), [column])
    return LabelSpec(SINGLE, label_names_of(ds, column), [column])


def label_names_of(ds: Any, column: str) -> list[str]:
    """Single-label names: a ClassLabel's, else the sorted distinct labels (missing ones left out)."""
    feature = ds.features[column]
    if hasattr(feature, "names"):
        return list(feature.names)
    dtype = getattr(feature, "dtype", None)
    values = [v for v in distinct_values(ds, column) if v is not None]
    if dtype == "bool":
        return ["false", "true"]
    if dtype is not None and dtype.startswith(("int", "uint")):
        return [str(v) for v in sorted(values) if v != -1]
    if dtype in ("string", "large_string"):
        return sorted(v for v in values if v != "")
    raise DataError(f"labels in column {column!r} are {dtype or type(feature).__name__}; labels must be integers, "
                    "strings, bools, or lists of them")


def distinct_values(ds: Any, column: str, lists: bool = False) -> list:
    """The distinct values of a column over the rows ``ds`` holds (the items, for a list column), read a
    million rows at a time (:func:`~textrnn.data.loading.column_chunks`): a cut split is never copied."""
    import pyarrow as pa
    import pyarrow.compute as pc

    seen = None
    for chunk in column_chunks(ds, column):
        found = pc.unique(pc.list_flatten(chunk) if lists else chunk)
        seen = found if seen is None else pc.unique(pa.concat_arrays([seen, found]))
    return [] if seen is None else seen.to_pylist()


def _list_names(ds, column: str, inner) -> list[str]:
    if hasattr(inner, "names"):
        return list(inner.names)
    dtype = getattr(inner, "dtype", None)
    values = [v for v in distinct_values(ds, column, lists=True) if v is not None]
    if dtype is not None and dtype.startswith(("int", "uint")):
        return [str(v) for v in sorted(values)]
    if dtype in ("string", "large_string"):
        return sorted(values)
    raise DataError(
        f"label lists in column {column!r} hold {dtype or type(inner).__name__}; they must hold integers or strings"
    )


class LabelEncoder:
    """Raw label values of a split -> what training and metrics use, against the model's ``names``.

    ``encode(columns)`` takes ``{column: list of raw values}`` for one batch and returns
    ids (single-label, -1 when missing) or 0/1 rows (multi-label, -1 rows when missing).
    Labels the model does not know are a one-line error.
    """

    def __init__(self, ds, spec_columns: Sequence[str], names: Sequence[str], problem_type: str) -> None:
        self.columns, self.names, self.problem_type = list(spec_columns), list(names), problem_type
        index = {name: i for i, name in enumerate(self.names)}
        if problem_type == MULTI and len(self.columns) > 1:
            missing = [c for c in self.columns if c not in index]
            if missing:
                raise DataError(
                    f"label columns {missing} are not the model's labels ({', '.join(self.names)}); "
                    "give the columns it was trained on"
                )
            self.lookup = None
            return
        feature = ds.features[require_column(ds, self.columns[0], "label_column")]
        if problem_type == MULTI:
            if not _is_list(feature):
                raise DataError(
                    f"column {self.columns[0]!r} holds single labels but the model is multi-label; "
                    "give a column of label lists"
                )
            feature = feature.feature
        self.lookup = _value_lookup(feature, index)

    def arrow_type(self) -> Any:
        """The Arrow type of encoded labels: int64 ids, or rows of float32 for multi-label."""
        import pyarrow as pa

        return pa.int64() if self.problem_type == SINGLE else pa.list_(pa.float32())

    def key(self) -> str:
        """What the encoding depends on, for the datasets cache fingerprint."""
        return hashlib.sha256(
            json.dumps(
                [self.columns, self.names, self.problem_type, sorted(map(str, (self.lookup or {}).items()))]
            ).encode()
        ).hexdigest()

    def encode(self, columns: dict) -> list:
        """A batch of rows' labels as ids (N,) or 0/1 rows (N, C); -1 where a label is missing."""
        if self.problem_type == SINGLE:
            return [self._one(value) for value in columns[self.columns[0]]]
        if self.lookup is None:
            return [self._binary_row(values) for values in zip(*(columns[c] for c in self.columns))]
        return [self._list_row(values) for values in columns[self.columns[0]]]

    def _one(self, value: Any) -> int:
        assert self.lookup is not None  # made for a single-label column
        if value is None or value == -1:
            return -1
        if value not in self.lookup:
            raise DataError(
                f"label {value!r} is not one of the model's labels ({', '.join(self.names)}); fix the data or retrain"
            )
        return self.lookup[value]

    def _list_row(self, values: Any) -> list:
        assert self.lookup is not None  # made for a list column
        if values is None:
            return [-1.0] * len(self.names)
        row = [0.0] * len(self.names)
        for value in values:
            if value not in self.lookup:
                raise DataError(
                    f"label {value!r} in column {self.columns[0]!r} is not one of the model's labels "
                    f"({', '.join(self.names)}); fix the data or retrain"
                )
            row[self.lookup[value]] = 1.0
        return row

    def _binary_row(self, values) -> list:
        if any(v is None for v in values):
            return [-1.0] * len(self.names)
        for column, value in zip(self.columns, values):
            if value not in (0, 1):  # True/False and 0.0/1.0 compare equal to these
                raise DataError(f"label column {column!r} holds {value!r}; each of data.label_columns must hold 0 or 1")
        return [float(v) for v in values]


def _value_lookup(feature, index: dict) -> dict:
    """Raw value -> label id, for a ClassLabel (ids matched by name), ints, strings or bools."""
    if hasattr(feature, "names"):
        return {i: index[name] for i, name in enumerate(feature.names) if name in index}
    dtype = getattr(feature, "dtype", "")
    if dtype == "bool":
        return {value: index[name] for value, name in ((False, "false"), (True, "true")) if name in index}
    if dtype.startswith(("int", "uint")):
        return {int(name): i for name, i in index.items() if name.lstrip("-").isdigit()}
    return dict(index)

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

from typing import Any, Optional

from ..core.errors import DataError

IN_MEMORY = "textrnn:in_memory"  # data.dataset of a run whose data came from Python


def as_dataset_dict(train_data: Any, validation_data: Any = None, text_column: str = "text",
                    label_column: Optional[str] = "label") -> Any:
    """``train_data`` (and ``validation_data``) as a ``DatasetDict`` with ``train`` (and ``validation``) splits."""
    import datasets

    if isinstance(train_data, datasets.DatasetDict):
        if validation_data is not None:
            raise DataError("train_data is a DatasetDict with its own splits; pass validation_data only with a "
                            "single split (or name the split in data.validation_split)")
        return train_data
    splits = {"train": as_dataset(train_data, "train_data", text_column, label_column)}
    if validation_data is not None:
        splits["validation"] = as_dataset(validation_data, "validation_data", text_column, label_column)
    return datasets.DatasetDict(splits)


def as_dataset(data: Any, name: str, text_column: str, label_column: Optional[str]) -> Any:
    """One split as a ``datasets.Dataset``, from any of the forms the module docstring lists."""
    import datasets

    if isinstance(data, datasets.Dataset):
        return data
    if type(data).__name__ == "DataFrame" and hasattr(data, "to_dict"):  # pandas, without importing it
        return datasets.Dataset.from_pandas(data, preserve_index=False)
    if isinstance(data, dict):
        return datasets.Dataset.from_dict(dict(data))
    if isinstance(data, (list, tuple)) and data and all(isinstance(text, str) for text in data):
        return datasets.Dataset.from_dict({text_column: list(data)})
    if isinstance(data, (list, tuple)) and len(data) == 2 and all(isinstance(part, (list, tuple)) for part in data):
        texts, labels = data
        if len(texts) != len(labels):
            raise DataError(f"{name} has {len(texts)} texts but {len(labels)} labels; give one label per text")
        return datasets.Dataset.from_dict({text_column: list(texts), label_column or "label": list(labels)})
    raise DataError(f"{name} must be a DatasetDict, Dataset, pandas DataFrame, (texts, labels), a list of strings "
                    f"or a dict of columns; got {type(data).__name__}")

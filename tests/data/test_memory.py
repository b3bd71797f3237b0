"""Data held in Python as a DatasetDict (textrnn.data.memory)."""

import datasets
import pandas as pd
import pytest

from textrnn import DataError
from textrnn.data.memory import as_dataset_dict


@pytest.mark.parametrize("form", ["frame", "pair", "dict", "dataset"])
def test_every_form_becomes_the_same_columns(form):
    texts, labels = ["good", "bad", "fine"], ["pos", "neg", "pos"]
    data = {"frame": pd.DataFrame({"review": texts, "label": labels}), "pair": (texts, labels),
            "dict": {"review": texts, "label": labels},
            "dataset": datasets.Dataset.from_dict({"review": texts, "label": labels})}[form]
    raw = as_dataset_dict(data, (texts[:1], labels[:1]), text_column="review")
    assert set(raw) == {"train", "validation"}
    assert raw["train"]["review"] == texts and raw["train"]["label"] == labels
    assert raw["validation"]["review"] == ["good"]


def test_a_list_of_strings_is_text_and_a_datasetdict_is_kept():
    raw = as_dataset_dict(["one line", "another"])
    assert raw["train"].column_names == ["text"] and len(raw["train"]) == 2
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a"]})})
    assert as_dataset_dict(splits)["train"]["text"] == ["a"]  # its splits, checked


def test_bad_forms_are_one_line_errors():
    with pytest.raises(DataError, match="has 2 texts but 1 labels"):
        as_dataset_dict((["a", "b"], ["x"]))
    with pytest.raises(DataError, match="must be a DatasetDict, Dataset, pandas DataFrame"):
        as_dataset_dict(42)
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a"]})})
    with pytest.raises(DataError, match="is a DatasetDict with its own splits"):
        as_dataset_dict(splits, ["b"])

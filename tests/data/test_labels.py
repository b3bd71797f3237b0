

import pytest

from textrnn import DataError
from textrnn.data.labels import MULTI, SINGLE, LabelEncoder, detect_labels, label_names_of


def test_labels_from_strings_ints_and_bad_types():
    import datasets

    strings = datasets.Dataset.from_dict({"label": ["pos", "neg", "pos"]})
    assert label_names_of(strings, "label") == ["neg", "pos"]
    assert LabelEncoder(strings, ["label"], ["neg", "pos"], "single_label").encode({"label": ["pos"]}) == [1]
    ints = datasets.Dataset.from_dict({"label": [3, 7, 3]})
    assert label_names_of(ints, "label") == ["3", "7"]
    assert LabelEncoder(ints, ["label"], ["3", "7"], "single_label").encode({"label": [7]}) == [1]
    floats = datasets.Dataset.from_dict({"label": [0.5, 1.5]})
    with pytest.raises(DataError, match="labels must be integers, strings, bools, or lists of them"):
        label_names_of(floats, "label")
    with pytest.raises(DataError, match="not one of the model's labels"):
        LabelEncoder(strings, ["label"], ["neg", "pos"], "single_label").encode({"label": ["maybe"]})


def test_label_schemas_are_detected():
    import datasets

    cases = {"ints": (datasets.Dataset.from_dict({"label": [3, 7, -1, 3]}), SINGLE, ["3", "7"]),
             "strings": (datasets.Dataset.from_dict({"label": ["pos", None, "neg"]}), SINGLE, ["neg", "pos"]),
             "bools": (datasets.Dataset.from_dict({"label": [True, False]}), SINGLE, ["false", "true"]),
             "int lists": (datasets.Dataset.from_dict({"label": [[2], [0, 2], []]}), MULTI, ["0", "2"]),
             "string lists": (datasets.Dataset.from_dict({"label": [["b"], ["a", "b"], None]}), MULTI, ["a", "b"])}
    for name, (ds, problem, names) in cases.items():
        spec = detect_labels(ds, "label", None)
        assert (spec.problem_type, spec.names) == (problem, names), name
    ints = cases["ints"][0]
    assert LabelEncoder(ints, ["label"], ["3", "7"], SINGLE).encode({"label": [3, 7, -1, None]}) == [0, 1, -1, -1]
    lists = cases["string lists"][0]
    assert LabelEncoder(lists, ["label"], ["a", "b"], MULTI).encode({"label": [["b"], [], None]}) == [
        [0.0, 1.0], [0.0, 0.0], [-1.0, -1.0]]

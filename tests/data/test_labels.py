"""Labels: strings and ints, detected schemas, and label names read from the rows a cut split holds."""

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


def test_label_names_come_from_the_rows_a_cut_split_holds_without_copying_it(tmp_path):
    import datasets

    from textrnn.data.labels import detect_labels

    path = tmp_path / "rows.jsonl"
    rows = [{"text": f"t{i}", "one": "a" if i % 2 else "b", "many": ["a"] if i % 2 else ["b", "a"]} for i in range(10)]
    rows += [{"text": "late", "one": "c", "many": ["c"]}] * 5
    path.write_text("\n".join(__import__("json").dumps(r) for r in rows), encoding="utf-8")
    full = datasets.load_dataset("json", data_files=str(path), cache_dir=str(tmp_path / "hf"))["train"]
    head = full.select([9, 0, 2, 4, 6, 8, 1, 3, 5, 7])  # an indices mapping over the file, as train_test_split makes
    files = sorted(p.name for p in (tmp_path / "hf").rglob("*.arrow"))
    assert detect_labels(head, "one", None).names == ["a", "b"]
    assert detect_labels(head, "many", None).names == ["a", "b"]  # not "c", which only the other rows hold
    assert sorted(p.name for p in (tmp_path / "hf").rglob("*.arrow")) == files  # nothing flattened to disk

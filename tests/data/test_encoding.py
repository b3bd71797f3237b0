"""Encoding labelled rows (truncation, empty texts) and caching a local file's encoding in the run folder."""

from textrnn import TextTokenizer, load_raw
from textrnn.data.encoding import encode_classification
from textrnn.data.labels import LabelEncoder


# ---------------------------------------------------------------- encoding and batches
def test_encode_classification_via_map_with_truncation_and_empty_text():
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["a b c d e", "", "   ", None], "label": ["x", "y", "x", "y"]})
    tok = TextTokenizer.train(["a b c d e"], "word")
    labels = LabelEncoder(ds, ["label"], ["x", "y"], "single_label")
    enc = encode_classification(ds, tok, ["text"], labels, max_length=3)
    assert enc["length"] == [3, 0, 0, 0]
    assert enc["labels"] == [0, 1, 0, 1]
    assert enc.cache_files == []  # an in-memory dataset encodes in memory


def test_encoding_a_local_file_is_cached_in_the_run_folder_and_reused(tmp_path, sentiment_dir):
    raw = load_raw(str(sentiment_dir / "train.csv"), str(tmp_path / "run"))
    tok = TextTokenizer.train(raw["train"]["sentence"], "word")
    labels = LabelEncoder(raw["train"], ["label"], ["neg", "pos"], "single_label")
    first = encode_classification(raw["train"], tok, ["sentence"], labels)
    files = [f["filename"] for f in first.cache_files]
    assert files and all(f.startswith(str(tmp_path / "run" / "data" / "hf_cache")) for f in files)
    again = encode_classification(raw["train"], tok, ["sentence"], labels)
    assert [f["filename"] for f in again.cache_files] == files  # same inputs: the cached encoding is reused
    other = encode_classification(raw["train"], tok, ["sentence"], labels, max_length=2)
    assert [f["filename"] for f in other.cache_files] != files

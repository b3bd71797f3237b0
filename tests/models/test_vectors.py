"""Pretrained word vectors: every file format, coverage, lowercase fallback, freezing, and each error."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
import zipfile

import numpy as np
import pytest
import torch

from textrnn import DataError, TextTokenizer, load_config, load_model
from textrnn.models.vectors import load_pretrained_vectors
from textrnn.training.api import train

from ..conftest import write_sentiment

WORDS = ["good", "bad", "film", "plot", "Great", "dull"]
DIM = 4


@pytest.fixture(scope="module")
def tokenizer():
    return TextTokenizer.train(["good bad film plot Great dull unseen", "good film"], "word", lowercase=False)


def vectors(words=("good", "bad", "film", "great", "other")) -> dict:
    rng = np.random.default_rng(0)
    return {w: rng.standard_normal(DIM).astype(np.float32) for w in words}


def text_file(path, table: dict, header: bool) -> None:
    lines = [f"{len(table)} {DIM}"] if header else []
    lines += [f"{w} " + " ".join(f"{x:.7f}" for x in v) for w, v in table.items()]
    data = ("\n".join(lines) + "\n").encode()
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)


def binary_file(path, table: dict) -> None:
    body = b"".join(w.encode() + b" " + struct.pack(f"<{DIM}f", *v) + b"\n" for w, v in table.items())
    path.write_bytes(f"{len(table)} {DIM}\n".encode() + body)


def fresh(tokenizer) -> torch.nn.Embedding:
    torch.manual_seed(0)
    return torch.nn.Embedding(len(tokenizer), DIM, padding_idx=0)


@pytest.mark.parametrize("kind", ["glove.txt", "word2vec.txt", "fasttext.vec", "glove.txt.gz", "word2vec.bin", "zip"])
def test_every_format_loads_the_same_vectors(tmp_path, tokenizer, kind):
    table = vectors()
    if kind == "zip":
        inner = tmp_path / "glove.6B.4d.txt"
        text_file(inner, table, header=False)
        with zipfile.ZipFile(tmp_path / "glove.zip", "w") as archive:
            archive.write(inner, "glove.6B.4d.txt")
            archive.writestr("glove.6B.8d.txt", "not used\n")
        spec = f"{tmp_path / 'glove.zip'}::glove.6B.4d.txt"
    else:
        path = tmp_path / kind
        binary_file(path, table) if kind.endswith(".bin") else text_file(path, table,
                                                                         header=not kind.startswith("glove"))
        spec = str(path)
    embedding = fresh(tokenizer)
    before = embedding.weight.detach().clone()
    coverage = load_pretrained_vectors([embedding], spec, tokenizer)
    stoi = tokenizer.vocab.get_stoi()
    for word in ("good", "bad", "film"):
        assert torch.allclose(embedding.weight[stoi[word]], torch.from_numpy(table[word]), atol=1e-6)
    # lowercase form
    assert torch.allclose(embedding.weight[stoi["Great"]], torch.from_numpy(table["great"]), atol=1e-6)
    assert torch.equal(embedding.weight[stoi["plot"]], before[stoi["plot"]])  # not in the file: its random init
    assert torch.count_nonzero(embedding.weight[0]) == 0  # <pad>
    assert (coverage.found, coverage.lowercase, coverage.entries, coverage.dim) == (4, 1, 7, DIM)


def test_coverage_counts_training_tokens(tmp_path, tokenizer):
    path = tmp_path / "v.txt"
    text_file(path, vectors(), header=False)
    stoi = tokenizer.vocab.get_stoi()
    counts = np.zeros(len(tokenizer), dtype=np.int64)
    counts[stoi["good"]], counts[stoi["plot"]], counts[stoi["unseen"]] = 6, 3, 1  # 6 of 10 tokens have a vector
    coverage = load_pretrained_vectors([fresh(tokenizer)], str(path), tokenizer, counts)
    assert coverage.token_share == pytest.approx(0.6)
    assert (
        "4 of 7 vocabulary entries found (57.1%, 60.0% of training tokens; 1 by their lowercase form)"
        in coverage.line()
    )


def test_an_ensemble_gets_the_vectors_in_every_member(tmp_path, tokenizer):
    path = tmp_path / "v.txt"
    text_file(path, vectors(), header=False)
    members = [fresh(tokenizer), torch.nn.Embedding(len(tokenizer), DIM)]
    load_pretrained_vectors(members, str(path), tokenizer)
    good = tokenizer.vocab.get_stoi()["good"]
    assert torch.equal(members[0].weight[good], members[1].weight[good])


def test_errors_are_one_line_and_name_the_fix(tmp_path, tokenizer):
    wrong_dim = tmp_path / "d.txt"
    wrong_dim.write_text("good 1 2 3\n")
    with pytest.raises(DataError, match="holds 3-dimensional vectors but model.embedding_dim is 4"):
        load_pretrained_vectors([fresh(tokenizer)], str(wrong_dim), tokenizer)
    malformed = tmp_path / "m.txt"
    malformed.write_text("bad 1 2 3 4\nfilm 1 2 x 4\n")
    with pytest.raises(DataError, match="m.txt line 2 is malformed: expected a word and 4 numbers"):
        load_pretrained_vectors([fresh(tokenizer)], str(malformed), tokenizer)
    with pytest.raises(DataError, match="not found"):
        load_pretrained_vectors([fresh(tokenizer)], str(tmp_path / "none.txt"), tokenizer)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("x.txt", "good 1 2 3 4\n")
    with pytest.raises(DataError, match="has no member 'y.txt'; it holds: x.txt"):
        load_pretrained_vectors([fresh(tokenizer)], f"{archive}::y.txt", tokenizer)


def test_gensim_model_files_are_refused_and_never_unpickled(tmp_path, tokenizer):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    planted = tmp_path / "glove-wiki-gigaword-100.model"
    planted.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(DataError, match="gensim .model file, a Python pickle, which textrnn never loads"):
        load_pretrained_vectors([fresh(tokenizer)], str(planted), tokenizer)
    assert not marker.exists()


def test_hub_files_go_through_hf_hub_download(tmp_path, tokenizer, monkeypatch):
    import huggingface_hub

    local = tmp_path / "glove.zip"
    text_file(tmp_path / "inner.txt", vectors(), header=False)
    with zipfile.ZipFile(local, "w") as archive:
        archive.write(tmp_path / "inner.txt", "glove.6B.4d.txt")
    asked = []

    def download(repo_id, filename):  # the Hub cannot be reached here: the download is the only stand-in
        asked.append((repo_id, filename))
        return str(local)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    coverage = load_pretrained_vectors([fresh(tokenizer)], "hf://stanfordnlp/glove/glove.zip::glove.6B.4d.txt",
                                       tokenizer)
    assert asked == [("stanfordnlp/glove", "glove.zip")] and coverage.found == 4
    monkeypatch.undo()
    with pytest.raises(DataError, match="could not fetch glove.zip from the Hub repository stanfordnlp/glove"):
        load_pretrained_vectors([fresh(tokenizer)], "hf://stanfordnlp/glove/glove.zip::glove.6B.4d.txt", tokenizer)


@pytest.mark.parametrize(
    "freeze,epochs,changed", [("true", 2, False), ("1", 1, False), ("1", 2, True), ("false", 1, True)]
)
def test_training_starts_from_the_vectors_and_freezes_them(tmp_path, freeze, epochs, changed):
    data = write_sentiment(tmp_path / "data")
    path = tmp_path / "v.txt"
    table = vectors(("good", "bad", "great", "film", "the"))
    text_file(path, table, header=False)
    run = tmp_path / "run"
    config = load_config(None, [f"data.dataset={data}", "data.text_column=sentence", f"train.output_dir={run}",
                                "data.batch_size=16", f"model.embedding_dim={DIM}", "model.hidden_size=8",
                                f"model.pretrained_vectors={path}", f"model.freeze_embedding={freeze}",
                                f"train.max_epochs={epochs}", "train.eval_every=0", "train.progress=false"],
                         task="classification")
    train(config)
    model = load_model(run / "last")
    stoi = model.tokenizer.vocab.get_stoi()
    word = next(w for w in table if w in stoi)
    embedding = model.backbone.embedding.weight[stoi[word]]
    assert torch.allclose(embedding, torch.from_numpy(table[word]), atol=1e-6) != changed
    assert json.loads((run / "last" / "config.json").read_text())["pretrained_vectors"] == str(path)

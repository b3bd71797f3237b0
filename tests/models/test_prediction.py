"""Batch prediction: streamed input, input order kept, bounded lookahead, jsonl/csv output, progress on stderr."""

from __future__ import annotations

import csv
import json

import pytest

from textrnn import DataError, RNNConfig, TextTokenizer
from textrnn.models.classifier import TextClassifier
from textrnn.models.prediction import predict_stream, read_texts

from ..conftest import cli

WORDS = "the a film was good bad great dull plot acting long short funny sad".split()


@pytest.fixture(scope="module")
def model():
    tokenizer = TextTokenizer.train([" ".join(WORDS)] * 3, "word")
    config = RNNConfig(vocab_size=len(tokenizer), embedding_dim=8, hidden_size=8, bidirectional=True, pooling="mean",
                       num_labels=2, label_names=["neg", "pos"])
    return TextClassifier.build(config, tokenizer)


def texts(n: int) -> list[str]:
    return [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(1 + (i * 37) % 29)) for i in range(n)]


def test_results_come_back_in_input_order_across_chunks(model):
    rows = texts(50)
    one_by_one = [model.predict([text])[0] for text in rows]
    streamed = list(predict_stream(model, rows, batch_size=4, chunk_size=7))
    assert [r["label"] for r in streamed] == [r["label"] for r in one_by_one]
    for got, want in zip(streamed, one_by_one):
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)


def test_input_is_read_lazily_a_chunk_at_a_time(model):
    pulled = []

    def source():
        for i, text in enumerate(texts(10_000)):
            pulled.append(i)
            yield text

    results = predict_stream(model, source(), batch_size=8, chunk_size=64)
    first = [next(results) for _ in range(3)]
    assert len(first) == 3 and len(pulled) == 64  # one chunk in memory, not the file


def test_file_reader_is_a_stream(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("".join(f"text {i}\n" for i in range(100_000)), encoding="utf-8")
    reader = read_texts(str(path))
    assert next(reader) == "text 0" and next(reader) == "text 1"  # no list of 100k lines was built first
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"title": "A", "body": "b"}\n\n{"title": "C", "body": null}\n', encoding="utf-8")
    assert list(read_texts(str(jsonl), ["title", "body"], " | ")) == ["A | b", "C | "]


def forward_probabilities(model, rows: list):
    """(N, 2) probabilities from the model's forward pass on each text alone."""
    import torch

    out = []
    with torch.no_grad():
        for text in rows:
            ids = torch.tensor([model.tokenizer.encode(text) or [0]])
            logits, _ = model.eval()(ids, torch.tensor([ids.shape[1] if model.tokenizer.encode(text) else 0]))
            out.append(torch.softmax(logits.float(), -1)[0])
    return torch.stack(out)


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    return model.save_pretrained(tmp_path_factory.mktemp("ckpt") / "model")


def test_cli_writes_jsonl_and_csv_in_order_with_a_progress_bar(checkpoint, tmp_path, model):
    rows = texts(300)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    proc = cli("predict", "--checkpoint", str(checkpoint), "--input", str(source), "--batch-size", "16")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["index"] for r in lines] == list(range(300))
    by_hand = forward_probabilities(model, rows)  # not model.predict: the model's forward and a softmax
    assert [r["probabilities"]["pos"] for r in lines] == pytest.approx(by_hand[:, 1].tolist(), abs=1e-5)
    assert [r["label"] for r in lines] == [model.label_names[i] for i in by_hand.argmax(1).tolist()]
    assert "predict" in proc.stderr and "300/300" in proc.stderr  # tqdm's bar on stderr
    out = tmp_path / "out.csv"
    proc = cli("predict", "--checkpoint", str(checkpoint), "--input", str(source), "--output", str(out), "--quiet")
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == ""
    table = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["index"] for r in table] == [str(i) for i in range(300)]
    assert [r["label"] for r in table] == [r["label"] for r in lines]
    assert float(table[5]["p_pos"]) == pytest.approx(lines[5]["probabilities"]["pos"], abs=1e-5)
    assert not (tmp_path / "out.csv.partial").exists()


def test_cli_output_errors_are_one_line(checkpoint, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("good film\n", encoding="utf-8")
    for args, message in ((["--output", str(tmp_path / "no" / "out.jsonl")], "output folder"),
                          (["--format", "xml"], "invalid choice")):
        proc = cli("predict", "--checkpoint", str(checkpoint), "--input", str(source), *args)
        assert (
            proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1] and "Traceback" not in proc.stderr
        )


# ---------------------------------------------------------------------------- tables as input (issue 26)
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl"])
def test_tables_give_their_text_column_not_their_raw_lines(tmp_path, suffix):
    import pandas as pd

    frame = pd.DataFrame({"id": [1, 2, 3], "review": ["a good film", "dull, long plot", 'say "hi"\nbye'],
                          "stars": [5, 1, 3]})
    path = tmp_path / f"reviews{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    assert list(read_texts(str(path), ["review"])) == frame["review"].tolist()
    with pytest.raises(DataError, match="column 'text' not found in .*available: id, review, stars.*--text-column"):
        list(read_texts(str(path), ["text"]))


def test_cli_predicts_a_csv_column_one_result_per_row(checkpoint, tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('review,stars\n"a good film",5\n"dull, long",1\n', encoding="utf-8")
    proc = cli("predict", "--checkpoint", str(checkpoint), "--input", str(path), "--text-column", "review",
                   "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [row["index"] for row in rows] == [0, 1]


def test_a_batch_size_or_max_length_below_one_is_a_one_line_error(model):
    for kwargs in ({"batch_size": 0}, {"max_length": 0}, {"batch_size": -3}):
        with pytest.raises(DataError, match="must be an integer of at least 1"):
            list(predict_stream(model, ["a good film"], **{"batch_size": 8, **kwargs}))


def test_a_run_that_fails_part_way_leaves_no_half_file(checkpoint, tmp_path):
    """Row 3,001 of a JSON-lines input is broken: prediction stops with one line, and neither the output nor
    its .partial file is left behind (it used to stay beside the output)."""
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": f"a good film {i}"}) + "\n" for i in range(3000)) + "not json\n",
                    encoding="utf-8")
    out = tmp_path / "out.jsonl"
    proc = cli("predict", "--checkpoint", str(checkpoint), "--input", str(path), "--output", str(out), "--quiet")
    assert proc.returncode == 2 and "line 3001" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_top_k_keeps_the_most_likely_labels_first(model, checkpoint, tmp_path):
    rows = texts(20)
    full = model.predict(rows)
    top = model.predict(rows, top_k=1)
    for whole, one in zip(full, top):
        assert list(one["probabilities"]) == [whole["label"]] and one["label"] == whole["label"]
        assert one["probabilities"][whole["label"]] == whole["probabilities"][whole["label"]]
    ranked = model.predict(rows[0], top_k=5)["probabilities"]  # above the label count: all, most likely first
    assert len(ranked) == 2 and list(ranked.values()) == sorted(ranked.values(), reverse=True)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(DataError, match="top_k must be an integer of at least 1"):
            model.predict(rows, top_k=bad)
    out = tmp_path / "top.csv"
    proc = cli("predict", "--checkpoint", str(checkpoint), *rows[:3], "--top-k", "1", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    table = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [sum(bool(r[f"p_{n}"]) for n in ("neg", "pos")) for r in table] == [1, 1, 1]  # the other column empty


def test_cli_explains_each_text_in_jsonl(model, checkpoint, tmp_path):
    proc = cli("predict", "--checkpoint", str(checkpoint), "a good film", "", "--explain")
    assert proc.returncode == 0, proc.stderr
    first, empty = [json.loads(line) for line in proc.stdout.splitlines()]
    assert first["explanation"]["tokens"] == ["a", "good", "film"] and empty["explanation"] is None
    assert first["explanation"]["attributions"] == pytest.approx(model.explain("a good film")["attributions"], abs=1e-6)
    refused = cli("predict", "--checkpoint", str(checkpoint), "a good film", "--explain", "--format", "csv")
    assert refused.returncode == 2 and "--explain writes jsonl" in refused.stderr

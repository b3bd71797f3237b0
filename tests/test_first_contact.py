"""Issue 37's first-contact findings that are not one-line errors: bounded evaluation, a time budget that
says so, the length cap, and the smaller surprises. Each test was written against the code before the fix
and failed there (no train.eval_tokens, no warning, a bar total that ignored the budget, ...)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CORPUS
from tests.helpers import char_tokenizer, lm_config
from textrnn import cli, train

ROOT = Path(__file__).resolve().parents[1]


def test_an_evaluation_reads_at_most_eval_tokens_and_says_so(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS * 3, encoding="utf-8")
    result = train(lm_config(corpus, tmp_path / "run", "train.max_steps=2", "train.eval_tokens=300"))
    assert 200 < result.metrics["tokens"] <= 300  # whole windows of the streams within the budget
    assert re.search(r"evaluations read 300 of the [\d,]+ validation tokens", capsys.readouterr().err)
    full = train(lm_config(corpus, tmp_path / "full", "train.max_steps=2", "train.eval_tokens=null"))
    assert full.metrics["tokens"] > 1500


def test_a_classifier_evaluates_on_rows_drawn_once_within_the_budget():
    import datasets

    from textrnn.training.evaluation import eval_rows

    lengths = np.random.default_rng(1).integers(1, 50, size=1000)
    encoded = datasets.Dataset.from_dict({"length": lengths, "row": np.arange(1000)})
    subset = eval_rows(encoded, 2000)
    assert sum(subset["length"]) <= 2000 and len(subset) > 40
    assert subset["row"] == sorted(subset["row"]) and subset["row"] == eval_rows(encoded, 2000)["row"]
    assert len(eval_rows(encoded, None)) == len(eval_rows(encoded, 10**9)) == 1000


def test_the_bar_counts_against_the_time_budget():
    from textrnn.training import reporting

    now = [0.0]
    bar = reporting.ProgressBar(total=1695, initial=0, enabled=False, budget_s=60.0, clock=lambda: now[0])
    for _ in range(10):
        now[0] += 1.0  # one second a step
        bar.update(1.0, 10)
    assert 55 <= bar.tqdm.total <= 65  # about 60 steps fit in 60 s, not the 1,695 planned
    unbounded = reporting.ProgressBar(total=1695, initial=0, enabled=False)
    unbounded.update(1.0, 10)
    assert unbounded.tqdm.total == 1695


def test_a_run_the_time_budget_cut_short_says_so(tmp_path, capsys, monkeypatch):
    from textrnn.training.run_folder import RunResult

    result = RunResult(tmp_path, None, stop_reason="max_minutes", step=39, planned_steps=1695)
    assert "after 39 of its 1,695 planned steps (2%)" in result.budget_note
    assert RunResult(tmp_path, None, stop_reason="max_steps", step=39, planned_steps=1695).budget_note is None
    # train.schedule_by_time plans the run to end with its budget: no plan of steps to fall short of
    assert RunResult(tmp_path, None, stop_reason="max_minutes", step=39, planned_steps=None).budget_note is None
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    monkeypatch.chdir(ROOT)
    argv = ["train-generator", "--config", "configs/debug.yaml", "train.max_steps=null", f"data.dataset={corpus}",
            f"train.output_dir={tmp_path / 'run'}", "tokenizer.kind=char",
            "train.max_minutes=0.0001", "train.progress=false", "model.hidden_size=8", "model.embedding_dim=8"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert "warning: train.max_minutes ended the run after" in err
    line = json.loads(out.strip().splitlines()[-1])
    assert line["stop_reason"] == "max_minutes" and line["steps"] < line["planned_steps"]


def test_the_default_length_cap_cuts_a_huge_text_with_a_warning(tmp_path, capsys):
    texts = ["fine film"] * 9 + [" ".join(["word"] * 5000)]
    result = train({"train": {"output_dir": str(tmp_path / "run"), "max_steps": 1, "progress": False}},
                   train_data=(texts * 2, [0, 1] * 10))
    err = capsys.readouterr().err
    assert re.search(r"warning: 2 of \d+ texts of the train split are longer than data.max_length=1024 tokens "
                     r"\(the longest: 5,000\)", err) or "texts of the validation split" in err, err
    assert result.model is not None


def test_evaluate_reads_the_text_column_the_model_records(tmp_path, sentiment_dir, capsys):
    from textrnn import RNNClassifier, RNNConfig

    tok = char_tokenizer()
    model = RNNClassifier.build(RNNConfig(vocab_size=len(tok), num_labels=2, label_names=["neg", "pos"],
                                          text_fields=["sentence"], embedding_dim=8, hidden_size=8), tok)
    model.save_pretrained(tmp_path / "saved")  # saved from Python: no training record beside it
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "saved"), "--dataset", str(sentiment_dir)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["split"] == "validation"


def test_no_datasets_progress_bars_when_progress_is_off(tmp_path, capsys):
    train({"train": {"output_dir": str(tmp_path / "run"), "max_steps": 1, "progress": False}},
          train_data=(["a fine film", "a dull film"] * 10, [0, 1] * 10))
    err = capsys.readouterr().err
    assert "examples/s" not in err and "encoding" not in err, err


def test_serve_says_serving_only_once_the_model_loaded(tmp_path, capsys):
    pytest.importorskip("fastapi")
    assert cli.main(["serve", "--checkpoint", str(tmp_path / "nowhere")]) == 2
    assert "serving " not in capsys.readouterr().err.replace(str(tmp_path), "")


def test_a_classifier_plot_does_not_call_its_loss_per_token():
    from textrnn.training.reporting import loss_label

    assert "per text" in loss_label([{"loss": 0.5, "accuracy": 0.8}])
    assert "per text" in loss_label([{"loss": 0.5, "macro_f1": 0.4}])
    assert loss_label([{"loss": 1.2, "perplexity": 3.3}]) == "loss (nats/token)"


def test_the_config_reference_escapes_a_pipe_in_a_default(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("textrnn_reference", ROOT / "docs" / "_ext" / "textrnn_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.config_page(tmp_path / "configs.md")
    row = next(line for line in (tmp_path / "configs.md").read_text().splitlines() if line.startswith("| `field_sep"))
    assert len(re.split(r"(?<!\\)\|", row)) == 6, row  # four cells between the outer pipes


def test_the_web_page_opened_from_a_file_says_to_serve_it():
    page = (ROOT / "textrnn" / "serving" / "static" / "web" / "index.html").read_text(encoding="utf-8")
    inline = page.split("<script>")[1].split("</script>")[0]
    assert 'location.protocol === "file:"' in inline and "http.server" in inline


def test_the_demo_is_bounded_by_steps_not_only_minutes():
    import yaml

    demo = yaml.safe_load((ROOT / "configs" / "demo_char.yaml").read_text())
    assert demo["train"]["max_steps"] >= 200 and demo["train"].get("max_minutes") is None


def test_predict_reads_an_input_file_in_the_encoding_given(tmp_path, capsys):
    from textrnn import RNNClassifier, RNNConfig

    tok = char_tokenizer()
    RNNClassifier.build(RNNConfig(vocab_size=len(tok), num_labels=2, embedding_dim=4, hidden_size=4), tok) \
        .save_pretrained(tmp_path / "m")
    (tmp_path / "in.txt").write_bytes("caf\xe9\nna\xefve\n".encode("latin-1"))
    (tmp_path / "in.csv").write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    for name, rows in (("in.txt", 2), ("in.csv", 1)):
        argv = ["predict", "--checkpoint", str(tmp_path / "m"), "--input", str(tmp_path / name), "--quiet"]
        assert cli.main(argv + ["--encoding", "latin-1"]) == 0
        assert len(capsys.readouterr().out.strip().splitlines()) == rows
        assert cli.main(argv) == 2 and "--encoding" in capsys.readouterr().err

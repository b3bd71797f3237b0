"""The model card in every checkpoint folder, and pushing a folder to the Hub (up to the network)."""

from __future__ import annotations

import json
import os

import pytest

from textrnn import load_model
from textrnn.models.card import read_front_matter

from ..conftest import cli, run_cli


@pytest.fixture
def run(trained_classifier):
    return trained_classifier


def test_every_checkpoint_has_a_card_with_its_own_metrics(run):
    folders = sorted((run / "checkpoints").glob("step-*"))
    assert len(folders) >= 3
    losses = set()
    for folder in folders:
        card = (folder / "README.md").read_text(encoding="utf-8")
        meta = read_front_matter(card)
        saved = json.loads((folder / "trainer_state.json").read_text())["metrics"]
        assert meta["library_name"] == "textrnn" and meta["pipeline_tag"] == "text-classification"
        results = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
        assert results["accuracy"] == pytest.approx(saved["accuracy"], abs=1e-6)
        assert results["loss"] == pytest.approx(saved["loss"], abs=1e-6)
        assert "accuracy" in meta["metrics"]
        losses.add(results["loss"])
        for piece in (
            "from textrnn import load_model",
            "model.predict(",
            "`neg`, `pos`",
            "## Limits",
            "textrnn train-classifier --config config.yaml",
            "text_column: sentence",
        ):
            assert piece in card, piece
    assert len(losses) == len(folders)  # each card was written with its own checkpoint's metrics


def test_loading_ignores_the_card(run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree((run / "best").resolve(), copy)
    before = load_model(copy).predict(["good film"])
    (copy / "README.md").write_text("---\nnot: [valid\n---\nanything", encoding="utf-8")
    assert load_model(copy).predict(["good film"]) == before


def test_save_pretrained_writes_a_card_without_metrics(run, tmp_path):
    folder = load_model(run).save_pretrained(tmp_path / "plain")
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert read_front_matter(card)["pipeline_tag"] == "text-classification"
    assert "model-index" not in read_front_matter(card) and "Not evaluated" in card


class FakeHub:
    """Stands in for the Hub's HTTP API, which this machine cannot reach; records what would be sent."""

    calls: list = []

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, private=False, exist_ok=False):
        self.calls.append(("create_repo", repo_id, private))

    def upload_folder(self, folder_path, repo_id, allow_patterns, commit_message):
        sent = sorted(name for name in os.listdir(folder_path) if name in allow_patterns)
        self.calls.append(("upload_folder", repo_id, sent))


def test_push_uploads_the_model_files_and_not_the_resume_state(run, monkeypatch):
    import huggingface_hub

    from textrnn.models.hub import push_folder

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    FakeHub.calls.clear()
    assert push_folder(run, "someone/sentiment", private=True) == "someone/sentiment"
    assert FakeHub.calls == [("create_repo", "someone/sentiment", True),
                             ("upload_folder", "someone/sentiment",
                              ["README.md", "config.json", "model.safetensors", "tokenizer.json"])]


def test_push_errors_are_one_line(run, tmp_path):
    unreachable = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"}
    cases = [(["--checkpoint", str(run), "--repo-id", "someone/sentiment"], unreachable,
               "could not push to the Hugging Face Hub"),
             (["--checkpoint", str(run), "--repo-id", "no-owner"], None, "must look like OWNER/NAME"),
             (["--checkpoint", str(tmp_path), "--repo-id", "a/b"], None, "")]
    for args, env, message in cases:  # the Hub's endpoint is read when huggingface_hub is imported: a fresh process
        proc = run_cli("push", *args, env=env) if env else cli("push", *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert message in proc.stderr.strip().splitlines()[-1]


def test_the_card_and_info_publish_file_names_not_the_machine_folders(run):
    from textrnn.models.card import without_local_paths

    card = (run / "best" / "README.md").read_text()
    assert str(run.parent) not in card and "output_dir: run" in card  # the absolute run folder is cut to its name
    config = {"init_from": "/home/me/runs/lm", "pretrained_vectors": "~/vectors/glove.txt",
              "dataset": "stanfordnlp/sst2", "unlabeled": ["../shared/data/more.txt"], "lr": 0.001}
    assert without_local_paths(config) == {"init_from": "lm", "pretrained_vectors": "glove.txt",
                                           "dataset": "stanfordnlp/sst2", "unlabeled": ["more.txt"], "lr": 0.001}


def test_a_label_with_backticks_cannot_leak_html_into_the_card(tmp_path):
    """The audit: a backtick in a label ended its code span, and the rest rendered as raw HTML on the Hub."""
    from markdown_it import MarkdownIt

    from tests.helpers import char_tokenizer
    from textrnn import RNNClassifier, RNNConfig
    from textrnn.models.card import model_card

    evil = ["plain", "a`<img src=x onerror=alert(1)>`b", "``<script>alert(2)</script>", "line\n<b>two</b>"]
    tok = char_tokenizer()
    model = RNNClassifier.build(RNNConfig(vocab_size=len(tok), num_labels=4, label_names=evil, embedding_dim=4,
                                          hidden_size=4), tok)
    html = MarkdownIt("commonmark").render(model_card(model))
    assert "<img" not in html and "<script" not in html and "<b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown as text, inside code

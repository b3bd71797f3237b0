"""The composed models: classifier, ensemble, language model; save -> load."""


import pytest
import torch

from textrnn import (
    CheckpointError,
    RNNClassifier,
    RNNLanguageModel,
    TextTokenizer,
    load_model,
)

from ..helpers import TEXT, classifier, language_model


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_save_load_gives_identical_logits(char_tok, tmp_path, cell):
    model = classifier(char_tok, cell=cell, bidirectional=True, pooling="attention")
    model.save_pretrained(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {"config.json", "model.safetensors", "tokenizer.json",
                                                                "README.md"}
    again = RNNClassifier.from_pretrained(tmp_path / "ckpt", map_location="cpu")
    ids, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
    torch.testing.assert_close(again(ids, lengths)[0], model(ids, lengths)[0], rtol=0, atol=0)
    assert again.label_names == ["a", "b", "c"]


def test_loading_the_other_task_is_a_one_line_error(char_tok, tmp_path):
    language_model(char_tok).save_pretrained(tmp_path / "lm")
    with pytest.raises(CheckpointError, match="holds a language_model model.*textrnn.load_model"):
        RNNClassifier.from_pretrained(tmp_path / "lm")


def test_saves_weights_that_share_one_flat_buffer(char_tok, tmp_path):
    """On CUDA every RNN weight is a view into one flat buffer; saving must still work."""
    model = language_model(char_tok, tie_weights=True)
    params = list(model.backbone.encoder.parameters())
    flat = torch.cat([p.detach().flatten() for p in params])
    offset = 0
    for p in params:
        p.data = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    model.save_pretrained(tmp_path / "flat")
    again = RNNLanguageModel.from_pretrained(tmp_path / "flat")
    ids = torch.tensor([char_tok.encode("the fox")])
    torch.testing.assert_close(again(ids)[0], model(ids)[0], rtol=0, atol=0)


def test_push_to_hub_uploads_the_checkpoint_folder(char_tok, monkeypatch):
    import huggingface_hub

    uploaded = {}

    class FakeApi:  # the Hub cannot be reached here: the upload call is the only stand-in
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=False, exist_ok=False):
            uploaded["repo"] = repo_id

        def upload_folder(self, folder_path, repo_id, commit_message, allow_patterns):
            from pathlib import Path

            uploaded["files"] = sorted(p.name for p in Path(folder_path).iterdir() if p.name in allow_patterns)

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    classifier(char_tok).push_to_hub("someone/tiny")
    assert uploaded == {"repo": "someone/tiny", "files": ["README.md", "config.json", "model.safetensors",
                                                          "tokenizer.json"]}


# ---------------------------------------------------------------------------- checked saves and loads (issue 26)
def test_a_hand_built_language_model_saves_a_folder_that_loads(tmp_path):
    from textrnn import RNNConfig, RNNLanguageModel

    tok = TextTokenizer.train([TEXT], "word")
    lm = RNNLanguageModel(RNNConfig(vocab_size=len(tok), hidden_size=8, embedding_dim=8), tok)
    lm.save_pretrained(tmp_path / "lm")
    loaded = load_model(tmp_path / "lm")
    assert isinstance(loaded, RNNLanguageModel) and loaded.config.tokenizer_kind == "word"
    assert "a word tokenizer" in (tmp_path / "lm" / "README.md").read_text()


def test_a_folder_whose_weights_disagree_with_its_config_names_the_parameter(tmp_path, char_tok):
    import json

    from textrnn import CheckpointError

    model = classifier(char_tok)
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["num_labels"], config["label_names"] = 4, ["a", "b", "c", "d"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    expected = r"head.weight is \(3, 6\) in model.safetensors but \(4, 6\) by config.json"
    with pytest.raises(CheckpointError, match=expected):
        load_model(tmp_path / "m")


def test_a_folder_of_another_library_is_not_called_a_newer_textrnn(tmp_path):
    import json

    from textrnn import CheckpointError

    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 768}))
    with pytest.raises(CheckpointError, match="not a textrnn checkpoint") as info:
        load_model(tmp_path / "bert")
    assert "newer" not in str(info.value)


CONFIG_VARIANTS = [
    {"dropout": None}, {"dropout": "x"}, {"dropout": 1.5}, {"hidden_size": None}, {"hidden_size": "big"},
    {"hidden_size": 0}, {"hidden_size": 100_000}, {"embedding_dim": 7}, {"num_layers": 3}, {"vocab_size": 5},
    {"vocab_size": None}, {"label_names": 5}, {"label_names": ["a"]}, {"label_names": [1, 2, 3]}, {"thresholds": "x"},
    {"thresholds": [2.0, 0.5, 0.5]}, {"num_labels": 7}, {"num_labels": None}, {"pad_id": 10_000}, {"pad_id": -1},
    {"cell": "transformer"}, {"pooling": None}, {"bidirectional": "yes"}, {"task": "translation"}, {"task": None},
    {"format_version": "3"}, {"text_fields": 5}, {"problem_type": "regression"}, {"ensemble_size": 0},
]


@pytest.mark.parametrize("change", CONFIG_VARIANTS, ids=lambda c: ",".join(f"{k}={v!r}"[:30] for k, v in c.items()))
def test_a_malformed_config_json_is_one_line_and_allocates_nothing_first(tmp_path, char_tok, change):
    import json

    from textrnn import CheckpointError

    classifier(char_tok).save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(CheckpointError) as info:
        load_model(tmp_path / "m")
    assert "\n" not in str(info.value) and str(tmp_path / "m") in str(info.value)

"""The two-stage run: a `pretrain:` section trains the language model, then the classifier starts from it."""

from __future__ import annotations

import json

import pytest
import torch

from textrnn import ConfigError, DataError, load_config, load_model
from textrnn.training.api import train
from textrnn.training.pretraining import lm_experiment

from ..conftest import weights, write_sentiment
from ..helpers import prepared_stream

PRETRAIN = ["pretrain.data.seq_len=8", "pretrain.data.batch_size=4", "pretrain.train.max_steps=8",
            "pretrain.train.max_epochs=50", "pretrain.train.eval_every=4"]


def config(data, out, *extra):
    return load_config(None, [f"data.dataset={data}", "data.text_column=sentence", f"train.output_dir={out}",
                              "data.batch_size=16", "model.embedding_dim=12", "model.hidden_size=10",
                              "tokenizer.kind=word", "train.max_epochs=2", "train.eval_every=0", "train.progress=false",
                              *PRETRAIN, *extra], task="classification")


def test_one_run_pretrains_then_fine_tunes_from_the_language_model(tmp_path):
    data = write_sentiment(tmp_path / "data")
    out = tmp_path / "run"
    # lr ~ 0: the saved classifier is the copy
    result = train(config(data, out, "train.lr=1e-30", "train.max_epochs=1"))
    assert json.loads((out / "pretrain" / "DONE.json").read_text())["step"] == 8
    lm, classifier = load_model(out / "pretrain"), load_model(out / "last")
    assert classifier.tokenizer.tokenizer.to_str() == lm.tokenizer.tokenizer.to_str()
    for name in ("embedding.weight", "encoder.weight_ih_l0", "encoder.weight_hh_l0", "encoder.bias_ih_l0"):
        torch.testing.assert_close(dict(classifier.backbone.named_parameters())[name],
                                   dict(lm.backbone.named_parameters())[name], rtol=0, atol=1e-12)
    assert result.stop_reason == "max_epochs" and (out / "config.yaml").is_file()


@pytest.mark.slow
def test_resume_across_the_stage_boundary_ends_as_one_uninterrupted_run(tmp_path):
    data = write_sentiment(tmp_path / "data")
    full = tmp_path / "full"
    train(config(data, full))
    cut = tmp_path / "cut"
    train(config(data, cut, "pretrain.train.max_steps=4"))  # stage 1 stops at step 4 ...
    (cut / "pretrain" / "DONE.json").unlink()  # ... as if killed there: not done, its step-4 checkpoint is last
    for folder in ("checkpoints", "best", "last"):
        target = cut / folder
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            import shutil

            shutil.rmtree(target)
    resumed = train(config(data, cut), resume=str(cut))
    assert resumed.stop_reason == "max_epochs"
    assert json.loads((cut / "pretrain" / "DONE.json").read_text())["step"] == 8
    for stage in ("pretrain/last", "last"):  # both stages end with the weights of the uninterrupted run
        a, b = weights(full / stage), weights(cut / stage)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), stage
    again = train(config(data, cut), resume=str(cut))  # stage 1 done, stage 2 done: nothing more to train
    assert again.step == resumed.step


def test_pretrain_section_errors(tmp_path):
    data = write_sentiment(tmp_path / "data")
    with pytest.raises(ConfigError, match="pretrain takes the sections model, train, data"):
        lm_experiment(config(data, tmp_path / "r", "pretrain.optimizer.lr=1"))
    with pytest.raises(ConfigError, match="pretrain needs one text column"):
        lm_experiment(config(data, tmp_path / "r", "data.text_column=[sentence,label]"))
    with pytest.raises(ConfigError, match="unknown config key 'pretrain.model.hidden'"):
        lm_experiment(config(data, tmp_path / "r", "pretrain.model.hidden=3"))


def test_pretraining_reads_unlabeled_text_as_training_text_only(tmp_path):
    data = write_sentiment(tmp_path / "data")
    unlabeled = tmp_path / "reviews.txt"
    unlabeled.write_text("zyzzyva " * 40 + "\n" + "a quokka smiled\n" * 5, encoding="utf-8")
    plain, more = tmp_path / "plain", tmp_path / "more"
    train(config(data, plain, "train.max_steps=1"))
    train(config(data, more, "train.max_steps=1", f"pretrain.data.unlabeled=[{unlabeled}]"))
    lm = load_model(more / "pretrain")
    assert (
        "zyzzyva" in lm.tokenizer.tokenizer.get_vocab()
        and "zyzzyva" not in load_model(plain / "pretrain").tokenizer.tokenizer.get_vocab()
    )
    # the classifier's ids too
    assert load_model(more / "last").tokenizer.tokenizer.to_str() == lm.tokenizer.tokenizer.to_str()
    size = {
        run: {
            split: len(prepared_stream(run / "pretrain", split))
            for split in ("train", "validation")
        }
        for run in (plain, more)
    }
    assert size[more]["validation"] == size[plain]["validation"]  # validation is the dataset's own, untouched
    assert size[more]["train"] > size[plain]["train"]


def test_unlabeled_sources_as_dicts_and_their_errors(tmp_path):
    data = write_sentiment(tmp_path / "data")
    unlabeled = tmp_path / "more.csv"
    unlabeled.write_text("review\nzyzzyva zyzzyva zyzzyva\nzyzzyva again\n", encoding="utf-8")
    out = tmp_path / "dict"
    train(config(data, out, "train.max_steps=1",
                 f"pretrain.data.unlabeled=[{{dataset: {unlabeled}, text_column: review}}]"))
    assert "zyzzyva" in load_model(out / "pretrain").tokenizer.tokenizer.get_vocab()
    with pytest.raises(DataError, match=r"column 'text' not found .*set data.unlabeled\[0\].text_column"):
        train(config(data, tmp_path / "e1", f"pretrain.data.unlabeled=[{unlabeled}]"))
    with pytest.raises(DataError, match=r"data.unlabeled\[0\] must be a path/Hub name or a dict of dataset"):
        train(config(data, tmp_path / "e2", f"pretrain.data.unlabeled=[{{path: {unlabeled}}}]"))
    with pytest.raises(DataError, match=r"split 'unsupervised' not found .*set data.unlabeled\[0\].split"):
        train(config(data, tmp_path / "e3", "pretrain.data.unlabeled=[{split: unsupervised}]"))
    with pytest.raises(ConfigError, match=r"data.unlabeled is more text for a language model \(move it to pretrain"):
        train(config(data, tmp_path / "e4", f"data.unlabeled=[{unlabeled}]", "pretrain=null"))


def test_unlabeled_text_may_not_reread_a_training_split_that_holds_the_validation_text(corpus_file, tmp_path):
    config = load_config(None, [f"data.dataset={corpus_file}", "tokenizer.kind=char", "data.seq_len=8",
                                f"train.output_dir={tmp_path / 'lm'}", "train.max_steps=1", "train.progress=false",
                                "model.embedding_dim=8", "model.hidden_size=8", "data.unlabeled=[{split: train}]"],
                         task="language_model")
    with pytest.raises(
        DataError, match=r"data.unlabeled\[0\] reads the 'train' split, whose last 10% is the validation text"
    ):
        train(config)


def test_stage_one_inherits_the_runs_seed_device_and_threads_unless_pretrain_says(tmp_path):
    data = write_sentiment(tmp_path / "data")
    lm = lm_experiment(config(data, tmp_path / "r", "train.seed=7", "train.num_threads=1", "train.device=cpu"))
    assert (lm.train.seed, lm.train.num_threads, lm.train.device) == (7, 1, "cpu")
    assert lm.train.output_dir == str(tmp_path / "r" / "pretrain")
    own = lm_experiment(config(data, tmp_path / "r", "train.num_threads=1", "pretrain.train.num_threads=2"))
    assert own.train.num_threads == 2

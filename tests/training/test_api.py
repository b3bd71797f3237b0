"""textrnn.train from Python (textrnn.training.api): configs in any form, data in memory."""

import pandas as pd
import pytest

import textrnn
from textrnn import DataError, RNNClassifier, RNNLanguageModel, load_model

from ..helpers import TEXT

SMALL = {"model": {"embedding_dim": 8, "hidden_size": 8}, "train": {"max_steps": 6, "progress": False}}


def frame(n: int = 60) -> pd.DataFrame:
    good, bad = ["a good fun film", "loved it", "great acting"], ["a dull film", "hated it", "awful plot"]
    rows = [(good[i % 3], "pos") if i % 2 else (bad[i % 3], "neg") for i in range(n)]
    return pd.DataFrame(rows, columns=["review", "sentiment"])


def test_three_lines_from_a_dataframe_to_a_trained_classifier(tmp_path):
    config = {**SMALL, "data": {"text_column": "review", "label_column": "sentiment"},
              "train": {**SMALL["train"], "output_dir": str(tmp_path / "run")}}
    result = textrnn.train(config, train_data=frame())
    assert isinstance(result.model, RNNClassifier) and result.model.label_names == ["neg", "pos"]
    assert set(result.metrics) >= {"accuracy", "loss"} and result.step == 6
    assert result.model.predict(["loved it"]) == load_model(tmp_path / "run").predict(["loved it"])


def test_lists_train_a_language_model_and_texts_with_labels_a_classifier(tmp_path):
    lm = textrnn.train({**SMALL, "tokenizer": {"kind": "char"}, "train": {**SMALL["train"],
                        "output_dir": str(tmp_path / "lm")}}, train_data=TEXT.splitlines() * 20)
    assert isinstance(lm.model, RNNLanguageModel) and lm.model.config.tokenizer_kind == "char"
    texts, labels = frame()["review"].tolist(), frame()["sentiment"].tolist()
    clf = textrnn.train({**SMALL, "train": {**SMALL["train"], "output_dir": str(tmp_path / "clf")}},
                        train_data=(texts, labels), validation_data=(texts[:10], labels[:10]))
    assert isinstance(clf.model, RNNClassifier) and clf.metrics["examples"] == 10


def test_an_in_memory_run_resumes_with_its_data_and_says_so_without(tmp_path):
    config = {**SMALL, "data": {"text_column": "review", "label_column": "sentiment"},
              "train": {**SMALL["train"], "output_dir": str(tmp_path / "run"), "eval_every": 3}}
    textrnn.train(config, train_data=frame())
    resumed = textrnn.train({**config, "train": {**config["train"], "max_steps": 9}}, resume=str(tmp_path / "run"),
                            train_data=frame())
    assert resumed.step == 9
    with pytest.raises(DataError, match="trained on data given in Python"):
        textrnn.train(str(tmp_path / "run" / "config.yaml"), resume=str(tmp_path / "run"))

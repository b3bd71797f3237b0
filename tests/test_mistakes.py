"""Typical first-contact mistakes, each a one-line answer: exit status 2 and one ``error:`` line on the command
line, one :class:`~textrnn.TextRNNError` line in Python; never a traceback, never a silently wrong result, and
nothing written where the run would have gone.

Written against the code before issue 37's fixes: the cases marked there (Optional keys, in-memory data, a
latin-1 text corpus, a missing named label column, a lone string to predict) failed on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CORPUS, write_sentiment
from tests.helpers import char_tokenizer, classifier, language_model
from textrnn import TextRNNError, cli, train


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """Data files, a classifier and a language model checkpoint, shared by the cases."""
    root = tmp_path_factory.mktemp("mistakes")
    write_sentiment(root / "sentiment")
    (root / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    (root / "latin1.txt").write_bytes(("Caf\xe9 cr\xe8me br\xfbl\xe9e, na\xefve.\n" * 200).encode("latin-1"))
    (root / "latin1.csv").write_bytes(("sentence,label\n" + "caf\xe9 ok,pos\nna\xefve bad,neg\n" * 20)
                                      .encode("latin-1"))
    (root / "empty.csv").write_text("", encoding="utf-8")
    tok = char_tokenizer()
    classifier(tok).save_pretrained(root / "classifier")
    language_model(tok).save_pretrained(root / "lm")
    return root


SENTIMENT = ["--config", "configs/debug_classifier.yaml", "data.dataset={root}/sentiment", "train.max_steps=1"]
GENERATOR = ["--config", "configs/debug.yaml", "data.dataset={root}/corpus.txt", "train.max_steps=1"]

CLI_MISTAKES = {  # name: (argv, a piece of the one line)
    "max_steps not a number": (["train-generator", *GENERATOR, "train.max_steps=ten"],
                               "train.max_steps must be an integer, got 'ten'"),
    "max_minutes not a number": (["train-generator", *GENERATOR, "train.max_minutes=soon"],
                                 "train.max_minutes must be a number, got 'soon'"),
    "max_length not a number": (["train-classifier", *SENTIMENT, "data.max_length=long"],
                                "data.max_length must be an integer, got 'long'"),
    "num_threads not a number": (["train-generator", *GENERATOR, "train.num_threads=two"],
                                 "train.num_threads must be an integer, got 'two'"),
    "num_threads zero": (["train-generator", *GENERATOR, "train.num_threads=0"],
                         "train.num_threads must be a positive"),
    "eval_tokens zero": (["train-generator", *GENERATOR, "train.eval_tokens=0"],
                         "train.eval_tokens must be a positive"),
    "lr not a number": (["train-generator", *GENERATOR, "train.lr=fast"], "train.lr must be > 0 or find, got 'fast'"),
    "misspelled key": (["train-generator", *GENERATOR, "train.lrr=0.1"], "did you mean 'train.lr'"),
    "override without =": (["train-generator", *GENERATOR, "train.lr"], "must look like key=value"),
    "bool as a word": (["train-classifier", *SENTIMENT, "model.bidirectional=maybe"], "must be true or false"),
    "no such config file": (["train-generator", "--config", "configs/nope.yaml"], "config file not found"),
    "generator config to train-classifier": (["train-classifier", *GENERATOR], "use the other train command"),
    "absent label column": (["train-classifier", *SENTIMENT, "data.label_column=stars"],
                            "column 'stars' not found (available: sentence, label)"),
    "absent text column": (["train-classifier", *SENTIMENT, "data.text_column=review"],
                           "column 'review' not found"),
    "latin-1 text corpus": (["train-generator", *GENERATOR, "data.dataset={root}/latin1.txt"],
                            "latin1.txt is not UTF-8 (bad byte at offset 3); set data.encoding"),
    "latin-1 csv": (["train-classifier", *SENTIMENT, "data.dataset={root}/latin1.csv"], "is not UTF-8"),
    "unknown encoding": (["train-generator", *GENERATOR, "data.encoding=klingon"], "data.encoding 'klingon'"),
    "dataset path missing": (["train-generator", *GENERATOR, "data.dataset=./nowhere/corpus.txt"],
                             "dataset path not found"),
    "empty data file": (["train-classifier", *SENTIMENT, "data.dataset={root}/empty.csv"], "is empty"),
    "predict with a language model": (["predict", "--checkpoint", "{root}/lm", "a text"], "holds a language_model"),
    "generate with a classifier": (["generate", "--checkpoint", "{root}/classifier"], "holds a classification"),
    "predict with nothing to predict": (["predict", "--checkpoint", "{root}/classifier"], "give texts to label"),
    "checkpoint missing": (["predict", "--checkpoint", "{root}/nowhere", "a text"], "nowhere"),
    "predict batch size zero": (["predict", "--checkpoint", "{root}/classifier", "--batch-size", "0", "x"],
                                "batch_size must be an integer of at least 1"),
    "evaluate a split that is not there": (["evaluate", "--checkpoint", "{root}/classifier", "--dataset",
                                            "{root}/sentiment", "--split", "test", "--text-column", "sentence"],
                                           "split 'test' not found"),
    "unknown subcommand": (["train"], "invalid choice"),
    "predict input in latin-1": (["predict", "--checkpoint", "{root}/classifier", "--input", "{root}/latin1.txt"],
                                 "is not UTF-8 (bad byte at offset 3); pass --encoding"),
}


@pytest.mark.parametrize("name", list(CLI_MISTAKES))
def test_a_command_line_mistake_is_one_line_and_exit_2(name, place, tmp_path, monkeypatch, capsys):
    argv, expected = CLI_MISTAKES[name]
    out = tmp_path / "run"
    argv = [a.format(root=place) for a in argv]
    if argv[0].startswith("train-"):
        argv.append(f"train.output_dir={out}")
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and err[-1].startswith("error: "), err
    assert expected in err[-1], err[-1]
    assert not any("Traceback" in line for line in err)
    assert not out.exists(), f"{name} left {sorted(p.name for p in out.iterdir())}"


def frame(**columns):
    import pandas as pd

    return pd.DataFrame(columns)


TEXTS = ["a fine film", "a dull film", "great fun", "awful mess"] * 5

PYTHON_MISTAKES = {  # name: (config, train() keywords, a piece of the one line)
    "empty list": ({}, {"train_data": []}, "train_data is empty"),
    "list with a number in it": ({}, {"train_data": ["a text", 7]}, "item 1 is int"),
    "int text column": ({}, {"train_data": frame(text=list(range(20)), label=[0, 1] * 10)},
                        "column 'text' holds int64 values, not text"),
    "labels mixing int and str": ({}, {"train_data": (TEXTS, [0, "pos", 1, "neg"] * 5)}, "mixes int and str"),
    "dict labels": ({}, {"train_data": (TEXTS, [{"pos": 1}, {"neg": 1}] * 10)}, "holds mappings"),
    "misspelled label column": ({"data": {"label_column": "stars"}},
                                {"train_data": frame(text=TEXTS, sentiment=[0, 1] * 10)},
                                "label column 'stars' not found in train_data (columns: text, sentiment)"),
    "label column under another name": ({}, {"train_data": frame(text=TEXTS, sentiment=[0, 1] * 10)},
                                        "label column 'label' not found"),
    "texts and labels of other lengths": ({}, {"train_data": (TEXTS, [0, 1])}, "20 texts but 2 labels"),
    "validation data alone": ({}, {"validation_data": (TEXTS, [0, 1] * 10)}, "go with train_data"),
    "label names for string labels": ({}, {"train_data": (TEXTS, ["pos", "neg"] * 10), "label_names": ["a", "b"]},
                                      "holds string"),
    "too few label names": ({}, {"train_data": (TEXTS, [0, 1, 2, 1] * 5), "label_names": ["a", "b"]},
                            "gives 2 names"),
    "every row missing its text": ({}, {"train_data": frame(text=[None] * 4, label=[0, 1, 0, 1])}, "is empty once"),
    "fractional labels": ({}, {"train_data": frame(text=TEXTS, label=[0.5, 1.5] * 10)}, "are float64"),
    "a config value of the wrong type": ({"train": {"max_steps": "ten"}}, {"train_data": (TEXTS, [0, 1] * 10)},
                                         "train.max_steps must be an integer"),
}


@pytest.mark.parametrize("name", list(PYTHON_MISTAKES))
def test_a_python_mistake_is_one_exception_line(name, tmp_path):
    config, keywords, expected = PYTHON_MISTAKES[name]
    out = tmp_path / "run"
    config = {**config, "train": {**config.get("train", {}), "output_dir": str(out), "progress": False}}
    with pytest.raises(TextRNNError) as caught:
        train(config, **keywords)
    message = str(caught.value)
    assert "\n" not in message and expected in message, message
    assert not out.exists()


def test_text_alone_trains_a_language_model_and_says_so_loudly(tmp_path, capsys):
    result = train({"train": {"output_dir": str(tmp_path / "run"), "max_steps": 1, "progress": False},
                    "tokenizer": {"kind": "char"}}, train_data=[CORPUS[:2000]] * 4)
    assert result.model.task == "language_model"
    assert "WARNING: train_data has only text" in capsys.readouterr().err


def test_rows_without_text_or_label_are_dropped_and_counted(tmp_path, capsys):
    data = frame(text=TEXTS[:18] + [None, "x"], label=[0, 1] * 9 + [1, None])
    result = train({"train": {"output_dir": str(tmp_path / "run"), "max_steps": 1, "progress": False}},
                   train_data=data)
    assert "dropped 2 of 20 rows whose text or label is None" in capsys.readouterr().err
    assert result.model.label_names == ["0", "1"]  # ints that pandas made float by the None are ints again


def test_label_names_name_integer_labels(tmp_path):
    result = train({"train": {"output_dir": str(tmp_path / "run"), "max_steps": 1, "progress": False}},
                   train_data=frame(text=TEXTS, label=[0, 1, 2, 1] * 5), label_names=["neg", "neutral", "pos"])
    assert result.model.label_names == ["neg", "neutral", "pos"]
    assert result.model.predict("a fine film")["label"] in {"neg", "neutral", "pos"}


def test_a_lone_string_is_one_text_not_its_characters(place):
    from textrnn import load_model

    model = load_model(place / "classifier")
    one = model.predict("a gripping film")
    assert isinstance(one, dict) and one == model.predict(["a gripping film"])[0]
    assert model.encode("a gripping film").shape[0] == 1
    with pytest.raises(TextRNNError, match="text 1 is int, not a string"):
        model.predict(["fine", 3])
    with pytest.raises(TextRNNError, match="got one string"):
        model.tokenizer.encode_batch("a text")

"""Preparation through the cache: what changes the key, what reuses it, and prepare-then-train doing no work twice."""

from __future__ import annotations

import os

import numpy as np
import pytest

from textrnn import TextTokenizer, load_config, prepare, train
from textrnn.data.preparation import prepare_classification, prepare_language_model
from textrnn.data.tokenization import train_tokenizer

from ..conftest import CORPUS, ROOT, write_sentiment

DEBUG = str(ROOT / "configs" / "debug.yaml")


def lm(corpus, cache, *extra):
    return load_config(DEBUG, [f"data.dataset={corpus}", f"data.cache_dir={cache}", *extra], task="language_model")


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS, encoding="utf-8")
    return path


def test_a_second_preparation_finds_the_first_and_maps_the_same_file(corpus, tmp_path):
    first = prepare_language_model(lm(corpus, tmp_path / "c"))
    second = prepare_language_model(lm(corpus, tmp_path / "c", "train.output_dir=elsewhere", "model.hidden_size=3"))
    assert first.note.startswith("data: prepared") and second.note.startswith("data: found")
    assert second.folder == first.folder and second.train_tokens.filename == first.train_tokens.filename
    assert isinstance(second.train_tokens, np.memmap)
    text = first.tokenizer.decode(np.asarray(first.train_tokens).tolist())
    assert CORPUS.startswith(text) and len(text) == int(len(CORPUS) * 0.9)  # nanoGPT's 90% cut, char by char


@pytest.mark.parametrize("change", ["tokenizer.kind=word", "tokenizer.lowercase=true", "model.reverse=true",
                                    "data.validation_fraction=0.2", "data.separator=|", "train.seed=7",
                                    "data.encoding=latin-1"])
def test_each_setting_the_data_depends_on_makes_a_new_key(corpus, tmp_path, change):
    base = prepare_language_model(lm(corpus, tmp_path / "c"))
    other = prepare_language_model(lm(corpus, tmp_path / "c", change))
    assert other.folder != base.folder and other.note.startswith("data: prepared")


def test_a_validation_split_guessed_from_a_name_but_not_used_keeps_the_seed_in_the_key(tmp_path):
    """The audit's collision: files named like a validation split that datasets does not map to one, and an
    empty validation split, each still cut validation from train by train.seed, but the seed was not in the key."""
    import datasets

    folder = tmp_path / "validated"
    folder.mkdir()
    for name in ("train_validated.csv", "test_validated.csv"):
        (folder / name).write_text("text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(40)))
    cases = [{"dataset": str(folder)},
             {"train_data": datasets.DatasetDict({"train": datasets.Dataset.from_dict(
                 {"text": [f"row {i}" for i in range(40)], "label": [i % 2 for i in range(40)]}),
                 "validation": datasets.Dataset.from_dict({"text": [], "label": []})})}]
    for case in cases:
        raw = case.get("train_data")
        folders = []
        for seed in (0, 1):
            config = {"task": "classification", "data": {"dataset": case.get("dataset", "textrnn:in_memory"),
                                                          "cache_dir": str(tmp_path / "c")}, "train": {"seed": seed}}
            prepared = prepare(config, train_data=raw)[0] if raw is not None else prepare(config)[0]
            folders.append(prepared.folder)
        assert folders[0] != folders[1], case  # seed 1 cuts other rows: it must not read seed 0's folder


def test_changed_data_is_prepared_again(corpus, tmp_path):
    base = prepare_language_model(lm(corpus, tmp_path / "c"))
    corpus.write_text(CORPUS.upper(), encoding="utf-8")
    changed = prepare_language_model(lm(corpus, tmp_path / "c"))
    assert changed.folder != base.folder and changed.tokenizer.decode([changed.train_tokens[0]]) == "F"


def test_a_given_tokenizer_reuses_the_folder_only_if_it_is_that_tokenizer(corpus, tmp_path):
    base = prepare_language_model(lm(corpus, tmp_path / "c"))
    same = prepare_language_model(lm(corpus, tmp_path / "c"), TextTokenizer.from_file(base.folder / "tokenizer.json"))
    other = prepare_language_model(lm(corpus, tmp_path / "c"), TextTokenizer.train(["xyz abc"], "char"))
    assert same.folder == base.folder and other.folder != base.folder
    assert other.tokenizer.vocab_size == 11 and set(np.unique(other.train_tokens)) <= set(range(11))  # 7 chars + 4


def test_the_classification_cache_keeps_labels_columns_and_encodings(tmp_path):
    data = write_sentiment(tmp_path / "data")
    config = load_config(str(ROOT / "configs" / "debug_classifier.yaml"),
                         [f"data.dataset={data}", "data.text_column=sentence", f"data.cache_dir={tmp_path / 'c'}"])
    first, second = prepare_classification(config), prepare_classification(config)
    assert second.note.startswith("data: found") and second.folder == first.folder
    assert second.spec.names == ["neg", "pos"] and second.text_columns == ["sentence"]
    assert len(second.train_set) == 120 and second.train_set["input_ids"] == first.train_set["input_ids"]
    cut = prepare_classification(load_config(str(ROOT / "configs" / "debug_classifier.yaml"), [
        f"data.dataset={data}", "data.text_column=sentence", f"data.cache_dir={tmp_path / 'c'}", "data.max_length=2"]))
    assert cut.folder != first.folder and max(cut.train_set["length"]) == 2


def test_prepare_then_train_prepares_nothing(tmp_path, capsys):
    data = write_sentiment(tmp_path / "data")
    overrides = [f"data.dataset={data}", "data.text_column=sentence", f"data.cache_dir={tmp_path / 'c'}",
                 f"train.output_dir={tmp_path / 'run'}", "train.max_steps=2", "train.progress=false"]
    config = load_config(str(ROOT / "configs" / "debug_classifier.yaml"), overrides)
    [prepared] = prepare(config)
    capsys.readouterr()
    stamp = (prepared.folder / "meta.json").stat().st_mtime_ns
    train(config)
    assert f"data: found {prepared.folder}" in capsys.readouterr().err
    assert [p for p in (tmp_path / "c").iterdir() if p.is_dir()] == [prepared.folder]
    assert (prepared.folder / "meta.json").stat().st_mtime_ns == stamp


def test_a_resumed_run_reads_the_cache_its_first_run_built(corpus, tmp_path, capsys):
    config = lm(corpus, tmp_path / "c", f"train.output_dir={tmp_path / 'run'}", "train.max_steps=2",
                "train.progress=false")
    train(config)
    first = capsys.readouterr().err
    train(config, resume=str(tmp_path / "run"))
    again = capsys.readouterr().err
    assert "data: prepared" in first and "data: found" in again
    assert len([p for p in (tmp_path / "c").iterdir() if p.is_dir()]) == 1
    assert not list((tmp_path / "run").rglob("*.bin"))  # the run folder holds checkpoints, not data


def test_min_freq_auto_reads_the_text_twice_and_never_holds_it(tmp_path):
    reads = []

    def texts():
        reads.append(1)
        return (line for line in ["rare common common", "common"] * 3)  # a generator, never a list

    config = load_config(None, ["tokenizer.kind=word", "tokenizer.min_freq=auto"])
    tokenizer = train_tokenizer(texts, config.tokenizer)
    assert len(reads) == 2 and "common" in tokenizer.vocab and "rare" in tokenizer.vocab


def test_prepare_command_prints_where_and_what(tmp_path):
    from ..conftest import cli

    cache = tmp_path / "c"
    proc = cli("prepare", "--config", DEBUG, f"data.dataset={write_corpus(tmp_path)}", f"data.cache_dir={cache}")
    assert proc.returncode == 0, proc.stderr
    import json

    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert os.path.isdir(line["folder"]) and line["kind"] == "language_model" and line["tokens"]["train"] > 0
    assert line["bytes"] == sum(f.stat().st_size for f in (cache / os.path.basename(line["folder"])).iterdir()
                                if f.name != "meta.json")


def write_corpus(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(CORPUS, encoding="utf-8")
    return path


def test_cache_files_corrupted_in_place_are_one_line_naming_the_folder_to_delete(corpus, tmp_path):
    """Same sizes, other bytes: not torn by meta.json's measure. Before, the LM trained on ids past its vocabulary
    (an IndexError deep in torch) and a bad tokenizer.json was told to be re-saved with TextTokenizer.save."""
    from textrnn import DataError

    first = prepare_language_model(lm(corpus, tmp_path / "c"))
    tokens = first.folder / "train.bin"
    tokens.write_bytes(b"\xff" * tokens.stat().st_size)
    with pytest.raises(DataError, match=rf"prepared data in {first.folder} is corrupt .*delete that folder"):
        prepare_language_model(lm(corpus, tmp_path / "c"))
    second = prepare_language_model(lm(corpus, tmp_path / "d"))
    tokenizer = second.folder / "tokenizer.json"
    tokenizer.write_bytes(b"#" * tokenizer.stat().st_size)
    with pytest.raises(DataError, match="is corrupt"):
        prepare_language_model(lm(corpus, tmp_path / "d"))


def test_a_cache_that_cannot_be_written_is_one_line(corpus, tmp_path):
    import errno

    from textrnn import DataError
    from textrnn.data.cache import PreparedCache

    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(DataError, match="cannot write the prepared-data cache .*set data.cache_dir"):
        prepare_language_model(lm(corpus, tmp_path / "a_file" / "cache"))

    def full(folder):  # what a full disk does to a build's write
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DataError, match="is full .*free space there"):
        PreparedCache(tmp_path / "c").get("k", full)
    assert not list((tmp_path / "c").glob("k.partial-*"))

"""Faults and bad input: kills, interrupts, NaN, full disks, hostile files, odd text.

The kill and interrupt tests run real training subprocesses; the longest are marked slow.
"""

import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from textrnn import CheckpointError, DataError, RNNClassifier, RNNLanguageModel, TextRNNError, load_model
from textrnn.training.api import train

from .conftest import CORPUS, ROOT, assert_same_weights, cli, write_sentiment
from .helpers import classifier_config, lm_config

LM_ARGS = ["tokenizer.kind=char", "data.batch_size=4", "data.seq_len=16", "model.embedding_dim=12",
           "model.hidden_size=16", "model.dropout=0.1", "model.num_layers=2", "train.warmup_steps=3",
           "train.progress=false", "train.eval_every=4", "train.keep_checkpoints=3"]


def start_training(corpus: Path, out: Path, steps: int, env: dict | None = None,
                   extra: list | None = None) -> subprocess.Popen:
    config = out.parent / "lm.yaml"
    config.write_text("task: language_model\n")
    return subprocess.Popen([sys.executable, "-m", "textrnn", "train-generator", "--config", str(config),
                             f"data.dataset={corpus}", f"train.output_dir={out}", f"train.max_steps={steps}", *LM_ARGS,
                             *(extra or [])], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})})


def train_here(corpus: Path, out: Path, steps: int, *extra: str) -> subprocess.CompletedProcess:
    """The run ``start_training`` starts, in this process: a run nobody kills needs no fresh interpreter."""
    config = out.parent / "lm.yaml"
    config.write_text("task: language_model\n")
    return cli("train-generator", "--config", str(config), f"data.dataset={corpus}", f"train.output_dir={out}",
               f"train.max_steps={steps}", *LM_ARGS, *extra)


def reference_run(corpus: Path, out: Path, steps: int) -> Path:
    proc = train_here(corpus, out, steps)
    assert proc.returncode == 0, proc.stderr
    return out / "last"


def resume(out: Path, *overrides: str) -> subprocess.CompletedProcess:
    return cli("train-generator", "--resume", str(out), *overrides)


def wait_for(path: Path, timeout: float = 120) -> None:
    start = time.time()
    while not path.exists():
        if time.time() - start > timeout:
            raise TimeoutError(path)
        time.sleep(0.05)


# ---------------------------------------------------------------- kills and interrupts
def test_kill_inside_checkpoint_write_leaves_a_loadable_last_and_resume_is_exact(tmp_path, corpus_file):
    reference = reference_run(corpus_file, tmp_path / "ref", 24)
    out = tmp_path / "killed"
    proc = start_training(corpus_file, out, 24, env={"TEXTRNN_FAULT": "save:3"})  # dies writing step 12
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert (out / "last").resolve().name == "step-00000008"
    assert any(p.name.startswith(".step-00000012.tmp") for p in (out / "checkpoints").iterdir())  # the half-written one
    load_model(out / "last")
    done = resume(out)
    assert done.returncode == 0, done.stderr
    assert_same_weights(reference, out / "last")
    def records(run: Path) -> list:
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [(r["step"], r["split"], r.get("event")) for r in rows if r.get("event") != "timed_save"]

    assert records(out) == records(tmp_path / "ref")  # replayed steps are not logged twice (nor any step missed)


@pytest.mark.slow
def test_a_kill_inside_a_re_save_loses_no_step_and_resume_continues(tmp_path, corpus_file):
    """Re-saving a step moves the old folder aside, then the new one in. Killed between the two moves, only the
    set-aside folder holds the step; a restart puts it back and continues from it instead of starting over."""
    reference = reference_run(corpus_file, tmp_path / "ref", 8)
    assert resume(reference.parent, "train.max_steps=12").returncode == 0  # the same run, never killed
    out = tmp_path / "run"
    assert reference_run(corpus_file, out, 8).resolve().name == "step-00000008"
    resave = ("from textrnn import load_model\nfrom textrnn.training.run_folder import RunCheckpointer, "
              f"find_resume_point\npoint = find_resume_point({str(out)!r})\n"
              f"RunCheckpointer({str(out)!r}, 10).save(load_model(point.folder), point.training_state(), "
              "point.progress, point.experiment, {}, False)\n")
    killed = subprocess.run([sys.executable, "-c", resave], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "TEXTRNN_FAULT": "resave:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [p for p in (out / "checkpoints").iterdir() if ".old-" in p.name]
    assert not (out / "checkpoints" / "step-00000008").exists()  # the step lives only in the set-aside folder
    done = resume(out, "train.max_steps=12")
    assert done.returncode == 0, done.stderr
    assert (out / "last").resolve().name == "step-00000012"
    assert_same_weights(reference, out / "last")  # continued from step 8, not started over
    assert not [p for p in (out / "checkpoints").iterdir() if ".old-" in p.name]


def test_resuming_a_finished_run_trains_and_saves_nothing(tmp_path, corpus_file):
    out = tmp_path / "run"
    reference_run(corpus_file, out, 8)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").iterdir()}
    log = (out / "metrics.jsonl").read_text()
    again = resume(out)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["stop_reason"] == "max_steps"
    assert {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").iterdir()} == before  # no step 9, no re-save
    assert (out / "metrics.jsonl").read_text() == log


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_matches_uninterrupted(tmp_path, corpus_file):
    reference = reference_run(corpus_file, tmp_path / "ref", 60)
    rng = random.Random(1234)
    out = tmp_path / "run"
    for attempt in range(6):
        proc = start_training(corpus_file, out, 60) if attempt == 0 else subprocess.Popen(
            [sys.executable, "-m", "textrnn", "train-generator", "--resume", str(out)], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
        time.sleep(rng.uniform(2.0, 6.0))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (out / "last").exists():
            load_model(out / "last")  # whatever moment it died, last loads
    if proc.poll() is None or proc.returncode != 0:
        proc.wait()
        final = resume(out)
        assert final.returncode == 0, final.stderr
    assert_same_weights(reference, out / "last")


# SIGTERM (what a scheduler sends) runs on every push; Ctrl-C's SIGINT takes the same path and runs in the slow tier
@pytest.mark.parametrize("sig", [pytest.param(signal.SIGINT, id="SIGINT", marks=pytest.mark.slow),
                                 pytest.param(signal.SIGTERM, id="SIGTERM")])
def test_stop_signal_stops_cleanly_saves_and_says_how_to_resume(tmp_path, corpus_file, sig):
    out = tmp_path / "run"
    proc = start_training(corpus_file, out, 100000)
    wait_for(out / "last")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"textrnn train-generator --resume {out}" in err
    state = json.loads((out / "last" / "trainer_state.json").read_text())
    assert state["progress"]["step"] >= 4 and "loss" in state["metrics"]  # evaluated on the way out
    load_model(out / "last")


@pytest.fixture
def small_disk(tmp_path):
    """A real 8 MB tmpfs (skipped where this process may not mount one)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'mount failed'})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_disk_while_saving_keeps_the_previous_checkpoint(small_disk, sentiment_dir):
    """No mock: the run folder is on a small tmpfs, filled up after the first checkpoint so the next save runs out
    of space part way (safetensors and torch.save report that in their own words, not as ENOSPC)."""
    out = small_disk / "run"
    train(classifier_config(sentiment_dir, out, "train.max_steps=4", "train.eval_every=4"))
    first = (out / "last").resolve()
    size = sum(f.stat().st_size for f in first.rglob("*") if f.is_file())
    filler = small_disk / "filler"
    with open(filler, "wb") as handle:  # leave a third of a checkpoint free
        handle.write(b"\0" * max(0, shutil.disk_usage(small_disk).free - size // 3))
    with pytest.raises(TextRNNError, match="disk full while saving .*previous checkpoint is intact"):
        train(classifier_config(sentiment_dir, out, "train.max_steps=8", "train.eval_every=4"), resume=str(out))
    assert (out / "last").resolve() == first
    load_model(out / "last")
    assert not [p for p in (out / "checkpoints").iterdir() if ".tmp" in p.name]
    filler.unlink()  # space again: the run resumes from the intact checkpoint and finishes
    assert train(classifier_config(sentiment_dir, out, "train.max_steps=8", "train.eval_every=4"),
                 resume=str(out)).step == 8


# ---------------------------------------------------------------- hostile and broken checkpoints
class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_pickle_payload_is_refused_not_executed(tmp_path, sentiment_dir):
    train(classifier_config(sentiment_dir, tmp_path / "run", "train.max_epochs=1"))
    folder = (tmp_path / "run" / "last").resolve()
    with open(folder / "trainer_state.pt", "wb") as handle:
        pickle.dump({"optimizer": Payload()}, handle)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(CheckpointError, match="refusing to load"):
            train(classifier_config(sentiment_dir, tmp_path / "run2", "train.max_epochs=2"), resume=str(folder))
        torch.save({"x": Payload()}, tmp_path / "evil.pt")
        shutil.copy(tmp_path / "evil.pt", folder / "model.safetensors")
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            RNNClassifier.from_pretrained(folder)
    finally:
        os.chdir(cwd)
    assert not (tmp_path / "PWNED").exists()


@pytest.fixture
def saved_lm(tmp_path):
    from textrnn import RNNConfig, TextTokenizer

    tok = TextTokenizer.train([CORPUS], "char")
    model = RNNLanguageModel(RNNConfig(task="language_model", vocab_size=len(tok), embedding_dim=8, hidden_size=8), tok)
    model.save_pretrained(tmp_path / "lm")
    return tmp_path / "lm"


def test_config_from_a_future_version(saved_lm):
    config = json.loads((saved_lm / "config.json").read_text())
    config["format_version"] = 99
    (saved_lm / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="newer textrnn .*upgrade"):
        RNNLanguageModel.from_pretrained(saved_lm)


def test_missing_tokenizer(saved_lm):
    (saved_lm / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="has no tokenizer.json"):
        RNNLanguageModel.from_pretrained(saved_lm)


def test_safetensors_truncated_by_one_byte(saved_lm):
    weights = saved_lm / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        RNNLanguageModel.from_pretrained(saved_lm)


def test_tokenizer_vocabulary_does_not_match_embedding(saved_lm):
    from textrnn import TextTokenizer

    TextTokenizer.train(["xyz"], "char").save(saved_lm / "tokenizer.json")
    with pytest.raises(CheckpointError, match="tokenizer has 7 tokens but the model's embedding has"):
        RNNLanguageModel.from_pretrained(saved_lm)


def test_garbage_config_json(saved_lm):
    (saved_lm / "config.json").write_bytes(b"\x80\x04not json")
    with pytest.raises(CheckpointError, match="config.json is corrupt"):
        RNNLanguageModel.from_pretrained(saved_lm)


# ---------------------------------------------------------------- text files
def test_non_utf8_text_is_an_error_naming_the_offset(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8 \(bad byte at offset 3\)"):
        from textrnn import load_raw

        load_raw(str(bad))
    predict_input = tmp_path / "in.txt"
    predict_input.write_bytes(b"ok\n\xff\xfe bad\n")
    from textrnn.models.prediction import read_texts

    with pytest.raises(DataError, match="not UTF-8"):
        list(read_texts(str(predict_input)))


def test_bom_crlf_and_nul_bytes(tmp_path):
    from textrnn import load_raw
    from textrnn.models.prediction import read_texts

    csv = tmp_path / "bom.csv"
    csv.write_bytes("\ufefftext,label\r\nhello,pos\r\nbye,neg\r\n".encode("utf-8"))
    assert load_raw(str(csv))["train"].column_names == ["text", "label"]  # BOM dropped
    txt = tmp_path / "crlf.txt"
    txt.write_bytes(b"line one\r\nline\x00two\r\n")
    rows = load_raw(str(txt))["train"]["text"]
    assert "".join(rows) == "line one\nline\x00two\n"  # CRLF reads as LF; NUL is a character
    lines = tmp_path / "lines.txt"
    lines.write_bytes(b"\xef\xbb\xbffirst\r\nsecond\r\n")
    assert list(read_texts(str(lines))) == ["first", "second"]


def test_nul_bytes_train_a_char_model(tmp_path):
    corpus = tmp_path / "nul.txt"
    corpus.write_text(("ab\x00cd\n" * 200), encoding="utf-8")
    result = train(lm_config(corpus, tmp_path / "run", "train.max_steps=3"))
    model = load_model(result.output_dir)
    assert model.tokenizer.decode(model.tokenizer.encode("a\x00b")) == "a\x00b"


# ---------------------------------------------------------------- datasets
def test_empty_split(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "train.csv").write_text("sentence,label\n")
    (data / "validation.csv").write_text("sentence,label\nx,pos\n")
    with pytest.raises(DataError, match="a data file has no rows"):
        train(classifier_config(data, tmp_path / "run"))
    import datasets

    from textrnn.data.loading import split_dataset

    empty = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": []})})
    with pytest.raises(DataError, match="'train' split is empty"):
        split_dataset(empty, "train", None, 0.1, 0)


def test_all_texts_empty_trains_and_predicts_from_the_bias(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "train.csv").write_text("sentence,label\n" + '"",pos\n' * 10 + '"   ",neg\n' * 5)
    (data / "validation.csv").write_text('sentence,label\n"",pos\n')
    result = train(classifier_config(data, tmp_path / "run", "train.max_epochs=30", "train.lr=0.05"))
    model = load_model(result.output_dir)
    out = model.predict(["", "   ", "anything at all"])
    assert out[0]["probabilities"] == out[1]["probabilities"]  # both are the empty sequence
    assert out[0]["label"] == "pos"  # the majority label, learned by the output bias alone
    with pytest.raises(DataError, match="has no text"):
        empty = tmp_path / "empty_lines.txt"
        empty.write_text("\n")
        train(lm_config(empty, tmp_path / "lm", "tokenizer.kind=word"))


def test_single_example(tmp_path):
    data = tmp_path / "one"
    data.mkdir()
    (data / "train.csv").write_text("sentence,label\nonly one,pos\n")
    with pytest.raises(DataError, match="need at least 2 training examples"):
        train(classifier_config(data, tmp_path / "run"))
    (data / "validation.csv").write_text("sentence,label\nonly one,pos\n")
    with pytest.raises(DataError, match="a classifier needs at least 2"):
        train(classifier_config(data, tmp_path / "run"))


def test_label_outside_the_label_set_at_evaluation(tmp_path):
    data = write_sentiment(tmp_path / "d")
    train(classifier_config(data, tmp_path / "run", "train.max_epochs=1"))
    (data / "validation.csv").write_text("sentence,label\nloved it,pos\nmeh,neutral\n")
    proc = cli("evaluate", "--checkpoint", str(tmp_path / "run"), "--dataset", str(data))
    assert proc.returncode == 2 and "label 'neutral' is not one of the model's labels (neg, pos)" in proc.stderr


# ---------------------------------------------------------------- sizes
def test_one_megabyte_text_to_predict_is_truncated_with_a_note(tmp_path):
    data = write_sentiment(tmp_path / "d")
    train(classifier_config(data, tmp_path / "run", "train.max_epochs=1"))
    big = tmp_path / "big.txt"
    big.write_text("great fun film " * 70_000 + "\nhated it\n")  # a 1 MB line, then a short one
    proc = cli("predict", "--checkpoint", str(tmp_path / "run"), "--input", str(big), "--max-length", "500")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows[0]["truncated_to_tokens"] == 500 and "truncated_to_tokens" not in rows[1]
    assert "note: text 0 was cut to its first 500 tokens" in proc.stderr


def test_top_k_larger_than_vocabulary_and_long_prompt(saved_lm):
    model = RNNLanguageModel.from_pretrained(saved_lm)
    text = model.generate_text("First", 10, top_k=10_000, seed=0)
    assert len(text[0]) == 10
    assert len(model.generate_text(CORPUS * 10, 3, seed=0)[0]) == 3


# ---------------------------------------------------------------- paths
@pytest.mark.slow
def test_nothing_is_written_outside_output_dir(tmp_path, corpus_file):
    work = tmp_path / "work"
    work.mkdir()
    before = set(work.rglob("*"))
    proc = subprocess.run([sys.executable, "-m", "textrnn", "train-generator", "--config",
                           str(ROOT / "configs" / "debug.yaml"), f"data.dataset={corpus_file}",
                            "train.output_dir=out/run", "train.max_steps=5"], cwd=work, capture_output=True, text=True,
                           timeout=300,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith(("HF_", "XDG_CACHE"))},
                                "PYTHONPATH": str(ROOT), "HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    created = {p.relative_to(work).parts[:2] for p in set(work.rglob("*")) - before}
    assert created == {("out",), ("out", "run")}  # the datasets cache (HF_HOME, in view here) included

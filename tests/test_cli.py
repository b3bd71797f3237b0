"""End-to-end on tiny local data: the commands through ``cli.main`` in this process, the entry point and the
scripts in subprocesses."""

import json
import subprocess
import sys

import pytest
import torch

from .conftest import CORPUS, ROOT, cli, write_sentiment

SMALL = ["model.embedding_dim=16", "model.hidden_size=16", "train.progress=false", "train.warmup_steps=2"]


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cls")
    data = write_sentiment(tmp / "data")
    config = tmp / "c.yaml"
    config.write_text("task: classification\ndata:\n  text_column: sentence\n  batch_size: 16\n")
    out = tmp / "run"
    proc = cli("train-classifier", "--config", str(config), f"data.dataset={data}", f"train.output_dir={out}",
               "train.max_epochs=3", "train.lr=0.02", "model.bidirectional=true", *SMALL)
    assert proc.returncode == 0, proc.stderr
    return out, data, proc


@pytest.fixture(scope="module")
def generator_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gen")
    corpus = tmp / "corpus.txt"
    corpus.write_text(CORPUS)
    out = tmp / "run"
    proc = cli("train-generator", "--config", str(ROOT / "configs" / "debug.yaml"), f"data.dataset={corpus}",
               f"train.output_dir={out}", "train.max_steps=30", *SMALL)
    assert proc.returncode == 0, proc.stderr
    return out, corpus, proc


def test_train_classifier_then_predict_and_evaluate(classifier_run, tmp_path):
    out, data, proc = classifier_run
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["accuracy"] >= 0.8
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (out / "best" / name).is_file()
    pred = cli("predict", "--checkpoint", str(out), "loved it", "hated it")
    rows = [json.loads(line) for line in pred.stdout.splitlines()]
    assert [r["label"] for r in rows] == ["pos", "neg"]
    assert set(rows[0]["probabilities"]) == {"neg", "pos"}
    texts = tmp_path / "texts.jsonl"
    texts.write_text('{"text": "charming and funny"}\n{"text": "boring mess"}\n')
    from_file = cli("predict", "--checkpoint", str(out / "last"), "--input", str(texts))
    assert [json.loads(line)["label"] for line in from_file.stdout.splitlines()] == ["pos", "neg"]
    ev = cli("evaluate", "--checkpoint", str(out), "--dataset", str(data))
    metrics = json.loads(ev.stdout.strip().splitlines()[-1])
    assert set(metrics) >= {"accuracy", "macro_f1", "confusion_matrix"}
    assert metrics["accuracy"] == pytest.approx(summary["accuracy"])


def test_train_generator_then_generate(generator_run):
    out, corpus, _ = generator_run
    args = ["generate", "--checkpoint", str(out), "--prompt", "First ", "--max-new-tokens", "40", "--seed", "3"]
    first, second = cli(*args), cli(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout.startswith("First ") and len(first.stdout) == len("First ") + 40 + 1
    other = cli(*args[:-1], "4")
    assert other.stdout != first.stdout
    many = cli("generate", "--checkpoint", str(out), "--max-new-tokens", "10", "--num-samples", "3", "--seed", "0")
    assert many.stdout.count("=== sample") == 3
    ev = cli("evaluate", "--checkpoint", str(out), "--dataset", str(corpus))
    metrics = json.loads(ev.stdout.strip().splitlines()[-1])
    assert metrics["bits_per_char"] == pytest.approx(metrics["loss"] / 0.6931471805599453)


@pytest.mark.slow
def test_scripts_are_thin_wrappers(generator_run):
    out, _, _ = generator_run
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate.py"), "--checkpoint", str(out),
                           "--max-new-tokens", "5", "--seed", "1"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0 and len(proc.stdout) == 5 + 1


def test_generate_without_a_seed_differs_per_process_and_follows_torch_s_seed_in_process(generator_run, capsys):
    """`textrnn generate` without --seed samples anew each time it is launched (the entry point seeds torch's global
    generator from the OS once); ``cli.main`` in a caller's process leaves that generator to the caller."""
    from textrnn.cli import main, run

    out, _, _ = generator_run
    args = ["generate", "--checkpoint", str(out), "--prompt", "First ", "--max-new-tokens", "60"]
    launched = []
    for _ in range(2):
        torch.manual_seed(0)
        with pytest.raises(SystemExit) as stop:
            run(args)
        assert stop.value.code == 0
        launched.append(capsys.readouterr().out)
    assert launched[0] != launched[1]
    in_process = []
    for _ in range(2):
        torch.manual_seed(0)
        assert main(args) == 0
        in_process.append(capsys.readouterr().out)
    assert in_process[0] == in_process[1]


def assert_one_line_error(proc, match):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert match in lines[0], lines[0]


@pytest.mark.parametrize("overrides,match", [
    (["data.dataset=/no/such/file.csv"], "dataset path not found"),
    (["data.dataset=no-such-user/sst22"], "could not load dataset 'no-such-user/sst22'"),
    (["data.text_column=txt"], "column 'txt' not found (available: sentence, label)"),
    (["train.lrr=0.1"], "did you mean 'train.lr'"),
    (["model.hidden_size=-4"], "must be a positive integer"),
    (["model.dropout=1.5"], "model.dropout must be in [0, 1)"),
])
def test_bad_training_input(classifier_run, tmp_path, overrides, match):
    _, data, _ = classifier_run
    out = tmp_path / "run"
    proc = cli("train-classifier", "--config", str(ROOT / "configs" / "sst2_bilstm.yaml"), f"data.dataset={data}",
                   f"train.output_dir={out}", *overrides)
    assert_one_line_error(proc, match)
    assert not (out / "best").exists() and not (out / "last").exists()


def test_bad_checkpoints(classifier_run, generator_run, tmp_path):
    cls, _, _ = classifier_run
    gen, _, _ = generator_run
    assert_one_line_error(cli("generate", "--checkpoint", str(tmp_path / "missing")), "checkpoint not found")
    assert_one_line_error(cli("generate", "--checkpoint", str(cls)), "holds a classification model")
    assert_one_line_error(cli("predict", "--checkpoint", str(gen), "hi"), "holds a language_model model")
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(gen / "last", broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1])
    assert_one_line_error(cli("generate", "--checkpoint", str(broken)), "corrupt or truncated")


@pytest.mark.parametrize("args,match", [
    (["--max-new-tokens", "0"], "max_new_tokens must be at least 1"),
    (["--temperature", "-1"], "temperature must be 0 (greedy) or in"),
    (["--prompt", "§§§"], "no token the model knows"),
    (["--top-p", "1.5"], "top_p must be in (0, 1]"),
    (["--num-samples", "0"], "num_samples must be at least 1"),
])
def test_bad_generation_input(generator_run, args, match):
    out, _, _ = generator_run
    assert_one_line_error(cli("generate", "--checkpoint", str(out), *args), match)


def test_overrides_may_follow_flags():
    from textrnn.cli import parse_args

    args = parse_args(["train-classifier", "--config", "x.yaml", "train.lr=0.1", "--device", "cpu", "model.cell=gru"])
    assert args.overrides == ["train.lr=0.1", "model.cell=gru"] and args.device == "cpu"


def test_unknown_subcommand_and_missing_flag():
    assert_one_line_error(cli("fly"), "invalid choice")
    assert_one_line_error(cli("generate"), "--checkpoint")

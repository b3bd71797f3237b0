"""Every command the README and its docs pages show is run here (training ones with a few steps).

Commands run in README order in one scratch folder, so `predict` and `generate` use what the
`train-*` commands before them wrote. Hub names (unreachable here) are swapped for the local
copies in ../shared, and those commands skip where ../shared is absent.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, SHARED, cli

# a README training command, run for 3 small batches: it must start, train, evaluate and save as written
FAST = ["train.max_steps=3", "train.eval_every=0", "train.max_minutes=null", "train.progress=false",
        "train.eval_tokens=4096", "data.batch_size=4"]
LOCAL = {"configs/sst2_bilstm.yaml": "../shared/data/sst2",
         "configs/go_emotions_bilstm.yaml": "../shared/data/go_emotions",
         "configs/char_shakespeare.yaml": "../shared/data/tiny_shakespeare/input.txt"}


DOCS = ["README.md", "docs/results.md", "docs/benchmarks.md", "docs/gpu.md", "docs/distributed.md"]
# textrnn commands there need the Hub or never end
SERVING_DOCS = ["docs/deployment.md", "docs/serving.md", "docs/transfer.md"]


def readme_commands(kind: str, pages: list = DOCS) -> list[list[str]]:
    """Commands of a kind from the README and the pages it moved its results, benchmarks and GPU notes to."""
    text = "\n".join((ROOT / name).read_text() for name in pages)
    lines = [line.strip() for block in re.findall(r"```bash\n(.*?)```", text,
                                                  flags=re.S) for line in block.splitlines()]
    return [shlex.split(line.split("  #")[0]) for line in lines if line.startswith(kind)]


def prepare(command: list[str]) -> list[str]:
    """Make a README command quick and offline."""
    if command[0] == "torchrun":
        command = [sys.executable, "-m", "torch.distributed.run", *command[1:]]
    elif command[0] == "textrnn":
        command = [sys.executable, "-m", "textrnn", *command[1:]]
    elif command[0] == "python":
        command = [sys.executable, *command[1:]]
    if any(c.startswith("train-") for c in command):
        config = command[command.index("--config") + 1]
        if config in LOCAL and not any(c.startswith("data.dataset=") for c in command):
            command.append(f"data.dataset={LOCAL[config]}")
        command += FAST
    return command


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    work = root / "work"
    work.mkdir()
    (work / "configs").symlink_to(ROOT / "configs")
    (work / "examples").symlink_to(ROOT / "examples")
    if SHARED.exists():
        (root / "shared").symlink_to(SHARED.parent)
        (work / "data").symlink_to(SHARED)  # the README's data/ copies: ln -s ../shared/data data
    return work


def test_readme_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_demo_recipe_runs(tmp_path):
    """`make demo` = install + these two commands; run them with a 3-second budget and a short final evaluation."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^demo:.*?\n((?:\t.*\n)+)", makefile, flags=re.M).group(1)
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    for line in recipe.strip().splitlines():
        command = shlex.split(line.strip().replace("$(PYTHON)", sys.executable).replace("HF_HUB_OFFLINE=1 ", ""))
        if "train-generator" in command:
            command += ["train.max_minutes=0.05", "train.progress=false", "train.eval_tokens=4096"]
        proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("Return the ") and len(proc.stdout) == len("Return the ") + 300 + 1


@pytest.mark.parametrize(
    "command",
    [*readme_commands("textrnn"), *readme_commands("torchrun"), *readme_commands("python examples/")],
    ids=lambda c: " ".join(c)[:80],
)
def test_readme_command_runs(workdir, command):
    prepared = prepare(list(command))
    if any("../shared" in c or "data/" in c for c in prepared) and not SHARED.exists():
        pytest.skip("needs ../shared")
    if ("--checkpoint" in prepared or "examples/" in prepared[1]) and not SHARED.exists():  # a run trained on ../shared
        pytest.skip("uses a run trained on ../shared")
    if prepared[1:3] == ["-m", "textrnn"]:  # in this process: the same cli.main, without 5 s of a new interpreter
        proc = cli(*prepared[3:], cwd=workdir)
    else:  # torchrun and the examples are processes of their own
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(prepared, cwd=workdir, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip()


def test_readme_python_example_runs(workdir):
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Use it from Python\n\n```python\n(.*?)```", text, flags=re.S).group(1)
    tiny = {"sst2_bilstm": ("train-classifier", "configs/debug_classifier.yaml"),
            "char_shakespeare": ("train-generator", "configs/debug.yaml")}
    for name, (command, config) in tiny.items():  # what the quick starts train, unless they already ran here
        if not (workdir / "runs" / name).exists():
            proc = cli(command, "--config", config, f"train.output_dir=runs/{name}", *FAST, cwd=workdir)
            assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(code.strip().splitlines()) <= 12
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)


SHORTER = {"bench_data.py": ["--char-mb", "5"], "bench_encoder.py": ["--rounds", "1", "--batches", "3"],
            "bench_multilabel.py": ["--rounds", "1"], "bench_generate.py": ["--rounds", "1"],
           "bench_ddp.py": ["--steps", "3"], "quality.py": ["--smoke"], "small_data.py": ["--smoke"],
           "bench_onnx.py": ["--calls", "20", "--rounds", "1"],
           "bench_predict.py": ["--short", "500", "--long", "20", "--loop", "20"],
           "bench_serve.py": ["--clients", "4", "--requests", "10"], "bench_vectors.py": ["--mb", "5"],
            "transfer_sst2.py": ["--smoke"],
           "bench_eval_budget.py": ["--mb", "2", "--workdir", "/tmp/textrnn_bench_eval"],
           "bench_cells.py": ["--seconds", "0.5", "--lengths", "64", "--cells", "lstm", "mingru:loop"],
           "finetune_teacher.py": ["--max-steps", "2", "--out", "/tmp/textrnn_teacher_check"],
           "distill_sst2.py": ["--smoke", "--augment", "0", "--runs", "/tmp/textrnn_distill_smoke"],
           "bench_capability.py": ["--steps", "5", "--threads", "1"],
           "bench_scale.py": ["--lm-mb", "1", "--kinds", "char", "--cls-rows", "2000", "--steps", "2", "--stream-mb",
                              "--workdir", "/tmp/textrnn_scale_check"]}


def test_readme_has_no_unfilled_placeholders():
    text = (ROOT / "README.md").read_text()
    assert not re.findall(r"\b[A-Z]+_(?:SECTION|OUTPUT|SCALING)\b", text)


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", readme_commands("python benchmarks/", DOCS + SERVING_DOCS), ids=lambda c: " ".join(c)[:80]
)
def test_readme_benchmark_command_runs(command):
    """Each benchmark the README cites, run in a shortened form (the full ones take minutes to an hour)."""
    if not SHARED.exists() and Path(command[1]).name in (
        "bench_data.py",
        "bench_ddp.py",
        "quality.py",
        "small_data.py",
        "transfer_sst2.py",
        "finetune_teacher.py",
        "distill_sst2.py",
    ):
        pytest.skip("needs ../shared")
    extra = SHORTER[Path(command[1]).name]
    proc = subprocess.run([sys.executable, *command[1:], *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600, env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip()


def test_readme_is_short_and_its_code_map_names_real_files():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    code_map = text.split("## Where everything is", 1)[1].split("\n## ", 1)[0]
    files, folder = set(), None
    for row in re.findall(r"^\|\s*(`textrnn/[\w/]*`)?\s*\|(.*?)\|", code_map, re.M):
        folder = row[0].strip("`") or folder  # an empty first cell continues the folder above
        files.update(folder + name for name in re.findall(r"`([\w]+\.py)`", row[1]))
    assert len(files) >= 30 and all((ROOT / f).is_file() for f in files), [f for f in files if not (ROOT / f).is_file()]
    listed = {p.relative_to(ROOT).as_posix() for p in (ROOT / "textrnn").rglob("*.py") if p.name not in ("__init__.py",
                                                                                                         "__main__.py")}
    assert listed <= files, listed - files
    for page in re.findall(r"\]\((docs/[\w./]+)\)", text):
        assert (ROOT / page).exists(), page

"""SST-2 side by side, in one run: textrnn from scratch, textrnn's ULMFiT recipe, and fastai's AWD-LSTM.

    bash benchmarks/setup_fastai.sh                      # once: fastai in .venv-fastai, CPU torch (no CUDA download)
    python benchmarks/transfer_sst2.py --seeds 0 1 2 --jobs 2   # every row x 3 seeds, two runs at a time, 1 thread each
    python benchmarks/transfer_sst2.py --smoke           # every row for seconds (what the tests run)

Rows, each per seed on the shared local copy of stanfordnlp/sst2 (train / validation):
1. ``textrnn_scratch``: the shipped ``configs/sst2_bilstm.yaml``;
2. ``textrnn_ulmfit``: ``configs/sst2_ulmfit.yaml`` (a language model on the training text, then the classifier);
3. ``fastai_scratch``: fastai's AWD-LSTM classifier, ``pretrained=False``, ``--fastai-epochs`` epochs;
4. ``fastai_ulmfit``: fastai's own LM -> classifier path on the same text (benchmarks/fastai_sst2.py);
5. ``textrnn_minilm``: ``configs/sst2_minilm.yaml``, row 1 started from MiniLM word vectors
   (benchmarks/minilm_vectors.py writes them; ``--vectors FILE``). It says how when they are missing.

Each run is a subprocess; it reports validation accuracy (the best checkpoint, selected on
validation, as each system's own training does), wall-clock minutes and CPU minutes (user +
system time of the run and its children, from the OS): CPU minutes are the compute a run used,
comparable across rows whatever else shared the machine. With ``--jobs 2`` two runs share the
two cores, each on one thread (``--threads``), and the textrnn rows' wall-clock budgets are
lifted (``train.max_minutes=null``): every row is bounded by its epochs, so a run trains the
same steps it would alone, and only its wall-clock minutes grow. Finished runs are kept in
``RUNS/results.jsonl`` and ``--reuse`` reports them instead of training again. Without the
fastai venv its rows say why they did not run; nothing is filled in.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import ENV, ROOT, SHARED, run_summary  # noqa: E402

SST2 = SHARED / "sst2"
ROWS = ("textrnn_scratch", "textrnn_ulmfit", "fastai_scratch", "fastai_ulmfit", "textrnn_minilm")
CONFIGS = {"textrnn_scratch": "configs/sst2_bilstm.yaml", "textrnn_ulmfit": "configs/sst2_ulmfit.yaml",
           "textrnn_minilm": "configs/sst2_minilm.yaml"}


def measured(command: list[str], log: Path, threads: int) -> tuple[int, float, float]:
    """Run ``command`` (output to ``log``); (exit status, wall minutes, CPU minutes of it and its children)."""
    env = {**ENV, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, (time.perf_counter() - started) / 60, (usage.ru_utime + usage.ru_stime) / 60


def textrnn_command(row: str, seed: int, out: Path, args) -> list[str]:
    overrides = [f"data.dataset={SST2}", f"train.seed={seed}", f"train.output_dir={out}", "train.progress=false",
                 f"train.num_threads={args.threads}"]
    if args.jobs > 1:  # bounded by epochs alone: the steps a run would train with the machine to itself
        overrides += ["train.max_minutes=null"]
        overrides += ["pretrain.train.max_minutes=null"] if row == "textrnn_ulmfit" else []
    if row == "textrnn_minilm":
        overrides += [f"model.pretrained_vectors={args.vectors}"]
    if args.smoke:
        overrides += ["train.max_steps=20", "train.min_steps=null"]
        overrides += ["pretrain.train.max_steps=20"] if row == "textrnn_ulmfit" else []
    return [sys.executable, "-m", "textrnn", "train-classifier", "--config", CONFIGS[row], *overrides]


def fastai_command(row: str, seed: int, args) -> list[str]:
    mode = row.split("_")[1]
    return [str(args.fastai_python), str(ROOT / "benchmarks" / "fastai_sst2.py"), "--data", str(SST2), "--mode", mode,
            "--seed", str(seed), "--epochs", str(args.fastai_epochs), "--lm-epochs", str(args.fastai_lm_epochs),
            *(["--limit", "256"] if args.smoke else [])]


def run_one(row: str, seed: int, args) -> dict:
    """Train one row for one seed; its accuracy and minutes, or why it did not run."""
    out = args.runs / f"{row}_seed{seed}"
    out.parent.mkdir(parents=True, exist_ok=True)
    fastai = row.startswith("fastai")
    if fastai and not args.fastai_python.exists():
        return {"skipped": f"{args.fastai_python} not found: run bash benchmarks/setup_fastai.sh"}
    if row == "textrnn_minilm" and not Path(args.vectors).exists():
        return {"skipped": f"{args.vectors} not found: make it as configs/sst2_minilm.yaml says"}
    command = fastai_command(row, seed, args) if fastai else textrnn_command(row, seed, out, args)
    log = out.parent / f"{out.name}.log"
    code, wall, cpu = measured(command, log, args.threads)
    if code != 0:
        lines = log.read_text().strip().splitlines()
        return {"failed": lines[-1] if lines else f"exit {code}", "log": str(log)}
    if fastai:
        last = next(line for line in reversed(log.read_text().splitlines()) if line.startswith("{"))
        accuracy = json.loads(last)["accuracy"]
    else:
        accuracy = run_summary(out, "accuracy")["best"]
    return {"accuracy": accuracy, "wall_minutes": round(wall, 2), "cpu_minutes": round(cpu, 2), "threads": args.threads,
            "jobs": args.jobs}


def summary(runs: dict) -> dict:
    done = [r for r in runs.values() if "accuracy" in r]
    if not done:
        return {"runs": runs}
    acc = [100 * r["accuracy"] for r in done]
    return {"runs": runs, "seeds": len(done), "accuracy_mean": round(statistics.mean(acc), 2),
            "accuracy_std": round(statistics.pstdev(acc), 2),
            "wall_minutes_mean": round(statistics.mean(r["wall_minutes"] for r in done), 2),
            "cpu_minutes_mean": round(statistics.mean(r["cpu_minutes"] for r in done), 2)}


def load_results(path: Path) -> dict:
    if not path.exists():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["row"], r["seed"]): r["result"] for r in records}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "transfer")
    parser.add_argument("--only", nargs="+", choices=ROWS, help="rows to run (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (2: two runs share the two cores)")
    parser.add_argument("--threads", type=int, default=0, help="threads per run (default: 2 // jobs, at least 1)")
    parser.add_argument("--reuse", action="store_true", help="report runs already in RUNS/results.jsonl")
    parser.add_argument("--fastai-python", type=Path, default=ROOT / ".venv-fastai" / "bin" / "python")
    parser.add_argument("--fastai-seeds", type=int, nargs="*", help="seeds of the fastai rows (default: --seeds); "
                        "they run after the textrnn rows")
    parser.add_argument("--fastai-epochs", type=int, default=1, help="fastai classifier epochs")
    parser.add_argument("--fastai-lm-epochs", type=int, default=1)
    parser.add_argument("--vectors", type=Path, default=ROOT / "runs" / "vectors" / "minilm_sst2.vec",
                        help="textrnn_minilm: the .vec file of benchmarks/minilm_vectors.py")
    parser.add_argument("--smoke", action="store_true", help="seconds per row, one seed")
    args = parser.parse_args()
    args.threads = args.threads or max(1, 2 // args.jobs)
    return args


def main() -> None:
    args = parse_args()
    if not SST2.exists():
        sys.exit(f"{SST2} is missing: this benchmark uses the shared local copy of SST-2")
    seeds = args.seeds[:1] if args.smoke else args.seeds
    rows = args.only or ROWS
    path = args.runs / "results.jsonl"
    done = load_results(path) if args.reuse else {}
    fastai_seeds = args.fastai_seeds if args.fastai_seeds is not None else seeds
    fastai_seeds = fastai_seeds[:1] if args.smoke else fastai_seeds
    row_seeds = {row: fastai_seeds if row.startswith("fastai") else seeds for row in rows}
    todo = [(row, seed) for seed in seeds for row in rows if not row.startswith("fastai")]  # seed by seed
    todo += [(row, seed) for row in rows if row.startswith("fastai") for seed in row_seeds[row]]
    todo = [key for key in todo if key not in done]
    args.runs.mkdir(parents=True, exist_ok=True)

    def work(key: tuple[str, int]) -> None:
        done[key] = run_one(*key, args)
        print(f"{key[0]} seed {key[1]}: {json.dumps(done[key])}", flush=True)
        if "accuracy" in done[key]:
            with open(path, "a") as f:
                f.write(json.dumps({"row": key[0], "seed": key[1], "result": done[key]}) + "\n")

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(work, todo))
    report = {row: summary({seed: done[(row, seed)] for seed in row_seeds[row] if (row, seed) in done}) for row in rows}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

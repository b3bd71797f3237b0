"""SST-2 side by side, in one run: textrnn from scratch, textrnn's ULMFiT recipe, and fastai's AWD-LSTM.

    bash benchmarks/setup_fastai.sh                      # once: fastai in .venv-fastai, CPU torch (no CUDA download)
    python benchmarks/transfer_sst2.py --seeds 0 1 2     # about 3 x (10 + 18 + fastai) minutes on 2 cores
    python benchmarks/transfer_sst2.py --smoke           # every row for seconds (what the tests run)

Rows, each per seed on the shared local copy of stanfordnlp/sst2 (train / validation):
1. ``textrnn scratch``: the shipped ``configs/sst2_bilstm.yaml``;
2. ``textrnn ulmfit``: ``configs/sst2_ulmfit.yaml`` (language model on the training text, then the classifier);
3. ``fastai scratch``: AWD-LSTM classifier, ``pretrained=False``, ``--fastai-epochs`` epochs (1 epoch took 417 s here);
4. ``fastai ulmfit``: fastai's own LM -> classifier path on the same text (benchmarks/fastai_sst2.py).
Prints each run's validation accuracy and wall-clock minutes (startup and tokenization
included), then mean +- std per row. Without the fastai venv its rows say why they did not run;
nothing is filled in.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import ROOT, SHARED, run_summary, textrnn  # noqa: E402

SST2 = SHARED / "sst2"


def textrnn_row(config: str, seed: int, out: Path, smoke: bool) -> dict:
    quick = ["train.max_minutes=0.05", "train.min_steps=null"] if smoke else []
    if smoke and "ulmfit" in config:
        quick += ["pretrain.train.max_minutes=0.05"]
    started = time.perf_counter()
    textrnn("train-classifier", "--config", config, f"data.dataset={SST2}", f"train.seed={seed}", f"train.output_dir={out}",
            "train.progress=false", *quick)
    return {"accuracy": run_summary(out, "accuracy")["best"], "minutes": (time.perf_counter() - started) / 60}


def fastai_row(python: Path, mode: str, seed: int, epochs: int, lm_epochs: int, smoke: bool) -> dict:
    if not python.exists():
        return {"skipped": f"{python} not found: run bash benchmarks/setup_fastai.sh"}
    command = [str(python), str(ROOT / "benchmarks" / "fastai_sst2.py"), "--data", str(SST2), "--mode", mode,
               "--seed", str(seed), "--epochs", str(epochs), "--lm-epochs", str(lm_epochs), *(["--limit", "256"] if smoke else [])]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"failed": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    result = json.loads(next(line for line in reversed(proc.stdout.splitlines()) if line.startswith("{")))
    return {"accuracy": result["accuracy"], "minutes": (time.perf_counter() - started) / 60}


def summary(runs: dict) -> dict:
    done = [r for r in runs.values() if "accuracy" in r]
    if not done:
        return {"runs": runs}
    acc, minutes = [100 * r["accuracy"] for r in done], [r["minutes"] for r in done]
    return {"runs": runs, "accuracy_mean": round(statistics.mean(acc), 2), "accuracy_std": round(statistics.pstdev(acc), 2),
            "minutes_mean": round(statistics.mean(minutes), 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "transfer")
    parser.add_argument("--fastai-python", type=Path, default=ROOT / ".venv-fastai" / "bin" / "python")
    parser.add_argument("--fastai-epochs", type=int, default=1, help="fastai classifier epochs (1 is about 7 min here)")
    parser.add_argument("--fastai-lm-epochs", type=int, default=1)
    parser.add_argument("--only", nargs="+", choices=["textrnn_scratch", "textrnn_ulmfit", "fastai_scratch", "fastai_ulmfit"])
    parser.add_argument("--smoke", action="store_true", help="seconds per row, one seed")
    args = parser.parse_args()
    if not SST2.exists():
        sys.exit(f"{SST2} is missing: this benchmark uses the shared local copy of SST-2")
    seeds = args.seeds[:1] if args.smoke else args.seeds
    rows = {
        "textrnn_scratch": lambda s: textrnn_row("configs/sst2_bilstm.yaml", s, args.runs / f"scratch_seed{s}", args.smoke),
        "textrnn_ulmfit": lambda s: textrnn_row("configs/sst2_ulmfit.yaml", s, args.runs / f"ulmfit_seed{s}", args.smoke),
        "fastai_scratch": lambda s: fastai_row(args.fastai_python, "scratch", s, args.fastai_epochs, 0, args.smoke),
        "fastai_ulmfit": lambda s: fastai_row(args.fastai_python, "ulmfit", s, args.fastai_epochs, args.fastai_lm_epochs,
                                              args.smoke),
    }
    report = {}
    for name, run in rows.items():
        if args.only and name not in args.only:
            continue
        runs = {}
        for seed in seeds:
            runs[seed] = run(seed)
            print(f"{name} seed {seed}: {json.dumps(runs[seed])}", flush=True)
        report[name] = summary(runs)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""The published results, end to end from the shipped configs, on the shared local data.

    python benchmarks/quality.py                 # both: SST-2 (3 seeds x 10 min), shakespeare (30 min)
    python benchmarks/quality.py --only sst2 --seeds 0 1 2
    python benchmarks/quality.py --only shakespeare
    python benchmarks/quality.py --only go_emotions --seeds 0 1 2
    python benchmarks/quality.py --only sst2 --seeds 0 --set model.ensemble_size=1   # an ablation row

Each run is the real command line (`textrnn train-classifier/train-generator` with the shipped
config and only data.dataset, train.seed and train.output_dir overridden, plus any --set
overrides). Prints, per run: the validation metric of the best checkpoint (selected on
validation by the trainer) and of the last one, training minutes, training tokens/s and peak
resident memory; then mean and std over seeds, the share of SST-2 validation words the
training vocabulary lacks, and char-model samples at temperatures 0.5, 0.8 and 1.0. `--smoke`
runs every step with a few seconds of training (what the test suite uses).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
sys.path.insert(0, str(ROOT))  # the in-process vocabulary check imports textrnn from this checkout, installed or not


def textrnn(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "textrnn", *args], cwd=ROOT, env=ENV, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"textrnn {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def run_summary(out: Path, metric: str) -> dict:
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r["split"] == "validation"]
    best = (max if metric in ("accuracy", "macro_f1") else min)(evals, key=lambda r: r[metric])
    return {"best": best[metric], "best_step": best["step"], "last": evals[-1][metric],
            "minutes": evals[-1]["elapsed_s"] / 60, "tokens_per_s": evals[-1].get("train_tokens_per_s"),
            "peak_rss_mb": max(r.get("peak_rss_mb", 0) for r in evals)}


def classifier_seeds(name: str, config: str, data: Path, metric: str, seeds: list[int], extra: list[str], runs: Path) -> dict:
    """One run of a shipped classifier config per seed; mean and std of the best and last checkpoints' metric."""
    results = {}
    for seed in seeds:
        out = runs / f"{name}_seed{seed}"
        textrnn("train-classifier", "--config", config, f"data.dataset={data}", f"train.seed={seed}",
                f"train.output_dir={out}", "train.progress=false", *extra)
        results[seed] = run_summary(out, metric)
        print(f"{name} seed {seed}: {json.dumps(results[seed])}", flush=True)
    best = [r["best"] for r in results.values()]
    last = [r["last"] for r in results.values()]
    return {"runs": results, "best_mean": statistics.mean(best), "best_std": statistics.pstdev(best),
            "last_mean": statistics.mean(last), "last_std": statistics.pstdev(last)}


def unseen_words(extra: list[str]) -> dict:
    """How often the model meets ``<unk>``: in training (words under min_freq) and in validation."""
    import datasets

    from textrnn import UNK_ID, load_config
    from textrnn.tasks import train_tokenizer

    config = load_config(str(ROOT / "configs" / "sst2_bilstm.yaml"), [f"data.dataset={SHARED / 'sst2'}", *extra])
    raw = datasets.load_dataset(str(SHARED / "sst2"))
    tokenizer = train_tokenizer(raw["train"]["sentence"], config)  # as a training run makes it
    report = {"vocabulary size": len(tokenizer)}
    for split in ("train", "validation"):
        rows = [tokenizer.encode(text) for text in raw[split]["sentence"]]
        report[f"{split} tokens that are <unk>"] = sum(t == UNK_ID for row in rows for t in row) / sum(map(len, rows))
        report[f"{split} sentences with an <unk>"] = sum(UNK_ID in row for row in rows) / len(rows)
    return report


def shakespeare(extra: list[str], runs: Path) -> dict:
    out = runs / "char_shakespeare"
    textrnn("train-generator", "--config", "configs/char_shakespeare.yaml",
            f"data.dataset={SHARED / 'tiny_shakespeare' / 'input.txt'}", f"train.output_dir={out}", "train.progress=false", *extra)
    result = run_summary(out, "loss")
    result["samples"] = {t: textrnn("generate", "--checkpoint", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "400",
                                    "--temperature", str(t), "--seed", "0") for t in (0.5, 0.8, 1.0)}
    print(f"shakespeare: {json.dumps({k: v for k, v in result.items() if k != 'samples'})}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["sst2", "shakespeare", "go_emotions"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", default=str(ROOT / "runs" / "quality"))
    parser.add_argument("--smoke", action="store_true", help="seconds of training per run, one seed")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config overrides for every run")
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"{SHARED} is missing: the published results use the shared local copies")
    extra = [*args.set, *(["train.max_minutes=0.05"] if args.smoke else [])]
    seeds = args.seeds[:1] if args.smoke else args.seeds
    report = {}
    if args.only in (None, "sst2"):
        report["sst2_unseen_words"] = unseen_words(args.set)
        report["sst2"] = classifier_seeds("sst2", "configs/sst2_bilstm.yaml", SHARED / "sst2", "accuracy", seeds, extra,
                                          Path(args.runs))
    if args.only in (None, "go_emotions"):  # multi-label: macro-F1 at thresholds tuned on validation
        report["go_emotions"] = classifier_seeds("go_emotions", "configs/go_emotions_bilstm.yaml", SHARED / "go_emotions",
                                                 "macro_f1", seeds, extra, Path(args.runs))
    if args.only in (None, "shakespeare"):
        report["shakespeare"] = shakespeare(extra, Path(args.runs))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

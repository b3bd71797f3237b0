"""The published results, end to end from the shipped configs, on the shared local data.

    python benchmarks/quality.py                 # all: SST-2 and GoEmotions (3 seeds x 10 min), char (3 seeds x 30 min)
    python benchmarks/quality.py --only sst2 --seeds 0 1 2
    python benchmarks/quality.py --only char --seeds 0 1 2   # tiny shakespeare: loss, minutes, tokens/s
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


def classifier_seeds(name: str, config: str, data: Path, metric: str, seeds: list[int], extra: list[str],
                     runs: Path) -> dict:
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
    from textrnn.data.tokenization import train_tokenizer

    config = load_config(str(ROOT / "configs" / "sst2_bilstm.yaml"), [f"data.dataset={SHARED / 'sst2'}", *extra])
    raw = datasets.load_dataset(str(SHARED / "sst2"))
    tokenizer = train_tokenizer(list(raw["train"]["sentence"]), config.tokenizer)  # as a training run makes it
    report = {"vocabulary size": len(tokenizer)}
    for split in ("train", "validation"):
        rows = [tokenizer.encode(text) for text in raw[split]["sentence"]]
        report[f"{split} tokens that are <unk>"] = sum(t == UNK_ID for row in rows for t in row) / sum(map(len, rows))
        report[f"{split} sentences with an <unk>"] = sum(UNK_ID in row for row in rows) / len(rows)
    return report


def evaluate(checkpoint: Path, data: Path, *options: str) -> float:
    """``textrnn evaluate`` on the last 10% of the text; its last stdout line is the JSON report."""
    return json.loads(
        textrnn("evaluate", "--checkpoint", str(checkpoint), "--dataset", str(data), *options).strip().splitlines()[-1]
    )["loss"]


def char_seeds(seeds: list[int], extra: list[str], runs: Path, reuse: bool) -> dict:
    """The char generator per seed, scored twice on the best checkpoint.

    ``loss`` is what ``textrnn evaluate`` reports by default (the validation text cut into
    data.eval_batch_size = 256 streams, each carrying its state: the protocol logged in training);
    ``loss_16_streams`` cuts it into 16 longer streams, so fewer characters start with an empty state.
    nanoGPT scores random 256-character windows instead, which is neither.
    """
    data = SHARED / "tiny_shakespeare" / "input.txt"
    results = {}
    for seed in seeds:
        out = runs / f"char_shakespeare_seed{seed}"
        if not (reuse and (out / "best").exists()):
            textrnn("train-generator", "--config", "configs/char_shakespeare.yaml", f"data.dataset={data}",
                    f"train.seed={seed}", f"train.output_dir={out}", "train.progress=false", *extra)
        summary = run_summary(out, "loss")
        results[seed] = {"loss": evaluate(out, data), "loss_16_streams": evaluate(out, data, "--batch-size", "16"),
                         "minutes": summary["minutes"], "tokens_per_s": summary["tokens_per_s"],
                         "best_step": summary["best_step"], "last_logged_loss": summary["last"]}
        print(f"char seed {seed}: {json.dumps(results[seed])}", flush=True)
    losses = [r["loss"] for r in results.values()]
    first = runs / f"char_shakespeare_seed{seeds[0]}"
    samples = {t: textrnn("generate", "--checkpoint", str(first), "--prompt", "ROMEO:", "--max-new-tokens", "400",
                          "--temperature", str(t), "--seed", "0") for t in (0.5, 0.8, 1.0)}
    return {"runs": results, "loss_mean": statistics.mean(losses), "loss_std": statistics.pstdev(losses),
            "loss_max": max(losses), "every_seed_at_most_1.45": max(losses) <= 1.45, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["sst2", "char", "shakespeare", "go_emotions"],
                        help="shakespeare: same as char")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", default=str(ROOT / "runs" / "quality"))
    parser.add_argument("--reuse", action="store_true",
                        help="char: score a seed's finished run folder instead of retraining")
    parser.add_argument("--smoke", action="store_true", help="seconds of training per run, one seed")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra config overrides for every run")
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
        report["go_emotions"] = classifier_seeds("go_emotions", "configs/go_emotions_bilstm.yaml",
                                                 SHARED / "go_emotions", "macro_f1", seeds, extra, Path(args.runs))
    if args.only in (None, "char", "shakespeare"):
        report["char"] = char_seeds(seeds, extra, Path(args.runs), args.reuse)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

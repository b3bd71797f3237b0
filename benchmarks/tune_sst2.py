"""A tune run on SST-2, and its best configuration against the shipped recipe's, on validation.

    python benchmarks/tune_sst2.py [--trials 12] [--trial-steps 600] [--steps 2000] [--seeds 0 1]

1. ``textrnn tune --config configs/sst2_bilstm.yaml`` over ``configs/sst2_bilstm.tune.yaml``, each trial one
   BiLSTM (``model.ensemble_size=1``) trained ``--trial-steps`` updates (steps, not minutes: a trial's result
   must not depend on what else the machine runs), evaluated every 200 for the median pruner.
2. The best trial's values and the shipped recipe's, each trained ``--steps`` updates with each of ``--seeds``
   (one model each, the recipe's other settings): validation accuracy side by side, one JSON row per run,
   then a summary row. Run folders under ``--out`` (default ``runs/tune_sst2``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import textrnn
from textrnn.core.config_files import load_config

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "sst2"
COMMON = ["model.ensemble_size=1", "train.max_minutes=null", "train.progress=false", "train.min_steps=null"]


def run(overrides: list[str]) -> float:
    config = load_config(str(ROOT / "configs" / "sst2_bilstm.yaml"), [f"data.dataset={SHARED}", *COMMON, *overrides])
    return float(textrnn.train(config).metrics["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--trial-steps", type=int, default=600)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "tune_sst2")
    args = parser.parse_args()
    start = time.time()
    config = load_config(str(ROOT / "configs" / "sst2_bilstm.yaml"),
                         [f"data.dataset={SHARED}", *COMMON, f"train.max_steps={args.trial_steps}",
                          "train.eval_every=200", f"train.output_dir={args.out / 'study'}"])
    space = str(ROOT / "configs" / "sst2_bilstm.tune.yaml")
    found = textrnn.tune(config, space, args.trials)
    print(json.dumps({"tune_trials": found.trials, "best_value": round(found.best_value, 4),
                      "best_params": found.best_params, "minutes": round((time.time() - start) / 60, 1)}), flush=True)
    tuned = [f"{key}={value}" for key, value in found.best_params.items()]
    scores: dict[str, list[float]] = {"recipe": [], "tuned": []}
    for seed in args.seeds:
        for name, values in (("recipe", []), ("tuned", tuned)):
            folder = args.out / f"{name}_seed{seed}"
            accuracy = run([*values, f"train.seed={seed}", f"train.max_steps={args.steps}", "train.eval_every=500",
                            f"train.output_dir={folder}"])
            scores[name].append(accuracy)
            print(json.dumps({"config": name, "seed": seed, "steps": args.steps, "accuracy": round(accuracy, 4)}),
                  flush=True)
    print(json.dumps({name: round(statistics.mean(s), 4) for name, s in scores.items()} |
                     {"seeds": args.seeds, "minutes": round((time.time() - start) / 60, 1)}), flush=True)


if __name__ == "__main__":
    main()

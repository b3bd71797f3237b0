"""What a bounded evaluation costs and how far its estimate is from the whole split (issue 37).

    python benchmarks/bench_eval_budget.py --mb 200

A word language model on the Zipf corpus of ``bench_scale.py`` (the same file, model and settings as its
word rows), ``train.max_steps=1``: the data is prepared once first (``textrnn prepare``, timed apart), then
the run is timed from start to exit with the default ``train.eval_tokens`` and with ``train.eval_tokens=null``
(the whole held-out 10%, which is what every evaluation read before the budget). Each row prints the
seconds, the tokens scored and the validation loss; the last line is the estimate's deviation from the
whole split's loss. The corpus is written under --workdir (GBs at most, never in the repo).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import LM_MODEL, write_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def textrnn(*args: str) -> tuple[float, str]:
    """Run ``python -m textrnn ARGS``; (seconds from start to exit, its stdout)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "textrnn", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return time.perf_counter() - start, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200)
    parser.add_argument("--workdir", default="/tmp/textrnn_scale")
    parser.add_argument("--budgets", nargs="*", default=["default", "null"])
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    corpus = write_corpus(work / f"zipf_{args.mb:g}mb.txt", args.mb)
    common = ["--config", "configs/char_shakespeare.yaml", f"data.dataset={corpus}", "tokenizer.kind=word", *LM_MODEL,
              f"data.cache_dir={work / 'cache_eval_budget'}"]
    seconds, out = textrnn("prepare", *common)
    print(json.dumps({"prepare_s": round(seconds, 1), **json.loads(out.strip().splitlines()[-1])}), flush=True)
    losses = {}
    for budget in args.budgets:
        extra = [] if budget == "default" else [f"train.eval_tokens={budget}"]
        seconds, out = textrnn("train-generator", *common, "train.max_steps=1", "train.progress=false",
                               f"train.output_dir={work / 'runs' / f'eval_budget_{budget}'}", *extra)
        result = json.loads(out.strip().splitlines()[-1])
        losses[budget] = result["loss"]
        print(json.dumps({"eval_tokens": budget, "start_to_exit_s": round(seconds, 1),
                          "tokens_scored": result["tokens"], "validation_loss": round(result["loss"], 4)}), flush=True)
    if len(losses) == 2:
        estimate, whole = losses[args.budgets[0]], losses[args.budgets[1]]
        print(json.dumps({"estimate_minus_whole": round(estimate - whole, 4),
                          "relative": round((estimate - whole) / whole, 5)}), flush=True)


if __name__ == "__main__":
    main()

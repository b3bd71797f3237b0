"""Explanations on a real classifier: how close integrated gradients come to completeness, and what they cost.

    python benchmarks/bench_explain.py --checkpoint runs/sst2_bilstm [--data ../shared/data/sst2] [--texts 50]

For the first ``--texts`` validation sentences, at each ``--steps``: the median and the largest
``|delta| / |score - baseline_score|`` (the attributions' gap from the score's change, relative to
that change), and the median seconds a text (two threads, nothing else running). One JSON row per
setting, then one for occlusion (``method="occlusion"``, what the static web page computes): its median
seconds a text, forward passes only; then both methods' milliseconds a text when ``--batch`` texts are explained
in one call (at the first ``--steps``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from textrnn import load_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", type=Path, default=SHARED / "sst2")
    parser.add_argument("--column", default="sentence")
    parser.add_argument("--texts", type=int, default=50)
    parser.add_argument("--steps", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="texts explained in one call, for the per-text cost")
    args = parser.parse_args()
    import pyarrow.parquet as pq

    torch.set_num_threads(args.threads)
    texts = pq.read_table(args.data / "validation.parquet", columns=[args.column]).column(0).to_pylist()[:args.texts]
    model = load_model(args.checkpoint)
    model.explain(texts[0], steps=4)  # warm-up
    for steps in args.steps:
        gaps, seconds = [], []
        for text in texts:
            start = time.perf_counter()
            e = model.explain(text, steps=steps)
            seconds.append(time.perf_counter() - start)
            gaps.append(abs(e["delta"]) / max(abs(e["score"] - e["baseline_score"]), 1e-9))
        print(json.dumps({"steps": steps, "texts": len(texts), "median_relative_gap": round(statistics.median(gaps), 5),
                          "max_relative_gap": round(max(gaps), 5), "median_s": round(statistics.median(seconds), 3)}),
              flush=True)
    seconds = []
    for text in texts:
        start = time.perf_counter()
        model.explain(text, method="occlusion")
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"method": "occlusion", "texts": len(texts), "median_s": round(statistics.median(seconds), 4)}),
          flush=True)
    # a list of texts is explained text by text (each text's own path, or its deletions, is the batch): the
    # per-text cost of a batch of --batch texts, to set beside the one-at-a-time medians above
    batch = (texts * (args.batch // len(texts) + 1))[:args.batch]
    for method, steps in (("integrated_gradients", args.steps[0]), ("occlusion", args.steps[0])):
        start = time.perf_counter()
        model.explain(batch, method=method, steps=steps)
        print(json.dumps({"method": method, "batch": len(batch), "steps": steps,
                          "ms_per_text": round(1000 * (time.perf_counter() - start) / len(batch), 1)}), flush=True)


if __name__ == "__main__":
    main()

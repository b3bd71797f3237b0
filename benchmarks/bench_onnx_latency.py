"""Batch-1 latency of classifier graphs in ONNX Runtime, from raw text (tokenization included).

    python benchmarks/bench_onnx_latency.py --checkpoint runs/distill/student_x1_seed0/best \
        --graph old=runs/distill/onnx/student_x1_seed0/student.onnx

Exports the checkpoint with this textrnn (``new``), adds any ``--graph NAME=FILE`` (for example a file an
earlier release exported), and times them interleaved: ``rounds`` rounds, each ``calls`` single-text calls of
every graph at every thread count, on SST-2 validation sentences. Prints one JSON line a graph and thread
count: node count, p50 and p90 ms over all calls, and the median of the rounds' p50s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import onnx_classifier  # noqa: E402


def timings(run, texts: list[str], calls: int, offset: int) -> list[float]:
    out = []
    for i in range(calls):
        text = [texts[(offset + i) % len(texts)]]
        start = time.perf_counter()
        run(text)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    import onnx
    import pyarrow.parquet as pq

    from textrnn import load_model
    from textrnn.serving.export import export_onnx

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--graph", nargs="*", default=[], help="more graphs of the same model, NAME=FILE")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sst2")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    texts = pq.read_table(args.data / "validation.parquet", columns=["sentence"]).column(0).to_pylist()
    model = load_model(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {"new": export_onnx(model, Path(tmp) / "new.onnx")}
        graphs |= {name: Path(file) for name, file in (g.split("=", 1) for g in args.graph)}
        runs = {(name, t): onnx_classifier(model, path, t) for name, path in graphs.items() for t in args.threads}
        for run in runs.values():
            timings(run, texts, 20, 0)  # warm-up
        seen: dict = {key: [] for key in runs}
        p50s: dict = {key: [] for key in runs}
        for r in range(args.rounds):
            for key, run in runs.items():
                got = timings(run, texts, args.calls, r * args.calls)
                seen[key] += got
                p50s[key].append(statistics.median(got))
        for (name, threads), got in seen.items():
            got.sort()
            print(json.dumps({"checkpoint": str(args.checkpoint), "graph": name, "threads": threads,
                              "nodes": len(onnx.load(str(graphs[name])).graph.node),
                              "p50_ms": round(got[len(got) // 2], 3), "p90_ms": round(got[int(len(got) * 0.9)], 3),
                              "median_round_p50_ms": round(statistics.median(p50s[(name, threads)]), 3)}),
                  flush=True)


if __name__ == "__main__":
    main()

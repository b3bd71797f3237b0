"""onnxruntime against torch eager on CPU: latency at batch 1 (p50, p99) and throughput at batch 64.

    python benchmarks/bench_onnx.py [--calls 300] [--rounds 5]

The model is the shipped SST-2 classifier's shape: a BiLSTM of 256 units each way over 256-d
embeddings of 16k words, attention pooling, one member and the ensemble of three. Weights are
random (the cost is the same). Inputs are 20-token sentences for latency and 64 sentences of
mixed lengths (5-40 tokens) for throughput. torch runs its default CPU path (the padded
strategy) under inference_mode; onnxruntime runs the exported graph with its default threads.
The two are timed in interleaved rounds (see common.py), and the parity of their outputs is
printed too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from textrnn import RNNConfig, TextTokenizer  # noqa: E402
from textrnn.models.classifier import _Classifier  # noqa: E402
from textrnn.serving.export import export_onnx, torch_outputs  # noqa: E402


def build(members: int) -> _Classifier:
    tokenizer = TextTokenizer.train([" ".join(f"w{i}" for i in range(16_000))], "word")
    config = RNNConfig(vocab_size=len(tokenizer), embedding_dim=256, hidden_size=256, bidirectional=True,
                       pooling="attention", num_labels=2, ensemble_size=members)
    torch.manual_seed(0)
    return _Classifier.build(config, tokenizer).eval()


def inputs(batch: int, rng: np.random.Generator, fixed: int | None = None) -> dict:
    lengths = np.full(batch, fixed) if fixed else rng.integers(5, 41, size=batch)
    ids = rng.integers(4, 16_000,
                       size=(batch, int(lengths.max()))) * (np.arange(lengths.max())[None] < lengths[:, None])
    return {"input_ids": ids.astype(np.int64), "lengths": lengths.astype(np.int64)}


def timings(run, feeds: list[dict]) -> list[float]:
    out = []
    for f in feeds:
        started = time.perf_counter()
        run(f)
        out.append(time.perf_counter() - started)
    return out


def contenders(model, path: str) -> dict:
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])

    @torch.inference_mode()
    def eager(f: dict) -> None:
        logits, _ = model(torch.from_numpy(f["input_ids"]), torch.from_numpy(f["lengths"]))
        model.probabilities(logits)

    return {"torch": eager, "onnxruntime": lambda f: session.run(["probabilities"], f)}


def measure(members: int, calls: int, rounds: int) -> dict:
    model = build(members)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(export_onnx(model, Path(tmp) / "model.onnx"))
        runs, rng = contenders(model, path), np.random.default_rng(0)
        single = [inputs(1, rng, fixed=20) for _ in range(calls)]
        batches = [inputs(64, rng) for _ in range(max(10, calls // 10))]
        for run in runs.values():  # warm-up
            timings(run, single[:20] + batches[:3])
        lat = {name: [] for name in runs}
        thr = {name: [] for name in runs}
        for _ in range(rounds):  # interleaved: a slow patch of the machine hits both
            for name, run in runs.items():
                lat[name] += timings(run, single)
                thr[name].append(64 * len(batches) / sum(timings(run, batches)))
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        diff = float(np.abs(session.run(None, batches[0])[0] - torch_outputs(model, batches[0])[0]).max())
    return {name: {"batch1_p50_ms": round(1e3 * float(np.percentile(lat[name], 50)), 3),
                   "batch1_p99_ms": round(1e3 * float(np.percentile(lat[name], 99)), 3),
                   "batch64_texts_per_s": round(statistics.median(thr[name]),
                                                1)} for name in runs} | {"max_abs_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300, help="batch-1 calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    report = {"threads": torch.get_num_threads()}
    for members in (1, 3):
        report[f"members_{members}"] = measure(members, args.calls, args.rounds)
        print(f"members {members}: {json.dumps(report[f'members_{members}'])}", flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""torch, onnxruntime fp32 and onnxruntime int8 on CPU, on trained checkpoints: size, speed and quality.

    textrnn train-classifier --config configs/sst2_bilstm.yaml data.dataset=../shared/data/sst2
    textrnn train-generator --config configs/char_shakespeare.yaml \\
        data.dataset=../shared/data/tiny_shakespeare/input.txt
    python benchmarks/bench_onnx.py [--classifier runs/sst2_bilstm] [--generator runs/char_shakespeare]

Classifier (the shipped SST-2 ensemble): file size; batch-1 latency (p50, p99) over validation
sentences one at a time; batch-64 throughput over the validation set in batches of 64; and
validation accuracy. Generator (the shipped char model): file size; one generation step at
batch 1 (p50, p99) and at batch 64 (tokens/s); and the validation loss (the last 10% of the
text) computed the same way by all three runtimes: 64 contiguous streams, one step graph call a
character, the state carried from a zero start. The three runtimes are timed in interleaved
rounds (see common.py); int8 is onnxruntime's dynamic quantization (textrnn.serving.quantize).
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
from textrnn import load_model  # noqa: E402
from textrnn.serving.export import export_onnx, graph_of  # noqa: E402
from textrnn.serving.quantize import QUANTIZE_CHOICES, read_agreement  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def sessions(path: Path) -> object:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def runners(model, folder: Path) -> tuple[dict, dict]:
    """name -> a function of feeds (dict of numpy arrays) giving the first output; and the file sizes."""
    graph, _ = graph_of(model)
    paths = {"onnxruntime_fp32": export_onnx(model, folder / "fp32.onnx")}
    for choice in QUANTIZE_CHOICES:
        paths[f"onnxruntime_{choice}"] = export_onnx(model, folder / f"{choice}.onnx", quantize=choice)
    weights = sum(p.numel() * p.element_size() for p in model.state_dict().values())

    @torch.inference_mode()
    def eager(feeds: dict) -> list[np.ndarray]:
        out = graph(*[torch.from_numpy(v) for v in feeds.values()])
        return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]

    run = {"torch": eager} | {name: sessions(path).run for name, path in paths.items()}
    sizes = {"torch_weights_bytes": weights} | {f"{name}_bytes": path.stat().st_size for name, path in paths.items()}
    agreement = {f"{name}_agreement_at_export": read_agreement(path) for name, path in paths.items() if "int8" in name}
    return {name: (lambda f, r=r: r(None, f)) if name != "torch" else r for name, r in run.items()}, sizes | agreement


def timed(run, feeds: list[dict]) -> list[float]:
    out = []
    for f in feeds:
        started = time.perf_counter()
        run(f)
        out.append(time.perf_counter() - started)
    return out


def speed(run: dict, single: list[dict], batches: list[dict], units: int, rounds: int) -> dict:
    """Interleaved rounds: batch-1 p50/p99 over ``single``; units/s over ``batches``."""
    for r in run.values():
        timed(r, single[:20] + batches[:2])  # warm-up
    latency: dict = {name: [] for name in run}
    throughput: dict = {name: [] for name in run}
    for _ in range(rounds):
        for name, r in run.items():
            latency[name] += timed(r, single)
            throughput[name].append(units / sum(timed(r, batches)))
    return {name: {"batch1_p50_ms": round(1e3 * float(np.percentile(latency[name], 50)), 3),
                   "batch1_p99_ms": round(1e3 * float(np.percentile(latency[name], 99)), 3),
                   "batch64_per_s": round(statistics.median(throughput[name]), 1)} for name in run}


def padded(rows: list[list[int]]) -> dict:
    lengths = np.array([max(1, len(r)) for r in rows])
    ids = np.zeros((len(rows), lengths.max()), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
    return {"input_ids": ids, "lengths": lengths.astype(np.int64)}


def classifier_report(checkpoint: Path, rounds: int) -> dict:
    import pandas as pd

    model = load_model(checkpoint).eval()
    frame = pd.read_parquet(SHARED / "sst2" / "validation.parquet")
    rows = model.require_tokenizer().encode_batch(frame["sentence"].tolist())
    labels = frame["label"].to_numpy()
    order = np.argsort([len(r) for r in rows], kind="stable")  # batches of similar lengths, as predict makes them
    batches = [padded([rows[i] for i in order[s:s + 64]]) for s in range(0, len(rows), 64)]
    with tempfile.TemporaryDirectory() as tmp:
        run, report = runners(model, Path(tmp))
        report["speed"] = speed(run, [padded([r]) for r in rows[:200]], batches, len(rows), rounds)
        for name, r in run.items():
            predicted = np.concatenate([r(b)[0].argmax(-1) for b in batches])
            report.setdefault("validation_accuracy", {})[name] = round(float((predicted == labels[order]).mean()), 4)
    return report


def stream_loss(step, ids: np.ndarray, model, streams: int = 64) -> float:
    """Mean next-character NLL over ``streams`` contiguous streams, one step call a character."""
    c = model.config
    length = (len(ids) - 1) // streams
    inputs = ids[: streams * length].reshape(streams, length)
    targets = ids[1: streams * length + 1].reshape(streams, length)
    state = [np.zeros((c.num_layers, streams, c.hidden_size), np.float32) for _ in range(2 if c.cell == "lstm" else 1)]
    names = ["h", "c"][: len(state)]
    total = 0.0
    for t in range(length):
        logits, *state = step({"input_ids": inputs[:, t:t + 1].astype(np.int64), **dict(zip(names, state))})
        logits = logits.astype(np.float64)
        top = logits.max(-1, keepdims=True)
        log_z = top[:, 0] + np.log(np.exp(logits - top).sum(-1))
        total += float((log_z - logits[np.arange(streams), targets[:, t]]).sum())
    return total / (streams * length)


def generator_report(checkpoint: Path, rounds: int) -> dict:
    model = load_model(checkpoint).eval()
    text = (SHARED / "tiny_shakespeare" / "input.txt").read_text(encoding="utf-8")
    ids = np.asarray(model.require_tokenizer().encode(text[int(0.9 * len(text)):]), dtype=np.int64)
    c = model.config
    rng = np.random.default_rng(0)

    def feeds(batch: int) -> dict:
        state = {n: np.zeros((c.num_layers, batch, c.hidden_size), np.float32)
                 for n in (["h", "c"] if c.cell == "lstm" else ["h"])}
        return {"input_ids": rng.integers(4, c.vocab_size, size=(batch, 1)).astype(np.int64), **state}

    with tempfile.TemporaryDirectory() as tmp:
        run, report = runners(model, Path(tmp))
        report["speed"] = speed(run, [feeds(1) for _ in range(300)], [feeds(64) for _ in range(30)], 64 * 30, rounds)
        report["validation_loss_nats"] = {name: round(stream_loss(r, ids, model), 4) for name, r in run.items()}
        report["validation_characters"] = int(len(ids) - 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--classifier", type=Path, default=Path("runs/sst2_bilstm"))
    parser.add_argument("--generator", type=Path, default=Path("runs/char_shakespeare"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    report = {"threads": torch.get_num_threads()}
    for name, fn, checkpoint in (("classifier", classifier_report, args.classifier),
                                 ("generator", generator_report, args.generator)):
        if not checkpoint.exists():
            sys.exit(f"{checkpoint} does not exist: train it first (see this script's docstring) or pass --{name}")
        report[name] = fn(checkpoint, args.rounds)
        print(f"{name}: {json.dumps(report[name])}", flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

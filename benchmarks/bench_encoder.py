"""Classifier training throughput (real tokens/s, forward + backward) on CPU.

    python benchmarks/bench_encoder.py [--rounds 3] [--batches 20]

BiLSTM classifier (E=128, H=256, B=64), lognormal lengths in two settings: long documents
(mean about 230 tokens, like IMDB, capped at 800) and short sentences (mean about 10, like
SST-2). Three ways, timed interleaved in one run:

  (a) textbook: random batches + pack_padded_sequence
  (b) textrnn default: length-bucketed batches + the padded strategy
  (c) bound: the same model on equal-length batches, no padding at all

Real tokens are the sum of lengths; padding does not count.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, peak_rss_mb  # noqa: E402

from textrnn import BucketBatchSampler, RNNClassifier, RNNConfig  # noqa: E402

SETTINGS = {"long (IMDB-like)": (5.25, 0.6, 800), "short (SST-2-like)": (2.1, 0.6, 60)}
B, VOCAB = 64, 20000


def lengths_for(mu: float, sigma: float, cap: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(mu, sigma, n).astype(int), 1, cap)


def make_batches(lengths: np.ndarray, batches: list[np.ndarray], seed: int = 0) -> list[tuple]:
    rng = np.random.default_rng(seed)
    out = []
    for index in batches:
        lens = torch.tensor(lengths[index], dtype=torch.long)
        ids = torch.from_numpy(rng.integers(4, VOCAB, (len(index), int(lens.max()))))
        ids[torch.arange(ids.size(1))[None, :] >= lens[:, None]] = 0
        out.append((ids, lens, torch.from_numpy(rng.integers(0, 2, len(index)))))
    return out


def trainer(model: RNNClassifier, batches: list[tuple], strategy: str):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    position = [0]

    def step() -> int:
        ids, lens, labels = batches[position[0] % len(batches)]
        position[0] += 1
        model.backbone.encoder.strategy = strategy
        _, loss = model(ids, lens, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return int(lens.sum())

    return step


def setting(name: str, mu: float, sigma: float, cap: int, n_batches: int, rounds: int) -> dict:
    n = B * n_batches * 4
    lengths = lengths_for(mu, sigma, cap, n)
    random_batches = [np.arange(i, i + B) for i in range(0, B * n_batches, B)]
    bucketed = BucketBatchSampler(lengths, B, seed=0).batches()[:n_batches]
    equal = [np.full(B, i) for i in range(n_batches)]
    # (c): batches whose every sequence has the bucketed batch's mean length: same tokens, no padding
    eq_lengths = np.array([int(round(lengths[b].mean())) for b in bucketed])
    config = RNNConfig(task="classification", vocab_size=VOCAB, embedding_dim=128, hidden_size=256, bidirectional=True)
    torch.manual_seed(0)
    model = RNNClassifier(config)
    data = {"(a) random + packed": trainer(model, make_batches(lengths, random_batches), "packed"),
            "(b) bucketed + padded (default)": trainer(model, make_batches(lengths, bucketed), "padded"),
            "(c) equal lengths, no padding (bound)": trainer(model, make_batches(eq_lengths, equal), "padded")}
    result = interleaved(data, rounds=rounds, seconds=2.0)
    result["mean length"] = float(lengths.mean())
    result["(b)/(a)"] = result["(b) bucketed + padded (default)"] / result["(a) random + packed"]
    result["(b)/(c)"] = result["(b) bucketed + padded (default)"] / result["(c) equal lengths, no padding (bound)"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    report = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    for name, (mu, sigma, cap) in SETTINGS.items():
        report[name] = setting(name, mu, sigma, cap, args.batches, args.rounds)
        for key, value in report[name].items():
            print(f"{name:20s} {key:40s} {value:>12,.2f}")
    report["peak RSS (MB)"] = peak_rss_mb()
    print(json.dumps(report))


if __name__ == "__main__":
    main()

"""Adaptive softmax against the full softmax: training tokens/s and peak memory at 10k, 33k and 100k words.

    python benchmarks/bench_adaptive.py [--seconds 20]

The model is the word LM shape of configs/word_lm.yaml widened for big vocabularies: a 2-layer
LSTM of 400 over 400-d embeddings (untied), batch 20 x 35 tokens, one forward and backward and an
SGD step a batch. Tokens are drawn from a Zipf law (s = 1.1) over the vocabulary, as words are.
The adaptive softmax's clusters: [2000, 6000] at 10k words, [2000, 10000] above (Grave et al.
put most of the probability mass in the head). Each case runs in its own process so its peak
RSS is its own; the cases alternate full / adaptive per vocabulary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from textrnn import RNNConfig, RNNLanguageModel  # noqa: E402
from textrnn.core.runtime import peak_rss_mb  # noqa: E402

VOCABS = (10_000, 33_000, 100_000)


def cutoffs(vocab: int) -> list[int]:
    return [2000, 6000] if vocab <= 10_000 else [2000, 10_000]


def one_case(vocab: int, adaptive: bool, seconds: float) -> dict:
    torch.manual_seed(0)
    config = RNNConfig(task="language_model", vocab_size=vocab, embedding_dim=400, hidden_size=400, num_layers=2,
                       adaptive_softmax_cutoffs=cutoffs(vocab) if adaptive else None, tokenizer_kind="word")
    model = RNNLanguageModel(config).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    ranks = np.arange(1, vocab - 3)
    weights = ranks ** -1.1
    rng = np.random.default_rng(0)

    def batch() -> torch.Tensor:
        return torch.from_numpy(4 + rng.choice(len(ranks), size=(20, 36), p=weights / weights.sum()))

    def step(ids: torch.Tensor) -> None:
        _, loss, _ = model(ids[:, :-1], targets=ids[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    data = [batch() for _ in range(20)]
    for ids in data[:3]:  # warm-up
        step(ids)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step(data[done % len(data)])
        done += 1
    rate = done * 20 * 35 / (time.perf_counter() - started)
    return {"vocab": vocab, "softmax": "adaptive" if adaptive else "full", "tokens_per_s": round(rate),
            "peak_rss_mb": round(peak_rss_mb()), "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--one", nargs=2, metavar=("VOCAB", "SOFTMAX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_case(int(args.one[0]), args.one[1] == "adaptive", args.seconds)))
        return
    rows = []
    for vocab in VOCABS:
        for softmax in ("full", "adaptive"):
            out = subprocess.run([sys.executable, __file__, "--seconds", str(args.seconds), "--one", str(vocab),
                                  softmax], capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    for vocab in VOCABS:
        full, adaptive = (r for r in rows if r["vocab"] == vocab)
        print(f"{vocab:>7,} words: adaptive {adaptive['tokens_per_s'] / full['tokens_per_s']:.2f}x the tokens/s, "
              f"peak RSS {adaptive['peak_rss_mb']} vs {full['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()

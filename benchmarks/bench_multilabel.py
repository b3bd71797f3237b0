"""A multi-label training step against a single-label one of the same shape.

    python benchmarks/bench_multilabel.py

Same BiLSTM classifier (E = H = 256, attention pooling, 28 labels as GoEmotions has), same
padded batches (64 texts of 5-40 tokens); the only difference is the head's loss: softmax
cross-entropy over labels, or a sigmoid and binary cross-entropy per label. Steps are timed
interleaved, medians over rounds; the target is multi-label <= 1.1x single-label.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import interleaved  # noqa: E402

from textrnn import RNNClassifier, RNNConfig  # noqa: E402

LABELS, VOCAB, BATCH = 28, 10_000, 64


def step_fn(problem_type: str, batches: list):
    torch.manual_seed(0)
    config = RNNConfig(vocab_size=VOCAB, embedding_dim=256, hidden_size=256, bidirectional=True, pooling="attention",
                       num_labels=LABELS, problem_type=problem_type)
    model = RNNClassifier(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    position = [0]

    def step() -> int:
        ids, lengths, single, multi = batches[position[0] % len(batches)]
        position[0] += 1
        _, loss = model(ids, lengths, multi if problem_type == "multi_label" else single)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return 1

    return step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(8):
        lengths = torch.randint(5, 41, (BATCH,), generator=generator)
        ids = torch.randint(4, VOCAB, (BATCH, int(lengths.max())), generator=generator)
        ids[torch.arange(ids.size(1))[None, :] >= lengths[:, None]] = 0
        single = torch.randint(0, LABELS, (BATCH,), generator=generator)
        multi = (torch.rand(BATCH, LABELS, generator=generator) < 0.05).float()
        batches.append((ids, lengths, single, multi))
    results = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    results |= interleaved({"single-label steps/s": step_fn("single_label", batches),
                            "multi-label steps/s": step_fn("multi_label", batches)}, rounds=args.rounds)
    results["multi-label step time / single-label step time"] = (
        results["single-label steps/s"] / results["multi-label steps/s"]
    )
    for key, value in results.items():
        print(f"{key:50s} {value:,.3f}" if isinstance(value, float) else f"{key:50s} {value}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}))


if __name__ == "__main__":
    main()

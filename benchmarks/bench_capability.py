"""What each cell can track: three synthetic tasks, each cell trained the same steps (issue 39's capability suite).

    python benchmarks/bench_capability.py [--steps 1500] [--cells lstm gru mingru minlstm] [--seeds 0]

The parallel cells (minGRU, minLSTM) gate on the input alone: h_t = a(x_t) * h_{t-1} + b(x_t).
Whether that loses what a recurrent gate can do is a question for data, not for faith, so each
cell trains on three tasks whose answers need different kinds of memory:

- ``parity``: 24 random bits; the label is their parity (XOR of all). Needs a state that flips
  on every 1, a nonlinear function of the whole history: a linear recurrence can only carry it
  through its depth's nonlinearities.
- ``count``: 32 letters of a, b, c, d; the label is how many a's (0-16, capped). Needs an
  accumulator: what a linear recurrence with a = 1, b = [x is a] does exactly.
- ``selective_copy``: 4 of 8 symbols at random places among 40 blanks, then 4 markers; at each
  marker the model must emit the next remembered symbol in order (Gu and Dao 2023's selective
  copying). Needs content-dependent writes and reads.

Each model: 2 layers, embedding 32, hidden 128, ``pooling: last`` (the classifiers), AdamW at
3e-3 for ``--steps`` batches of 64, scored on 2,000 fresh examples of the same generator (the
majority-class rate is printed beside it). Rows are JSON, then a table; the numbers are the
seed's (``--seeds`` for more).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # textrnn from this checkout, installed or not
from textrnn import RNNClassifier, RNNConfig, RNNLanguageModel  # noqa: E402

BITS, LETTERS, MAX_COUNT = 24, 32, 16
COPY_LENGTH, COPY_SYMBOLS, COPY_ITEMS = 40, 8, 4
FIRST_ID = 4  # ids 0-3 are textrnn's special tokens


def parity(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    bits = torch.randint(0, 2, (n, BITS), generator=g)
    return bits + FIRST_ID, bits.sum(1) % 2


def count(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    letters = torch.randint(0, 4, (n, LETTERS), generator=g)
    return letters + FIRST_ID, (letters == 0).sum(1).clamp(max=MAX_COUNT)


def selective_copy(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """ids (n, 40 + 4): blanks with 4 symbols, then 4 markers; targets (n, 4): the symbols in order."""
    blank, marker = FIRST_ID, FIRST_ID + 1
    ids = torch.full((n, COPY_LENGTH + COPY_ITEMS), blank)
    ids[:, COPY_LENGTH:] = marker
    symbols = torch.randint(0, COPY_SYMBOLS, (n, COPY_ITEMS), generator=g) + FIRST_ID + 2
    places = torch.rand(n, COPY_LENGTH, generator=g).argsort(1)[:, :COPY_ITEMS].sort(1).values
    ids.scatter_(1, places, symbols)
    return ids, symbols


TASKS: dict[str, tuple[Callable, int]] = {"parity": (parity, 2), "count": (count, MAX_COUNT + 1),
                                          "selective_copy": (selective_copy, COPY_SYMBOLS)}


def build(task: str, cell: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    common = dict(vocab_size=FIRST_ID + 2 + COPY_SYMBOLS, embedding_dim=32, hidden_size=128, num_layers=2, cell=cell,
                  embedding_dropout=0.0, output_dropout=0.0)
    if task == "selective_copy":
        return RNNLanguageModel(RNNConfig(task="language_model", tokenizer_kind="char", **common))
    return RNNClassifier(RNNConfig(task="classification", num_labels=TASKS[task][1], pooling="last", **common))


def loss_and_hits(task: str, model: torch.nn.Module, ids: torch.Tensor, targets: torch.Tensor):
    """The loss of a batch and its correct answers (per answer: per text, or per marker for the copy)."""
    if task == "selective_copy":
        logits = model(ids)[0][:, COPY_LENGTH:, FIRST_ID + 2:]  # (B, 4, symbols): the answers at the markers
        loss = F.cross_entropy(logits.reshape(-1, COPY_SYMBOLS), (targets - FIRST_ID - 2).reshape(-1))
        return loss, logits.argmax(-1) == targets - FIRST_ID - 2
    logits, _ = model(ids, None)
    return F.cross_entropy(logits, targets), logits.argmax(-1) == targets


def run(task: str, cell: str, steps: int, seed: int) -> dict:
    make, _ = TASKS[task]
    model = build(task, cell, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    model.train()
    for _ in range(steps):
        ids, targets = make(64, g)
        loss, _ = loss_and_hits(task, model, ids, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    ids, targets = make(2000, torch.Generator().manual_seed(10_000 + seed))
    with torch.no_grad():
        _, hits = loss_and_hits(task, model, ids, targets)
    majority = torch.bincount(targets.flatten()).max().item() / targets.numel()
    row = {"task": task, "cell": cell, "seed": seed, "steps": steps, "accuracy": hits.float().mean().item(),
           "majority": majority, "parameters": sum(p.numel() for p in model.parameters()),
           "minutes": (time.perf_counter() - start) / 60}
    if task == "selective_copy":
        row["all_four"] = hits.all(1).float().mean().item()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru", "mingru", "minlstm"])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for task in args.tasks:
        for cell in args.cells:
            for seed in args.seeds:
                rows.append(run(task, cell, args.steps, seed))
                print(json.dumps(rows[-1]), flush=True)
    print(f"\n| task | {' | '.join(args.cells)} | majority |\n|---|{'---|' * (len(args.cells) + 1)}")
    for task in args.tasks:
        cells = [statistics.mean(r["accuracy"] for r in rows if r["task"] == task and r["cell"] == c)
                 for c in args.cells]
        majority = next(r["majority"] for r in rows if r["task"] == task)
        print(f"| {task} | {' | '.join(f'{a:.3f}' for a in cells)} | {majority:.3f} |")


if __name__ == "__main__":
    main()

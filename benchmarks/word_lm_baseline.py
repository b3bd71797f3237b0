"""A plain PyTorch word-level LSTM language model: the pytorch/examples word_language_model recipe,
written here from its README's description (none of its code), for the side-by-side in docs/results.md.

    python benchmarks/word_lm_baseline.py --data /tmp/ptb_style --minutes 8 [--seed 0]

The recipe, as that README gives its defaults: an embedding of 200, a 2-layer LSTM of 200 units,
dropout 0.2 (on the embedding output and on the LSTM output), untied weights; training streams of
batch 20 cut into 35 tokens (truncated backpropagation, the state carried between chunks);
plain SGD at learning rate 20 with the gradient norm clipped to 0.25; after each epoch the
validation loss is measured, and the learning rate is divided by 4 when it did not improve; the
best model is kept. Evaluation uses 10 streams (its eval batch size). With a time budget, an epoch
is cut short when the minutes are up and the last validation decides. Corpus files: ``train.txt``,
``valid.txt``, ``test.txt``, one sentence a line, ``<eos>`` added to each line.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from torch import nn


def read_corpus(folder: Path) -> tuple[dict[str, torch.Tensor], int]:
    """Each split as one long id tensor; the vocabulary is every word of the three files."""
    vocab: dict[str, int] = {}
    splits = {}
    for name in ("train", "valid", "test"):
        words = [w for line in (folder / f"{name}.txt").read_text(encoding="utf-8").splitlines()
                 for w in line.split() + ["<eos>"]]
        splits[name] = torch.tensor([vocab.setdefault(w, len(vocab)) for w in words])
    return splits, len(vocab)


def streams(ids: torch.Tensor, count: int) -> torch.Tensor:
    """(T,) -> (count, T // count): ``count`` contiguous streams, batch first."""
    length = ids.numel() // count
    return ids[: length * count].view(count, length)


class WordLM(nn.Module):
    def __init__(self, vocab: int, size: int = 200, layers: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, size)
        self.lstm = nn.LSTM(size, size, layers, dropout=dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(size, vocab)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.uniform_(self.out.weight, -0.1, 0.1)
        nn.init.zeros_(self.out.bias)

    def forward(self, ids: torch.Tensor, state):
        hidden, state = self.lstm(self.drop(self.embed(ids)), state)  # (B, T, H)
        return self.out(self.drop(hidden)), state  # (B, T, V)


def evaluate(model: WordLM, data: torch.Tensor, bptt: int) -> float:
    """Mean next-word NLL over 10 streams, the state carried through."""
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for start in range(0, data.size(1) - 1, bptt):
            x, y = data[:, start:start + bptt], data[:, start + 1:start + 1 + bptt]
            x = x[:, : y.size(1)]
            logits, state = model(x, state)
            total += nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1),
                                                 reduction="sum").item()
            count += y.numel()
    return total / count


def train_epoch(model, data, bptt: int, lr: float, deadline: float) -> bool:
    """One pass of truncated backpropagation; False when the deadline cut it short."""
    model.train()
    state = None
    for start in range(0, data.size(1) - 1, bptt):
        if time.monotonic() > deadline:
            return False
        x, y = data[:, start:start + bptt], data[:, start + 1:start + 1 + bptt]
        x = x[:, : y.size(1)]
        state = tuple(s.detach() for s in state) if state is not None else None  # truncate the history
        logits, state = model(x, state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        model.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bptt", type=int, default=35)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    splits, vocab = read_corpus(args.data)
    train, valid, test = streams(splits["train"], 20), streams(splits["valid"], 10), streams(splits["test"], 10)
    model, lr, best, best_state = WordLM(vocab), 20.0, math.inf, None
    deadline, epoch, started = time.monotonic() + 60 * args.minutes, 0, time.monotonic()
    finished = True
    while finished:
        finished = train_epoch(model, train, args.bptt, lr, deadline)
        epoch += 1
        loss = evaluate(model, valid, args.bptt)
        print(json.dumps({"epoch": epoch, "complete": finished, "valid_ppl": round(math.exp(loss), 2), "lr": lr,
                          "minutes": round((time.monotonic() - started) / 60, 2)}), flush=True)
        if loss < best:
            best, best_state = loss, {k: v.clone() for k, v in model.state_dict().items()}
        else:
            lr /= 4
    model.load_state_dict(best_state)
    test_loss = evaluate(model, test, args.bptt)
    print(json.dumps({"tool": "pytorch/examples recipe (plain PyTorch)", "seed": args.seed, "epochs": epoch,
                      "valid_ppl": round(math.exp(best), 2), "test_ppl": round(math.exp(test_loss), 2),
                      "test_tokens": int((test.size(1) - 1) * test.size(0)), "vocabulary": vocab,
                      "minutes": round((time.monotonic() - started) / 60, 2)}))


if __name__ == "__main__":
    main()

"""Training speed of the parallel cells against ``nn.LSTM`` at equal parameter count (issue 39).

    python benchmarks/bench_cells.py [--seconds 6] [--lengths 64 256 1024 4096] [--threads 2]
    python benchmarks/bench_cells.py --lengths 256 --cells mingru:doubling:compile mingru:loop:compile  # torch.compile
    python benchmarks/bench_cells.py --cells lstm mingru:loop mingru:loop:residual_mlp  # a model.block

A 2-layer char model (vocabulary 65, embedding 128, full softmax) trained with AdamW: forward, backward and the
optimizer step, on B x T = 16,384 tokens a batch (B chosen per T). The LSTM is the reference at H = 512; each
parallel cell gets the H that gives it the same parameter count (they have no recurrent matrices, so their
H is wider). Each case runs in a fresh process: tokens/s over ``--seconds`` after a warm-up step, and the
process's peak RSS (VmHWM) in MB. Rows are printed as JSON, then a table. A cell named ``CELL:SCAN:compile``
trains the model through ``torch.compile`` (its compile time, spent in the warm-up steps, is printed apart);
``CELL:SCAN:BLOCK`` builds that ``model.block`` (its input projection, norms and MLPs count in the parameters).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOCAB, EMBED, LAYERS, LSTM_H, TOKENS = 65, 128, 2, 512, 16_384


@functools.cache
def parameters(cell: str, hidden: int, block: str = "plain") -> int:
    """Recurrent-stack parameters of a 2-layer stack over EMBED inputs (embedding and head excluded): the
    encoder textrnn builds, counted (a residual block's input projection, norms and MLPs included). Built on
    the meta device: shapes only, no weights allocated or initialized."""
    import torch

    from textrnn.models.parallel import ParallelEncoder

    with torch.device("meta"):
        stack = (torch.nn.LSTM(EMBED, hidden, LAYERS) if cell == "lstm"
                 else ParallelEncoder(EMBED, hidden, LAYERS, cell, block=block))
    return sum(p.numel() for p in stack.parameters())


@functools.cache  # one bisection a cell and block, not one a length
def equal_hidden(cell: str, block: str = "plain") -> int:
    """The H, a multiple of 8, at which ``cell``'s stack has the parameter count nearest the LSTM's (a bisection:
    the count grows with H)."""
    target, low, high = parameters("lstm", LSTM_H), 1, 512  # in eighths
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if parameters(cell, 8 * middle, block) < target else (low, middle)
    return 8 * min((low, high), key=lambda k: abs(parameters(cell, 8 * k, block) - target))


CHILD = """
import json, sys, time, torch
from textrnn import RNNConfig, RNNLanguageModel
spec = json.loads(sys.argv[1])
torch.set_num_threads(spec["threads"])
torch.manual_seed(0)
config = RNNConfig(task="language_model", vocab_size=65, embedding_dim=128, hidden_size=spec["hidden"],
                   num_layers=2, cell=spec["cell"], tokenizer_kind="char", block=spec["block"])
model = RNNLanguageModel(config)
if spec["scan"]:
    model.backbone.encoder.scan = spec["scan"]
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
batch, steps = spec["batch"], spec["steps"]
ids = torch.randint(4, 65, (batch, steps + 1))
forward = torch.compile(model) if spec["compile"] else model

def step():
    _, loss, _ = forward(ids[:, :-1], targets=ids[:, 1:])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()

warm = time.perf_counter()
step()
step()
warm = time.perf_counter() - warm
done, start = 0, time.perf_counter()
while time.perf_counter() - start < spec["seconds"] or done < 2:
    step()
    done += 1
rate = done * batch * steps / (time.perf_counter() - start)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"tokens_per_s": rate, "peak_rss_mb": hwm, "params": sum(p.numel() for p in model.parameters()),
                  "warmup_s": warm}))
"""


def run(cell: str, scan: str, length: int, seconds: float, threads: int, how: str = "") -> dict:
    """One case in a fresh process; ``how`` is ``compile`` or a ``model.block`` (``plain`` when empty)."""
    compiled, block = how == "compile", how if how not in ("", "compile") else "plain"
    hidden = LSTM_H if cell == "lstm" else equal_hidden(cell, block)
    spec = {"cell": cell, "scan": scan, "hidden": hidden, "batch": max(1, TOKENS // length), "steps": length,
            "seconds": seconds, "threads": threads, "compile": compiled, "block": block}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"cell": cell + ("" if block == "plain" else f" ({block})"),
            "scan": (scan or "-") + (" compiled" if compiled else ""), "T": length, "B": spec["batch"], "H": hidden,
            "stack_params": parameters(cell, hidden, block), "tokens_per_s": round(out["tokens_per_s"]),
            "peak_rss_mb": round(out["peak_rss_mb"]), "warmup_s": round(out["warmup_s"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--lengths", type=int, nargs="*", default=[64, 256, 1024, 4096])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cells", nargs="*", default=["lstm", "mingru:loop", "mingru:doubling", "minlstm:loop",
                                                       "minlstm:doubling"])
    args = parser.parse_args()
    rows = []
    for length in args.lengths:
        for name in args.cells:
            cell, _, rest = name.partition(":")
            scan, _, how = rest.partition(":")
            rows.append(run(cell, scan, length, args.seconds, args.threads, how))
            print(json.dumps(rows[-1]), flush=True)
    print("\n| T | B | cell | scan | H | stack parameters | tokens/s | x LSTM | peak RSS MB |")
    print("| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        lstm = next((r for r in rows if r["T"] == row["T"] and r["cell"] == "lstm"), None)
        if lstm is None:
            lstm = {"tokens_per_s": float("nan")}  # no LSTM row at this length in this run
        print(f"| {row['T']} | {row['B']} | {row['cell']} | {row['scan']} | {row['H']} | {row['stack_params']:,} | "
              f"{row['tokens_per_s']:,} | {row['tokens_per_s'] / lstm['tokens_per_s']:.2f} | {row['peak_rss_mb']} |")


if __name__ == "__main__":
    main()

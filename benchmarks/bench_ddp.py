"""Scaling from 1 to 2 processes (DDP, gloo) on this machine's 2 CPU cores.

    python benchmarks/bench_ddp.py [--steps 60]

Trains the char-level tiny-shakespeare generator (2x512 LSTM, batch 64 streams per
process, seq_len 128) for a fixed number of steps three ways: one process with 2 threads,
one process with 1 thread, and torchrun with 2 processes of 1 thread each. Reports the
training tokens/s each logged (global: every rank's tokens). Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "tiny_shakespeare" / "input.txt"


def run(nproc: int, threads: int, steps: int, out: Path) -> float:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={nproc}"] if nproc > 1 else [sys.executable])
    command = [*launcher, "-m", "textrnn", "train-generator", "--config",
               str(ROOT / "configs" / "char_shakespeare.yaml"), f"data.dataset={CORPUS}", f"train.output_dir={out}",
               f"train.max_steps={steps}", "train.eval_every=0", "train.progress=false", "data.eval_batch_size=64",
               "train.max_minutes=null"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    subprocess.run(command, check=True, env=env, capture_output=True, text=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == "validation"][-1]["train_tokens_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    if not CORPUS.exists():
        sys.exit(f"{CORPUS} is missing")
    with tempfile.TemporaryDirectory() as tmp:
        one_two = run(1, 2, args.steps, Path(tmp) / "a")
        one_one = run(1, 1, args.steps, Path(tmp) / "b")
        two_one = run(2, 1, args.steps, Path(tmp) / "c")
    report = {"1 process x 2 threads (tokens/s)": one_two, "1 process x 1 thread (tokens/s)": one_one,
              "2 processes x 1 thread, DDP gloo (tokens/s)": two_one,
              "speedup 2 procs vs 1 proc x 2 threads": two_one / one_two,
              "speedup 2 procs vs 1 proc x 1 thread": two_one / one_one}
    for key, value in report.items():
        print(f"{key:48s} {value:>12,.2f}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()

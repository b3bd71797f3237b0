"""Reading pretrained vectors: MB/s of vector text, and memory against the vocabulary, not the file.

    python benchmarks/bench_vectors.py [--mb 250] [--dim 300] [--vocab 20000]

Writes a synthetic GloVe-style text file of at least ``--mb`` MB (random words, ``--dim``
numbers each, the format of glove.6B/840B), then loads it for a ``--vocab``-word vocabulary of
which half is in the file, as `model.pretrained_vectors` does, plain and gzipped. Prints MB/s
of uncompressed vector text and the peak resident memory before and after the read.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb  # noqa: E402

from textrnn import TextTokenizer  # noqa: E402
from textrnn.models.vectors import load_pretrained_vectors  # noqa: E402


def write_file(path: Path, megabytes: int, dim: int) -> int:
    """Random vectors for words w0, w1, ... until the file holds ``megabytes`` MB; returns the word count."""
    rng = np.random.default_rng(0)
    block = rng.standard_normal((1000, dim)).astype(np.float32)
    numbers = [" ".join(f"{x:.5f}" for x in row) for row in block]
    words, size = 0, 0
    with open(path, "w", encoding="utf-8") as handle:
        while size < megabytes * 1_000_000:
            line = f"w{words} {numbers[words % 1000]}\n"
            handle.write(line)
            size += len(line)
            words += 1
    return words


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=250)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--vocab", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.txt"
        words = write_file(path, args.mb, args.dim)
        size = path.stat().st_size / 1e6
        with open(path, "rb") as src, gzip.open(f"{path}.gz", "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst)
        step = max(1, words // (args.vocab // 2))  # half the vocabulary in the file, half not
        vocab = [f"w{i}" for i in range(0, words,
                                        step)][: args.vocab // 2] + [f"missing{i}" for i in range(args.vocab // 2)]
        tokenizer = TextTokenizer.train([" ".join(vocab)], "word")
        report = {"file_mb": round(size, 1), "words_in_file": words, "dim": args.dim, "vocabulary": len(tokenizer)}
        for name, spec in (("text", str(path)), ("gzip", f"{path}.gz")):
            embedding = torch.nn.Embedding(len(tokenizer), args.dim)
            before = peak_rss_mb()
            started = time.perf_counter()
            coverage = load_pretrained_vectors([embedding], spec, tokenizer)
            seconds = time.perf_counter() - started
            report[name] = {"seconds": round(seconds, 2), "mb_per_s": round(size / seconds, 1), "found": coverage.found,
                            "peak_rss_mb_before": round(before, 1), "peak_rss_mb_after": round(peak_rss_mb(), 1)}
            print(f"{name}: {json.dumps(report[name])}", flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

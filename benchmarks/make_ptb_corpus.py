"""A PTB-style word corpus from text this machine has, for the word-level language-model comparison.

    python benchmarks/make_ptb_corpus.py --output /tmp/ptb_style

Penn Treebank as language-model papers use it (Mikolov's preprocessing): lowercase, punctuation
split from words, numbers as ``N``, words seen fewer than 3 times in training (and beyond the
10,000 most frequent, PTB's vocabulary size) replaced by a literal ``<unk>``, one sentence a
line. Here the sentences come from tiny shakespeare (each line of verse), SST-2 (train and
validation), GoEmotions (train and validation) and the docstrings of Python's standard library
(``textrnn:python_docs``), shuffled with a fixed seed and cut 90/5/5 into ``train.txt``,
``valid.txt`` and ``test.txt``. Prints the token and vocabulary counts.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from textrnn.data.loading import python_docstrings  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)*|[^\sa-z\d]")


def sentences() -> list[str]:
    import pandas as pd

    lines = (SHARED / "tiny_shakespeare" / "input.txt").read_text(encoding="utf-8").splitlines()
    for name, column in (("sst2", "sentence"), ("go_emotions", "text")):
        for split in ("train", "validation"):
            lines += pd.read_parquet(SHARED / name / f"{split}.parquet")[column].tolist()
    lines += re.split(r"(?<=[.!?])\s+|\n\s*\n", python_docstrings(6_000_000))
    return lines


def tokens(line: str) -> list[str]:
    """Lowercased words, punctuation apart, every number as N (PTB's conventions)."""
    return ["N" if word[0].isdigit() else word for word in TOKEN.findall(line.lower())]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--max-vocab", type=int, default=10_000)
    args = parser.parse_args()
    rows = [t for t in (tokens(line) for line in sentences()) if len(t) >= 2]
    random.Random(0).shuffle(rows)
    cut1, cut2 = int(0.9 * len(rows)), int(0.95 * len(rows))
    splits = {"train": rows[:cut1], "valid": rows[cut1:cut2], "test": rows[cut2:]}
    counts = collections.Counter(w for row in splits["train"] for w in row)
    known = {w for w, n in counts.most_common(args.max_vocab) if n >= args.min_count}
    args.output.mkdir(parents=True, exist_ok=True)
    report = {"vocabulary": len(known) + 2}  # the words, <unk> and <eos>
    for name, part in splits.items():
        text = "".join(" " + " ".join(w if w in known else "<unk>" for w in row) + " \n" for row in part)
        (args.output / f"{name}.txt").write_text(text, encoding="utf-8")
        report[f"{name}_tokens"] = sum(len(row) + 1 for row in part)  # + one <eos> a line
    print(json.dumps(report))


if __name__ == "__main__":
    main()

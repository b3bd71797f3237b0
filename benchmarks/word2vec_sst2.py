"""Word vectors made here, for the pretrained-vectors path end to end: gensim word2vec on SST-2's training text.

    .venv-fastai/bin/pip install gensim==4.4.0          # gensim stays out of textrnn's environment
    .venv-fastai/bin/python benchmarks/word2vec_sst2.py --out runs/w2v/sst2_w2v.bin
    textrnn train-classifier --config configs/sst2_bilstm.yaml data.dataset=../shared/data/sst2 \\
        model.pretrained_vectors=runs/w2v/sst2_w2v.bin train.output_dir=runs/sst2_w2v

Trains skip-gram word2vec (256 dimensions, the shipped config's embedding_dim) on the training
split's sentences, split on spaces (SST-2 is already tokenized and lowercased), and writes the
word2vec binary format that ``model.pretrained_vectors`` reads. What this can show: that the
file format, coverage report and start from vectors work on real text. What it cannot: what
GloVe brings. These vectors saw only the 67k training sentences the classifier trains on,
while GloVe's saw billions of words; they add no knowledge beyond the training text.
"""

import argparse
import time
from pathlib import Path

import pandas as pd
from gensim.models import Word2Vec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sentences = [text.split() for text in pd.read_parquet(args.data / "train.parquet")["sentence"]]
    started = time.perf_counter()
    model = Word2Vec(sentences, vector_size=args.dim, window=5, min_count=2, sg=1, epochs=args.epochs, seed=args.seed,
                     workers=1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.wv.save_word2vec_format(str(args.out), binary=True)
    print(f"{len(model.wv):,} words x {args.dim} from {len(sentences):,} sentences in "
          f"{time.perf_counter() - started:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()

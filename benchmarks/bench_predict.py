"""Batch prediction speed: `predict_stream` (what `textrnn predict --input` runs) against a per-text loop and
against the model's forward-only bound on the same batches; short sentences and long documents.

    python benchmarks/bench_predict.py                    # 100,000 short texts, 4,000 long ones
    python benchmarks/bench_predict.py --short 2000 --long 200 --loop 100   # a smoke run

The model is an SST-2-sized BiLSTM classifier (16k words, 256-d embeddings, 256 units each way,
attention pooling); its weights are random, which costs the same as trained ones. Texts are
word strings drawn from a Zipf law. For each kind it prints texts/s of:

* ``stream``: predict_stream from text to result dicts (tokenizing, sorting by length within
  2,048-text chunks, padding, forward, probabilities), then one JSON line each into a null sink;
* ``bound``: only the model's forward on the very batches ``stream`` made (already tokenized
  and padded), so the gap is everything around the network;
* ``loop``: ``model.predict([text])`` one text at a time, on the first ``--loop`` texts;

and the peak resident memory after the first tenth and after all of the short texts (the
stream holds one chunk, so it should not grow with the input).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb  # noqa: E402

from textrnn import RNNConfig, TextTokenizer  # noqa: E402
from textrnn.data.batching import pad_batch  # noqa: E402
from textrnn.models.classifier import TextClassifier  # noqa: E402
from textrnn.models.prediction import CHUNK, predict_stream  # noqa: E402

VOCAB = [f"w{i}" for i in range(16_000)]


def texts(n: int, mean_words: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    ranks = np.minimum(rng.zipf(1.2, size=n * mean_words * 2), len(VOCAB)) - 1
    lengths = np.clip(rng.poisson(mean_words, size=n), 1, None)
    out, at = [], 0
    for length in lengths:
        out.append(" ".join(VOCAB[r] for r in ranks[at:at + length]))
        at += length
    return out


def build() -> TextClassifier:
    tokenizer = TextTokenizer.train([" ".join(VOCAB)], "word")
    config = RNNConfig(vocab_size=len(tokenizer), embedding_dim=256, hidden_size=256, bidirectional=True,
                       pooling="attention", num_labels=2, label_names=["negative", "positive"])
    torch.manual_seed(0)
    return TextClassifier.build(config, tokenizer).eval()


def stream(model, rows: list[str], batch_size: int, rss_at: int | None = None) -> tuple[float, float | None]:
    sink, rss, started = open("/dev/null", "w"), None, time.perf_counter()
    for i, result in enumerate(predict_stream(model, rows, batch_size)):
        sink.write(json.dumps({"index": i, **result}) + "\n")
        if rss_at is not None and i == rss_at:
            rss = peak_rss_mb()
    return len(rows) / (time.perf_counter() - started), rss


@torch.inference_mode()
def bound(model, rows: list[str], batch_size: int) -> float:
    """The forward passes alone, on predict_stream's own batches (sorted by length within each chunk)."""
    batches = []
    for start in range(0, len(rows), CHUNK):
        ids = model.tokenizer.encode_batch(rows[start:start + CHUNK])
        order = np.argsort([len(r) for r in ids], kind="stable")
        batches += [pad_batch([ids[i] for i in order[s:s + batch_size]]) for s in range(0, len(order), batch_size)]
    started = time.perf_counter()
    for input_ids, lengths in batches:
        model.probabilities(model(input_ids, lengths)[0])
    return len(rows) / (time.perf_counter() - started)


def loop(model, rows: list[str]) -> float:
    started = time.perf_counter()
    for text in rows:
        model.predict([text])
    return len(rows) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", type=int, default=100_000, help="short texts (about 20 words)")
    parser.add_argument("--long", type=int, default=4_000, help="long documents (about 400 words)")
    parser.add_argument("--loop", type=int, default=500, help="texts timed one at a time")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    model = build()
    report = {"threads": torch.get_num_threads(), "batch_size": args.batch_size}
    for name, n, words in (("short", args.short, 20), ("long", args.long, 400)):
        rows = texts(n, words, seed=1)
        loop_rate = loop(model, rows[: args.loop] if name == "short" else rows[: max(1, args.loop // 10)])
        stream_rate, rss_early = stream(model, rows, args.batch_size, rss_at=n // 10 if name == "short" else None)
        bound_rate = bound(model, rows, args.batch_size)
        report[name] = {"texts": n, "stream_texts_per_s": round(stream_rate, 1),
                        "bound_texts_per_s": round(bound_rate, 1), "loop_texts_per_s": round(loop_rate, 1),
                         "stream_vs_bound": round(stream_rate / bound_rate, 3),
                        "stream_vs_loop": round(stream_rate / loop_rate, 1)}
        if rss_early is not None:
            report[name].update(peak_rss_mb_after_a_tenth=round(rss_early, 1),
                                peak_rss_mb_after_all=round(peak_rss_mb(), 1))
        print(f"{name}: {json.dumps(report[name])}", flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Data-layer throughput: tokenizer training + encoding, padding, char-level encoding.

    python benchmarks/bench_data.py [--char-mb 100]

Needs ../shared/data (SST-2 and tiny shakespeare). Prints, measured in this run:

1. SST-2 train split: tokenizer training plus encoding of every sentence, tokens/s (median
   of 3 interleaved runs each), for
   textrnn (HF tokenizers via Dataset.map(batched=True), no cache) and for the classic
   torchtext way in pure Python (a basic_english-style regex tokenizer, a Counter-built
   vocabulary like build_vocab_from_iterator, dict lookups).
2. Padding: fraction of padded positions in bucketed batches against random batches.
3. Char level: encoding a corpus of --char-mb MB (tiny shakespeare repeated) to a uint8
   token file, chars/s, and the peak resident memory while doing it.
4. Encoding SST-2 train as a share of one training epoch of configs/sst2_bilstm.yaml's
   model (the epoch time is extrapolated from timed training steps on real batches).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import peak_rss_mb  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
_PATTERNS = [(re.compile(p), r) for p, r in [
    (r"\'", " '  "), (r"\"", ""), (r"\.", " . "), (r"<br \/>", " "), (r",", " , "),
    (r"\(", " ( "), (r"\)", " ) "), (r"\!", " ! "), (r"\?", " ? "), (r"\;", " "), (r"\:", " "), (r"\s+", " "),
]]


def basic_english(line: str) -> list[str]:
    """The classic torchtext normalization: lowercase, split punctuation, then whitespace."""
    line = line.lower()
    for pattern, replacement in _PATTERNS:
        line = pattern.sub(replacement, line)
    return line.split()


def reference_pipeline(sentences: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    counter = collections.Counter()
    for s in sentences:  # build_vocab_from_iterator(map(tokenizer, texts), specials=...)
        counter.update(basic_english(s))
    itos = ["<pad>", "<unk>", "<bos>", "<eos>"] + [w for w, _ in sorted(counter.items(), key=lambda x: (-x[1], x[0]))]
    stoi = {w: i for i, w in enumerate(itos)}
    encoded = [[stoi.get(t, 1) for t in basic_english(s)] for s in sentences]
    seconds = time.perf_counter() - start
    return seconds, sum(map(len, encoded))


def textrnn_pipeline(train) -> tuple[float, int, object]:
    from textrnn import TextTokenizer
    from textrnn.data.encoding import encode_classification, iter_texts
    from textrnn.data.labels import LabelEncoder, detect_labels

    start = time.perf_counter()
    tok = TextTokenizer.train(iter_texts(train, ["sentence"]), "word", lowercase=True)
    spec = detect_labels(train, "label", None)
    encoded = encode_classification(train, tok, ["sentence"],
                                    LabelEncoder(train, spec.columns, spec.names, spec.problem_type))
    seconds = time.perf_counter() - start
    return seconds, int(np.sum(encoded["length"])), (tok, encoded)


def padding(encoded) -> dict:
    from textrnn import BucketBatchSampler

    lengths = np.asarray(encoded["length"])
    real = lengths.sum()
    bucketed = BucketBatchSampler(lengths, 64, seed=0).batches()
    rand = np.array_split(np.random.default_rng(0).permutation(len(lengths)), len(bucketed))
    frac = lambda batches: 1 - real / sum(len(b) * max(1, lengths[b].max()) for b in batches)  # noqa: E731
    return {"padding fraction, bucketed": frac(bucketed), "padding fraction, random": frac(rand),
            "padding reduction (random / bucketed)": frac(rand) / frac(bucketed)}


def char_level(megabytes: int) -> dict:
    from textrnn import TextTokenizer
    from textrnn.data.streams import encode_stream

    text = (SHARED / "tiny_shakespeare" / "input.txt").read_text(encoding="utf-8")
    tok = TextTokenizer.train([text[: int(len(text) * 0.9)]], "char")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "big.txt"
        with open(corpus, "w", encoding="utf-8") as handle:
            for _ in range(-(-megabytes * 1_000_000 // len(text))):
                handle.write(text)
        size = corpus.stat().st_size
        before = peak_rss_mb()

        def chunks():
            with open(corpus, encoding="utf-8") as handle:
                while block := handle.read(1 << 22):
                    yield block

        start = time.perf_counter()
        tokens = encode_stream(chunks(), tok, Path(tmp) / "tokens.bin")
        seconds = time.perf_counter() - start
        assert len(tokens) == size
        return {"corpus MB": size / 1e6, "chars/s": size / seconds, "seconds": seconds,
                "peak RSS before encoding (MB)": before, "peak RSS after encoding (MB)": peak_rss_mb(),
                "corpus size x 4 (MB)": 4 * size / 1e6}


def char_in_fresh_process(megabytes: int) -> dict:
    """Run the char-level part alone in a new process, so its peak memory is its own."""
    import subprocess

    out = subprocess.run(
        [sys.executable, __file__, "--char-only", "--char-mb", str(megabytes)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def epoch_seconds(tok_encoded) -> float:
    """One epoch of the sst2_bilstm model, extrapolated from 30 timed steps on real batches."""
    import dataclasses

    import torch

    from textrnn import BucketBatchSampler, ClassificationLoader, build_model, load_config

    tok, encoded = tok_encoded
    config = load_config(str(ROOT / "configs" / "sst2_bilstm.yaml"), ["data.dataset=unused"])
    model = build_model(dataclasses.replace(config.model_config(), vocab_size=len(tok), num_labels=2), tok)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = ClassificationLoader(encoded, BucketBatchSampler(encoded["length"], config.data.batch_size, seed=0))
    batches = loader.iterate()
    timed = 30
    for i, batch in enumerate(batches):
        if i == 5:
            start = time.perf_counter()
        _, loss = model(batch["input_ids"], batch["lengths"], batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i == 5 + timed - 1:
            break
    return (time.perf_counter() - start) / timed * len(loader)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--char-mb", type=int, default=100)
    parser.add_argument("--char-only", action="store_true")
    args = parser.parse_args()
    if args.char_only:
        print(json.dumps(char_level(args.char_mb)))
        return
    if not SHARED.exists():
        sys.exit(f"{SHARED} is missing: this benchmark needs the shared SST-2 and tiny shakespeare copies")
    import datasets

    datasets.disable_caching()  # measure real encoding, not a cache hit
    datasets.disable_progress_bars()
    train = datasets.load_dataset(str(SHARED / "sst2"))["train"]
    sentences = train.to_dict()["sentence"]
    ref_runs, our_runs = [], []
    for _ in range(3):  # interleaved; the median run of each counts
        ref_runs.append(reference_pipeline(sentences))
        our_runs.append(textrnn_pipeline(train))
    ref_s, ref_tokens = sorted(ref_runs)[1]
    our_s, our_tokens, tok_encoded = sorted(our_runs, key=lambda r: r[0])[1]
    report = {"SST-2 reference (regex + Counter vocab), tokens/s": ref_tokens / ref_s,
              "SST-2 textrnn (HF tokenizers + Dataset.map), tokens/s": our_tokens / our_s,
              "SST-2 textrnn / reference": (our_tokens / our_s) / (ref_tokens / ref_s),
              "SST-2 textrnn train+encode seconds": our_s}
    report |= padding(tok_encoded[1])
    epoch = epoch_seconds(tok_encoded)
    report["sst2_bilstm epoch seconds (extrapolated)"] = epoch
    report["encoding share of one epoch"] = our_s / epoch
    report |= {f"char: {k}": v for k, v in char_in_fresh_process(args.char_mb).items()}
    for key, value in report.items():
        print(f"{key:60s} {value:>14,.3f}")
    print(json.dumps({k: round(v, 4) for k, v in report.items()}))


if __name__ == "__main__":
    main()

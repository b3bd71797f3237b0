"""Do the sentence-classification defaults generalize to small datasets? Six stand-ins for Kim (2014)'s sets.

    python benchmarks/small_data.py                          # all six: CNN-rand, then the shipped SST-2 config
    python benchmarks/small_data.py --only goemo6 --set tokenizer.min_freq=5 train.min_steps=0   # an ablation
    python benchmarks/small_data.py --skip-cnn --seeds 0 1   # textrnn only, two seeds

Kim's six small sets (MR, Subj, CR, MPQA, TREC, SST-1) are not on this machine, so this
builds six sets of the same sizes and shapes from the shared local data, each with one seeded
90/10 train/test split (`runs/small_data/data/NAME/{train,test}.parquet`):

| name          | like   | classes | built from                                                      |
|---------------|--------|---------|-----------------------------------------------------------------|
| sst_sentences | MR     | 2       | SST-2 train, the longest phrases only (about one per sentence)   |
| sst_phrases   | MPQA   | 2       | SST-2 train phrases of 2-4 words                                |
| goemo_posneg  | CR     | 2       | GoEmotions single-label texts, positive vs negative emotions    |
| goemo6        | TREC   | 6       | GoEmotions single-label texts of six emotions                   |
| goemo_sent3   | SST-1  | 3       | GoEmotions single-label, positive / negative / ambiguous        |
| goemo_neutral | Subj   | 2       | GoEmotions single-label texts, neutral vs any emotion           |

For each set it trains Kim's CNN-rand (written here from the paper's description: random
300-d embeddings, filters of 3/4/5 words x 100 maps, max-over-time pooling, dropout 0.5,
Adadelta, batch 50, max-norm 3; the epoch chosen on a 10% dev cut, at most 25 epochs), then
runs the real `textrnn train-classifier --config configs/sst2_bilstm.yaml` with only the data
columns overridden and `textrnn evaluate` on the test split. It prints both test accuracies
and textrnn's wall-clock minutes. These are stand-ins: they test the rules, not Kim's numbers.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SIZES = {"sst_sentences": 10000, "sst_phrases": 10000, "goemo_posneg": 3800, "goemo6": 6000, "goemo_sent3": 10000,
         "goemo_neutral": 10000}
POSITIVE = "admiration amusement approval caring desire excitement gratitude joy love optimism pride relief".split()
NEGATIVE = ("anger annoyance disappointment disapproval disgust embarrassment fear grief nervousness remorse "
            "sadness").split()
AMBIGUOUS = "confusion curiosity realization surprise".split()
SIX = "gratitude amusement love anger curiosity sadness".split()


def longest_phrases(frame: pd.DataFrame) -> pd.DataFrame:
    """SST-2 train holds every phrase of each sentence: keep a phrase only if no kept one contains it."""
    spans, kept = set(), []
    for index in frame["sentence"].str.len().sort_values(ascending=False).index:
        words = frame.at[index, "sentence"].split()
        if " ".join(words) in spans:
            continue
        kept.append(index)
        spans.update(" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1))
    return frame.loc[kept]


def goemotions_single(names: dict) -> pd.DataFrame:
    """GoEmotions train+validation texts with exactly one label, relabelled by ``names`` (label name -> class)."""
    frames = [pd.read_parquet(SHARED / "go_emotions" / f"{s}.parquet") for s in ("train", "validation")]
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[frame["labels"].map(len) == 1]
    label_names = json.loads(
        __import__("pyarrow.parquet")
        .parquet.read_schema(SHARED / "go_emotions" / "train.parquet")
        .metadata[b"huggingface"]
    )["info"]["features"]["labels"]["feature"]["names"]
    emotion = frame["labels"].map(lambda ls: label_names[ls[0]])
    frame = frame.assign(label=emotion.map(names))
    return frame[frame["label"].notna()][["text", "label"]]


def build(name: str) -> pd.DataFrame:
    if name in ("sst_sentences", "sst_phrases"):
        sst = pd.read_parquet(SHARED / "sst2" / "train.parquet")
        if name == "sst_sentences":
            frame = longest_phrases(sst)
        else:
            frame = sst[sst["sentence"].str.split().map(len).between(2, 4)]
        frame = frame.rename(columns={"sentence": "text"})[["text", "label"]]
    elif name == "goemo_posneg":
        frame = goemotions_single({**{e: "positive" for e in POSITIVE}, **{e: "negative" for e in NEGATIVE}})
    elif name == "goemo6":
        frame = goemotions_single({e: e for e in SIX})
    elif name == "goemo_sent3":
        frame = goemotions_single({**{e: "positive" for e in POSITIVE}, **{e: "negative" for e in NEGATIVE},
                                   **{e: "ambiguous" for e in AMBIGUOUS}})
    else:
        emotions = [*POSITIVE, *NEGATIVE, *AMBIGUOUS, "neutral"]
        frame = goemotions_single({e: "neutral" if e == "neutral" else "emotional" for e in emotions})
    return frame.sample(n=min(SIZES[name], len(frame)), random_state=0).reset_index(drop=True)


def write_split(name: str, root: Path) -> Path:
    folder = root / name
    if not (folder / "test.parquet").exists():
        frame = build(name)
        cut = int(0.9 * len(frame))
        folder.mkdir(parents=True, exist_ok=True)
        frame[:cut].to_parquet(folder / "train.parquet", index=False)
        frame[cut:].to_parquet(folder / "test.parquet", index=False)
    return folder


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+|[^\w\s]", text.lower())


class KimCNN(torch.nn.Module):
    def __init__(self, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab_size, 300, padding_idx=0)
        torch.nn.init.uniform_(self.embedding.weight, -0.25, 0.25)
        self.convs = torch.nn.ModuleList(torch.nn.Conv1d(300, 100, k) for k in (3, 4, 5))
        self.dropout = torch.nn.Dropout(0.5)
        self.output = torch.nn.Linear(300, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids).transpose(1, 2)  # (B, 300, T)
        pooled = [torch.relu(conv(x)).amax(dim=2) for conv in self.convs]  # 3 x (B, 100)
        return self.output(self.dropout(torch.cat(pooled, dim=1)))  # (B, C)


def cnn_batches(rows: list, labels: list, batch_size: int, shuffle: bool, rng: random.Random):
    order = list(range(len(rows)))
    if shuffle:
        rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(5, max(len(rows[i]) for i in chunk))  # at least the widest filter
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        for r, i in enumerate(chunk):
            ids[r, : len(rows[i])] = torch.tensor(rows[i], dtype=torch.long)
        yield ids, torch.tensor([labels[i] for i in chunk])


def cnn_accuracy(model: KimCNN, rows: list, labels: list) -> float:
    model.eval()
    with torch.no_grad():
        right = sum((model(ids).argmax(1) == y).sum().item() for ids, y in cnn_batches(rows, labels, 500, False, None))
    model.train()
    return right / len(rows)


def cnn_rand(folder: Path, seed: int, epochs: int = 25) -> dict:
    """Kim's CNN-rand: best dev epoch of at most 25 (stop after 5 without improvement), its test accuracy."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    train, test = (pd.read_parquet(folder / f"{s}.parquet") for s in ("train", "test"))
    classes = sorted(set(train["label"]))
    tokens = [words(t) for t in train["text"]]
    vocab = {w: i + 2 for i, w in enumerate(Counter(w for row in tokens for w in row))}  # 0 pad, 1 unknown

    def encode(frame: pd.DataFrame) -> tuple[list, list]:
        return [[vocab.get(w, 1) for w in words(t)] or [1] for t in frame["text"]], [
            classes.index(c) for c in frame["label"]
        ]

    rows, labels = encode(train)
    dev_cut = int(0.9 * len(rows))
    model = KimCNN(len(vocab) + 2, len(classes))
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-6)
    best, best_test, bad, started = -1.0, 0.0, 0, time.perf_counter()
    test_rows, test_labels = encode(test)
    for _ in range(epochs):
        for ids, y in cnn_batches(rows[:dev_cut], labels[:dev_cut], 50, True, rng):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(ids), y).backward()
            optimizer.step()
            with torch.no_grad():  # Kim's l2 constraint: rescale rows of the output layer to norm <= 3
                model.output.weight.copy_(torch.renorm(model.output.weight, 2, 0, 3.0))
        dev = cnn_accuracy(model, rows[dev_cut:], labels[dev_cut:])
        best, best_test, bad = ((dev, cnn_accuracy(model, test_rows, test_labels), 0) if dev > best else (best,
                                                                                                           best_test,
                                                                                                           bad + 1))
        if bad >= 5:
            break
    return {"test_accuracy": round(100 * best_test, 2), "minutes": round((time.perf_counter() - started) / 60, 2)}


def textrnn(*args: str) -> str:
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "textrnn", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"textrnn {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def shipped_config(folder: Path, seed: int, runs: Path, extra: list[str]) -> dict:
    out = runs / f"{folder.name}_seed{seed}"
    started = time.perf_counter()
    textrnn("train-classifier", "--config", "configs/sst2_bilstm.yaml", f"data.dataset={folder}",
            "data.text_column=text", "data.label_column=label", f"train.seed={seed}", f"train.output_dir={out}",
            "train.progress=false", *extra)
    minutes = (time.perf_counter() - started) / 60
    result = json.loads(textrnn("evaluate", "--checkpoint", str(out), "--dataset", str(folder), "--split", "test",
                                "--text-column", "text", "--label-column", "label") .strip() .splitlines()[-1])
    final = json.loads((out / "metrics.jsonl").read_text().strip().splitlines()[-1])
    return {"test_accuracy": round(100 * result["accuracy"], 2), "minutes": round(minutes, 2),
            "steps": final.get("step")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--runs", default=str(ROOT / "runs" / "small_data"))
    parser.add_argument("--skip-cnn", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for the textrnn runs")
    parser.add_argument("--smoke", action="store_true", help="one stand-in, one CNN epoch, a few training steps")
    args = parser.parse_args()
    if args.smoke:
        args.only, args.seeds, args.runs = ["goemo_posneg"], args.seeds[:1], str(Path(args.runs) / "smoke")
        args.set = [*args.set, "train.max_steps=3", "train.min_steps=null", "train.max_minutes=null"]
    runs = Path(args.runs)
    table = {}
    for name in args.only:
        folder = write_split(name, runs / "data")
        row = {"train": len(pd.read_parquet(folder / "train.parquet")),
               "test": len(pd.read_parquet(folder / "test.parquet"))}
        if not args.skip_cnn:
            row["cnn_rand"] = [cnn_rand(folder, seed, 1 if args.smoke else 25)["test_accuracy"] for seed in args.seeds]
        results = [shipped_config(folder, seed, runs / "textrnn", args.set) for seed in args.seeds]
        row["textrnn"] = [r["test_accuracy"] for r in results]
        row["textrnn_minutes"] = [r["minutes"] for r in results]
        row["textrnn_mean"] = round(statistics.mean(row["textrnn"]), 2)
        table[name] = row
        print(f"{name}: {json.dumps(row)}", flush=True)
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()

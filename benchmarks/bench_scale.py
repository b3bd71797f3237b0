"""Data at real sizes: preparation time, time to the first step, peak memory and disk, per corpus size.

    python benchmarks/bench_scale.py --lm-mb 10 100 1000 --cls-rows 100000 1000000 4000000 --ranks

Writes synthetic corpora under --workdir (default /tmp/textrnn_scale; GBs at the largest
sizes, never in the repo): word text drawn from a Zipf law over 50,000 words, lines of 5-40
words, and for classification a CSV of such lines with a 0/1 label. Every case runs in a
fresh process (``--child``), with its own empty prepared-data cache, so nothing is warm:

1. first run: preparation (tokenizer, encoding, the cache) plus one training step;
2. second run, a new ``output_dir``, the same data and settings: the time to its first step
   (the cache is found, nothing is encoded again);
3. tokens/s over ``--steps`` steps and at least 10 s, against the same model on tiny shakespeare (char) or on
   the 10 MB corpus (word, classification): whether the loader keeps up at size.

Peak RSS is the child's own (Linux VmHWM): ``prepare_rss_mb`` after preparation and model
building, before any step; ``prepare_anon_mb`` is the peak of its anonymous memory over the same
time (see :class:`AnonPeak`); ``step_rss_mb`` after the timed steps of the second run (a word
model's full softmax over 50,000 words dominates that). Disk is the size of the cache folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tiny_shakespeare" / "input.txt"
WORDS = 50_000


def vocabulary(seed: int = 0) -> np.ndarray:
    """50,000 distinct lowercase pseudo-words of 2-9 letters."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    seen: dict[str, None] = {}
    while len(seen) < WORDS:
        for n in rng.integers(2, 10, 4096):
            seen.setdefault("".join(rng.choice(letters, n)), None)
    return np.array(list(seen)[:WORDS])


def write_corpus(path: Path, megabytes: float, labels: bool = False, seed: int = 0) -> Path:
    """A Zipf-law word corpus of about ``megabytes`` MB (text lines, or ``label,text`` CSV rows)."""
    if path.is_file():
        return path
    words, rng = vocabulary(seed), np.random.default_rng(seed + 1)
    p = 1.0 / np.arange(1, WORDS + 1)
    p /= p.sum()
    tmp, written = path.with_suffix(".partial"), 0
    with open(tmp, "w", encoding="utf-8") as out:
        if labels:
            out.write("label,text\n")
        while written < megabytes * 1e6:
            lengths = rng.integers(5, 41, 20_000)
            ids = rng.choice(WORDS, int(lengths.sum()), p=p)
            cut = np.split(words[ids], np.cumsum(lengths)[:-1])
            lines = [" ".join(line) for line in cut]
            if labels:
                lines = [f"{int(ids_[0] < 200)},{line}" for ids_, line in zip(np.split(ids, np.cumsum(lengths)[:-1]),
                                                                             lines)]
            block = "\n".join(lines) + "\n"
            out.write(block)
            written += len(block)
    os.replace(tmp, path)
    return path


def rows_corpus(folder: Path, rows: int) -> Path:
    """A classification CSV of ``rows`` rows (about 125 bytes each)."""
    return write_corpus(folder / f"cls_{rows}.csv", rows * 125.5 / 1e6, labels=True)


# ---------------------------------------------------------------------------- the child process
class AnonPeak:
    """The peak of this process's anonymous memory (RssAnon: heap and arrays, not mapped files), sampled
    every 20 ms by a thread. VmHWM also counts the pages of memory-mapped files a process has read, which
    the kernel drops under pressure; this is the memory a corpus's size could exhaust."""

    def __init__(self) -> None:
        import threading

        self.peak, self.stop = 0.0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            with open("/proc/self/status", encoding="ascii") as handle:
                kb = next(int(line.split()[1]) for line in handle if line.startswith("RssAnon:"))
            self.peak = max(self.peak, kb / 1024)


def child(spec: dict) -> dict:
    """Build a Trainer (preparation included), then time the first step and ``steps`` more."""
    import torch

    from textrnn.core.config_files import load_config
    from textrnn.core.runtime import peak_rss_mb
    from textrnn.training.reporting import progress_bar
    from textrnn.training.trainer import Trainer

    anon = AnonPeak()
    start = time.perf_counter()
    config = load_config(str(ROOT / "configs" / spec["config"]), spec["overrides"])
    torch.set_num_threads(2)
    trainer = Trainer(config)
    prepared_rss, prepared_anon = peak_rss_mb(), anon.peak  # preparation and the model, before any step
    loader = trainer.task.train_loader.iterate(0)
    with progress_bar(trainer.total_steps, 0, False) as trainer.bar:
        trainer._train_step([next(loader)])  # one batch a step (train.accumulate_steps=1)
        first = time.perf_counter() - start
        tokens, steps, begin = 0, 0, time.perf_counter()
        while steps < spec["steps"] or (spec["steps"] and time.perf_counter() - begin < spec["seconds"]):
            batch = next(loader, None)
            if batch is None:  # a small corpus ends its epoch within the timing: the next one begins
                loader = trainer.task.train_loader.iterate(0)
                batch = next(loader)
            tokens += int(batch["lengths"].sum()) if "lengths" in batch else batch["input_ids"].numel()
            trainer._train_step([batch])
            steps += 1
        rate = tokens / (time.perf_counter() - begin) if steps else 0.0
    return {"first_step_s": first, "tokens_per_s": rate, "prepare_rss_mb": prepared_rss,
            "prepare_anon_mb": prepared_anon, "peak_rss_mb": peak_rss_mb()}


def loader_rate(spec: dict) -> dict:
    """Batches/s the run's loader produces alone (no model), over ``seconds``: what a step could wait for."""
    from textrnn.core.config_files import load_config
    from textrnn.training.trainer import Trainer

    trainer = Trainer(load_config(str(ROOT / "configs" / spec["config"]), spec["overrides"]))
    loader = trainer.task.train_loader
    batches, begin = 0, time.perf_counter()
    while time.perf_counter() - begin < spec["seconds"]:
        for _ in loader.iterate(0):
            batches += 1
            if time.perf_counter() - begin > spec["seconds"]:
                break
    return {"loader_batches_per_s": batches / (time.perf_counter() - begin)}


def run_child(spec: dict, cache: Path, ranks: int = 1) -> dict:
    """One case in a fresh interpreter (torchrun for ``ranks`` > 1); its figures as a dict."""
    env = {**os.environ, "TEXTRNN_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, __file__, "--child", json.dumps(spec)]
    if ranks > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
                   __file__, "--child", json.dumps(spec)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"case failed ({spec}):\n{done.stderr[-3000:]}")
    results = [json.loads(line) for line in lines]
    return {key: max(r[key] for r in results) for key in results[0]}


def disk_mb(folder: Path) -> float:
    """Bytes under ``folder``, in MB."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


SECONDS = 10.0  # tokens/s is timed over at least this long (and at least --steps steps)
LM_MODEL = ["model.embedding_dim=128", "model.hidden_size=128", "model.num_layers=1", "model.dropout=0",
            "model.output_dropout=0", "model.weight_dropout=0", "data.batch_size=32", "data.seq_len=64",
            "train.num_threads=2"]
CLS_MODEL = ["model.embedding_dim=64", "model.hidden_size=64", "data.batch_size=64", "train.num_threads=2",
             "tokenizer.min_freq=auto", "data.max_length=64", "model.ensemble_size=1"]


def case(work: Path, name: str, config: str, overrides: list, steps: int, ranks: int = 1,
         loader_only: bool = False) -> dict:
    """First run (cold cache), second run (warm) and the cache's size, for one corpus (with ``loader_only``,
    just the loader's own rate, on the cache an earlier run left)."""
    cache = work / f"cache_{name}"
    if loader_only:
        alone = run_child({"config": config, "loader_only": True, "seconds": 3.0,
                           "overrides": overrides + [f"train.output_dir={work / 'runs' / (name + '_c')}"]}, cache)
        return {"case": name, "loader_batches_per_s": round(alone["loader_batches_per_s"])}
    shutil.rmtree(cache, ignore_errors=True)
    cold = run_child({"config": config, "steps": 0, "seconds": 0,
                      "overrides": overrides + [f"train.output_dir={work / 'runs' / (name + '_a')}"]}, cache, ranks)
    warm = run_child({"config": config, "steps": steps, "seconds": SECONDS,
                      "overrides": overrides + [f"train.output_dir={work / 'runs' / (name + '_b')}"]}, cache, ranks)
    alone = run_child({"config": config, "loader_only": True, "seconds": 3.0,
                       "overrides": overrides + [f"train.output_dir={work / 'runs' / (name + '_c')}"]}, cache)
    return {"case": name, "ranks": ranks, "first_run_s": round(cold["first_step_s"], 1),
            "second_run_first_step_s": round(warm["first_step_s"], 2), "prepare_rss_mb": round(cold["prepare_rss_mb"]),
            "prepare_anon_mb": round(cold["prepare_anon_mb"]),
            "step_rss_mb": round(warm["peak_rss_mb"]), "cache_mb": round(disk_mb(cache), 1),
            "tokens_per_s": round(warm["tokens_per_s"]), "loader_batches_per_s": round(alone["loader_batches_per_s"])}


def stream_case(work: Path, mb: float, steps: int) -> dict:
    """A streamed char model: time to its first step, tokens/s and peak RSS (nothing is prepared)."""
    corpus = work / f"zipf_{mb:g}mb.txt"
    if not corpus.is_file() and mb > 1000:
        source = write_corpus(work / "zipf_1000mb.txt", 1000)
        with open(corpus.with_suffix(".partial"), "wb") as out:
            for _ in range(round(mb / 1000)):
                with open(source, "rb") as part:
                    shutil.copyfileobj(part, out, 1 << 24)
        os.replace(corpus.with_suffix(".partial"), corpus)
    corpus = write_corpus(corpus, mb)
    overrides = [f"data.dataset={corpus}", "tokenizer.kind=char", "data.streaming=true", "train.max_steps=100000",
                 f"train.output_dir={work / 'runs' / f'stream_{mb:g}'}", *LM_MODEL]
    row = run_child({"config": "char_shakespeare.yaml", "steps": steps, "seconds": SECONDS, "overrides": overrides},
                    work / "cache_stream")
    return {"case": f"stream_char_{mb:g}mb", "first_step_s": round(row["first_step_s"], 1),
            "prepare_rss_mb": round(row["prepare_rss_mb"]), "prepare_anon_mb": round(row["prepare_anon_mb"]),
            "step_rss_mb": round(row["peak_rss_mb"]),
            "tokens_per_s": round(row["tokens_per_s"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default="/tmp/textrnn_scale")
    parser.add_argument("--lm-mb", type=float, nargs="*", default=[10, 100])
    parser.add_argument("--kinds", nargs="*", default=["char", "word"])
    parser.add_argument("--cls-rows", type=int, nargs="*", default=[100_000])
    parser.add_argument("--ranks", action="store_true", help="also two ranks (torchrun) on the largest LM corpus")
    parser.add_argument("--stream-mb", type=float, nargs="*", default=[],
                        help="stream these sizes (data.streaming=true; 10000 is the 1000 MB file ten times)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--loader-only", action="store_true", help="only the loaders' own rates, on the caches "
                        "an earlier run left")
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(loader_rate(spec) if spec.get("loader_only") else child(spec)), flush=True)
        return
    work = Path(args.workdir)
    (work / "runs").mkdir(parents=True, exist_ok=True)
    only = args.loader_only
    reference = case(work, "shakespeare_char", "char_shakespeare.yaml",
                     [f"data.dataset={SHAKESPEARE}", *LM_MODEL], args.steps, loader_only=only)
    print(json.dumps(reference), flush=True)
    for mb in args.lm_mb:
        corpus = write_corpus(work / f"zipf_{mb:g}mb.txt", mb)
        for kind in args.kinds:
            row = case(work, f"lm_{kind}_{mb:g}mb", "char_shakespeare.yaml",
                       [f"data.dataset={corpus}", f"tokenizer.kind={kind}", *LM_MODEL], args.steps, loader_only=only)
            print(json.dumps({**row, "mb_per_s": round(mb / row["first_run_s"], 2)} if not only else row), flush=True)
    if args.ranks and args.lm_mb:
        corpus = work / f"zipf_{max(args.lm_mb):g}mb.txt"
        row = case(work, f"lm_char_{max(args.lm_mb):g}mb_2ranks", "char_shakespeare.yaml",
                   [f"data.dataset={corpus}", "tokenizer.kind=char", *LM_MODEL], args.steps, ranks=2)
        print(json.dumps(row), flush=True)
    for mb in args.stream_mb:
        print(json.dumps(stream_case(work, mb, args.steps)), flush=True)
    for rows in args.cls_rows:
        corpus = rows_corpus(work, rows)
        row = case(work, f"cls_{rows}", "sst2_bilstm.yaml",
                   [f"data.dataset={corpus}", "data.text_column=text", "data.label_column=label", *CLS_MODEL],
                   args.steps, loader_only=only)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

"""The CUDA path, checked and timed on one GPU in a single short run.

    python benchmarks/bench_gpu.py [--out DIR]

1. correctness on CUDA: packed (cuDNN) against padded strategy, outputs, states and
   gradients, every cell; and CUDA against CPU;
2. classifier training tokens/s (BiLSTM E=128 H=256 B=64, bucketed batches, the long and
   short settings of bench_encoder.py): packed against padded, fp32 against bf16 autocast,
   plus the textbook random + packed batches;
3. char LM training tokens/s (2x512 LSTM, B=64, T=128): fp32 against bf16;
4. generation chars/s at batch 1 and 64 samples;
5. the real entry points on CUDA: train a classifier and a generator (bf16), generate, and
   load the CUDA-trained checkpoint on the CPU.

Each part reports its own failure instead of stopping the rest. Prints one JSON report
(also written to --out/gpu_report.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_encoder import SETTINGS, VOCAB, B, lengths_for, make_batches  # noqa: E402

from textrnn import BucketBatchSampler, RNNClassifier, RNNConfig, RNNEncoder, RNNLanguageModel, TextTokenizer  # noqa: E402

CUDA = torch.device("cuda")


def gpu_rate(step, seconds: float = 3.0) -> float:
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += step()
    torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def autocast(bf16: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def correctness() -> dict:
    """Strict fp32 (TF32 off, which PyTorch leaves on for cuDNN by default): the largest
    difference of any output, state or gradient, relative to that tensor's largest value."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        report = {cell: _compare(cell) for cell in ("lstm", "gru", "rnn")}
        report["weight_dropout"] = _weight_dropout_agreement()
        return report
    finally:
        torch.backends.cudnn.allow_tf32 = True


def _compare(cell: str) -> dict:
    torch.manual_seed(0)
    enc = RNNEncoder(32, 48, 2, cell, True).to(CUDA)
    x = torch.randn(16, 40, 32, device=CUDA)
    lengths = torch.randint(0, 41, (16,))
    lengths[0] = 40
    results = {}
    for strategy in ("packed", "padded"):
        enc.strategy = strategy
        enc.zero_grad()
        xx = x.clone().requires_grad_()
        o, s = enc(xx, lengths)
        states = s if isinstance(s, tuple) else (s,)
        (o.square().sum() + sum(t.square().sum() for t in states)).backward()
        results[strategy] = [o, *states, xx.grad, *[p.grad.clone() for p in enc.parameters()]]
    diff = max(float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))
               for a, b in zip(results["packed"], results["padded"]))
    cpu = enc.to("cpu")
    cpu.strategy = "padded"
    o_cpu, _ = cpu(x.cpu(), lengths)
    reference = results["packed"][0].detach().cpu()
    return {"packed_vs_padded_max_rel_diff": diff,
            "cuda_vs_cpu_outputs_max_rel_diff": float((o_cpu.detach() - reference).abs().max() / reference.abs().max())}


def _weight_dropout_agreement() -> dict:
    """Training mode with DropConnect: packed (cuDNN, non-flat weights) against padded under one mask."""
    import warnings

    torch.manual_seed(0)
    enc = RNNEncoder(32, 48, 2, "lstm", True, weight_dropout=0.3).to(CUDA).train()
    x = torch.randn(16, 40, 32, device=CUDA)
    lengths = torch.randint(0, 41, (16,))
    outputs = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for strategy in ("packed", "padded"):
            enc.strategy = strategy
            torch.manual_seed(1)  # the same mask for both
            outputs[strategy] = enc(x, lengths)[0]
    diff = float((outputs["packed"] - outputs["padded"]).abs().max() / outputs["padded"].abs().max())
    return {"packed_vs_padded_max_rel_diff": diff, "warnings": sorted({str(w.message)[:200] for w in caught})}


def classifier_throughput() -> dict:
    report = {}
    config = RNNConfig(task="classification", vocab_size=VOCAB, embedding_dim=128, hidden_size=256, bidirectional=True)
    for name, (mu, sigma, cap) in SETTINGS.items():
        lengths = lengths_for(mu, sigma, cap, B * 80)
        bucketed = make_batches(lengths, BucketBatchSampler(lengths, B, seed=0).batches()[:20])
        random_batches = make_batches(lengths, [list(range(i, i + B)) for i in range(0, B * 20, B)])
        torch.manual_seed(0)
        model = RNNClassifier(config).to(CUDA)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
        row = {}
        for label, batches, strategy, bf16 in [
            ("random + packed, fp32", random_batches, "packed", False),
            ("bucketed + packed, fp32 (default)", bucketed, "packed", False),
            ("bucketed + padded, fp32", bucketed, "padded", False),
            ("bucketed + packed, bf16", bucketed, "packed", True),
            ("bucketed + padded, bf16", bucketed, "padded", True),
        ]:
            model.backbone.encoder.strategy = strategy
            position = [0]

            def step(batches=batches, bf16=bf16) -> int:
                ids, lens, labels = batches[position[0] % len(batches)]
                position[0] += 1
                with autocast(bf16):
                    _, loss = model(ids.to(CUDA, non_blocking=True), lens, labels.to(CUDA, non_blocking=True))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                return int(lens.sum())

            row[label] = gpu_rate(step)
        report[name] = row
    return report


def lm_throughput() -> dict:
    tok = TextTokenizer.train(["abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?'\n-"], "char")
    config = RNNConfig(task="language_model", vocab_size=len(tok), embedding_dim=128, hidden_size=512, num_layers=2)
    torch.manual_seed(0)
    model = RNNLanguageModel(config, tok).to(CUDA)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    ids = torch.randint(4, len(tok), (64, 129), device=CUDA)
    report = {}
    for bf16 in (False, True):
        state = [None]

        def step(bf16=bf16) -> int:
            with autocast(bf16):
                _, loss, s = model(ids[:, :-1], state=state[0], targets=ids[:, 1:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state[0] = tuple(t.detach() for t in s)
            return 64 * 128

        report["bf16" if bf16 else "fp32"] = gpu_rate(step)
    prompt = torch.tensor(tok.encode("The "))
    for samples in (1, 64):
        report[f"generate chars/s, {samples} sample(s)"] = gpu_rate(
            lambda samples=samples: samples * model.generate(prompt, 200, num_samples=samples, seed=0).shape[1])
    return report


def end_to_end(workdir: Path) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import CORPUS, write_sentiment

    data = write_sentiment(workdir / "data")
    corpus = workdir / "corpus.txt"
    corpus.write_text(CORPUS)
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}
    small = ["model.embedding_dim=32", "model.hidden_size=32", "train.progress=false", "train.bf16=true"]

    def cli(*args):
        proc = subprocess.run([sys.executable, "-m", "textrnn", *args], capture_output=True, text=True, env=env,
                              cwd=ROOT)
        return {"rc": proc.returncode, "stdout_tail": proc.stdout[-400:], "stderr_tail": proc.stderr[-600:]}

    cfg = workdir / "c.yaml"
    cfg.write_text("task: classification\n")
    out = {"train-classifier": cli("train-classifier", "--config", str(cfg), f"data.dataset={data}",
                                    "data.text_column=sentence", f"train.output_dir={workdir / 'cls'}",
                                    "train.max_epochs=3", "train.lr=0.02", "model.bidirectional=true", "--device",
                                    "cuda", *small),
           "train-generator": cli("train-generator", "--config", str(ROOT / "configs" / "debug.yaml"),
                                   f"data.dataset={corpus}", f"train.output_dir={workdir / 'gen'}",
                                  "train.max_steps=40", "--device", "cuda", *small)}
    recipe = ["model.ensemble_size=2", "model.pooling=attention", "tokenizer.min_freq=2", "train.label_smoothing=0.1",
              "model.weight_dropout=0.2", "train.lm_loss_weight=0.1", "train.ema_decay=0.9"]
    out["train-classifier (ensemble, attention, weight dropout, label smoothing, lm loss)"] = cli(
        "train-classifier",
        "--config",
        str(cfg),
        f"data.dataset={data}",
        "data.text_column=sentence",
        f"train.output_dir={workdir / 'recipe'}",
        "train.max_epochs=2",
        "model.bidirectional=true",
        "--device",
        "cuda",
        *small,
        *recipe,
    )
    for device in ("cuda", "cpu"):
        out[f"evaluate recipe checkpoint on {device}"] = cli("evaluate", "--checkpoint", str(workdir / "recipe"),
                                                             "--dataset", str(data), "--device", device)
    out["generate (cuda)"] = cli("generate", "--checkpoint", str(workdir / "gen"), "--max-new-tokens", "60", "--seed",
                                 "0", "--device", "cuda")
    out["predict (checkpoint trained on cuda, run on cpu)"] = cli("predict", "--checkpoint", str(workdir / "cls"),
                                                                   "loved it", "--device", "cpu")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--parts", default="correctness,classifier_tokens_per_s,char_lm,end_to_end")
    args = parser.parse_args()
    report: dict = {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                    "device": torch.cuda.get_device_name(0)}
    parts = [("correctness", correctness), ("classifier_tokens_per_s", classifier_throughput),
             ("char_lm", lm_throughput)]
    with tempfile.TemporaryDirectory() as tmp:
        parts.append(("end_to_end", lambda: end_to_end(Path(tmp))))
        for name, fn in parts:
            if name not in args.parts.split(","):
                continue
            start = time.time()
            try:
                report[name] = fn()
            except Exception:  # report and go on: one broken part must not hide the others
                report[name] = {"error": traceback.format_exc()[-2000:]}
            report[f"{name}_seconds"] = round(time.time() - start, 1)
            print(json.dumps({name: report[name]}, indent=1), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "gpu_report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()

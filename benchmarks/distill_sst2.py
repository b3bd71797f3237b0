"""SST-2 distillation end to end: a MiniLM teacher fine-tuned here, a BiLSTM student, accuracy, latency and size.

    python benchmarks/distill_sst2.py                                   # teacher (once), then 4x, seed 0
    python benchmarks/distill_sst2.py --augment 0 1 4 10 --seeds 0      # the transfer-set size curve
    python benchmarks/distill_sst2.py --augment 4 --seeds 0 --set distill.loss=kl distill.alpha=0.5 --tag kl
    python benchmarks/distill_sst2.py --augment 4 --label-only          # the teacher labels, nothing trains
    python benchmarks/distill_sst2.py --smoke                           # every step for seconds (the tests)
    python benchmarks/distill_sst2.py --measure runs/distill/student_h64_x1_seed0/best  # latency and size only
    python benchmarks/distill_sst2.py --measure runs/distill/student_x1_seed0/best --onnx --int8  # + ONNX, int8

Steps, each printed with its minutes:
1. The teacher: ``benchmarks/finetune_teacher.py`` fine-tunes all-MiniLM-L6-v2 (a PyPI wheel) on
   the training split, once (a folder with ``teacher.json`` is kept).
2. The transfer set of each ``--augment`` (copies per training text), labelled by the teacher
   once and cached (``textrnn.training.distillation.transfer_set``): the hours it took.
3. The student: ``textrnn distill`` with ``configs/sst2_distill.yaml`` per seed (a subprocess, as
   a user runs it), and its best validation accuracy.
4. Latency: p50 milliseconds of predicting validation texts from raw text (tokenization
   included), batch 1 and batch 64, teacher and student, interleaved on the same threads; and size:
   parameters and ``model.safetensors`` bytes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import onnx_classifier  # noqa: E402
from quality import ENV, ROOT, SHARED, run_summary  # noqa: E402

CONFIG = "configs/sst2_distill.yaml"
TEACHER_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


def make_teacher(out: Path, data: Path, smoke: bool) -> dict:
    """The fine-tuned teacher folder (made once) and its teacher.json."""
    if smoke:  # a random tiny BERT stands in: the step's code runs, nothing is fine-tuned
        import pyarrow.parquet as pq

        from tests.helpers import tiny_bert_teacher

        texts = pq.read_table(data / "train.parquet", columns=["sentence"]).column(0).to_pylist()[:2000]
        if not (out / "config.json").exists():
            tiny_bert_teacher(out, texts, ["negative", "positive"])
        return {"validation": None, "hours": 0.0}
    subprocess.run([sys.executable, "benchmarks/finetune_teacher.py", "--data", str(data), "--out", str(out)],
                   cwd=ROOT, env=ENV, check=True)
    return json.loads((out / "teacher.json").read_text())


def label_transfer(teacher: Path, data: Path, augment: int, overrides: list[str]) -> float:
    """Hours the teacher took to label the transfer set of ``augment`` copies (0.0 when it was cached)."""
    from textrnn import load_config
    from textrnn.training.distill_config import distill_config
    from textrnn.training.distillation import transfer_set

    config = load_config(str(ROOT / CONFIG), [f"data.dataset={data}", f"distill.augment={augment}",
                                              "train.progress=false", *overrides])
    start = time.monotonic()
    transfer_set(config, distill_config(config), str(teacher), None)  # its note goes to the textrnn log (stderr)
    return (time.monotonic() - start) / 3600


def student(teacher: Path, data: Path, augment: int, seed: int, runs: Path, overrides: list[str],
            tag: str = "") -> dict:
    out = runs / f"student{tag}_x{augment}_seed{seed}"
    proc = subprocess.run([sys.executable, "-m", "textrnn", "distill", "--teacher", str(teacher), "--config", CONFIG,
                           f"data.dataset={data}", f"distill.augment={augment}", f"train.seed={seed}",
                           f"train.output_dir={out}", "train.progress=false", *overrides],
                          cwd=ROOT, env=ENV, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"distill failed:\n{proc.stderr[-3000:]}")
    return {**run_summary(out, "accuracy"), "folder": str(out / "best")}


def p50_ms(predict, texts: list[str], batch: int, rounds: int = 30) -> float:
    times = []
    for i in range(rounds):
        chunk = [texts[(i * batch + j) % len(texts)] for j in range(batch)]
        start = time.perf_counter()
        predict(chunk)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def latency_and_size(teacher: Path, student_folder: Path, data: Path) -> dict:
    """p50 ms at batch 1 and 64, interleaved (teacher, student, teacher, ...), and each model's size."""
    import pyarrow.parquet as pq
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from textrnn import load_model

    texts = pq.read_table(data / "validation.parquet", columns=["sentence"]).column(0).to_pylist()
    tokenizer = AutoTokenizer.from_pretrained(teacher)
    bert = AutoModelForSequenceClassification.from_pretrained(teacher).eval()
    rnn = load_model(student_folder)

    @torch.inference_mode()
    def teach(chunk):
        return bert(**tokenizer(chunk, padding=True, truncation=True, max_length=128, return_tensors="pt")).logits

    out: dict = {}
    for batch in (1, 64):
        teach(texts[:batch]), rnn.predict(texts[:batch])  # warm-up
        pairs = [(p50_ms(teach, texts, batch, 10), p50_ms(rnn.predict, texts, batch, 10)) for _ in range(3)]
        out[f"teacher_ms_b{batch}"] = statistics.median(p[0] for p in pairs)
        out[f"student_ms_b{batch}"] = statistics.median(p[1] for p in pairs)
    out["teacher_params"] = sum(p.numel() for p in bert.parameters())
    out["student_params"] = sum(p.numel() for p in rnn.parameters())
    out["teacher_bytes"] = sum(f.stat().st_size for f in teacher.glob("*.safetensors"))
    out["student_bytes"] = (student_folder / "model.safetensors").stat().st_size
    return out


class _TeacherGraph:
    """A BERT classifier's forward with the attention mask made additive here: exported as it is, transformers'
    own mask code is traced with the example's shapes as constants (its ONNX graph was off by 3.3 logits on padded
    batches)."""

    def __new__(cls, bert):
        import torch

        class Graph(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids, token_type_ids, attention_mask):
                mask = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
                h = self.bert.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
                for layer in self.bert.bert.encoder.layer:
                    out = layer(h, attention_mask=mask)
                    h = out[0] if isinstance(out, tuple) else out
                return self.bert.classifier(self.bert.bert.pooler(h))

        return Graph().eval()


def onnx_predictors(teacher: Path, student_folder: Path, teacher_graph: Path, student_graph: Path):
    """``teach(texts)`` and ``learn(texts)``: raw text to the teacher's logits and the student's outputs through
    ONNX Runtime (2 threads each), tokenization included."""
    import numpy as np
    import onnxruntime as ort
    from transformers import AutoTokenizer

    from textrnn import load_model

    tokenizer = AutoTokenizer.from_pretrained(teacher)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    bert_session = ort.InferenceSession(str(teacher_graph), options, providers=["CPUExecutionProvider"])

    def teach(chunk):
        encoded = tokenizer(chunk, padding=True, truncation=True, max_length=128, return_tensors="np")
        return bert_session.run(None, {n: encoded[n].astype(np.int64) for n in TEACHER_INPUTS})[0]

    learn = onnx_classifier(load_model(student_folder), student_graph, threads=2)
    return teach, learn


def onnx_latency(teacher: Path, student_folder: Path, data: Path, work: Path) -> dict:
    """The same p50 ms with both models in ONNX Runtime (2 threads each), where a student ships: the teacher
    exported by torch.onnx (TorchScript exporter, eager attention, checked against torch to 1e-3 on padded
    batches), the student by ``textrnn export``; text to logits or probabilities, tokenization included,
    interleaved as above (batch 1: 5 rounds of 20 calls each)."""
    import numpy as np
    import pyarrow.parquet as pq
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from textrnn.serving.export import export_onnx

    texts = pq.read_table(data / "validation.parquet", columns=["sentence"]).column(0).to_pylist()
    work.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(teacher)
    bert = AutoModelForSequenceClassification.from_pretrained(teacher, attn_implementation="eager").eval()
    example = tokenizer(texts[:2], padding=True, return_tensors="pt")
    torch.onnx.export(_TeacherGraph(bert), tuple(example[n] for n in TEACHER_INPUTS), work / "teacher.onnx",
                      dynamo=False, opset_version=17, input_names=list(TEACHER_INPUTS), output_names=["logits"],
                      dynamic_axes={n: {0: "batch", 1: "time"} for n in TEACHER_INPUTS} | {"logits": {0: "batch"}})
    export_onnx(student_folder, work / "student.onnx")
    teach, learn = onnx_predictors(teacher, student_folder, work / "teacher.onnx", work / "student.onnx")
    with torch.inference_mode():
        chunk = texts[10:74]
        torch_logits = bert(**tokenizer(chunk, padding=True, truncation=True, max_length=128,
                                        return_tensors="pt")).logits.numpy()
    gap = float(np.abs(teach(chunk) - torch_logits).max())
    if gap > 1e-3:
        raise SystemExit(f"the teacher's ONNX graph differs from torch by {gap:.3g} on padded texts")
    out: dict = {"onnx_teacher_max_diff": gap}
    for batch in (1, 64):
        teach(texts[:batch]), learn(texts[:batch])  # warm-up
        calls, rounds = (20, 5) if batch == 1 else (10, 3)  # batch 1 is the target's figure: more calls
        pairs = [(p50_ms(teach, texts, batch, calls), p50_ms(learn, texts, batch, calls)) for _ in range(rounds)]
        out[f"onnx_teacher_ms_b{batch}"] = statistics.median(p[0] for p in pairs)
        out[f"onnx_student_ms_b{batch}"] = statistics.median(p[1] for p in pairs)
    return out


def onnx_int8(teacher: Path, student_folder: Path, data: Path, work: Path) -> dict:
    """Both ONNX graphs (from ``onnx_latency``) also in dynamic int8 (``textrnn.serving.quantize``, as ``textrnn
    export --quantize int8`` writes): validation accuracy and batch-1 p50 of all four, interleaved."""
    import numpy as np
    import pyarrow.parquet as pq

    from textrnn.serving.quantize import quantize_file

    table = pq.read_table(data / "validation.parquet", columns=["sentence", "label"])
    texts, labels = table.column(0).to_pylist(), np.array(table.column(1).to_pylist())
    for name in ("teacher", "student"):
        quantize_file(work / f"{name}.onnx", work / f"{name}_int8.onnx")
    runners = dict(zip(("teacher", "student"), onnx_predictors(teacher, student_folder, work / "teacher.onnx",
                                                               work / "student.onnx")))
    runners |= dict(zip(("teacher_int8", "student_int8"), onnx_predictors(
        teacher, student_folder, work / "teacher_int8.onnx", work / "student_int8.onnx")))
    out: dict = {}
    for name, run in runners.items():
        predicted = np.concatenate([run(texts[i:i + 64]).argmax(-1) for i in range(0, len(texts), 64)])
        out[f"onnx_{name}_accuracy"] = round(float((predicted == labels).mean()) * 100, 2)
        run(texts[:1])  # warm-up
    rounds = [{name: p50_ms(run, texts, 1, 30) for name, run in runners.items()} for _ in range(3)]
    return out | {f"onnx_{name}_ms_b1": statistics.median(r[name] for r in rounds) for name in runners}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "sst2")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "distill")
    parser.add_argument("--augment", type=int, nargs="+", default=[4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", nargs="*", default=[], help="more overrides, e.g. distill.loss=kl")
    parser.add_argument("--tag", default="", help="a name for these runs' folders (e.g. kl)")
    parser.add_argument("--label-only", action="store_true", help="make the teacher and label; train nothing")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency and size measurement")
    parser.add_argument("--smoke", action="store_true", help="a random tiny teacher and seconds of training")
    parser.add_argument("--measure", type=Path, nargs="+", help="only measure these students' latency and size")
    parser.add_argument("--onnx", action="store_true", help="with --measure: also both models in ONNX Runtime")
    parser.add_argument("--int8", action="store_true", help="with --onnx: also both graphs in dynamic int8")
    args = parser.parse_args()
    if args.measure:
        for folder in args.measure:
            teacher = args.runs / "sst2_teacher"
            row = latency_and_size(teacher, folder, args.data)
            if args.onnx:
                work = args.runs / "onnx" / folder.parent.name
                row |= onnx_latency(teacher, folder, args.data, work)
                row |= onnx_int8(teacher, folder, args.data, work) if args.int8 else {}
            print(json.dumps({"step": "latency_and_size", "student": str(folder), **row}), flush=True)
        return
    overrides = list(args.set) + (["train.max_steps=3", "data.max_length=16", "model.pretrained_vectors=null",
                                   "model.embedding_dim=16"]
                                  if args.smoke else [])
    teacher = args.runs / ("smoke_teacher" if args.smoke else "sst2_teacher")
    start = time.monotonic()
    made = make_teacher(teacher, args.data, args.smoke)
    print(json.dumps({"step": "teacher", "validation_accuracy": made["validation"], "hours": made["hours"],
                      "minutes_now": (time.monotonic() - start) / 60}), flush=True)
    tag = f"_{args.tag}" if args.tag else ""
    for augment in args.augment:
        hours = label_transfer(teacher, args.data, augment, overrides)
        print(json.dumps({"step": "transfer", "augment": augment, "label_hours_now": hours}), flush=True)
        if args.label_only:
            continue
        results = [student(teacher, args.data, augment, seed, args.runs, overrides, tag) for seed in args.seeds]
        best = [r["best"] for r in results]
        row = {"step": "student", "augment": augment, "seeds": args.seeds, "set": args.set, "accuracy": best,
               "mean": statistics.mean(best), "std": statistics.pstdev(best),
               "minutes": [r["minutes"] for r in results], "folders": [r["folder"] for r in results]}
        print(json.dumps(row), flush=True)
    if not (args.label_only or args.no_latency):
        print(json.dumps({"step": "latency_and_size", **latency_and_size(teacher, Path(results[0]["folder"]),
                                                                          args.data)}), flush=True)


if __name__ == "__main__":
    main()

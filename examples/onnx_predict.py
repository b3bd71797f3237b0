"""Classify texts with an exported textrnn model: onnxruntime, tokenizers and numpy only (no torch, no textrnn).

    textrnn export --checkpoint runs/sst2_bilstm --output sst2.onnx      # where textrnn is installed
    pip install onnxruntime tokenizers numpy                               # where the model goes
    python examples/onnx_predict.py sst2.onnx "a gripping, funny film" "dull and far too long"
    python examples/onnx_predict.py sst2.onnx --input texts.txt            # one text per line

Prints one JSON line per text, as `textrnn predict` does: {"index", "label" (or "labels" for a
multi-label model), "probabilities"}. The .onnx file carries its tokenizer and labels in its
metadata, so it is the only file needed.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

UNK_ID = 1  # textrnn's special tokens have fixed ids: <pad> 0, <unk> 1, <bos> 2, <eos> 3
MAX_TOKENS = 10_000  # textrnn predict keeps the first 10,000 tokens of a text


class OnnxClassifier:
    def __init__(self, path: str) -> None:
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("textrnn_task") != "classification":
            raise SystemExit(f"{path} is not a textrnn classifier export (task: {meta.get('textrnn_task')})")
        self.tokenizer = Tokenizer.from_str(meta["tokenizer_json"])
        self.char = meta["tokenizer_kind"] == "char"
        self.labels = json.loads(meta["label_names"])
        self.thresholds = json.loads(meta["thresholds"])
        self.multi_label = meta["problem_type"] == "multi_label"
        self.pad_id = int(meta["pad_id"])

    def encode(self, texts: list[str]) -> list[list[int]]:
        if self.char:  # one id per character, unknown characters are <unk>
            vocab = self.tokenizer.get_vocab()
            return [[vocab.get(ch, UNK_ID) for ch in text] for text in texts]
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def probabilities(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        rows = [row[:MAX_TOKENS] for row in self.encode(texts)]
        out = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        order = np.argsort([len(row) for row in rows], kind="stable")  # similar lengths batch together
        for start in range(0, len(order), batch_size):
            members = order[start:start + batch_size]
            lengths = np.array([len(rows[i]) for i in members], dtype=np.int64)
            ids = np.full((len(members), max(1, int(lengths.max()))), self.pad_id, dtype=np.int64)
            for r, i in enumerate(members):
                ids[r, :len(rows[i])] = rows[i]
            out[members] = self.session.run(["probabilities"], {"input_ids": ids, "lengths": lengths})[0]
        return out

    def predict(self, texts: list[str]) -> list[dict]:
        results = []
        for row in self.probabilities(texts).tolist():
            probabilities = dict(zip(self.labels, row))
            if self.multi_label:
                chosen = [n for n, p, t in zip(self.labels, row, self.thresholds) if p >= t]
                results.append({"labels": chosen, "probabilities": probabilities})
            else:
                results.append({"label": self.labels[int(np.argmax(row))], "probabilities": probabilities})
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a .onnx file written by textrnn export")
    parser.add_argument("texts", nargs="*")
    parser.add_argument("--input", help="a UTF-8 file with one text per line")
    args = parser.parse_args()
    texts = list(args.texts)
    if args.input:
        with open(args.input, encoding="utf-8-sig") as handle:
            texts += [line.rstrip("\r\n") for line in handle]
    for index, result in enumerate(OnnxClassifier(args.model).predict(texts)):
        print(json.dumps({"index": index, **result}))


if __name__ == "__main__":
    main()

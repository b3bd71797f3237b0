"""int8 ONNX: an fp32 export rewritten by onnxruntime's dynamic quantization, and how far it moved.

Why this path: ``torch.ao.quantization`` is deprecated and its quantized LSTMs do not export to
ONNX. onnxruntime quantizes the exported fp32 graph instead:

    fp32 .onnx --(constant folding: W and R become plain initializers)--> quant_pre_process
               --(quantize_dynamic, int8 weights per channel)--> int8 .onnx

* ``LSTM`` nodes become ``DynamicQuantizeLSTM`` (int8 W and R, activations quantized per call);
  the ``GRU`` and ``RNN`` nodes have no int8 kernel in onnxruntime and stay fp32.
* ``MatMul`` (projections, attention, the output layer) becomes ``MatMulInteger`` and the
  embedding ``Gather`` reads int8 rows, which is where most of the file's bytes are.

int8 is not exact, so the file is not held to the fp32 tolerance. Instead the quantized graph
is run next to the fp32 one on the same inputs and the agreement is measured
(:class:`Agreement`); it travels in the file's metadata (``textrnn_int8_agreement``) and the
CLI prints it. ``benchmarks/bench_onnx.py`` measures the cost on real validation data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ..core.errors import TextRNNError

if TYPE_CHECKING:
    from ..models.base import TextModel

AGREEMENT_KEY = "textrnn_int8_agreement"
# What each choice hands to int8 kernels: everything, or everything but the recurrent cells.
OP_TYPES = {"int8": ["Gather", "MatMul", "LSTM"], "int8-fp32-rnn": ["Gather", "MatMul"]}
QUANTIZE_CHOICES = tuple(OP_TYPES)


@dataclasses.dataclass
class Agreement:
    """How the int8 graph's outputs compare with the fp32 graph's on the same inputs.

    ``top1`` is the share of rows (classifier) or steps (language model) whose most likely class or
    next token is the same; ``max_abs_diff`` and ``mean_abs_diff`` are over probabilities for a
    classifier and over log-probabilities for a language model; ``rows`` is how many were compared.
    """

    output: str
    rows: int
    top1: float
    max_abs_diff: float
    mean_abs_diff: float

    def as_dict(self) -> dict[str, Any]:
        """The fields, rounded for printing."""
        return {"output": self.output, "rows": self.rows, "top1": round(self.top1, 4),
                "max_abs_diff": float(f"{self.max_abs_diff:.3g}"), "mean_abs_diff": float(f"{self.mean_abs_diff:.3g}")}


def require_quantization() -> Any:
    """onnxruntime's quantization tools, or a one-line error naming the extra."""
    try:
        from onnxruntime import quantization
    except ImportError as exc:
        raise TextRNNError(f"int8 export needs onnxruntime ({exc.name} is missing): "
                           "pip install -e '.[export]' in textrnn's clone") from None
    return quantization


def quantize_file(fp32_path: Union[str, os.PathLike], int8_path: Union[str, os.PathLike], mode: str = "int8") -> None:
    """Write the dynamic-int8 version of ``fp32_path`` to ``int8_path`` (metadata kept); ``mode`` is
    ``int8`` (LSTMs too) or ``int8-fp32-rnn`` (embeddings and linear layers only)."""
    quantization = require_quantization()
    folded = Path(str(int8_path) + ".folded")
    try:  # the quantizer prints advice about pre-processing (done here) through logging and stdout
        with contextlib.redirect_stdout(io.StringIO()), _quiet_root_logger():
            quantization.shape_inference.quant_pre_process(str(fp32_path), str(folded), skip_symbolic_shape=True)
            quantization.quantize_dynamic(str(folded), str(int8_path), weight_type=quantization.QuantType.QInt8,
                                          per_channel=True, op_types_to_quantize=OP_TYPES[mode])
    finally:
        folded.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet_root_logger():
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def run_both(fp32_path: Union[str, os.PathLike], int8_path: Union[str, os.PathLike], feeds: dict) -> tuple:
    """The first output of each graph on ``feeds``: (fp32, int8)."""
    import onnxruntime as ort

    outputs = []
    for path in (fp32_path, int8_path):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, feeds)[0])
    return outputs[0], outputs[1]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-probabilities, computed stably in float64."""
    shifted = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def compare(reference: np.ndarray, candidate: np.ndarray, output: str) -> Agreement:
    """Agreement of two (N, C) arrays: arg-max matches and absolute differences."""
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    same = reference.argmax(-1) == candidate.argmax(-1)
    return Agreement(output, int(len(same)), float(same.mean()), float(diff.max()), float(diff.mean()))


def lm_walk(fp32_path: Union[str, os.PathLike], int8_path: Union[str, os.PathLike], feeds: dict,
            steps: int) -> Agreement:
    """Both step graphs fed the same tokens (fp32's greedy choices) for ``steps`` steps, each with its own
    state: agreement of their next-token log-probabilities over every step."""
    import onnxruntime as ort

    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32_path, int8_path)]
    names = [i.name for i in sessions[0].get_inputs()][1:]
    states = [[feeds[n] * 0 for n in names] for _ in sessions]
    token, reference, candidate = feeds["input_ids"], [], []
    for _ in range(steps):
        results = [s.run(None, {"input_ids": token, **dict(zip(names, st))}) for s, st in zip(sessions, states)]
        states = [r[1:] for r in results]
        reference.append(log_softmax(results[0][0]))
        candidate.append(log_softmax(results[1][0]))
        token = results[0][0].argmax(-1)[:, None].astype(np.int64)
    return compare(np.concatenate(reference), np.concatenate(candidate), "log_probabilities")


def measure_agreement(model: TextModel, fp32_path: Union[str, os.PathLike], int8_path: Union[str, os.PathLike],
                      feeds: dict) -> Agreement:
    """How closely the int8 graph follows the fp32 one on ``feeds``: a classifier's probabilities on the
    batch, a language model's next-token log-probabilities over 64 steps from the batch's first tokens."""
    from ..models.classifier import TextClassifier

    if isinstance(model, TextClassifier):
        reference, candidate = run_both(fp32_path, int8_path, feeds)
        return compare(reference, candidate, "probabilities")
    return lm_walk(fp32_path, int8_path, feeds, steps=64)


def add_agreement(path: Union[str, os.PathLike], agreement: Agreement) -> None:
    """Record ``agreement`` in the file's metadata (``textrnn_int8_agreement``), in place."""
    import onnx

    proto = onnx.load(str(path))
    proto.metadata_props.add(key=AGREEMENT_KEY, value=json.dumps(agreement.as_dict()))
    onnx.save(proto, str(path))


def read_agreement(path: Union[str, os.PathLike]) -> dict | None:
    """The agreement recorded in an int8 file, or None for an fp32 one."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    found = [p.value for p in proto.metadata_props if p.key == AGREEMENT_KEY]
    return json.loads(found[0]) if found else None

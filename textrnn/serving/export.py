"""ONNX export: a checkpoint as one ``.onnx`` file that runs in onnxruntime, with no torch and no textrnn.

Two graphs, both with dynamic batch (B) and time (T) axes::

    classifier   input_ids (B, T) int64, lengths (B,) int64      -> probabilities (B, C) float32
    LM step      input_ids (B, 1) int64, h (L, B, H) [, c (L, B, H)] -> logits (B, V), h_out [, c_out]

The classifier gives softmax probabilities, or one sigmoid per label for a multi-label model,
and an ensemble its members' mean. The LM step is one token with the state carried, so a
loop around it samples text in onnxruntime (``c`` only for an LSTM).

What travels in the file, as ONNX metadata (``metadata_props``): the ``tokenizer.json`` text,
the tokenizer kind, the label names, thresholds, problem type, pad id and field separator.
``examples/onnx_predict.py`` reads them and classifies texts with ``onnxruntime``,
``tokenizers`` and ``numpy`` only.

Why this exporter and this strategy:

* Each encoder layer is one native ONNX ``LSTM``/``GRU``/``RNN`` node with ``sequence_lens``,
  which keeps each row within its own length in both directions: the packed results. Packed
  sequences do not export (pytorch #49936, #62240, #112044), so while
  ``torch.onnx.is_in_onnx_export()`` the encoder emits those nodes itself
  (:mod:`textrnn.models.onnx_rnn`), with no Python branch on the data.
* It uses the TorchScript exporter (``torch.onnx.export(dynamo=False)``), whose custom-node hook
  (``torch.autograd.Function.symbolic``) those nodes use; the tests check variable batch sizes
  and lengths against the traced shapes.
* Every export is checked: onnxruntime runs a batch of mixed, unsorted lengths and the largest
  absolute difference from torch must be at most 1e-4, else the file is not written.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor, nn

from ..core.durable import durable_replace
from ..core.errors import TextRNNError
from ..core.runtime import eval_mode
from ..models.base import TextModel
from ..models.classifier import TextClassifier
from ..models.registry import load_model
from .quantize import QUANTIZE_CHOICES, add_agreement, measure_agreement, quantize_file

OPSET = 17
TOLERANCE = 1e-4


class ClassifierGraph(nn.Module):
    """``(input_ids (B, T), lengths (B,)) -> probabilities (B, C)`` of a classifier or an ensemble."""

    def __init__(self, model: TextClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        """(B, T) ids, (B,) lengths -> probabilities (B, C)."""
        logits, _ = self.model(input_ids, lengths)
        return self.model.probabilities(logits)


class LanguageModelStep(nn.Module):
    """``(input_ids (B, 1), h[, c]) -> (logits (B, V), h[, c])``: one generation step, state in and out."""

    def __init__(self, model: TextModel) -> None:
        super().__init__()
        self.model = model
        self.lstm = model.config.cell == "lstm"

    def forward(self, input_ids: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        """One step: (B,) ids and the state -> logits (B, V) and the next state."""
        logits, _, new_state = self.model(input_ids, None, tuple(state) if self.lstm else state[0])
        states = new_state if self.lstm else (new_state,)
        return (logits[:, -1], *states)


def graph_of(model: TextModel) -> tuple[nn.Module, dict]:
    """The module to trace and its example inputs, names and dynamic axes."""
    if isinstance(model, TextClassifier):
        inputs = (torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([3, 2]))
        names, outputs = ["input_ids", "lengths"], ["probabilities"]
        axes = {"input_ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "probabilities": {0: "batch"}}
        return ClassifierGraph(model), {"args": inputs, "input_names": names, "output_names": outputs,
                                        "dynamic_axes": axes}
    c = model.config
    zeros = torch.zeros(c.num_layers, 2, c.hidden_size)
    state = ["h", "c"] if c.cell == "lstm" else ["h"]
    step_inputs = (torch.tensor([[5], [6]]), *[zeros.clone() for _ in state])
    axes = {name: {1: "batch"} for name in state + [f"{n}_out" for n in state]}
    axes.update({"input_ids": {0: "batch"}, "logits": {0: "batch"}})
    return LanguageModelStep(model), {"args": step_inputs, "input_names": ["input_ids", *state],
                                      "output_names": ["logits", *[f"{n}_out" for n in state]], "dynamic_axes": axes}


def metadata(model: TextModel) -> dict[str, str]:
    """What a program without textrnn needs next to the graph, as strings."""
    c = model.config
    tokenizer = model.require_tokenizer()
    thresholds = model.thresholds() if isinstance(model, TextClassifier) else []
    return {"textrnn_task": model.task, "tokenizer_kind": tokenizer.kind,
            "tokenizer_json": tokenizer.tokenizer.to_str(), "label_names": json.dumps(list(c.label_names or [])),
            "problem_type": c.problem_type, "thresholds": json.dumps(thresholds),
            "pad_id": str(c.pad_id), "field_separator": c.field_separator,
            "text_fields": json.dumps(c.text_fields or [])}


def _require_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise TextRNNError(
            f"ONNX export needs onnx and onnxruntime ({exc.name} is missing): "
            "pip install -e '.[export]' in textrnn's clone"
        ) from None
    return onnx, onnxruntime


def export_onnx(source: Union[str, os.PathLike, TextModel], output: Union[str, os.PathLike],
                check: bool = True, quantize: Optional[str] = None) -> Path:
    """Write ``source`` (a checkpoint folder, a run folder or a loaded model) to ``output`` as ONNX.

    The file is written to a temporary name, checked against torch with onnxruntime (largest
    absolute difference <= 1e-4 on a batch of mixed lengths) and only then renamed into place.
    ``quantize="int8"`` then rewrites the checked fp32 graph with onnxruntime's dynamic int8
    quantization and records its agreement with fp32 in the file (:mod:`textrnn.serving.quantize`).
    """
    _require_onnx()
    if quantize not in (None, *QUANTIZE_CHOICES):
        raise TextRNNError(f"unknown quantization {quantize!r}; use one of {', '.join(QUANTIZE_CHOICES)}, or none")
    output = Path(output)
    if not output.parent.is_dir():
        raise TextRNNError(f"output folder {output.parent} does not exist; create it or choose another --output")
    model = load_model(source) if isinstance(source, (str, os.PathLike)) else source
    model.to("cpu")  # in place
    handle, temporary = tempfile.mkstemp(suffix=".onnx.tmp", dir=output.parent)
    os.close(handle)
    int8 = temporary + ".int8"
    try:
        write_graph(model, temporary)
        if check:
            check_parity(model, temporary)
        if quantize:
            quantize_file(temporary, int8, quantize)
            classifier = isinstance(model, TextClassifier)
            feeds = example_feeds(model, 256, 40, seed=1) if classifier else example_feeds(model, 16)
            add_agreement(int8, measure_agreement(model, temporary, int8, feeds))
        durable_replace(int8 if quantize else temporary, output)
    finally:
        for leftover in (temporary, int8):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return output


def write_graph(model: TextModel, path: str) -> None:
    """Trace ``model``'s graph (:func:`graph_of`) to ``path`` as fp32 ONNX, with textrnn's metadata."""
    onnx, _ = _require_onnx()
    graph, spec = graph_of(model)
    with eval_mode(model), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python values; the parity check is the proof
        torch.onnx.export(graph, spec["args"], path, dynamo=False, opset_version=OPSET,
                          input_names=spec["input_names"], output_names=spec["output_names"],
                          dynamic_axes=spec["dynamic_axes"])
    proto = onnx.load(path)
    for key, value in metadata(model).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, path)


def torch_outputs(model: TextModel, feeds: dict) -> list[np.ndarray]:
    """What the exported graph should give for ``feeds``: the model in torch, on its usual path."""
    graph, _ = graph_of(model)
    with torch.no_grad(), eval_mode(model):
        out = graph(*[torch.from_numpy(v) for v in feeds.values()])
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def example_feeds(model: TextModel, batch: int = 5, steps: int = 7, seed: int = 0) -> dict:
    """Random ids with mixed, unsorted lengths (one of length 1, one full), or an LM step with a random state."""
    rng = np.random.default_rng(seed)
    vocab = model.config.vocab_size
    if isinstance(model, TextClassifier):
        lengths = rng.integers(1, steps + 1, size=batch)
        lengths[0], lengths[-1] = 1, steps
        ids = rng.integers(4, vocab, size=(batch, steps)) * (np.arange(steps)[None, :] < lengths[:, None])
        return {"input_ids": ids.astype(np.int64), "lengths": lengths.astype(np.int64)}
    c = model.config
    feeds = {"input_ids": rng.integers(4, vocab, size=(batch, 1)).astype(np.int64)}
    for name in ["h", "c"] if c.cell == "lstm" else ["h"]:
        feeds[name] = (rng.standard_normal((c.num_layers, batch, c.hidden_size)) * 0.5).astype(np.float32)
    return feeds


def check_parity(model: TextModel, path: Union[str, os.PathLike], feeds: dict | None = None) -> float:
    """Largest absolute difference between onnxruntime and torch; over 1e-4 is an error."""
    _, ort = _require_onnx()
    feeds = feeds or example_feeds(model)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    want = torch_outputs(model, feeds)
    worst = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
    if not worst <= TOLERANCE:
        raise TextRNNError(
            f"the ONNX graph differs from torch by {worst:.2e} (> {TOLERANCE}); please report this model's config.json"
        )
    return worst

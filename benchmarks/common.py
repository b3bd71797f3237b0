"""Helpers shared by the benchmarks: interleaved timing, peak memory, a classifier's ONNX graph from raw text.

This machine is a VM whose speed drifts from second to second, so contenders are timed in
interleaved rounds (A, B, C, A, B, C, ...) and each reports its median round: a slow patch
then hits every contender alike instead of whichever ran during it.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


def rate(fn: Callable[[], int], seconds: float = 1.0) -> float:
    """Units per second of ``fn`` (which returns how many units it did), over ``seconds``."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += fn()
    return done / (time.perf_counter() - start)


def interleaved(contenders: dict[str, Callable[[], int]], rounds: int = 5, seconds: float = 1.0) -> dict[str, float]:
    """Median units/s of each contender over ``rounds`` interleaved rounds (after one warm-up call)."""
    for fn in contenders.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(rate(fn, seconds))
    return {name: statistics.median(values) for name, values in samples.items()}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (the trainer's own measure)."""
    from textrnn.core.runtime import peak_rss_mb as measure

    return measure()


def onnx_classifier(model, graph, threads: int = 2) -> Callable[[list[str]], object]:
    """``run(texts)``: raw texts to the probabilities of ``model``'s exported ``graph`` in ONNX Runtime on
    ``threads`` threads, tokenized and padded by the model's tokenizer (what a deployment pays per call)."""
    import onnxruntime as ort

    from textrnn.data.batching import pad_batch

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    tokenizer, pad_id = model.require_tokenizer(), model.config.pad_id

    def run(texts: list[str]):
        ids, lengths = pad_batch(tokenizer.encode_batch(texts), pad_id)
        return session.run(None, {"input_ids": ids.numpy(), "lengths": lengths.numpy()})[0]

    return run

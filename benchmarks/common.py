"""Helpers shared by the benchmarks: interleaved timing and peak memory.

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

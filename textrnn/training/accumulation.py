"""Gradient accumulation (``train.accumulate_steps``): k batches, one optimizer step, the gradients of their union.

::

    batches b1..bk (n_i rows each)  ->  for each: loss_i -> backward(loss_i * n_i / sum n)  ->  one optimizer step
                                        (under DDP, every backward but the last skips the gradient all-reduce)

A task's loss is a mean over its batch's rows, so weighting each by its share of the rows gives the
gradient of one batch of all of them, up to float error (and up to ``train.class_weights``, whose mean
weighs rows unequally). A language model's batches carry their state from one to the next, as
consecutive steps do. Checkpoints and stops fall between optimizer steps, never inside one, so a resumed
run starts at a group's first batch and is exact.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any, Callable, Iterable, Iterator, Optional

import torch


def groups(batches: Iterable[dict], size: int) -> Iterator[list[dict]]:
    """Consecutive groups of ``size`` batches; the last of an epoch may be smaller."""
    it = iter(batches)
    while group := list(itertools.islice(it, size)):
        yield group


def accumulate(wrapped: Any, step_loss: Callable, batches: list[dict], autocast: Any,
               scale: Optional[float] = None) -> tuple[torch.Tensor, int]:
    """Forward (under ``autocast()``, the mixed-precision context) and backward each batch, weighted by its rows;
    returns (the combined loss, detached; the tokens). ``scale`` multiplies each loss (the reliability tests'
    injected faults). What one batch hands the next (a language model's state) the task keeps."""
    rows = [int(batch["input_ids"].shape[0]) for batch in batches]
    total, tokens = sum(rows), 0
    combined = torch.zeros(())
    for i, (batch, n) in enumerate(zip(batches, rows)):
        inner = i < len(batches) - 1 and hasattr(wrapped, "no_sync")  # DDP: reduce once, after the last
        with wrapped.no_sync() if inner else contextlib.nullcontext():
            with autocast():
                loss, count = step_loss(wrapped, batch)
            if scale is not None:
                loss = loss * scale
            (loss * (n / total)).backward()
        combined = combined.to(loss.device) + loss.detach().float() * (n / total)
        tokens += count
    return combined, tokens

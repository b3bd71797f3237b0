"""Process-level helpers: the device, the model's train/eval mode, stop signals, peak memory (durable
files and folders are :mod:`textrnn.core.durable`)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Callable, Iterator, Protocol, TypeVar

import torch
from torch import nn

from .errors import TrainingError


class Switchable(Protocol):
    """What switches between training and evaluation: an ``nn.Module``, or a Protocol that names its parts."""

    training: bool

    def modules(self) -> Iterator[nn.Module]:
        """It and every module inside it."""
        ...

    def eval(self) -> Any:
        """Evaluation mode."""
        ...

    def train(self, mode: bool = True) -> Any:
        """Training mode when ``mode``, else evaluation."""
        ...


M = TypeVar("M", bound=Switchable)


@contextlib.contextmanager
def eval_mode(model: M) -> Iterator[M]:
    """Put ``model`` in eval mode inside the block and restore its mode after, also on an exception.

    A model with no module training is left alone: a batch-1 ``predict`` is about a millisecond, and switching
    every module's flag there and back cost a sixth of it."""
    if not any(module.training for module in model.modules()):
        yield model
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def select_device(name: str) -> torch.device:
    """``auto`` is CUDA (this rank's LOCAL_RANK), else Apple's MPS, else the CPU."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise TrainingError("--device cuda was asked for but CUDA is not available; use --device cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@contextlib.contextmanager
def catch_stop_signals(on_signal: Callable[[str], None]) -> Iterator[None]:
    """Inside, Ctrl-C and SIGTERM call ``on_signal(name)`` instead of stopping the process.

    The training loop stops after its current step, evaluates and saves. Outside the main
    thread (where Python cannot install handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: on_signal(signal.Signals(signum).name))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MB: Linux's VmHWM (getrusage's ru_maxrss also
    counts a parent's peak inherited through fork), else ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            return next(int(line.split()[1]) / 1024 for line in handle if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

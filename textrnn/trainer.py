"""One training loop for both tasks, with exact resume and nothing pickled.

A run folder (``train.output_dir``) looks like::

    config.yaml                 the resolved experiment config
    metrics.jsonl               one JSON line per evaluation (and train-loss points)
    training_curves.png         train/validation loss and the metric over steps
    checkpoints/step-00001000/  config.json, model.safetensors, tokenizer.json,
                                trainer_state.json, trainer_state.pt
    best -> checkpoints/step-...    (symlinks, replaced atomically)
    last -> checkpoints/step-...

Checkpoint folders are written to a temporary name, fsynced and renamed, and the ``best``
and ``last`` links are switched with an atomic rename, so a kill at any moment leaves a
``last`` that loads. ``trainer_state.pt`` holds only tensors and plain containers and is read
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import yaml

from . import distributed
from .checkpoint import CONFIG_FILE, locate
from .config import ExperimentConfig, build_dataclass, config_to_dict
from .errors import CheckpointError, TrainingError, one_line
from .model import RNNClassifier, RNNLanguageModel
from .tasks import ClassificationTask, LanguageModelTask
from .tokenization import TextTokenizer

TASKS = {"classification": (ClassificationTask, RNNClassifier), "language_model": (LanguageModelTask, RNNLanguageModel)}
STATE_JSON, STATE_TENSORS = "trainer_state.json", "trainer_state.pt"


@dataclass
class Progress:
    """Where training stands; saved in trainer_state.json."""

    step: int = 0
    epoch: int = 0
    batch_index: int = 0  # batches of the current epoch already trained on
    elapsed: float = 0.0  # seconds of training so far, over all resumes
    best_metric: Optional[float] = None
    best_step: Optional[int] = None
    bad_evals: int = 0  # evaluations since the last improvement
    world_size: int = 1
    skipped_batches: int = 0
    ema_updates: int = 0


@dataclass
class RunResult:
    output_dir: Path
    best_checkpoint: Optional[Path]
    metrics: dict = field(default_factory=dict)
    interrupted: bool = False
    stop_reason: str = ""
    step: int = 0


class WeightAverage:
    """An exponential moving average of the parameters (Polyak averaging).

    Evaluation and checkpoints use the average, which is smoother than the last step's
    weights; training continues from the raw weights, which the trainer state keeps for an
    exact resume. The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` so early averages
    are not dominated by the random initialization.
    """

    def __init__(self, model: torch.nn.Module, decay: float, updates: int = 0) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay, self.updates = decay, updates
        self.stash: Optional[list] = None

    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - decay)

    @contextlib.contextmanager
    def applied(self):
        """Inside, the model holds the averaged weights; the raw ones are in ``stash``."""
        with torch.no_grad():
            self.stash = [p.detach().clone() for p in self.params]
            for p, s in zip(self.params, self.shadow):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, raw in zip(self.params, self.stash):
                    p.copy_(raw)
            self.stash = None


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MB: Linux's VmHWM (getrusage's ru_maxrss also
    counts a parent's peak inherited through fork), else ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            return next(int(line.split()[1]) / 1024 for line in handle if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def select_device(name: str) -> torch.device:
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


# ---------------------------------------------------------------------------- resume
def read_resume(path: str) -> tuple[Path, Progress, dict]:
    """(checkpoint folder, progress, experiment config dict) of a run folder or checkpoint."""
    folder = Path(path)
    if (folder / "last" / CONFIG_FILE).is_file():
        folder = folder / "last"
    folder = locate(folder)
    try:
        saved = json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))
        progress = Progress(**saved["progress"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{folder} has no usable {STATE_JSON} ({one_line(exc)}); resume from a training checkpoint") from None
    return folder, progress, saved["experiment"]


def load_tensors(path: Path) -> dict:
    """Trainer tensors, read without unpickling code (weights_only=True refuses anything else)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"refusing to load {path}: not a weights-only tensor file ({one_line(exc)})") from None


# ---------------------------------------------------------------------------- the loop
class Trainer:
    """Owns the model, optimizer, schedule and run folder of one training run."""

    def __init__(self, config: ExperimentConfig, resume: Optional[str] = None, device: Optional[str] = None) -> None:
        self.config = config
        t = config.train
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        self.device = select_device(device or t.device)
        self.dist = distributed.init(self.device)
        self.out = Path(t.output_dir)
        self.progress, tokenizer, labels, folder = Progress(world_size=self.dist.world_size), None, None, None
        if resume:
            folder, self.progress, _ = read_resume(resume)
            tokenizer = TextTokenizer.from_file(folder / "tokenizer.json")
            labels = json.loads((folder / CONFIG_FILE).read_text())["label_names"]
        torch.manual_seed(t.seed)  # identical initial weights on every rank
        task_cls, model_cls = TASKS[config.task]
        self.task = task_cls(config, self.dist, self.device, self.out, tokenizer=tokenizer, label_names=labels)
        self.model = model_cls(self.task.model_config(), self.task.tokenizer)
        if folder is not None:
            self.model = model_cls.from_pretrained(folder)
        self.model.to(self.device).train()
        self.wrapped = self._wrap(self.model)
        self.optimizer = make_optimizer(self.model, t.lr, t.weight_decay, self.device)
        self.total_steps = t.max_steps or t.max_epochs * len(self.task.train_loader)
        clock = (lambda: self.progress.elapsed / (60 * t.max_minutes)) if t.schedule_by_time and t.max_minutes else None
        self.scheduler = make_scheduler(self.optimizer, t.warmup_steps, self.total_steps, t.min_lr_ratio, clock)
        self.carry = None
        torch.manual_seed(t.seed + 1000 * self.dist.rank)  # dropout masks differ across ranks
        self.ema = WeightAverage(self.model, t.ema_decay, self.progress.ema_updates) if t.ema_decay else None
        if folder is not None:
            self._restore(folder)
        self.stop_signal: Optional[str] = None
        self.last_eval: Optional[tuple] = None
        self.bar: Optional[_Bar] = None

    def _wrap(self, model):
        if not self.dist.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    # ------------------------------------------------------------------ state
    def _restore(self, folder: Path) -> None:
        tensors = load_tensors(folder / STATE_TENSORS)
        if self.ema is not None and "raw_params" in tensors:
            # The checkpoint's weights are the average; training resumes from the raw ones.
            with torch.no_grad():
                for p, raw in zip(self.ema.params, tensors["raw_params"]):
                    p.copy_(raw)
        self.optimizer.load_state_dict(tensors["optimizer"])
        self.scheduler.load_state_dict(tensors["scheduler"])
        same_world = self.progress.world_size == self.dist.world_size
        if same_world:
            # clone: torch 2.13's set_rng_state segfaults on a view with a storage offset (rank > 0)
            torch.set_rng_state(tensors["rng"][self.dist.rank].clone())
            if "carry_h" in tensors:
                h = tensors["carry_h"][self.dist.rank].to(self.device)
                self.carry = (h, tensors["carry_c"][self.dist.rank].to(self.device)) if "carry_c" in tensors else h
        else:  # a different world size: continue at the same fraction of the epoch, fresh streams
            old = self.progress.batch_index / max(1, math.ceil(len(self.task.train_loader) * self.dist.world_size / self.progress.world_size))
            self.progress.batch_index = int(old * len(self.task.train_loader))
            self.progress.world_size = self.dist.world_size

    def _state_tensors(self) -> dict:
        tensors = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": self._gather(torch.get_rng_state()),
        }
        if self.ema is not None and self.ema.stash is not None:
            tensors["raw_params"] = [p.cpu() for p in self.ema.stash]
        if self.carry is not None:
            parts = self.carry if isinstance(self.carry, tuple) else (self.carry,)
            for name, part in zip(("carry_h", "carry_c"), parts):
                tensors[name] = self._gather(part.detach())
        return tensors

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Stack one tensor from every rank: (world, ...) on CPU."""
        if not self.dist.enabled:
            return tensor.cpu()[None]
        device = self.device if self.device.type == "cuda" else torch.device("cpu")
        parts = [torch.empty_like(tensor, device=device) for _ in range(self.dist.world_size)]
        torch.distributed.all_gather(parts, tensor.to(device).contiguous())
        return torch.stack([p.cpu() for p in parts])

    def save(self, metrics: dict, is_best: bool) -> Optional[Path]:
        tensors = self._state_tensors()  # every rank joins the gather
        if not self.dist.is_main:
            distributed.barrier(self.dist)
            return None
        folder = self.out / "checkpoints" / f"step-{self.progress.step:08d}"

        def extra(tmp: Path) -> None:
            torch.save(tensors, tmp / STATE_TENSORS)
            state = {"progress": vars(self.progress), "experiment": config_to_dict(self.config), "metrics": metrics}
            (tmp / STATE_JSON).write_text(json.dumps(state, indent=2), encoding="utf-8")

        self.model.save_pretrained(folder, extra=extra)
        point_link(self.out / "last", folder)
        if is_best:
            point_link(self.out / "best", folder)
        prune_checkpoints(self.out, self.config.train.keep_checkpoints)
        distributed.barrier(self.dist)
        return folder

    # ------------------------------------------------------------------ evaluation
    def averaged(self):
        """Evaluate and save with the weight average, when there is one."""
        if self.ema is None:
            return contextlib.nullcontext()
        self.progress.ema_updates = self.ema.updates
        return self.ema.applied()

    def evaluate_and_save(self) -> dict:
        with self.averaged():
            return self._evaluate_and_save()

    def _evaluate_and_save(self) -> dict:
        metrics = self.task.evaluate(self.model)
        value = metrics[self.task.metric]
        p = self.progress
        better = p.best_metric is None or (value > p.best_metric if self.task.greater_is_better else value < p.best_metric)
        if better:
            p.best_metric, p.best_step, p.bad_evals = value, p.step, 0
        else:
            p.bad_evals += 1
        record = {"step": p.step, "epoch": p.epoch, "split": "validation", **metrics, "elapsed_s": round(p.elapsed, 2)}
        if self.bar is not None:  # all ranks train on equal batches: global rate = rank rate * world
            record["train_tokens_per_s"] = round(self.bar.rate() * self.dist.world_size, 1)
        record["peak_rss_mb"] = round(peak_rss_mb(), 1)
        if self.device.type == "cuda":
            record["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        self.log(record)
        self.save(metrics, better)
        self.last_eval = (p.step, metrics)
        return metrics

    def log(self, record: dict) -> None:
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------ training
    def fit(self) -> RunResult:
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(yaml.safe_dump(config_to_dict(self.config), sort_keys=False), encoding="utf-8")
            forget_metrics_after(self.out / "metrics.jsonl", self.progress.step)
        with catch_stop_signals(self), progress_bar(self) as self.bar:
            reason = self._loop(self.bar)
        if self.last_eval is not None and self.last_eval[0] == self.progress.step:
            final = self.last_eval[1]  # already evaluated and saved at this step
        elif reason != "interrupt" or self.config.train.eval_on_interrupt:
            final = self.evaluate_and_save()
        else:
            final = self._save_only()
        checksums = self._rank_checksums() if self.dist.enabled else None  # every rank takes part
        if self.dist.is_main:
            plot_curves(self.out)
            if checksums is not None:
                record_checksums(self.out / "last" / STATE_JSON, checksums)
        self.wrapped = self.model  # release DDP before its process group (see distributed.close)
        distributed.close(self.dist)
        best = self.out / "best" if (self.out / "best").exists() else None
        return RunResult(self.out, best, final, interrupted=reason == "interrupt", stop_reason=reason, step=self.progress.step)

    def _rank_checksums(self) -> list:
        """SHA-256 of this rank's parameters, gathered from every rank (DDP keeps them equal)."""
        import hashlib

        digest = hashlib.sha256()
        for tensor in self.model.state_dict().values():
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        gathered = [None] * self.dist.world_size
        torch.distributed.all_gather_object(gathered, digest.hexdigest())
        return gathered

    def _save_only(self) -> dict:
        with self.averaged():
            self.save({}, False)
        return {}

    def _loop(self, bar) -> str:
        t, p = self.config.train, self.progress
        started, start_elapsed = time.monotonic(), p.elapsed
        while p.epoch < t.max_epochs:
            self.task.new_epoch(p.epoch)
            for batch in self.task.train_loader.iterate(p.batch_index):
                self._train_step(batch, bar)
                p.elapsed = start_elapsed + time.monotonic() - started
                reason = self._stop_reason()
                if reason:
                    return reason
                if t.eval_every and p.step % t.eval_every == 0:
                    self.evaluate_and_save()
                    if t.patience is not None and p.bad_evals >= t.patience:
                        return "early_stopping"
            p.epoch, p.batch_index, self.carry = p.epoch + 1, 0, None
            if not t.eval_every and p.epoch < t.max_epochs:
                self.evaluate_and_save()
                if t.patience is not None and p.bad_evals >= t.patience:
                    return "early_stopping"
        return "max_epochs"

    def _train_step(self, batch: dict, bar) -> None:
        t, p = self.config.train, self.progress
        loss, carry, tokens = self.task.step_loss(self.wrapped, batch, self.carry, self._autocast)
        finite = torch.isfinite(loss.detach()).float().reshape(1)
        if float(distributed.all_sum(finite, self.dist)) < self.dist.world_size:
            if not t.skip_nonfinite:
                raise TrainingError(
                    f"the loss became {loss.item():.4g} at step {p.step + 1}; the last good checkpoint is in "
                    f"{self.out / 'last'}. Lower train.lr, or set train.skip_nonfinite=true to skip such batches"
                )
            p.skipped_batches += 1
            self.optimizer.zero_grad(set_to_none=True)
        else:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip:
                clip_gradients(self.model, t.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update()
        self.carry = carry
        p.step += 1
        p.batch_index += 1
        bar.update(loss.item(), tokens)
        if p.step % 50 == 0:
            self.log({"step": p.step, "split": "train", "train_loss": bar.mean_loss(), "lr": self.scheduler.get_last_lr()[0]})

    def _autocast(self):
        if self.config.train.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _stop_reason(self) -> str:
        """The reason to stop now, agreed by all ranks (rank 0's clock decides the time budget)."""
        t, p = self.config.train, self.progress
        flags = torch.zeros(3, device=self.device if self.device.type == "cuda" else "cpu")
        flags[0] = float(self.stop_signal is not None)
        flags[1] = float(t.max_steps is not None and p.step >= t.max_steps)
        flags[2] = float(t.max_minutes is not None and p.elapsed >= 60 * t.max_minutes and self.dist.is_main)
        distributed.all_sum(flags, self.dist)
        for value, name in zip(flags.tolist(), ("interrupt", "max_steps", "max_minutes")):
            if value:
                return name
        return ""


def record_checksums(path: Path, checksums: list) -> None:
    """Note every rank's parameter checksum in the final checkpoint's trainer_state.json."""
    state = json.loads(path.read_text(encoding="utf-8"))
    state["rank_parameter_sha256"] = checksums
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def forget_metrics_after(path: Path, step: int) -> None:
    """On resume, drop log lines of steps after the checkpoint: they are about to be redone."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, path)


def clip_gradients(model: torch.nn.Module, max_norm: float) -> None:
    """Clip the gradient norm to ``max_norm``, each of ``model.clip_groups()`` on its own.

    A plain model is one group. An ensemble's loss is the mean of its K members' losses, so
    each member's gradient is 1/K of what it would be alone: clipping it to max_norm / K is
    clipping the lone member to max_norm (Adam does not see the common 1/K, up to its
    epsilon). Members train as K lone runs on the same batches would.
    """
    groups = model.clip_groups()
    for params in groups:
        torch.nn.utils.clip_grad_norm_(params, max_norm / len(groups))


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device):
    """AdamW; biases, norms and embeddings get no weight decay."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if param.dim() >= 2 and "embedding" not in name else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, fused=device.type == "cuda")


def make_scheduler(optimizer, warmup: int, total: int, min_ratio: float, clock=None):
    """Linear warmup to the peak, then cosine decay to ``min_ratio`` of it at ``total`` steps.

    With ``clock`` (the used fraction of a wall-clock budget), the decay follows whichever of
    steps and time runs out first, so a time-limited run still ends at the low learning rate.
    """

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if clock is not None:
            progress = max(progress, min(1.0, clock()))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def point_link(link: Path, target: Path) -> None:
    """Point symlink ``link`` at ``target`` atomically (a new link renamed over the old)."""
    tmp = link.parent / f".{link.name}.tmp-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)


def prune_checkpoints(out: Path, keep: int) -> None:
    """Remove old step folders, keeping the newest ``keep`` and whatever best/last point to."""
    import shutil

    folders = sorted((out / "checkpoints").glob("step-*"))
    pinned = {(out / name).resolve() for name in ("best", "last") if (out / name).exists()}
    for folder in folders[: max(0, len(folders) - keep)]:
        if folder.resolve() not in pinned:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def catch_stop_signals(trainer: Trainer):
    """Ctrl-C / SIGTERM set a flag; the loop stops after the current step, evaluates and saves."""
    def handler(signum, frame):
        trainer.stop_signal = signal.Signals(signum).name

    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _Bar:
    """tqdm progress with live loss and throughput (rank 0 only)."""

    def __init__(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm

        enabled = trainer.dist.is_main and trainer.config.train.progress
        self.tqdm = tqdm(total=trainer.total_steps, initial=trainer.progress.step, disable=not enabled,
                         dynamic_ncols=True, mininterval=1.0, file=sys.stderr, unit="step")
        self.losses: list[float] = []
        self.tokens, self.started = 0, time.monotonic()

    def update(self, loss: float, tokens: int) -> None:
        self.losses = (self.losses + [loss])[-100:]
        self.tokens += tokens
        self.tqdm.update(1)
        if self.tqdm.n % 10 == 0:
            self.tqdm.set_postfix(loss=f"{self.mean_loss():.4f}", tok_s=f"{self.rate():,.0f}", refresh=False)

    def rate(self) -> float:
        """Training tokens per second on this rank since the bar started."""
        return self.tokens / max(time.monotonic() - self.started, 1e-9)

    def mean_loss(self) -> float:
        return sum(self.losses) / max(1, len(self.losses))


@contextlib.contextmanager
def progress_bar(trainer: Trainer):
    bar = _Bar(trainer)
    try:
        yield bar
    finally:
        bar.tqdm.close()


def plot_curves(out: Path) -> Optional[Path]:
    """training_curves.png from metrics.jsonl: train/validation loss and the validation metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train = [(r["step"], r["train_loss"]) for r in rows if r.get("split") == "train"]
    valid = [r for r in rows if r.get("split") == "validation"]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        ax_loss.plot(*zip(*train), label="train loss")
    ax_loss.plot([r["step"] for r in valid], [r["loss"] for r in valid], "o-", label="validation loss")
    ax_loss.set_xlabel("step"), ax_loss.set_ylabel("loss (nats/token)"), ax_loss.legend()
    name = "accuracy" if valid and "accuracy" in valid[0] else "perplexity"
    ax_metric.plot([r["step"] for r in valid], [r.get(name) for r in valid], "o-", color="C2")
    ax_metric.set_xlabel("step"), ax_metric.set_ylabel(f"validation {name}")
    fig.tight_layout()
    path = out / "training_curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def resume_config(resume: str, overrides: list) -> ExperimentConfig:
    """The saved experiment config of a run, with command-line overrides applied."""
    from .config import merge, parse_overrides

    _, _, saved = read_resume(resume)
    return build_dataclass(ExperimentConfig, merge(saved, parse_overrides(overrides)), "config").validate()


def train(config: ExperimentConfig, resume: Optional[str] = None, device: Optional[str] = None) -> RunResult:
    """Train a model as ``config`` says (resuming from a run or checkpoint folder if given)."""
    return Trainer(config, resume, device).fit()

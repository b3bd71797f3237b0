"""One training loop for both tasks, with exact resume and nothing pickled.

The loop, on one screen::

    for each epoch, for each batch (skipping those a resumed run already trained on):
        loss = task.step_loss(model, batch)        # forward returns the loss (textrnn.tasks)
        backward, clip, optimizer and schedule step, weight average update
        every eval_every steps: evaluate (with the average), save a checkpoint, maybe stop early
    stop on max_epochs, max_steps, max_minutes, or Ctrl-C / SIGTERM (after evaluating and saving)

What is saved and where is :mod:`textrnn.checkpointer`; optimizer, schedule and weight
average are :mod:`textrnn.optim`; the bar, the metrics log and the curves are
:mod:`textrnn.reporting`; which task and model a config trains is :mod:`textrnn.registry`.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import yaml

from . import distributed
from .checkpointer import RunCheckpointer, TrainingProgress, find_resume_point
from .config import ExperimentConfig, build_dataclass, config_to_dict, merge, parse_overrides
from .errors import TrainingError
from .optim import WeightAverage, clip_gradients, make_optimizer, make_scheduler
from .registry import check_experiment
from .reporting import MetricsLog, plot_curves, progress_bar
from .runtime import catch_stop_signals, peak_rss_mb, select_device

Progress = TrainingProgress  # the name before the checkpointer module


@dataclass
class RunResult:
    output_dir: Path
    best_checkpoint: Optional[Path]
    metrics: dict = field(default_factory=dict)
    interrupted: bool = False
    stop_reason: str = ""
    step: int = 0


class Trainer:
    """Owns the model, optimizer, schedule and run folder of one training run."""

    def __init__(self, config: ExperimentConfig, resume: Optional[str] = None, device: Optional[str] = None) -> None:
        entry = check_experiment(config)
        t = self.train_config = config.train
        self.config = config
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        self.device = select_device(device or t.device)
        self.dist = distributed.init(self.device)
        self.out = Path(t.output_dir)
        point = find_resume_point(resume) if resume else None
        self.progress = point.progress if point else TrainingProgress(world_size=self.dist.world_size)
        torch.manual_seed(t.seed)  # identical initial weights on every rank
        self.task = entry.task_class(config, self.dist, self.device, self.out, checkpoint=point and point.folder)
        model_class = entry.model_class
        self.model = model_class.from_pretrained(point.folder) if point else model_class.build(self.task.model_config(), self.task.tokenizer)
        self.model.to(self.device).train()
        self.wrapped = distributed.wrap(self.model, self.dist, self.device)
        self.optimizer = make_optimizer(self.model, t.lr, t.weight_decay, self.device)
        self.total_steps = t.max_steps or t.max_epochs * len(self.task.train_loader)
        clock = (lambda: self.progress.elapsed / (60 * t.max_minutes)) if t.schedule_by_time and t.max_minutes else None
        self.scheduler = make_scheduler(self.optimizer, t.warmup_steps, self.total_steps, t.min_lr_ratio, clock)
        self.carry = None
        torch.manual_seed(t.seed + 1000 * self.dist.rank)  # dropout masks differ across ranks
        self.ema = WeightAverage(self.model, t.ema_decay, self.progress.ema_updates) if t.ema_decay else None
        if point is not None:
            self.load_training_state(point.training_state())
        self.checkpointer = RunCheckpointer(self.out, t.keep_checkpoints)
        self.metrics_log = MetricsLog(self.out / "metrics.jsonl", enabled=self.dist.is_main)
        self.stop_signal: Optional[str] = None
        self.last_eval: Optional[tuple] = None
        self.bar = None

    # ------------------------------------------------------------------ state dicts
    def training_state(self) -> dict:
        """What besides the model weights an exact resume needs, as tensors (every rank joins)."""
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "rng": self._gather(torch.get_rng_state())}
        if self.ema is not None and self.ema.stash is not None:
            state["raw_params"] = [p.cpu() for p in self.ema.stash]
        if self.carry is not None:
            parts = self.carry if isinstance(self.carry, tuple) else (self.carry,)
            for name, part in zip(("carry_h", "carry_c"), parts):
                state[name] = self._gather(part.detach())
        return state

    def load_training_state(self, state: dict) -> None:
        if self.ema is not None and "raw_params" in state:
            self.ema.restore_raw(state["raw_params"])  # the checkpoint's weights are the average
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        p, rank = self.progress, self.dist.rank
        if p.world_size == self.dist.world_size:
            # clone: torch 2.13's set_rng_state segfaults on a view with a storage offset (rank > 0)
            torch.set_rng_state(state["rng"][rank].clone())
            if "carry_h" in state:
                h = state["carry_h"][rank].to(self.device)
                self.carry = (h, state["carry_c"][rank].to(self.device)) if "carry_c" in state else h
        else:  # a different world size: continue at the same fraction of the epoch, fresh streams
            old_len = math.ceil(len(self.task.train_loader) * self.dist.world_size / p.world_size)
            p.batch_index = int(p.batch_index / max(1, old_len) * len(self.task.train_loader))
            p.world_size = self.dist.world_size

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Stack one tensor from every rank: (world, ...) on CPU."""
        return distributed.gather_stack(tensor, self.dist, self.device)

    # ------------------------------------------------------------------ evaluation and saving
    def averaged(self):
        """Evaluate and save with the weight average, when there is one."""
        if self.ema is None:
            return contextlib.nullcontext()
        self.progress.ema_updates = self.ema.updates
        return self.ema.applied()

    def evaluate_and_save(self) -> dict:
        with self.averaged():
            metrics = self.task.evaluate(self.model)
            p = self.progress
            better = p.observe(metrics[self.task.metric], self.task.greater_is_better)
            record = {"step": p.step, "epoch": p.epoch, "split": "validation", **metrics, "elapsed_s": round(p.elapsed, 2)}
            if self.bar is not None:  # all ranks train on equal batches: global rate = rank rate * world
                record["train_tokens_per_s"] = round(self.bar.rate() * self.dist.world_size, 1)
            record["peak_rss_mb"] = round(peak_rss_mb(), 1)
            if self.device.type == "cuda":
                record["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
            self.metrics_log.write(record)
            self.save(metrics, better)
        self.last_eval = (p.step, metrics)
        return metrics

    def save(self, metrics: dict, is_best: bool) -> None:
        state = self.training_state()  # every rank joins the gathers
        if self.dist.is_main:
            self.checkpointer.save(self.model, state, self.progress, config_to_dict(self.config), metrics, is_best)
        distributed.barrier(self.dist)

    # ------------------------------------------------------------------ training
    def fit(self) -> RunResult:
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(yaml.safe_dump(config_to_dict(self.config), sort_keys=False), encoding="utf-8")
            self.metrics_log.forget_after(self.progress.step)
        enabled = self.dist.is_main and self.train_config.progress
        with catch_stop_signals(self._on_signal), progress_bar(self.total_steps, self.progress.step, enabled) as self.bar:
            reason = self._loop()
        final = self._final_metrics(reason)
        checksums = self._rank_checksums() if self.dist.enabled else None  # every rank takes part
        if self.dist.is_main:
            plot_curves(self.out)
            if checksums is not None:
                self.checkpointer.record_checksums(checksums)
        self.wrapped = self.model  # release DDP before its process group (see distributed.close)
        distributed.close(self.dist)
        return RunResult(self.out, self.checkpointer.best(), final, interrupted=reason == "interrupt",
                         stop_reason=reason, step=self.progress.step)

    def _on_signal(self, name: str) -> None:
        self.stop_signal = name

    def _final_metrics(self, reason: str) -> dict:
        if self.last_eval is not None and self.last_eval[0] == self.progress.step:
            return self.last_eval[1]  # already evaluated and saved at this step
        if reason != "interrupt" or self.train_config.eval_on_interrupt:
            return self.evaluate_and_save()
        with self.averaged():
            self.save({}, False)
        return {}

    def _loop(self) -> str:
        t, p = self.train_config, self.progress
        started, start_elapsed = time.monotonic(), p.elapsed
        while p.epoch < t.max_epochs:
            self.task.new_epoch(p.epoch)
            for batch in self.task.train_loader.iterate(p.batch_index):
                self._train_step(batch)
                p.elapsed = start_elapsed + time.monotonic() - started
                reason = self._stop_reason()
                if reason:
                    return reason
                if t.eval_every and p.step % t.eval_every == 0 and self._evaluate_says_stop():
                    return "early_stopping"
            p.epoch, p.batch_index, self.carry = p.epoch + 1, 0, None
            if not t.eval_every and p.epoch < t.max_epochs and self._evaluate_says_stop():
                return "early_stopping"
        return "max_epochs"

    def _evaluate_says_stop(self) -> bool:
        self.evaluate_and_save()
        return self.train_config.patience is not None and self.progress.bad_evals >= self.train_config.patience

    def _train_step(self, batch: dict) -> None:
        t, p = self.train_config, self.progress
        loss, carry, tokens = self.task.step_loss(self.wrapped, batch, self.carry, self._autocast)
        finite = torch.isfinite(loss.detach()).float().reshape(1)
        self.optimizer.zero_grad(set_to_none=True)
        if float(distributed.all_sum(finite, self.dist)) < self.dist.world_size:
            if not t.skip_nonfinite:
                raise TrainingError(
                    f"the loss became {loss.item():.4g} at step {p.step + 1}; the last good checkpoint is in "
                    f"{self.out / 'last'}. Lower train.lr, or set train.skip_nonfinite=true to skip such batches"
                )
            p.skipped_batches += 1
        else:
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
        self.bar.update(loss.item(), tokens)
        if p.step % 50 == 0:
            self.metrics_log.write({"step": p.step, "split": "train", "train_loss": self.bar.mean_loss(),
                                    "lr": self.scheduler.get_last_lr()[0]})

    def _autocast(self):
        if self.train_config.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _stop_reason(self) -> str:
        """The reason to stop now, agreed by all ranks (rank 0's clock decides the time budget)."""
        t, p = self.train_config, self.progress
        flags = torch.zeros(3, device=self.device if self.device.type == "cuda" else "cpu")
        flags[0] = float(self.stop_signal is not None)
        flags[1] = float(t.max_steps is not None and p.step >= t.max_steps)
        flags[2] = float(t.max_minutes is not None and p.elapsed >= 60 * t.max_minutes and self.dist.is_main)
        distributed.all_sum(flags, self.dist)
        for value, name in zip(flags.tolist(), ("interrupt", "max_steps", "max_minutes")):
            if value:
                return name
        return ""

    def _rank_checksums(self) -> list:
        """SHA-256 of this rank's parameters, gathered from every rank (DDP keeps them equal)."""
        digest = hashlib.sha256()
        for tensor in self.model.state_dict().values():
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        gathered = [None] * self.dist.world_size
        torch.distributed.all_gather_object(gathered, digest.hexdigest())
        return gathered


def resume_config(resume: str, overrides: list) -> ExperimentConfig:
    """The saved experiment config of a run, with command-line overrides applied."""
    saved = find_resume_point(resume).experiment
    return build_dataclass(ExperimentConfig, merge(saved, parse_overrides(overrides)), "config").validate()


def train(config: ExperimentConfig, resume: Optional[str] = None, device: Optional[str] = None) -> RunResult:
    """Train a model as ``config`` says (resuming from a run or checkpoint folder if given)."""
    return Trainer(config, resume, device).fit()


"""One training loop for both tasks, with exact resume and nothing pickled.

The loop, on one screen::

    for each epoch, for each batch (skipping those a resumed run already trained on):
        loss = task.step_loss(model, batch)        # forward returns the loss (textrnn.training.task)
        backward, clip, optimizer and schedule step, weight average update
        every eval_every steps: evaluate (with the average), save a checkpoint, maybe stop early
        every save_every_minutes: save (without evaluating), so a crash loses at most that much
        a loss that is not finite or spikes: roll back to the last checkpoint at a lower lr (or stop)
    stop on max_epochs, max_steps, max_minutes, patience, or Ctrl-C / SIGTERM (after evaluating and saving)

What is saved and where is :mod:`textrnn.training.run_folder`; optimizer, schedule and weight average are
:mod:`textrnn.training.optim`; the bar, metrics log and curves :mod:`textrnn.training.reporting`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, ContextManager, Optional

import torch

from ..core import distributed, faults
from ..core.config import ExperimentConfig
from ..core.config_files import config_to_dict
from ..core.errors import TrainingError
from ..core.runtime import catch_stop_signals, peak_rss_mb, select_device
from ..models.base import TextModel
from ..models.hub import WEIGHTS_FILE
from ..models.pretrained import load_weights
from ..models.registry import build_model
from . import run_folder as runs
from .accumulation import accumulate, groups
from .optim import (
    TrainingPlan,
    WeightAverage,
    after_validation,
    clip_gradients,
    drop_frozen_gradients,
    group_parameters,
    make_scheduler,
    optimizer_for,
)
from .registry import check_experiment
from .reporting import METRICS, MetricsLog, ProgressBar, loss_window, plot_curves, progress_bar, window_losses
from .run_folder import LAST, RunCheckpointer, RunResult, TrainingProgress

LOG = logging.getLogger(__name__)


class _RolledBack(Exception):
    """Raised inside the loop after a rollback: the epoch restarts where the checkpoint was."""


class Trainer:
    """Owns the model, optimizer, schedule and run folder of one training run."""

    def __init__(self, config: ExperimentConfig, resume: Optional[str] = None, device: Optional[str] = None,
                 raw: Any = None) -> None:
        """Each ``_setup_*`` step builds one part from its config slice and, resuming, its saved state (as a
        torchtune recipe's ``setup``); the order is the seeds': weights drawn alike on every rank, dropout not."""
        entry = check_experiment(config)
        self.config, self.train_config = config, config.train
        point = self._setup_run(config, resume, device)
        torch.manual_seed(config.train.seed)  # identical initial weights on every rank
        self._setup_data(entry, config, point, raw)
        self._setup_model(entry, point)
        self._setup_optimization(config.train)
        torch.manual_seed(config.train.seed + 1000 * self.dist.rank)  # dropout masks differ across ranks
        self.ema = self._new_average()
        if point is not None:
            self.load_training_state(point.training_state())
        self.metrics_log = MetricsLog(self.out / METRICS, self.dist.is_main, config.train.report_to,
                                      config_to_dict(config))
        self.stop_signal: Optional[str] = None
        self.last_eval: Optional[tuple] = None
        self.last_save = time.monotonic()
        self.fault = faults.step_hook()
        self.on_evaluate: Optional[Callable[[int, dict], bool]] = None  # (step, metrics) -> stop now (tune's pruner)


    def _setup_run(self, config: ExperimentConfig, resume: Optional[str], device: Optional[str]) -> Any:
        """Threads, device, ranks, the run folder and where to resume from (None: a fresh run)."""
        t = config.train
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        self.device = select_device(device or t.device)
        self.dist = distributed.init(self.device, config.data.prepare_timeout)
        self.out = Path(t.output_dir)
        self.checkpointer = RunCheckpointer(self.out, t.keep_checkpoints)
        point = runs.starting_point(self.out, resume, t.resume == "auto")
        self.progress = point.progress if point else TrainingProgress(world_size=self.dist.world_size)
        self.resumed_at = point.progress.step if point else None
        return point

    def _setup_data(self, entry: Any, config: ExperimentConfig, point: Any, raw: Any) -> None:
        """The task and its data (a resumed run keeps its tokenizer and labels); then the run's config.yaml."""
        self.task = entry.task_class(config, self.dist, self.device, self.out, checkpoint=point and point.folder,
                                     raw=raw)
        if self.dist.is_main:  # once the data is read: a run refused for its data leaves no folder behind
            self.checkpointer.write_run_config(config_to_dict(config))

    def _setup_model(self, entry: Any, point: Any) -> None:
        """The model: the checkpoint's, or built from the task's model config; on the device, wrapped for DDP."""
        self.model: TextModel = (entry.model_class.from_pretrained(point.folder) if point else
                           build_model(self.task.model_config(), self.task.tokenizer, self.task.token_counts))
        self.model.to(self.device).train()
        self.wrapped = distributed.wrap(self.model, self.dist, self.device)

    def _setup_optimization(self, t: Any) -> None:
        """The optimizer, layer groups, the plan of steps and the learning-rate schedule."""
        self.optimizer = optimizer_for(self.model, t, self.device)
        self.layers = group_parameters(self.model, t.unfreeze)
        steps = math.ceil(len(self.task.train_loader) / t.accumulate_steps)  # optimizer steps an epoch
        self.plan = TrainingPlan.resolve(t.max_epochs, t.eval_every, steps, t.max_steps, t.min_steps)
        self.total_steps = self.plan.total_steps
        budget = 60.0 * (t.max_minutes or 0)
        clock = (lambda: self.progress.elapsed / budget) if t.schedule_by_time and budget else None
        self.scheduler = make_scheduler(self.optimizer, t.warmup_steps, self.total_steps, t.min_lr_ratio, clock,
                                        scale=lambda: self.progress.lr_scale)
        self.bar: Optional[ProgressBar] = None
        self.recent_losses: list[float] = []  # a resumed run's window of recent losses, until the bar holds it

    # ------------------------------------------------------------------ state dicts
    def training_state(self) -> dict:
        """What besides the model weights an exact resume needs, as tensors (every rank joins)."""
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "rng": self._gather(torch.get_rng_state())}
        if self.ema is not None and self.ema.stash is not None:
            state["raw_params"] = [p.cpu() for p in self.ema.stash]
        state |= self.task.state_dict()  # a language model's carried state, a stream's position
        # the recent losses: the divergence guard's window and the logged train_loss go on as if never stopped
        state["recent_losses"] = self._gather(loss_window(self.bar.losses if self.bar else self.recent_losses))
        return state

    def load_training_state(self, state: dict) -> None:
        """Restore the optimizer, schedule, random state and carried state of a checkpoint."""
        if self.ema is not None and "raw_params" in state:
            self.ema.restore_raw(state["raw_params"])  # the checkpoint's weights are the average
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        p, rank = self.progress, self.dist.rank
        if p.world_size == self.dist.world_size:
            # clone: torch 2.13's set_rng_state segfaults on a view with a storage offset (rank > 0)
            torch.set_rng_state(state["rng"][rank].clone())
            self.recent_losses = window_losses(state.get("recent_losses"), rank)  # older checkpoints: empty
            if self.bar is not None:
                self.bar.losses = list(self.recent_losses)
            self.task.load_state_dict(state, rank)
        else:  # a different world size: continue at the same fraction of the epoch, fresh streams
            old_len = math.ceil(len(self.task.train_loader) * self.dist.world_size / p.world_size)
            p.batch_index = int(p.batch_index / max(1, old_len) * len(self.task.train_loader))
            p.world_size = self.dist.world_size

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Stack one tensor from every rank: (world, ...) on CPU."""
        return distributed.gather_stack(tensor, self.dist, self.device)

    def averaged(self) -> ContextManager:
        """Evaluate and save with the weight average, when there is one."""
        if self.ema is None:
            return contextlib.nullcontext()
        self.progress.ema_updates = self.ema.updates
        return self.ema.applied()

    def evaluate_and_save(self) -> dict:
        """Evaluate (with the weight average, if any), log, and save a checkpoint; returns the metrics."""
        with self.averaged():
            metrics = self.task.evaluate(self.model)
            p = self.progress
            better = p.observe(metrics[self.task.metric], self.task.greater_is_better)
            events = after_validation(self.train_config, p, better, self.task.greater_is_better)  # saved with it
            self.ema = self._new_average() if "average" in events else self.ema  # ntasgd: no average before
            record = {"step": p.step, "epoch": p.epoch, "split": "validation", **metrics,
                      "elapsed_s": round(p.elapsed, 2)}
            if self.bar is not None:  # all ranks train on equal batches: global rate = rank rate * world
                record["train_tokens_per_s"] = round(self.bar.rate() * self.dist.world_size, 1)
            record["peak_rss_mb"] = round(peak_rss_mb(), 1)
            if self.device.type == "cuda":
                record["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
            self.metrics_log.write(record)
            self.save(metrics, better)
        self.last_eval = (p.step, metrics)
        for event in events:
            self.metrics_log.write({"step": p.step, "split": "event", "event": event, "lr_scale": p.lr_scale})
        return metrics

    def _new_average(self) -> Optional[WeightAverage]:
        """The weight average the settings ask for now: train.ema_decay's, ntasgd's once it averages, or none."""
        t, p = self.train_config, self.progress
        return WeightAverage(self.model, t.ema_decay or None, p.ema_updates) if t.ema_decay or p.averaging else None

    def save(self, metrics: dict, is_best: bool) -> None:
        """Save a checkpoint of the current step (every rank joins; rank 0 writes); never weights that hold NaN/inf,
        which a later rollback would only diverge from again (ranks hold equal weights, so all skip alike)."""
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            self.metrics_log.write({"step": self.progress.step, "split": "event", "event": "not_saved_nonfinite"})
            return
        state = self.training_state()  # every rank joins the gathers
        if self.dist.is_main:
            self.checkpointer.save(self.model, state, self.progress, config_to_dict(self.config), metrics, is_best)
        distributed.barrier(self.dist)
        self.last_save = time.monotonic()

    def save_without_evaluating(self) -> None:
        """A timed save: a checkpoint without an evaluation."""
        with self.averaged():
            self.save({}, False)

    def rollback(self, reason: str) -> None:
        """Back to the last checkpoint (weights, optimizer, schedule, random state) at a lower learning rate."""
        p, t = self.progress, self.train_config
        where = f"the loss {reason} at step {p.step + 1}"
        if not (self.out / LAST).exists():
            raise TrainingError(f"{where}, before any checkpoint to roll back to; lower train.lr")
        if p.rollbacks >= t.max_rollbacks:
            raise TrainingError(f"{where} after {p.rollbacks} rollbacks (train.max_rollbacks); lower train.lr")
        point = runs.finite_resume_point(self.out)  # every rank reads it: a shared filesystem, as --resume needs
        if point is None:
            raise TrainingError(f"{where}, and every checkpoint holds non-finite weights; lower train.lr")
        load_weights(self.model, point.folder / WEIGHTS_FILE, self.device)
        elapsed, rollbacks, scale = p.elapsed, p.rollbacks + 1, p.lr_scale * t.rollback_lr_factor
        self.progress = dataclasses.replace(point.progress, elapsed=elapsed, rollbacks=rollbacks, lr_scale=scale)
        self.ema = self._new_average()  # the checkpoint's weights are the average, its training state the raw ones
        self.task.reset_state()
        self.load_training_state(point.training_state())
        self.metrics_log.forget_after(self.progress.step)
        self.metrics_log.write({"step": self.progress.step, "split": "event", "event": "rollback", "reason": where,
                                "lr_scale": scale, "rollbacks": rollbacks})
        LOG.info(f"note: {where}; rolled back to step {self.progress.step} with the learning rate x{scale:g}")
        raise _RolledBack

    def fit(self) -> RunResult:
        """Train until a stopping rule says so; returns the :class:`RunResult`."""
        self.metrics_log.forget_after(self.progress.step)
        self._announce_plan()
        enabled = self.dist.is_main and self.train_config.progress
        minutes = self.train_config.max_minutes
        bar = progress_bar(self.total_steps, self.progress.step, enabled,
                           budget_s=60 * minutes - self.progress.elapsed if minutes else None)
        with catch_stop_signals(self._on_signal), bar as self.bar:
            self.bar.losses = list(self.recent_losses)
            reason = self._loop()
        final = self._final_metrics(reason)
        checksums = distributed.parameter_checksums(self.model, self.dist) if self.dist.enabled else None  # all join
        if self.dist.is_main:
            plot_curves(self.out)
            self.metrics_log.close()
            if checksums is not None:
                self.checkpointer.record_checksums(checksums)
        self.wrapped = self.model  # release DDP before its process group (see distributed.close)
        distributed.close(self.dist)
        best, t = (self.checkpointer.metrics_of("best") if self.dist.is_main else None), self.train_config
        result = RunResult(self.out, self.checkpointer.best(), best or final, interrupted=reason == "interrupt",
                           stop_reason=reason, step=self.progress.step, last_metrics=final,
                           best_step=self.progress.best_step,  # a schedule that follows the clock plans no steps
                           planned_steps=None if t.schedule_by_time and t.max_minutes else self.total_steps)
        if result.budget_note:
            LOG.info(result.budget_note)
        return result

    def _announce_plan(self) -> None:
        """Where the data is, and whether the data stretched the run (train.min_steps) and its evaluations."""
        t, plan = self.train_config, self.plan
        for note in (self.task.data_note, self.task.eval_note):  # where the data is; what evaluations read
            if note:
                LOG.info(note)
        if self.dist.is_main and (plan.max_epochs, plan.eval_every) != (t.max_epochs, t.eval_every):
            LOG.info(f"note: {len(self.task.train_loader)} steps an epoch: training up to {plan.max_epochs} epochs "
                     f"(train.min_steps={t.min_steps}), evaluating every {plan.eval_every} steps")
            self.metrics_log.write({"step": self.progress.step, "split": "event", "event": "plan",
                                    **dataclasses.asdict(plan)})

    def _on_signal(self, name: str) -> None:
        self.stop_signal = name

    def _final_metrics(self, reason: str) -> dict:
        if self.last_eval is not None and self.last_eval[0] == self.progress.step:
            return self.last_eval[1]  # already evaluated and saved at this step
        if self.resumed_at == self.progress.step:  # nothing trained since the checkpoint resumed from: keep it as is
            return self.checkpointer.metrics_of(LAST) or {}
        if reason != "interrupt" or self.train_config.eval_on_interrupt:
            return self.evaluate_and_save()
        self.save_without_evaluating()
        return {}

    def _loop(self) -> str:
        while True:
            try:
                return self._epochs()
            except _RolledBack:  # the progress is the checkpoint's now: start its epoch again
                continue

    def _epochs(self) -> str:
        p = self.progress
        started, start_elapsed = time.monotonic(), p.elapsed
        if self.train_config.max_steps is not None and p.step >= self.train_config.max_steps:
            return "max_steps"  # a finished run, resumed: no step past its end
        while p.epoch < self.plan.max_epochs:
            self.task.new_epoch(p.epoch)
            for batches in groups(self.task.train_loader.iterate(p.batch_index), self.train_config.accumulate_steps):
                self._train_step(batches)
                p.elapsed = start_elapsed + time.monotonic() - started
                reason, save_due = self._agreed_flags()
                if reason:
                    return reason
                if self.plan.eval_every and p.step % self.plan.eval_every == 0:
                    if self._evaluate_says_stop():
                        return "early_stopping"
                elif save_due:
                    self.save_without_evaluating()
                    self.metrics_log.write({"step": p.step, "split": "event", "event": "timed_save",
                                            "elapsed_s": round(p.elapsed, 2)})
            p.epoch, p.batch_index = p.epoch + 1, 0
            self.task.reset_state()
            if not self.plan.eval_every and p.epoch < self.plan.max_epochs and self._evaluate_says_stop():
                return "early_stopping"
        return "max_epochs"

    def _evaluate_says_stop(self) -> bool:
        metrics, patience = self.evaluate_and_save(), self.train_config.patience
        pruned = self.on_evaluate is not None and self.on_evaluate(self.progress.step, metrics)  # textrnn tune's
        return pruned or (patience is not None and self.progress.bad_evals >= patience)

    def _train_step(self, batches: list[dict]) -> None:
        """One optimizer step on ``batches`` (``train.accumulate_steps`` of them; :mod:`.accumulation`)."""
        t, p = self.train_config, self.progress
        self.optimizer.zero_grad(set_to_none=True)
        scale = self.fault(self.dist.rank) if self.fault is not None else None  # textrnn.core.faults; None otherwise
        loss, tokens = accumulate(self.wrapped, self.task.step_loss, batches, self._autocast, scale)
        nonfinite, spiked = self._divergence(loss)
        if nonfinite and t.skip_nonfinite:
            p.skipped_batches += 1
        elif nonfinite or spiked:
            reason = f"became {loss.item():.4g}" if nonfinite else f"spiked to {loss.item():.4g}"
            if t.on_divergence == "rollback":
                self.rollback(reason)
            raise TrainingError(
                f"the loss {reason} at step {p.step + 1}; the last good checkpoint is in {self.out / 'last'}. "
                "Lower train.lr, set train.on_divergence=rollback, or train.skip_nonfinite=true to skip NaN batches"
            )
        else:
            drop_frozen_gradients(self.layers, t.unfreeze, self.model.config.freeze_embedding, p.epoch)
            if t.grad_clip:
                clip_gradients(self.model, t.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update()
        p.step += 1
        p.batch_index += len(batches)
        assert self.bar is not None  # fit() made it
        self.bar.update(loss.item(), tokens)
        if p.step % 50 == 0:
            self.metrics_log.write({"step": p.step, "split": "train", "train_loss": self.bar.mean_loss(),
                                    "lr": self.scheduler.get_last_lr()[0],
                                    "train_tokens_per_s": round(self.bar.rate(), 1)})

    def _autocast(self):
        if self.train_config.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _divergence(self, loss: torch.Tensor) -> tuple[bool, bool]:
        """(not finite, spiked) on any rank: a spike is above divergence_factor x max(running mean, 0.5)."""
        assert self.bar is not None
        t, recent = self.train_config, self.bar.losses
        value = float(loss)
        running = sum(recent) / len(recent) if len(recent) >= 5 else None
        spike = running is not None and value > t.divergence_factor * max(running, 0.5)
        nonfinite, spiked = self._any_rank(not math.isfinite(value), spike)
        return nonfinite, spiked

    def _agreed_flags(self) -> tuple[str, bool]:
        """The reason to stop now, and whether a timed save is due, agreed by all ranks (rank 0's clock decides)."""
        t, p = self.train_config, self.progress
        since_save = time.monotonic() - self.last_save
        *stops, save_due = self._any_rank(
            self.stop_signal is not None,
            t.max_steps is not None and p.step >= t.max_steps,
            t.max_minutes is not None and p.elapsed >= 60 * t.max_minutes and self.dist.is_main,
            t.save_every_minutes is not None and since_save >= 60 * t.save_every_minutes and self.dist.is_main,
        )
        reason = next((name for stop, name in zip(stops, ("interrupt", "max_steps", "max_minutes")) if stop), "")
        return reason, save_due and not reason

    def _any_rank(self, *conditions: bool) -> list[bool]:
        """Each condition, true if it holds on any rank (one all-reduce; on the GPU under nccl)."""
        where = self.device if self.device.type == "cuda" else "cpu"
        flags = torch.tensor([float(c) for c in conditions], device=where)
        distributed.all_sum(flags, self.dist)
        return [bool(f) for f in flags.tolist()]

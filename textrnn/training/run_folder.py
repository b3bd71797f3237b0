"""Run checkpointing: where a training run saves, what it saves, and how it resumes.

A run folder (``train.output_dir``) looks like::

    config.yaml                 the resolved experiment config
    metrics.jsonl               one JSON line per evaluation (and train-loss points)
    training_curves.png         train/validation loss and the metric over steps
    checkpoints/step-00001000/  config.json, model.safetensors, tokenizer.json   (the model)
                                trainer_state.json, trainer_state.pt             (resume state)
    best -> checkpoints/step-...    symlinks, replaced atomically
    last -> checkpoints/step-...

``trainer_state.json`` holds the :class:`TrainingProgress`, the experiment config and the
checkpoint's metrics; ``trainer_state.pt`` holds the training state dict (optimizer,
scheduler, random state, ...) of tensors and plain containers only, read with
``torch.load(weights_only=True)``: nothing is unpickled. Checkpoint folders are written to a
temporary name, fsynced and renamed, and the links are switched with an atomic rename, so a
kill at any moment leaves a ``last`` that loads. (torchtune's checkpointer classes and
``TrainingProgress`` record, nanoGPT's checkpoint dict.)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import yaml

from ..core.config import ExperimentConfig, build_dataclass
from ..core.config_files import merge, parse_overrides
from ..core.durable import durable_replace, restore_set_aside, sweep_unfinished
from ..core.errors import CheckpointError, one_line
from ..models.base import TextModel
from ..models.hub import CONFIG_FILE, locate
from ..models.migrations import migrate_experiment
from ..models.registry import load_model
from ..models.vetting import STATE_LIMIT, regular_file

LOG = logging.getLogger(__name__)

STATE_JSON, STATE_TENSORS = "trainer_state.json", "trainer_state.pt"
BEST, LAST, RUN_CONFIG = "best", "last", "config.yaml"


@dataclass
class TrainingProgress:
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
    lr_scale: float = 1.0  # lowered at each rollback after a divergence, and on a plateau (train.plateau_factor)
    rollbacks: int = 0
    history: list = field(default_factory=list)  # every validation's metric, in order
    averaging: bool = False  # ntasgd: the weights are being averaged (since validation stalled)

    def observe(self, value: float, greater_is_better: bool) -> bool:
        """Record an evaluation's metric; True when it is the best so far."""
        self.history.append(value)
        better = self.best_metric is None or (
            value > self.best_metric if greater_is_better else value < self.best_metric
        )
        if better:
            self.best_metric, self.best_step, self.bad_evals = value, self.step, 0
        else:
            self.bad_evals += 1
        return better


@dataclass
class ResumePoint:
    """A training checkpoint to continue from: its folder, progress and experiment config."""

    folder: Path
    progress: TrainingProgress
    experiment: dict

    def training_state(self) -> dict:
        """The saved training state dict, read without unpickling code."""
        return load_tensors(self.folder / STATE_TENSORS)


def recover(out: Path) -> list[Path]:
    """Checkpoints a killed re-save left aside, put back (``last`` and ``best`` point at them again); the
    half-written checkpoints of killed saves removed."""
    checkpoints = Path(out) / "checkpoints"
    if not checkpoints.is_dir():
        return []
    sweep_unfinished(checkpoints)
    return restore_set_aside(checkpoints)


def find_resume_point(path: str | os.PathLike) -> ResumePoint:
    """The checkpoint to resume from: a run folder's ``last``, or a checkpoint folder itself."""
    folder = Path(path)
    recover(folder)
    if (folder / LAST / CONFIG_FILE).is_file():
        folder = folder / LAST
    folder = locate(folder)
    try:
        saved = json.loads(regular_file(folder / STATE_JSON, STATE_LIMIT).read_text(encoding="utf-8"))
        progress = TrainingProgress(**saved["progress"])
    except (OSError, ValueError, KeyError, TypeError, CheckpointError) as exc:
        raise CheckpointError(
            f"{folder} has no usable {STATE_JSON} ({one_line(exc)}); resume from a training checkpoint"
        ) from None
    return ResumePoint(folder, progress, migrate_experiment(saved["experiment"]))


def starting_point(out: Path, resume: Optional[str], auto: bool) -> Optional[ResumePoint]:
    """Where a run continues from: ``resume``, or with ``train.resume: auto`` (``auto``) its own ``last``; None
    starts afresh (also for a run folder killed before its first checkpoint, with a note)."""
    recover(out)  # a step a killed re-save left aside counts: `last` points at it again
    if resume is None and auto and (out / LAST).exists():
        resume = str(out)
    if resume is not None and is_empty_run(resume):  # said once: the log speaks on rank 0 only
        LOG.info(f"note: {resume} holds no checkpoint yet; starting the run from the beginning")
        return None
    return find_resume_point(resume) if resume else None


def finite_resume_point(out: Path) -> Optional[ResumePoint]:
    """The newest checkpoint of a run whose weights are all finite (``last`` first, then older steps), or None.

    A rollback after a divergence must not go back to weights that already hold NaN or inf (a timed
    save can land between a bad update and the loss that shows it).
    """
    from safetensors.torch import load_file

    from ..models.hub import WEIGHTS_FILE

    candidates = [out / LAST] + sorted((out / "checkpoints").glob("step-*"), reverse=True)
    for folder in dict.fromkeys(path.resolve() for path in candidates):  # `last` is one of the steps: read once
        if not (folder / WEIGHTS_FILE).is_file():
            continue
        if all(bool(torch.isfinite(t).all()) for t in load_file(str(folder / WEIGHTS_FILE)).values()):
            return find_resume_point(folder)
    return None


def is_empty_run(path: str | os.PathLike) -> bool:
    """A run folder that textrnn created (its config.yaml is there) and that holds no checkpoint yet."""
    folder = Path(path)
    return (folder / RUN_CONFIG).is_file() and not any((folder / name).exists() for name in (LAST, BEST, CONFIG_FILE))


def run_experiment(path: str | os.PathLike) -> dict:
    """The experiment config a run folder was started with (its config.yaml)."""
    return migrate_experiment(yaml.safe_load((Path(path) / RUN_CONFIG).read_text(encoding="utf-8")) or {})


def saved_experiment(folder: Path) -> Optional[dict]:
    """The experiment config recorded beside a checkpoint, if it was saved by training."""
    path = folder / STATE_JSON
    if not path.exists():
        return None
    try:
        saved = json.loads(regular_file(path, STATE_LIMIT).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CheckpointError(f"{path} is corrupt ({one_line(exc)}); delete it to use the folder as a plain "
                              "checkpoint") from None
    experiment = saved.get("experiment", {}) if isinstance(saved, dict) else {}
    return migrate_experiment(experiment if isinstance(experiment, dict) else {})


def load_tensors(path: Path) -> dict:
    """Trainer tensors, read without unpickling code (weights_only=True refuses anything else)."""
    regular_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"refusing to load {path}: not a weights-only tensor file ({one_line(exc)})") from None


class RunCheckpointer:
    """Saves the checkpoints of one run folder, keeps ``best``/``last`` pointing at them, prunes the rest."""

    def __init__(self, out: Path, keep: int) -> None:
        self.out, self.keep = Path(out), keep

    def save(self, model: TextModel, training_state: dict, progress: TrainingProgress, experiment: dict, metrics: dict,
             is_best: bool) -> Path:
        """Write ``checkpoints/step-N`` (model + resume state) atomically, then move the links."""
        folder = self.out / "checkpoints" / f"step-{progress.step:08d}"

        def extra(tmp: Path) -> None:
            torch.save(training_state, tmp / STATE_TENSORS)
            state = {"progress": dataclasses.asdict(progress), "experiment": experiment, "metrics": metrics}
            (tmp / STATE_JSON).write_text(json.dumps(state, indent=2), encoding="utf-8")

        model.save_pretrained(folder, extra=extra, card={"metrics": metrics, "experiment": experiment})
        point_link(self.out / LAST, folder)
        if is_best:
            point_link(self.out / BEST, folder)
        prune_checkpoints(self.out, self.keep)
        return folder

    def best(self) -> Optional[Path]:
        """The run's ``best`` link, or None before the first evaluation."""
        return self.out / BEST if (self.out / BEST).exists() else None

    def metrics_of(self, name: str) -> Optional[dict]:
        """The metrics saved with the ``best`` or ``last`` checkpoint (None: none, or saved without evaluating)."""
        path = self.out / name / STATE_JSON
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8")).get("metrics") or None

    def write_run_config(self, experiment: dict) -> None:
        """config.yaml, first thing in a run: it marks the folder as a textrnn run, checkpoint or not."""
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / f".{RUN_CONFIG}.tmp"
        tmp.write_text(yaml.safe_dump(experiment, sort_keys=False), encoding="utf-8")
        os.replace(tmp, self.out / RUN_CONFIG)

    def record_checksums(self, checksums: list) -> None:
        """Note every rank's parameter checksum in the final checkpoint's trainer_state.json."""
        path = self.out / LAST / STATE_JSON
        state = json.loads(path.read_text(encoding="utf-8"))
        state["rank_parameter_sha256"] = checksums
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        durable_replace(tmp, path)


def point_link(link: Path, target: Path) -> None:
    """Point symlink ``link`` at ``target`` atomically (a new link renamed over the old)."""
    tmp = link.parent / f".{link.name}.tmp-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)


def prune_checkpoints(out: Path, keep: int) -> None:
    """Remove old step folders, keeping the newest ``keep`` and whatever best/last point to."""
    folders = sorted((out / "checkpoints").glob("step-*"))
    pinned = {(out / name).resolve() for name in (BEST, LAST) if (out / name).exists()}
    for folder in folders[: max(0, len(folders) - keep)]:
        if folder.resolve() not in pinned:
            shutil.rmtree(folder, ignore_errors=True)


def resume_config(resume: str, overrides: list) -> ExperimentConfig:
    """The saved experiment config of a run (its config.yaml if no checkpoint yet), with overrides applied."""
    saved = run_experiment(resume) if is_empty_run(resume) else find_resume_point(resume).experiment
    return build_dataclass(ExperimentConfig, merge(saved, parse_overrides(overrides)), "config").validate()


@dataclass
class RunResult:
    """What a training run ended with: its folder, best checkpoint and metrics, and why it stopped."""
    output_dir: Path
    best_checkpoint: Optional[Path]
    metrics: dict = field(default_factory=dict)  # the best checkpoint's (the last evaluation's when there is none)
    interrupted: bool = False
    stop_reason: str = ""
    step: int = 0
    last_metrics: dict = field(default_factory=dict)  # the last checkpoint's
    best_step: Optional[int] = None
    planned_steps: Optional[int] = None  # the steps the run's plan allowed (max_epochs, max_steps)

    @property
    def budget_note(self) -> Optional[str]:
        """A warning when ``train.max_minutes`` ended the run before its planned steps, else None."""
        if self.stop_reason != "max_minutes" or not self.planned_steps or self.step >= self.planned_steps:
            return None
        share = self.step / self.planned_steps
        return (f"warning: train.max_minutes ended the run after {self.step:,} of its {self.planned_steps:,} planned "
                f"steps ({share:.0%}); the model is undertrained: raise train.max_minutes, or plan fewer steps "
                "(train.max_steps)")

    @property
    def model(self) -> Any:
        """The best checkpoint as a model (on the CPU), as ``load_model(output_dir)`` gives it; None if none saved."""
        return load_model(self.best_checkpoint) if self.best_checkpoint is not None else None

"""``textrnn.tune()`` (``textrnn tune``): hyperparameter search on Optuna (the ``tune`` extra).

The search space is YAML of dotted config keys, written next to the config
(``configs/NAME.tune.yaml`` for ``configs/NAME.yaml``, or ``--space FILE``)::

    train.lr: loguniform(1e-4, 1e-2)
    model.hidden_size: choice(128, 256, 512)
    model.output_dropout: uniform(0.0, 0.5)
    data.batch_size: int(16, 64)

Each trial is a normal run folder (``OUTPUT_DIR/trial-0007``) trained by the same loop as
``textrnn train-*``; it reports every evaluation to Optuna, whose median pruner stops a trial that
trails the others at the same step (the run ends as if by early stopping, checkpoints kept). The
study lives in ``OUTPUT_DIR/study.db`` (SQLite), so running the command again continues it up to
``--trials`` finished trials. At the end: ``OUTPUT_DIR/best_config.yaml`` (the config with the best
trial's values) and ``OUTPUT_DIR/study.png`` (each trial's value, and the best so far). The metric
is the task's own (accuracy, macro-F1 for multi-label, loss for a language model). One process:
a study does not run under torchrun.
"""

from __future__ import annotations

import ast
import dataclasses
import logging
import re
from pathlib import Path
from typing import Any, Optional

import yaml

from ..core.config import ExperimentConfig
from ..core.config_files import config_from_dict, config_to_dict, dotted_tree, merge
from ..core.errors import ConfigError
from .registry import get_task

LOG = logging.getLogger(__name__)

DISTRIBUTIONS = ("loguniform", "uniform", "int", "logint", "choice")
STUDY, BEST_CONFIG, PLOT = "study.db", "best_config.yaml", "study.png"


@dataclasses.dataclass
class TuneResult:
    """The study's best trial: its values, its metric, its run folder, and the written best config and plot."""

    best_params: dict
    best_value: float
    best_run: Path
    best_config: Path
    plot: Optional[Path]
    trials: int


def parse_space(space: dict) -> dict[str, tuple[str, list]]:
    """``{key: "loguniform(1e-4, 1e-2)"}`` -> ``{key: ("loguniform", [1e-4, 1e-2])}``, checked; one line per mistake."""
    if not isinstance(space, dict) or not space:
        raise ConfigError("the search space must be a mapping of config keys to distributions, "
                          "e.g. train.lr: loguniform(1e-4, 1e-2)")
    parsed = {}
    for key, text in space.items():
        match = re.fullmatch(r"\s*(\w+)\s*\((.*)\)\s*", str(text))
        if not match or match.group(1) not in DISTRIBUTIONS:
            raise ConfigError(f"search space {key}: {text!r} is not one of {', '.join(DISTRIBUTIONS)} (with arguments)")
        kind = match.group(1)
        try:
            args = list(ast.literal_eval(f"[{match.group(2)}]"))
        except (ValueError, SyntaxError):
            raise ConfigError(f"search space {key}: the arguments of {text!r} must be numbers or quoted text") from None
        numbers = len(args) == 2 and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
        if kind != "choice" and not (numbers and args[0] < args[1]):
            raise ConfigError(f"search space {key}: {kind} takes (low, high) with low < high, got {text!r}")
        if kind == "choice" and not args:
            raise ConfigError(f"search space {key}: choice needs at least one value")
        parsed[str(key)] = (kind, args)
    return parsed


def load_space(path: Path) -> dict[str, tuple[str, list]]:
    """The search space file, parsed."""
    if not path.is_file():
        raise ConfigError(f"no search space at {path}; write one (train.lr: loguniform(1e-4, 1e-2), one key a "
                          "line) or pass --space FILE")
    return parse_space(yaml.safe_load(path.read_text(encoding="utf-8")))


def suggest(trial: Any, space: dict[str, tuple[str, list]]) -> dict[str, Any]:
    """One trial's values for the space."""
    values = {}
    for key, (kind, args) in space.items():
        if kind == "choice":
            values[key] = trial.suggest_categorical(key, args)
        elif kind in ("int", "logint"):
            values[key] = trial.suggest_int(key, int(args[0]), int(args[1]), log=kind == "logint")
        else:
            values[key] = trial.suggest_float(key, float(args[0]), float(args[1]), log=kind == "loguniform")
    return values


def with_values(config: ExperimentConfig, values: dict, output_dir: Path) -> ExperimentConfig:
    """``config`` with a trial's values (dotted keys) and its own run folder, validated."""
    values = {**values, "train.output_dir": str(output_dir)}
    pairs = [(key, value, f"{key}: {value!r}") for key, value in values.items()]
    return config_from_dict(merge(config_to_dict(config), dotted_tree(pairs))).validate()


def tune_config(config: ExperimentConfig, space: dict, trials: int, raw: Any = None,
                device: Optional[str] = None) -> TuneResult:
    """Run (or continue) the study of ``config`` over ``space`` until ``trials`` trials have finished."""
    optuna = _optuna()
    from .trainer import Trainer

    out = Path(config.train.output_dir)
    with_values(config, {key: args[0] for key, (_, args) in space.items()}, out)  # a bad key fails before any trial
    out.mkdir(parents=True, exist_ok=True)
    greater = get_task(config.task).task_class.greater_is_better
    study = optuna.create_study(study_name="textrnn", storage=f"sqlite:///{out / STUDY}", load_if_exists=True,
                                direction="maximize" if greater else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=config.train.seed),  # a study repeats
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))

    def objective(trial: Any) -> float:
        run = out / f"trial-{trial.number:04d}"
        trial.set_user_attr("run", str(run))
        trainer = Trainer(with_values(config, suggest(trial, space), run), None, device, raw=raw)
        metric = trainer.task.metric

        def report(step: int, metrics: dict) -> bool:  # each evaluation: prune a trial behind the others
            trial.report(float(metrics[metric]), step)
            return trial.should_prune()

        trainer.on_evaluate = report
        result = trainer.fit()
        if result.stop_reason == "early_stopping" and trial.should_prune():
            raise optuna.TrialPruned()
        return float(result.metrics[metric])

    done = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    if len(done) < trials:
        LOG.info(f"tune: {len(done)} of {trials} trials done; running {trials - len(done)} (the validation metric "
                 f"{'up' if greater else 'down'}; study {out / STUDY})")
        study.optimize(objective, n_trials=trials - len(done), catch=())
    return _finish(study, config, out)


def _finish(study: Any, config: ExperimentConfig, out: Path) -> TuneResult:
    best = study.best_trial
    chosen = with_values(config, best.params, Path(best.user_attrs.get("run", out / f"trial-{best.number:04d}")))
    written = out / BEST_CONFIG
    written.write_text(yaml.safe_dump(config_to_dict(chosen), sort_keys=False), encoding="utf-8")
    plot = _plot(study, out / PLOT)
    LOG.info(f"tune: best trial {best.number} ({best.value:.4f}) {best.params}; config {written}; plot {plot}")
    return TuneResult(dict(best.params), float(best.value), Path(chosen.train.output_dir), written, plot,
                      len(study.trials))


def _plot(study: Any, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finished = [t for t in study.trials if t.value is not None]
    values = [t.value for t in finished]
    best = [max(values[: i + 1]) if study.direction.name == "MAXIMIZE" else min(values[: i + 1])
            for i in range(len(values))]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([t.number for t in finished], values, label="trial")
    ax.plot([t.number for t in finished], best, color="tab:red", label="best so far")
    ax.set(xlabel="trial", ylabel="validation metric", title="textrnn tune")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("textrnn tune needs optuna: pip install -e '.[tune]' in textrnn's clone") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna

"""``train()``: the one entry point of a training run, from a config and files or from data in memory.

::

    import textrnn
    result = textrnn.train({"data": {"text_column": "review", "label_column": "stars"}}, train_data=frame)
    result.model.predict(["a gripping, funny film"])

The command line calls the same function, so a run started here has the same run folder,
checkpoints, progress bar (``tqdm.auto``: a widget in a notebook), resume and DDP.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ..core.config import DataConfig, ExperimentConfig, TaskName
from ..core.config_files import config_from_dict, load_config
from ..core.errors import ConfigError, DataError
from ..data.memory import IN_MEMORY, as_dataset_dict, datasets_progress
from ..models.base import TextModel
from ..models.classifier import TextClassifier
from .classification_task import ClassificationTask
from .evaluation import classifier_metrics, classifier_split_rows, evaluate_checkpoint, evaluate_lm_split
from .lr_find import LRFindResult, lr_find_config, with_found_lr
from .pretraining import lm_experiment, pretrain_stage
from .registry import TASKS, check_experiment
from .run_folder import RunResult
from .trainer import Trainer
from .tune import TuneResult, load_space, parse_space, tune_config

LOG = logging.getLogger(__name__)

ConfigLike = Union[ExperimentConfig, str, os.PathLike, dict, None]


def train(config: ConfigLike = None, resume: Optional[str] = None, device: Optional[str] = None, *,
          train_data: Any = None, validation_data: Any = None, label_names: Optional[Sequence[str]] = None
          ) -> RunResult:
    """Train a model as ``config`` says, resuming from a run or checkpoint folder if given.

    Args:
        config: an :class:`~textrnn.core.config.ExperimentConfig`, a YAML path, a dict of sections
            (``{"train": {"max_epochs": 3}}``; every key optional), or None for the defaults.
        resume: a run folder or checkpoint to continue from.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (default: ``train.device``).
        train_data: data in memory instead of ``data.dataset``: a ``datasets.Dataset`` or
            ``DatasetDict``, a pandas DataFrame, ``(texts, labels)``, a list of strings (a language
            model's text) or a dict of columns (see :mod:`textrnn.data.memory`). Without a ``task``
            in the config, data with a label column trains a classifier, text alone a language model (it
            says so), and a named label column that is absent is an error.
        validation_data: the validation split, in the same forms; default: cut from ``train_data``.
        label_names: names of integer labels 0..C-1 in ``train_data`` (a pandas frame of ints, say), in id
            order, so that predictions say ``"joy"`` rather than ``"17"``.

    Returns:
        A :class:`~textrnn.training.run_folder.RunResult`: ``metrics`` of the best checkpoint, and
        ``model``, that checkpoint loaded.

    A classifier config with a ``pretrain`` section first trains its language model
    (:mod:`textrnn.training.pretraining`), then the classifier from it, in one run folder.

    Example::

        import pandas as pd
        import textrnn

        frame = pd.DataFrame({"text": ["a fine film", "a dull film"] * 50, "label": ["good", "bad"] * 50})
        result = textrnn.train({"train": {"max_steps": 30, "output_dir": "runs/demo", "progress": False},
                                "model": {"hidden_size": 32}}, train_data=frame)
        result.model.predict(["a fine film"], top_k=1)  # the best checkpoint, loaded
        textrnn.evaluate(result.model, frame)["accuracy"]  # or textrnn.evaluate("runs/demo", frame)
    """
    config, raw = resolve(config, train_data, validation_data, label_names)
    with datasets_progress(config.train.progress):
        config = with_found_lr(config, raw, device, resume)
        if config.pretrain is not None:
            def run(stage: ExperimentConfig, again: Optional[str], where: Optional[str]) -> RunResult:
                return Trainer(stage, again, where, raw=raw).fit()

            config, interrupted = pretrain_stage(config, resume, device, run)
            if interrupted is not None:
                return interrupted
        return Trainer(config, resume, device, raw=raw).fit()


def prepare(config: ConfigLike = None, *, train_data: Any = None, validation_data: Any = None,
            label_names: Optional[Sequence[str]] = None) -> list:
    """Prepare a config's data ahead of training, in the shared cache where training finds it.

    Tokenizer training, label detection and encoding happen here, once per node; a run on the
    same data and settings then starts at once. A classifier config with a ``pretrain`` section
    prepares its language model's data too (first in the list). Returns the prepared data of
    each stage (:class:`~textrnn.data.preparation.PreparedLM` or ``PreparedClassification``),
    each with a one-line ``note`` of where it is and what it holds.
    """
    config, raw = resolve(config, train_data, validation_data, label_names)
    check_experiment(config)
    if config.data.streaming:
        raise ConfigError("data.streaming reads the data while it trains, so there is nothing to prepare; "
                          "set data.streaming=false to prepare it")
    if config.pretrain is None:
        return [TASKS[config.task].task_class.prepare(config, raw=raw)]
    language = lm_experiment(config)
    first = TASKS[language.task].task_class.prepare(language, raw=raw)
    return [first, ClassificationTask.prepare(config, raw=raw, tokenizer=first.tokenizer)]


def resolve(config: ConfigLike, train_data: Any, validation_data: Any,
            label_names: Optional[Sequence[str]] = None) -> tuple[ExperimentConfig, Any]:
    """The experiment config, and the in-memory data as a ``DatasetDict`` (None when the data are files)."""
    named_task = isinstance(config, ExperimentConfig) or (isinstance(config, dict) and "task" in config)
    section = (config or {}).get("data") if isinstance(config, dict) else None
    named_labels = isinstance(section, dict) and bool({"label_column", "label_columns"} & set(section))
    if isinstance(config, (str, os.PathLike)):
        config, named_task = load_config(str(config)), True
    elif not isinstance(config, ExperimentConfig):
        config = config_from_dict(dict(config or {}))
    if train_data is None:
        if validation_data is not None or label_names is not None:
            raise DataError("validation_data and label_names go with train_data (the training split in memory)")
        if config.data.dataset == IN_MEMORY:
            raise DataError("this run trained on data given in Python; pass train_data= (and validation_data=) again")
        return config, None
    d = config.data
    raw = as_dataset_dict(train_data, validation_data, d.text_column, d.label_column, label_names)
    if not named_task:
        config = dataclasses.replace(config, task=infer_task(raw, config, named_labels))
    return dataclasses.replace(config, data=dataclasses.replace(d, dataset=IN_MEMORY)).validate(), raw


def infer_task(raw: Any, config: ExperimentConfig, named_labels: bool = False) -> TaskName:
    """Classification when the training split has the label column(s). A language model only when the data has no
    column but its text and no label column was named; anything else is a one-line error, never a guess."""
    d = config.data
    wanted = list(d.label_columns) if d.label_columns else [d.label_column]
    columns = raw[d.train_split].column_names if d.train_split in raw else []
    if all(name in columns for name in wanted):
        return "classification"
    texts = d.text_column if isinstance(d.text_column, list) else [d.text_column]
    others = [name for name in columns if name not in texts]
    if named_labels or others:
        missing = ", ".join(repr(name) for name in wanted if name not in columns)
        raise DataError(f"label column {missing} not found in train_data (columns: {', '.join(columns)}); set "
                        "data.label_column to the labels' column, or task: language_model to train a generator")
    LOG.warning(f"WARNING: train_data has only text ({', '.join(texts)}) and no label column, so this trains a "
                "LANGUAGE MODEL (a generator). For a classifier, give labels (data.label_column); set task: "
                "language_model to say that is what you want.")
    return "language_model"


def evaluate(model: Union[TextModel, str, os.PathLike], data: Any, split: str = "test", *,
             text_column: Optional[str] = None, label_column: Optional[str] = None,
             label_names: Optional[Sequence[str]] = None, batch_size: Optional[int] = None) -> dict:
    """A model's metrics on labelled data: what ``textrnn evaluate`` prints, as a dict.

    Args:
        model: a loaded model, or a checkpoint or run folder (or Hub id) to load.
        data: data in memory, in :func:`train`'s forms (a DataFrame, a ``datasets.Dataset``, ``(texts,
            labels)``, a dict of columns; a language model's list of strings), or a dataset's path or Hub
            id, whose ``split`` is scored.
        text_column, label_column: the data's columns; default: the model's text fields (else ``text``)
            and ``label``.
        label_names: names of integer labels 0..C-1; default: integer labels are the model's label ids.
        batch_size: default: ``data.eval_batch_size``.

    Returns:
        a classifier's ``accuracy``, ``macro_f1``, ``per_label``, the confusion matrix (multi-label: micro
        and macro F1 at the model's thresholds) and ``labels``; a language model's ``loss`` and
        ``perplexity`` (bits per character for a char model).
    """
    from ..models.registry import load_model

    checkpoint = str(model) if isinstance(model, (str, os.PathLike)) else None
    loaded: Any = load_model(checkpoint) if checkpoint else model  # a classifier or a language model
    if isinstance(data, (str, os.PathLike)):
        return evaluate_checkpoint(loaded, checkpoint, str(data), split, text_column, label_column, batch_size)
    is_classifier = isinstance(loaded, TextClassifier)
    fields = loaded.config.text_fields if is_classifier else None
    text: Any = text_column or ((fields[0] if len(fields) == 1 else list(fields)) if fields else "text")
    label = (label_column or "label") if is_classifier else None
    raw = as_dataset_dict(data, None, text, label, label_names)
    if is_classifier and label_names is None and _integer_labels(raw["train"], str(label)):
        raw = as_dataset_dict(data, None, text, label, loaded.label_names)
    d = DataConfig(dataset=IN_MEMORY, text_column=text, label_column=label or "label")
    batch_size = batch_size or d.eval_batch_size
    if not is_classifier:
        with tempfile.TemporaryDirectory() as tmp:
            return {**evaluate_lm_split(loaded, raw, d, "train", batch_size, Path(tmp)), "split": "data"}
    rows = classifier_split_rows(loaded, raw, d, "train", None, ("text_column=", "label_column="))
    return {"split": "data", **classifier_metrics(loaded, rows, batch_size), "labels": loaded.label_names}


def _integer_labels(ds: Any, column: str) -> bool:
    """Whether ``column`` holds integers (or lists of them) that no ClassLabel names."""
    feature = ds.features.get(column)
    inner = getattr(feature, "feature", feature)
    return "int" in str(getattr(inner, "dtype", "")) and type(inner).__name__ != "ClassLabel"


def lr_find(config: ConfigLike = None, *, train_data: Any = None, validation_data: Any = None,
            label_names: Optional[Sequence[str]] = None, device: Optional[str] = None, start_lr: float = 1e-7,
            end_lr: float = 10.0, steps: int = 200) -> LRFindResult:
    """The learning-rate range test (:mod:`textrnn.training.lr_find`) on the model and data of ``config``,
    given as to :func:`train`: the rates, the smoothed losses, the suggested rate and ``lr_find.png``."""
    config, raw = resolve(config, train_data, validation_data, label_names)
    return lr_find_config(config, raw, device, start_lr, end_lr, steps)


def tune(config: ConfigLike = None, space: Union[dict, str, os.PathLike, None] = None, trials: int = 20, *,
         train_data: Any = None, validation_data: Any = None, label_names: Optional[Sequence[str]] = None,
         device: Optional[str] = None) -> TuneResult:
    """Hyperparameter search on Optuna (:mod:`textrnn.training.tune`): ``trials`` runs of ``config`` (as for
    :func:`train`) with values drawn from ``space`` (a dict of ``key: "loguniform(1e-4, 1e-2)"``, or its YAML
    file; default: ``NAME.tune.yaml`` beside a YAML config), each a run folder under ``train.output_dir``."""
    if space is None:
        if not isinstance(config, (str, os.PathLike)):
            raise ConfigError("give the search space: space={'train.lr': 'loguniform(1e-4, 1e-2)'} or a YAML file")
        space = Path(config).with_suffix(".tune.yaml")
    parsed = parse_space(space) if isinstance(space, dict) else load_space(Path(space))
    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials must be a positive integer, got {trials!r}")
    config, raw = resolve(config, train_data, validation_data, label_names)
    with datasets_progress(config.train.progress):
        return tune_config(config, parsed, trials, raw, device)

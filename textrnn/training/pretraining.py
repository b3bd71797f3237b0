"""ULMFiT in one run: a ``pretrain:`` section trains a language model on the dataset's own text first.

::

    textrnn train-classifier --config configs/sst2_ulmfit.yaml
      stage 1  OUTPUT_DIR/pretrain/   a left-to-right LM on the training split's text column
               (tokenizer as the classifier's, sizes as the classifier's unless pretrain.model says)
      stage 2  OUTPUT_DIR/            the classifier, model.init_from = OUTPUT_DIR/pretrain (textrnn.models.transfer)

``pretrain`` holds overrides of the language model's ``model``, ``train`` and ``data`` sections.
Stage 1 ends with ``pretrain/DONE.json``; ``--resume OUTPUT_DIR`` (or ``train.resume: auto``)
continues stage 1 when it was cut short, and otherwise goes on with stage 2, resuming it from
its own checkpoints when it has any.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Optional

from ..core.config import ExperimentConfig, build_dataclass
from ..core.config_files import config_to_dict
from ..core.durable import durable_replace
from ..core.errors import ConfigError
from .run_folder import LAST, RunCheckpointer

PRETRAIN_DIR = "pretrain"
DONE_FILE = "DONE.json"
SECTIONS = ("model", "train", "data")


def lm_experiment(config: ExperimentConfig) -> ExperimentConfig:
    """The stage-1 language-model experiment a classifier config with ``pretrain`` describes."""
    p, d, m = config.pretrain or {}, config.data, config.model
    unknown = sorted(set(p) - set(SECTIONS))
    if unknown or not all(isinstance(p.get(k, {}), dict) for k in SECTIONS):
        raise ConfigError(
            f"pretrain takes the sections {', '.join(SECTIONS)} (overrides of the language model's); "
            f"got {unknown or list(p)}"
        )
    if not isinstance(d.text_column, str):
        raise ConfigError("pretrain needs one text column (data.text_column), not a list")
    data = {"dataset": d.dataset, "config_name": d.config_name, "text_column": d.text_column,
            "train_split": d.train_split, "validation_split": d.validation_split,
            "validation_fraction": d.validation_fraction, **p.get("data", {})}
    model = {"cell": m.cell, "embedding_dim": m.embedding_dim, "hidden_size": m.hidden_size,
             "num_layers": 1 if m.bidirectional else m.num_layers, **p.get("model", {})}
    inherited = {name: getattr(config.train, name) for name in ("seed", "device", "progress", "num_threads")}
    train = {**inherited, **p.get("train", {}), "output_dir": str(Path(config.train.output_dir) / PRETRAIN_DIR)}
    experiment = {"task": "language_model", "data": data, "tokenizer": dataclasses.asdict(config.tokenizer),
                  "model": model, "train": train}
    return build_dataclass(ExperimentConfig, experiment, "pretrain").validate()


def pretrain_stage(config: ExperimentConfig, resume: Optional[str], device: Optional[str],
                   run: Callable) -> tuple[ExperimentConfig, Any]:
    """Run (or skip, when done) stage 1; returns (the stage-2 config, None), or (config, result) if interrupted.

    ``run(config, resume, device) -> RunResult`` trains one stage (the trainer passes its own).
    """
    out = Path(config.train.output_dir)
    stage = out / PRETRAIN_DIR
    RunCheckpointer(out, config.train.keep_checkpoints).write_run_config(config_to_dict(config))
    if not (stage / DONE_FILE).is_file():
        again = (resume is not None or config.train.resume == "auto") and (stage / LAST).exists()
        result = run(lm_experiment(config), str(stage) if again else None, device)
        if result.interrupted:
            return config, result
        tmp = stage / f".{DONE_FILE}.tmp"
        tmp.write_text(json.dumps({"stop_reason": result.stop_reason, "step": result.step, "metrics": result.metrics}),
                       encoding="utf-8")
        durable_replace(tmp, stage / DONE_FILE)
    model = dataclasses.replace(config.model, init_from=str(stage))
    return dataclasses.replace(config, model=model), None

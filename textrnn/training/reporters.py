"""Where a run's metrics go besides ``metrics.jsonl`` (``train.report_to``): TensorBoard, Weights & Biases, MLflow.

Each reporter is a small class with ``write(record)`` (a metrics.jsonl record) and ``close()``,
built by :func:`open_sink` in the run folder; the packages are extras (``textrnn[tensorboard]``,
``textrnn[wandb]``, ``textrnn[mlflow]``), and a missing one is a one-line error before training
starts. Every reporter sees the same numbers (:func:`scalars`): ``train/loss``, ``train/lr`` and
``train/tokens_per_s`` every 50 steps, and each number of a validation record as
``validation/NAME``. A resumed run goes on writing to the same W&B or MLflow run (its id is kept in
the run folder), and W&B and MLflow also record the run's config as parameters.

* ``wandb``: ``wandb.init(dir=OUTPUT_DIR)``, project ``$WANDB_PROJECT`` (default ``textrnn``);
  ``WANDB_MODE=offline`` keeps everything on disk for ``wandb sync`` later.
* ``mlflow``: the tracking store is ``$MLFLOW_TRACKING_URI``, else ``OUTPUT_DIR/mlflow.db`` (SQLite;
  ``mlflow ui --backend-store-uri sqlite:///OUTPUT_DIR/mlflow.db`` shows it).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Sequence

from ..core.errors import ConfigError

TRAIN = {"train_loss": "train/loss", "lr": "train/lr", "train_tokens_per_s": "train/tokens_per_s"}
MLFLOW_DB = "mlflow.db"
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}  # report_to name -> module


def scalars(record: dict) -> dict[str, float]:
    """A record's numbers under their reporter names (none for other records: events, test splits)."""
    split = record.get("split")
    if split == "train":
        return {tag: record[key] for key, tag in TRAIN.items() if key in record}
    if split == "validation":
        return {f"validation/{key}": value for key, value in record.items()
                if key not in ("step", "epoch", "split") and isinstance(value, (int, float))
                and not isinstance(value, bool)}
    return {}


def require_reporters(report_to: Sequence[str]) -> None:
    """A one-line error, before training starts, for a reporter whose package is missing."""
    for name in report_to:
        try:
            __import__(PACKAGES[name])
        except ImportError:
            raise ConfigError(f"train.report_to: {name} needs the {PACKAGES[name]} package: pip install -e "
                              f"'.[{name}]' in textrnn's clone (or drop it from train.report_to)") from None


def open_sink(name: str, folder: Path, params: dict) -> Any:
    """The reporter ``name`` writing for the run in ``folder``."""
    return SINKS[name](folder, params)


def flat(params: dict, prefix: str = "") -> dict[str, Any]:
    """Nested config sections as ``section.key`` parameters (lists and None as text)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, name + "."))
        else:
            out[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


def kept_id(path: Path) -> str:
    """The id stored at ``path`` (a resumed run's), else a new one stored there."""
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = uuid.uuid4().hex[:16]
    path.write_text(value, encoding="utf-8")
    return value


class TensorBoardSink:
    """Event files in ``OUTPUT_DIR/tensorboard``."""

    def __init__(self, folder: Path, params: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder / "tensorboard"))

    def write(self, record: dict) -> None:
        """A record's scalars as events at its step."""
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, record.get("step", 0))
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


class WandbSink:
    """A W&B run in ``OUTPUT_DIR/wandb``, the same one when the run resumes."""

    def __init__(self, folder: Path, params: dict) -> None:
        import wandb

        run_id = kept_id(folder / "wandb" / "textrnn_run_id")
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "textrnn"), dir=str(folder), id=run_id,
                              resume="allow", config=flat(params), name=folder.name, reinit="create_new")

    def write(self, record: dict) -> None:
        """A record's scalars, logged at its step."""
        values = scalars(record)
        if values:
            self.run.log(values, step=record.get("step", 0))

    def close(self) -> None:
        """Finish the W&B run."""
        self.run.finish()


class MLflowSink:
    """An MLflow run (``$MLFLOW_TRACKING_URI``, else ``OUTPUT_DIR/mlflow.db``), the same one when the run resumes."""

    def __init__(self, folder: Path, params: dict) -> None:
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(folder / MLFLOW_DB).resolve()}"
        self.client = MlflowClient(tracking_uri=uri)
        kept = folder / "mlflow_run_id"
        if kept.is_file():
            self.run_id = kept.read_text(encoding="utf-8").strip()
        else:
            experiment = self.client.get_experiment_by_name("textrnn")
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment("textrnn")
            self.run_id = self.client.create_run(experiment_id, run_name=folder.name).info.run_id
            kept.write_text(self.run_id, encoding="utf-8")
            for name, value in flat(params).items():
                self.client.log_param(self.run_id, name, str(value)[:6000])

    def write(self, record: dict) -> None:
        """A record's scalars as metrics at its step."""
        step = record.get("step", 0)
        for tag, value in scalars(record).items():
            self.client.log_metric(self.run_id, tag, float(value), step=step)

    def close(self) -> None:
        """Mark the MLflow run finished."""
        self.client.set_terminated(self.run_id)


SINKS = {"tensorboard": TensorBoardSink, "wandb": WandbSink, "mlflow": MLflowSink}  # config.REPORT_TO's names

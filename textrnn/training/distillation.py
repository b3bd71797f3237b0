"""``distill()`` (``textrnn distill``): a textrnn classifier learns a teacher's outputs on a transfer set.

::

    config (a classifier's) + teacher  ->  transfer set (cached)                 ->  Trainer (the classifier task)
                                           train texts, their augmented copies,      loss: DistillLoss on the
                                           data.unlabeled; the teacher's logits      teacher's logits, and
                                           on each; the student's tokenizer          (1 - alpha) the gold labels

The teacher labels the whole transfer set once, in batches, and the result goes into the
prepared-data cache under a key of the teacher's files, the data, the augmentation settings and
the seed: a second run (another student, another seed of the same) labels nothing. The student's
tokenizer is trained on the training texts alone (augmented copies hold swapped words and
``<unk>``), and validation is the data's own labelled validation split, as in any run.

Rows of the transfer set that the data labels keep their gold label (an augmented copy takes its
source's); text from ``data.unlabeled`` takes the teacher's decision, so that ``alpha < 1`` has
a label to mix in everywhere.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..core.config import ExperimentConfig
from ..core.errors import ConfigError, DataError
from ..core.runtime import select_device
from ..data.augment import FrequencyBands, augment
from ..data.batching import TEACHER_COLUMN
from ..data.cache import SCRATCH, PreparedCache, cache_key, cache_root
from ..data.labels import MULTI, LabelSpec, detect_labels
from ..data.loading import load_raw, split_dataset
from ..data.memory import datasets_progress
from ..data.preparation import CLASSIFICATION_FIELDS, data_parts, source_parts, tokenizer_part, unlabeled_parts
from ..data.streams import unlabeled_texts
from ..data.tokenization import train_tokenizer
from ..models.classifier import TextClassifier
from .api import ConfigLike, resolve
from .distill_config import DistillConfig, distill_config
from .lr_find import with_found_lr
from .registry import check_experiment
from .run_folder import RunResult
from .teachers import matched, open_teacher
from .trainer import Trainer

LOG = logging.getLogger(__name__)

TRANSFER_TOKENIZER = "tokenizer.json"


def distill(teacher: Optional[str] = None, config: ConfigLike = None, resume: Optional[str] = None,
            device: Optional[str] = None, *, train_data: Any = None, validation_data: Any = None,
            label_names: Optional[Sequence[str]] = None) -> RunResult:
    """Train the classifier ``config`` describes on ``teacher``'s outputs (see the module docstring).

    Args:
        teacher: a ``transformers`` sequence classifier (a folder or Hub id), or a ``.jsonl``/``.parquet``
            file of outputs (:mod:`textrnn.training.teachers`); default: ``distill.teacher``.
        config, resume, device, train_data, validation_data, label_names: as :func:`textrnn.train`.

    Returns:
        The student's :class:`~textrnn.training.run_folder.RunResult`.
    """
    config, raw = resolve(config, train_data, validation_data, label_names)
    settings = distill_config(config) or DistillConfig()
    teacher = teacher or settings.teacher
    if not teacher:
        raise ConfigError("distill needs a teacher: --teacher FOLDER_OR_HUB_ID_OR_FILE (or distill.teacher)")
    section = {**dataclasses.asdict(settings), "teacher": teacher}
    config = dataclasses.replace(config, distill=section).validate()
    if not issubclass(check_experiment(config).model_class, TextClassifier):
        raise ConfigError(f"distill trains a classifier; this config's task is {config.task}")
    with datasets_progress(config.train.progress):
        folder = transfer_set(config, settings, teacher, raw, device)
        import datasets

        # The splits keep the config's names, so the run folder's config.yaml keys this transfer set again
        # on resume (a None validation split finds "validation" among the standard names).
        d = config.data
        names = {"train": d.train_split, "validation": d.validation_split or "validation"}
        splits = datasets.DatasetDict({names[split]: datasets.load_from_disk(str(folder / split))
                                       for split in ("train", "validation")})
        student = dataclasses.replace(config, tokenizer=dataclasses.replace(
            config.tokenizer, from_file=str(folder / TRANSFER_TOKENIZER)))
        return Trainer(with_found_lr(student, splits, device, resume), resume, device, raw=splits).fit()


def transfer_set(config: ExperimentConfig, settings: DistillConfig, teacher_name: str, raw: Any,
                 device: Optional[str] = None) -> Path:
    """The cache folder of the labelled transfer set (``train/``, ``validation/``, ``tokenizer.json``), built
    and labelled by the teacher when missing."""
    d = config.data
    if isinstance(d.text_column, list) or d.label_columns:
        raise ConfigError("distill reads one text column and one label column: set data.text_column and "
                          "data.label_column to single names")
    # The transfer set (and a validation split cut from the training data) follow distill.seed, not train.seed:
    # students of every seed share one labelled set.
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=settings.seed))
    source, loaded = source_parts(config, raw)
    teacher = open_teacher(teacher_name, settings.teacher_batch_size, settings.teacher_max_length,
                           str(select_device(device or config.train.device)))
    parts = {"data": data_parts(config, source, CLASSIFICATION_FIELDS), "unlabeled": unlabeled_parts(config),
             "augment": dataclasses.asdict(settings.augmentation()), "seed": settings.seed,
             "teacher": teacher.identity, "teacher_max_length": settings.teacher_max_length,
             "tokenizer": tokenizer_part(config, None)}

    def build(tmp: Path) -> dict:
        data = loaded if loaded is not None else load_raw(d.dataset, str(tmp / SCRATCH), d.config_name,
                                                         encoding=d.encoding)
        return build_transfer(config, settings, teacher, data, tmp)

    cache = PreparedCache(cache_root(d.cache_dir), d.prepare_timeout)
    start = time.monotonic()
    folder, meta, built = cache.get(cache_key("transfer", parts), build)
    rows = meta["rows"]
    what = f"labelled in {time.monotonic() - start:.1f} s into" if built else "found, nothing labelled:"
    LOG.info(f"transfer set: {what} {folder} ({rows['train']:,} training texts, {rows['augmented']:,} augmented, "
        f"{rows['unlabeled']:,} unlabeled; teacher {teacher_name})")
    return folder


def build_transfer(config: ExperimentConfig, settings: DistillConfig, teacher: Any, data: Any,
                   tmp: Path) -> dict:
    """Write the transfer set's folder: the texts, their labels, the teacher's logits and the student's tokenizer."""
    d = config.data
    train, valid = split_dataset(data, d.train_split, d.validation_split, d.validation_fraction, config.train.seed)
    spec = detect_labels(train, d.label_column, None)
    if getattr(teacher, "multi_label", None) is None:  # a file of outputs takes the data's kind
        teacher.multi_label = spec.problem_type == MULTI
    if teacher.multi_label != (spec.problem_type == MULTI):
        kinds = ("multi-label (a sigmoid per label)", "single-label (a softmax)")
        teacher_kind, data_kind = (kinds if spec.problem_type != MULTI else kinds[::-1])
        raise DataError(f"the teacher is {teacher_kind} but the data is {data_kind}; give a teacher of the same kind")
    order = matched(teacher.label_names, spec.names, teacher.name)
    texts, labels = list(train[d.text_column]), list(train[d.label_column])
    kept = [i for i, (text, label) in enumerate(zip(texts, labels)) if isinstance(text, str) and label is not None]
    texts, labels = [texts[i] for i in kept], [labels[i] for i in kept]
    counts = {"train": len(texts), "augmented": 0, "unlabeled": 0, "validation": len(valid)}
    tokenizer = train_tokenizer(lambda: iter(texts), config.tokenizer)
    if hasattr(teacher, "texts"):  # a file of outputs labels its own texts, and only those
        LOG.info(f"teacher outputs file: the transfer set is its {len(teacher.texts):,} texts (distill.augment and "
            "data.unlabeled need a model teacher)")
        gold = dict(zip(texts, labels))
        texts, labels = list(teacher.texts), [gold.get(text) for text in teacher.texts]
        counts.update(train=sum(label is not None for label in labels), unlabeled=sum(lb is None for lb in labels))
    else:
        texts, labels = _with_more_text(config, settings, texts, labels, data, tmp, counts)
    logits = teacher.logits(texts, config.train.progress)[:, order]
    labels = [label if label is not None else teacher_label(row, spec, train.features[d.label_column])
              for label, row in zip(labels, logits)]
    _save(train, valid, d.text_column, str(d.label_column), texts, labels, logits, tmp)
    tokenizer.save(tmp / TRANSFER_TOKENIZER)
    return {"kind": "transfer", "rows": counts, "teacher": teacher.name, "labels": list(spec.names)}


def _with_more_text(config: ExperimentConfig, settings: DistillConfig, texts: list, labels: list, data: Any,
                    tmp: Path, counts: dict) -> tuple[list, list]:
    """The training texts, their augmented copies (source's label) and ``data.unlabeled`` (no label yet)."""
    bands = FrequencyBands(texts)
    more = list(augment(texts, settings.augmentation(), config.train.seed, bands))  # distill.seed (transfer_set)
    counts["augmented"] = len(more)
    extra = [text for source in unlabeled_texts(config.data, data, tmp / SCRATCH) for text in source()]
    extra = [text.strip() for text in extra if text.strip()]
    counts["unlabeled"] = len(extra)
    return (texts + [copy for _, copy in more] + extra,
            labels + [labels[i] for i, _ in more] + [None] * len(extra))


def teacher_label(logits: np.ndarray, spec: LabelSpec, feature: Any) -> Any:
    """The teacher's decision on one text, written as the data's label column writes its labels."""
    if spec.problem_type == MULTI:
        names = [name for name, value in zip(spec.names, logits) if value > 0]
        inner = feature.feature
        return [label_value(name, spec.names, inner) for name in names]
    return label_value(spec.names[int(np.argmax(logits))], spec.names, feature)


def label_value(name: str, names: Sequence[str], feature: Any) -> Any:
    """Label ``name`` in the form of a label column: a ClassLabel's id, an int, a bool or the name itself."""
    if hasattr(feature, "names"):
        return list(feature.names).index(name)
    dtype = getattr(feature, "dtype", "string")
    if dtype == "bool":
        return name == "true"
    if dtype.startswith(("int", "uint")):
        return int(name)
    return name


def _save(train: Any, valid: Any, text_column: str, label_column: str, texts: list, labels: list,
          logits: np.ndarray, tmp: Path) -> None:
    """The transfer set (the data's own label feature, so labels read as the data's) and the validation split."""
    import datasets

    features = datasets.Features({text_column: datasets.Value("string"), label_column: train.features[label_column],
                                  TEACHER_COLUMN: datasets.List(datasets.Value("float32"), length=logits.shape[1])})
    columns = {text_column: texts, label_column: labels, TEACHER_COLUMN: logits.astype(np.float32)}
    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(tmp / "train"))
    valid.select_columns([text_column, label_column]).save_to_disk(str(tmp / "validation"))

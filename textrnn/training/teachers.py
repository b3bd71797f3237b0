"""Teachers for distillation: what labels a transfer set with logits (:func:`open_teacher`).

Two kinds, one interface (:class:`Teacher`):

- :class:`TransformersTeacher`: a ``transformers`` sequence-classification model, from a local
  folder or a Hub id, run in batches on the CPU (or the given device). Its ``id2label`` names
  the labels, ``problem_type`` says whether they are independent (sigmoid) or one of C.
  Needs the ``distill`` extra (``pip install 'textrnn[distill]'``).
- :class:`OutputsTeacher`: a ``.jsonl`` or ``.parquet`` file of outputs that any teacher made
  (an LLM labeller included), one row per text: ``{"text": ..., "logits": {"name": value, ...}}``
  or ``"probabilities"`` in place of ``"logits"``. It labels only its own texts.

Labels match the student's by name, never by position; a teacher whose names differ is a
one-line error naming both sets.
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence

import numpy as np

from ..core.errors import ConfigError, DataError, one_line
from ..data.augment import MASK
from ..data.cache import local_identity

OUTPUT_KEYS = ("logits", "probabilities")
FILE_SUFFIXES = (".jsonl", ".json", ".parquet")


class Teacher(Protocol):
    """What labels a transfer set: its label names, whether they are independent, an identity for the cache."""

    label_names: list[str]
    identity: Any  # what the teacher's outputs depend on (its files), part of the transfer set's cache key

    def logits(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        """(N, C) float32 logits of ``texts``, columns in ``label_names`` order."""
        ...


def open_teacher(name: str, batch_size: int = 64, max_length: int = 128, device: str = "cpu") -> Any:
    """The teacher ``name`` names: an outputs file by its suffix, else a transformers folder or Hub id."""
    if not name:
        raise ConfigError("distill needs a teacher: --teacher FOLDER_OR_HUB_ID_OR_FILE (or distill.teacher)")
    if name.endswith(FILE_SUFFIXES):
        return OutputsTeacher(Path(os.path.expanduser(name)))
    return TransformersTeacher(name, batch_size, max_length, device)


def matched(teacher_names: Sequence[str], student_names: Sequence[str], what: str) -> list[int]:
    """For each student label, the teacher's column of the same name; a one-line error unless the sets agree."""
    teacher, student = [str(n) for n in teacher_names], [str(n) for n in student_names]
    if sorted(teacher) != sorted(student):
        raise DataError(f"the teacher's labels ({', '.join(teacher)}) are not the data's ({', '.join(student)}); "
                        f"labels match by name: rename them in {what}, or give a teacher trained on these labels")
    return [teacher.index(name) for name in student]


# ---------------------------------------------------------------------------- transformers models
class TransformersTeacher:
    """A ``transformers`` sequence classifier (``AutoModelForSequenceClassification``) as a teacher."""

    def __init__(self, name: str, batch_size: int = 64, max_length: int = 128, device: str = "cpu") -> None:
        try:
            from transformers import AutoConfig
        except ImportError:
            raise ConfigError("a transformers teacher needs the distill extra: "
                              "pip install 'textrnn[distill]'") from None
        self.folder = model_folder(name)
        try:
            config = AutoConfig.from_pretrained(self.folder)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"teacher {name!r} has no transformers config ({one_line(exc)}); give a folder saved "
                              "with save_pretrained") from None
        self.label_names = [str(config.id2label[i]) for i in range(config.num_labels)]
        self.multi_label = config.problem_type == "multi_label_classification"
        self.batch_size, self.max_length, self.device = batch_size, max_length, device
        self.name, self.identity = name, {"transformers": local_identity(str(self.folder))}
        self._loaded: Optional[tuple] = None  # (tokenizer, model, mask token): loaded when there is work

    def loaded(self) -> tuple:
        """The tokenizer, the model (eval mode, on the device) and the mask token, loaded once."""
        if self._loaded is None:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(self.folder)
                model = AutoModelForSequenceClassification.from_pretrained(self.folder).to(self.device).eval()
            except (OSError, ValueError, KeyError) as exc:
                raise ConfigError(f"teacher {self.name!r} does not load as a transformers sequence classifier "
                                  f"({one_line(exc)}); give a folder saved with save_pretrained") from None
            self._loaded = (tokenizer, model, tokenizer.mask_token or tokenizer.unk_token or MASK)
        return self._loaded

    def logits(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        """(N, C) logits, ``batch_size`` texts a forward, longest first within each 100 batches (less padding)."""
        import torch
        from tqdm.auto import tqdm

        tokenizer, model, mask = self.loaded()
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), len(self.label_names)), dtype=np.float32)
        bar = tqdm(total=len(texts), desc="teacher", unit="text", disable=not progress, dynamic_ncols=True)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                rows = order[start:start + self.batch_size]
                batch = [texts[i].replace(MASK, mask) for i in rows]  # the teacher's own mask token
                enc = tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                                     return_tensors="pt").to(self.device)
                out[rows] = model(**enc).logits.float().cpu().numpy()
                bar.update(len(rows))
        bar.close()
        return out


def model_folder(name: str) -> Path:
    """A local folder as it is; else ``name`` as a Hub id, downloaded (or found) in the Hugging Face cache."""
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        return path
    if path.exists() or name.startswith((".", "/", "~")):
        raise ConfigError(f"teacher {name!r} is not a folder; give a transformers model folder, a Hub id, or a "
                          f"file of outputs ({', '.join(FILE_SUFFIXES)})")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=name))
    except Exception as exc:  # offline, unknown id, no access: each library error its own way
        raise ConfigError(f"teacher {name!r} is not a local folder and the Hub did not give it ({one_line(exc)}); "
                          "download it where the Hub is reachable and pass the folder") from None


# ---------------------------------------------------------------------------- files of outputs
class OutputsTeacher:
    """A file of outputs from any teacher: each row a ``text`` and its ``logits`` or ``probabilities`` by name.

    The file is read when first needed (a cached transfer set never needs it). Probabilities become logits by
    the data's kind (``multi_label``: a sigmoid per label, else a softmax), which the transfer set sets.
    """

    def __init__(self, path: Path, multi_label: Optional[bool] = None) -> None:
        if not path.is_file():
            raise ConfigError(f"teacher outputs file {path} does not exist")
        self.path, self.multi_label = path, multi_label
        self.name, self.identity = str(path), {"outputs": local_identity(str(path))}

    @functools.cached_property
    def _table(self) -> tuple[str, list[str], list[str], np.ndarray]:
        """(key, label names, texts, values): the file read and checked once."""
        rows = read_rows(self.path)
        if not rows:
            raise DataError(f"{self.path} holds no rows; each row is a text and its logits or probabilities by label")
        key = output_key(rows[0], self.path, 1)
        names = [str(name) for name in rows[0][key]]
        texts, values = [], np.zeros((len(rows), len(names)), dtype=np.float32)
        for number, row in enumerate(rows, 1):
            texts.append(self._text(row, number))
            values[number - 1] = self._row(row, number, key, names)
        return key, names, texts, values

    @property
    def label_names(self) -> list[str]:
        """The labels of the file's first row, in its order."""
        return self._table[1]

    @property
    def texts(self) -> list[str]:
        """The texts the file has outputs for."""
        return self._table[2]

    def _text(self, row: dict, number: int) -> str:
        text = row.get("text")
        if not isinstance(text, str):
            raise DataError(f"{self.path} row {number}: 'text' must be a string, got {text!r}")
        return text

    def _row(self, row: dict, number: int, key: str, names: list[str]) -> list:
        values = row.get(key)
        if not isinstance(values, dict) or sorted(map(str, values)) != sorted(names):
            raise DataError(f"{self.path} row {number}: {key!r} must map the labels of row 1 "
                            f"({', '.join(names)}) to numbers, got {values!r}")
        numbers = [values[name] for name in names]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
            raise DataError(f"{self.path} row {number}: {key} must be finite numbers, got {numbers}")
        return numbers

    def logits(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        """The file's logits of ``texts``, which must be its own texts."""
        key, _, own, values = self._table
        where = {text: i for i, text in enumerate(own)}
        missing = [text for text in texts if text not in where]
        if missing:
            raise DataError(f"{self.path} has no output for {len(missing)} text(s), e.g. {missing[0][:80]!r}")
        chosen = values[[where[text] for text in texts]]
        return probability_logits(chosen, bool(self.multi_label)) if key == "probabilities" else chosen


def read_rows(path: Path) -> list[dict]:
    """The rows of a ``.jsonl`` (one JSON object a line) or ``.parquet`` file (a struct column a mapping)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path} line {number} is not JSON ({exc.msg}); "
                                    "write one object per line") from None
    return rows


def output_key(row: Any, path: Path, number: int) -> str:
    """Which of ``logits``/``probabilities`` the file gives (exactly one)."""
    keys = [key for key in OUTPUT_KEYS if isinstance(row, dict) and key in row]
    if len(keys) != 1:
        raise DataError(f"{path} row {number} needs 'text' and one of 'logits' or 'probabilities' "
                        f"(a mapping from label name to number); got {row!r:.120}")
    return keys[0]


def probability_logits(probs: np.ndarray, multi_label: bool, eps: float = 1e-6) -> np.ndarray:
    """Probabilities as logits: log p (softmax, up to a constant per row) or log p / (1 - p) (sigmoid)."""
    p = np.clip(probs.astype(np.float64), eps, 1 - eps)
    return (np.log(p / (1 - p)) if multi_label else np.log(p)).astype(np.float32)


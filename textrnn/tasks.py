"""The tasks the training loop serves: data preparation, one training step, evaluation.

This module holds what tasks share and the language-model task; the classification task is
:mod:`textrnn.classification`.

A task turns an :class:`~textrnn.config.ExperimentConfig` into a tokenizer, a model config
(a new one, with what the data decides filled in), a training loader, ``step_loss`` and an
``evaluate(model)`` that returns a dict of metrics, reduced across ranks so that a
distributed evaluation equals a single-process one. ``evaluate_split`` scores a saved model
on any split (the ``textrnn evaluate`` command). :mod:`textrnn.registry` maps task names to
these classes.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
from pathlib import Path
from typing import Callable, ContextManager, Iterable, Iterator, NamedTuple, Optional, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from . import batching as B
from . import data as D
from .checkpoint import TOKENIZER_FILE
from .config import DataConfig, ExperimentConfig, RNNConfig
from .distributed import Dist, all_sum
from .encoder import State
from .errors import DataError, require
from .runtime import eval_mode
from .tokenization import PAD_ID, TextTokenizer


Carry = Optional[State]  # what one step hands the next: a language model's state, None for a classifier
Autocast = Callable[[], ContextManager]  # the trainer's mixed-precision context (a no-op unless train.bf16 on CUDA)


class StepOutput(NamedTuple):
    loss: Tensor  # scalar, what backward runs on
    carry: Carry
    tokens: int  # real (non-pad) tokens in the batch, for the tokens/s figure


class TrainLoader(Protocol):
    def __len__(self) -> int: ...
    def iterate(self, start: int = 0) -> Iterator[dict]: ...


@runtime_checkable
class Task(Protocol):
    """What the trainer asks of a task. A task class is built as ``Task(config, dist, device, workdir,
    checkpoint=None)`` (``checkpoint``: the folder a resumed run continues from, whose tokenizer
    and labels it keeps) and has a static ``check_experiment(config)`` that raises ConfigError
    before any data is read. :mod:`textrnn.registry` maps task names to task classes.
    """

    metric: str  # the validation metric that picks the best checkpoint
    greater_is_better: bool
    tokenizer: TextTokenizer
    train_loader: TrainLoader

    def model_config(self) -> RNNConfig:
        """The experiment's model section with what the data decides filled in (a new config)."""
        ...

    def new_epoch(self, epoch: int) -> None:
        """Called before each epoch (a sampler reshuffles)."""
        ...

    def token_counts(self) -> np.ndarray:
        """How often each id occurs in the training data, (V,) int64."""
        ...

    def step_loss(self, model: nn.Module, batch: dict, carry: Carry, autocast: Autocast) -> StepOutput:
        """The loss of one training batch (the model may be DDP-wrapped)."""
        ...

    def evaluate(self, model: nn.Module) -> dict:
        """Validation metrics, reduced across ranks (a distributed evaluation equals a single-process one)."""
        ...


def to_device(batch: dict, device: torch.device) -> dict:
    """Move a batch to ``device``; lengths stay on the CPU (pack_padded_sequence wants them there)."""
    non_blocking = device.type == "cuda"
    return {k: v if k == "lengths" else v.to(device, non_blocking=non_blocking) for k, v in batch.items()}


def train_tokenizer(texts: Iterable[str], config: ExperimentConfig) -> TextTokenizer:
    """A tokenizer trained on ``texts`` as ``config.tokenizer`` says (``min_freq: auto`` counts them first)."""
    t = config.tokenizer
    min_freq = t.min_freq
    if min_freq == "auto" and t.kind == "char":
        min_freq = 1  # characters are never pruned: no need to count the corpus
    elif min_freq == "auto":
        texts = list(texts)
        words = sum(len(text.split()) for text in texts)
        min_freq = auto_min_freq(words)
        print(f"note: tokenizer.min_freq auto -> {min_freq} ({t.kind} tokenizer, {words:,} training words)",
              file=sys.stderr)
    return TextTokenizer.train(texts, t.kind, lowercase=t.lowercase, min_freq=min_freq, max_size=t.max_size,
                               vocab_size=t.vocab_size)


def auto_min_freq(words: int) -> int:
    """``tokenizer.min_freq: auto``: how often a training word must occur to get its own id.

    Words rarer than this become ``<unk>`` in training, so ``<unk>`` learns from the kind of
    word a test set brings new. That pays on a big corpus, where the rare words are many and
    each is seen too seldom to learn from, and costs on a small one, where the rare words are
    much of what there is. The threshold grows with the square root of the corpus:
    ``round(sqrt(words / 25,000))`` between 1 and 5, which is 5 on SST-2 (634k words, the value
    its ablation chose), 2 to 3 on sets of 5-10k sentences, and 1 under 56k words, for word
    and BPE tokenizers (``words`` counts whitespace-separated words); characters are never
    pruned (``train_tokenizer`` uses 1).
    """
    return int(min(5, max(1, math.floor(math.sqrt(words / 25_000) + 0.5))))


# ---------------------------------------------------------------------------- language model
class LanguageModelTask:
    """Next-token prediction on one token stream, truncated backprop with the state carried."""

    @staticmethod
    def check_experiment(config: ExperimentConfig) -> None:
        """Language-model rules on an experiment config; raises ConfigError before any data is read."""
        for name in ("label_smoothing", "lm_loss_weight"):
            require(getattr(config.train, name) == 0, f"train.{name} applies to classifiers only: set train.{name}=0")
        for name in ("init_from", "init_from_backward"):
            require(getattr(config.model, name) is None, f"model.{name} starts a classifier from a language model: "
                    f"drop it here (train-generator)")
        require(config.pretrain is None, "pretrain: belongs to a classifier config (it trains the language model first)")

    def __init__(self, config: ExperimentConfig, dist: Dist, device: torch.device, workdir: Path,
                 checkpoint: Optional[Path] = None) -> None:
        raw = D.load_raw(config.data.dataset, str(workdir), config.data.config_name)
        train_texts, valid_texts = lm_splits(raw, config.data)
        extra = unlabeled_texts(config.data, raw, workdir)
        if extra:  # training text only: validation stays the dataset's own
            own = train_texts
            train_texts = lambda: itertools.chain(own(), *(texts() for texts in extra))  # noqa: E731
        self.tokenizer = (TextTokenizer.from_file(checkpoint / TOKENIZER_FILE) if checkpoint
                          else train_tokenizer(train_texts(), config))
        def encoded(texts, split: str) -> np.memmap:  # reversed for a right-to-left LM
            path = workdir / "data" / f"{split}.rank{dist.rank}.bin"
            return D.encode_stream(texts, self.tokenizer, path, config.model.reverse)

        self.train_tokens, self.valid_tokens = encoded(train_texts(), "train"), encoded(valid_texts(), "validation")
        self.train_loader = B.LMStreamLoader(self.train_tokens, config.data.batch_size, config.data.seq_len, dist.rank, dist.world_size)
        self.dist, self.device, self.config = dist, device, config
        self.metric, self.greater_is_better = "loss", False

    def model_config(self) -> RNNConfig:
        """The experiment's model section with the data's values filled in (a new config)."""
        return dataclasses.replace(self.config.model_config(), vocab_size=self.tokenizer.vocab_size, pad_id=PAD_ID,
                                   tokenizer_kind=self.tokenizer.kind)

    def new_epoch(self, epoch: int) -> None:
        """Nothing: the streams are read in order."""

    def token_counts(self) -> np.ndarray:
        """How often each id occurs in the training stream (pretrained vectors report their coverage against it)."""
        return np.bincount(np.asarray(self.train_tokens, dtype=np.int64), minlength=len(self.tokenizer))

    def step_loss(self, model: nn.Module, batch: dict, carry: Carry, autocast: Autocast) -> StepOutput:
        """Next-token loss of one (B, T) window, the state carried from the previous one."""
        batch = to_device(batch, self.device)
        # Truncated backprop: the state flows on from the previous window, but its history is
        # cut (detached); otherwise backward would run through every window since the start.
        state = detach_state(carry)
        with autocast():
            _, loss, state = model(batch["input_ids"], state=state, targets=batch["targets"])
        return StepOutput(loss, state, batch["input_ids"].numel())

    def evaluate(self, model: nn.Module) -> dict:
        """Loss per token over the validation stream (and bits per character for a char model)."""
        return evaluate_lm(model, self.valid_tokens, self.config.data.eval_batch_size, self.config.data.seq_len,
                           self.dist, self.device, self.tokenizer.kind == "char")

    @staticmethod
    def evaluate_split(model, raw, data: DataConfig, split: str, batch_size: int, workdir: Path) -> dict:
        """On a named split, all of its text; on 'validation' of a corpus without one, the
        last ``validation_fraction`` of the training text, as training used."""
        if split in raw:
            texts, _ = lm_splits(raw, dataclasses.replace(data, train_split=split, validation_split=split))
        elif split == "validation":
            _, texts = lm_splits(raw, data)
        else:
            D.require_split(raw, split, "--split")
        tokens = D.encode_stream(texts(), model.tokenizer, workdir / "eval.bin", model.config.reverse)
        metrics = evaluate_lm(model, tokens, batch_size, data.seq_len, Dist(), model.device, model.tokenizer.kind == "char")
        return {"split": split, **metrics}


def detach_state(state: Carry) -> Carry:
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def lm_splits(raw, d: DataConfig):
    """Two callables giving the train and validation texts.

    With a validation split in the data, it is used whole. Otherwise the training text is cut
    by character position: the first 1 - validation_fraction for training, the rest for
    validation (nanoGPT's split for tiny shakespeare).
    """
    train = D.require_split(raw, d.train_split, "data.train_split")
    column = D.require_column(train, d.text_column, "text_column")
    sep = lm_separator(raw, d.separator, d.dataset)
    if not validation_is_cut(raw, d):
        valid_name = d.validation_split or next(n for n in D.VALIDATION_NAMES if n in raw)
        valid = D.require_split(raw, valid_name, "data.validation_split")
        return (lambda: D.iter_text(train, column, sep)), (lambda: D.iter_text(valid, column, sep))
    total = D.count_chars(train, column, sep)
    if total < 2:
        raise DataError(f"the {d.train_split!r} split has no text; give a corpus with text in it")
    cut = int(total * (1 - d.validation_fraction))
    return (lambda: D.iter_text(train, column, sep, 0, cut)), (lambda: D.iter_text(train, column, sep, cut))


UNLABELED_KEYS = ("dataset", "config_name", "split", "text_column")


def unlabeled_texts(d: DataConfig, raw, workdir: Path) -> list:
    """Callables giving the text of each ``data.unlabeled`` source, more training text for a language model.

    A source is a path or Hub name (its ``train`` split, the ``text_column`` of the data or
    ``text``), or a dict of ``dataset`` (default: the data's own, so ``{split: unsupervised}``
    or ``{text_column: review_title}`` reads more of it), ``config_name``, ``split`` and ``text_column``.
    ``raw`` is the data's own DatasetDict, already loaded: a source naming neither a dataset nor a
    configuration reads it rather than loading it again.
    """
    sources = []
    for i, entry in enumerate(d.unlabeled or []):
        spec = {"dataset": entry} if isinstance(entry, str) else entry
        if not isinstance(spec, dict) or set(spec) - set(UNLABELED_KEYS):
            raise DataError(f"data.unlabeled[{i}] must be a path/Hub name or a dict of {', '.join(UNLABELED_KEYS)}; "
                            f"got {entry!r}")
        name = spec.get("dataset", d.dataset)
        source = raw if not {"dataset", "config_name"} & set(spec) else D.load_raw(
            name, str(workdir), spec.get("config_name", d.config_name if "dataset" not in spec else None))
        split_name = spec.get("split", "train")
        split = D.require_split(source, split_name, f"data.unlabeled[{i}].split")
        if source is raw and split_name == d.train_split and validation_is_cut(raw, d):
            raise DataError(f"data.unlabeled[{i}] reads the {split_name!r} split, whose last {d.validation_fraction:.0%} "
                            "is the validation text here; name another split or dataset")
        default = d.text_column if d.text_column in split.column_names else "text"
        column = D.require_column(split, spec.get("text_column", default), f"unlabeled[{i}].text_column")
        sep = lm_separator(source, d.separator, name)
        sources.append(lambda split=split, column=column, sep=sep: D.iter_text(split, column, sep))
    return sources


def validation_is_cut(raw, d: DataConfig) -> bool:
    """Whether validation is the tail of the training text (no validation split named or present)."""
    return d.validation_split is None and not any(n in raw for n in D.VALIDATION_NAMES)


def lm_separator(raw, separator: Optional[str], dataset: str) -> str:
    """Between rows: nothing for text files (their rows keep their line breaks), else a newline."""
    if separator is not None:
        return separator
    builder = getattr(next(iter(raw.values())), "builder_name", None) or ""
    return "" if builder == "text" or dataset.startswith(D.BUILTIN_PREFIX) else "\n"


@torch.no_grad()
def evaluate_lm(model, tokens: np.ndarray, num_streams: int, seq_len: int, dist: Dist, device: torch.device,
                per_char: bool) -> dict:
    """Mean loss per token over the whole stream, state carried; the same for any number of ranks."""
    num_streams = max(1, min(num_streams, len(tokens) - 1))  # at least one token per stream
    loader = B.LMStreamLoader(tokens, num_streams, seq_len)
    mine = list(range(dist.rank, num_streams, dist.world_size))
    loader.starts = [loader.starts[i] for i in mine]
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    state = None
    with eval_mode(model):
        for batch in (loader if mine else []):
            batch = to_device(batch, device)
            _, loss, state = model(batch["input_ids"], state=state, targets=batch["targets"])
            sums[0] += loss.double() * batch["targets"].numel()
            sums[1] += batch["targets"].numel()
    all_sum(sums, dist)
    loss = float(sums[0] / sums[1].clamp(min=1))
    metrics = {"loss": loss, "perplexity": math.exp(min(loss, 700)), "tokens": int(sums[1])}
    if per_char:
        metrics["bits_per_char"] = loss / math.log(2)
    return metrics

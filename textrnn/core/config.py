"""Typed configuration: the model config that drives a model, and the experiment config of a run.

One dataclass, :class:`RNNConfig`, drives both models and is what ``config.json`` holds.
Training runs are described by :class:`ExperimentConfig` (sections ``data``, ``tokenizer``,
``model``, ``train``), filled from YAML and from dotted ``key=value`` overrides. Field names
are PyTorch's (``embedding_dim``, ``hidden_size``, ``num_layers``, ``bidirectional``) from
YAML key to constructor argument.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union, get_args

from .errors import require
from .schema import build_dataclass, check_choices

FORMAT_VERSION = 3  # of config.json; textrnn.models.migrations upgrades older folders on load

# The allowed values of the choice keys live here, with the keys; the modules that implement
# them import these lists (and tests check that each implements exactly these).
# Each is the annotation of its keys, checked by one generic check (schema.check_choices), and the tuple of its values.
TaskName = Literal["classification", "language_model"]  # what builds and trains each: MODELS and training TASKS
Cell = Literal["lstm", "gru", "rnn", "mingru", "minlstm"]  # model.cell (rnn is tanh; the min* train in parallel)
Strategy = Literal["auto", "packed", "padded"]  # model.strategy (see textrnn.models.encoder)
Block = Literal["plain", "residual", "residual_mlp"]  # model.block (see textrnn.models.parallel)
Pooling = Literal["last", "mean", "max", "attention"]  # model.pooling (see textrnn.models.modules)
ProblemType = Literal["single_label", "multi_label"]  # model.problem_type (see textrnn.data.labels)
TokenizerKind = Literal["char", "word", "bpe"]  # tokenizer.kind, model.tokenizer_kind (textrnn.data.tokenization)
WordSplit = Literal["punctuation", "whitespace"]  # tokenizer.split
Optimizer = Literal["adamw", "sgd", "ntasgd"]  # train.optimizer (textrnn.training.optim)
OnDivergence = Literal["rollback", "stop"]  # train.on_divergence
TASK_NAMES, CELLS, STRATEGIES, BLOCKS, POOLINGS, PROBLEM_TYPES = (
    get_args(TaskName), get_args(Cell), get_args(Strategy), get_args(Block), get_args(Pooling), get_args(ProblemType))
TOKENIZER_KINDS, WORD_SPLITS, OPTIMIZERS = get_args(TokenizerKind), get_args(WordSplit), get_args(Optimizer)
REPORT_TO = ("tensorboard", "wandb", "mlflow")  # train.report_to (textrnn.training.reporters), a list of these


@dataclass
class RNNConfig:
    """Architecture of a classifier or language model; saved as ``config.json``.

    Only what builds the network and reads its outputs lives here (transformers' rule for a
    model config). Loss options are training settings (``train.label_smoothing``,
    ``train.lm_loss_weight``, ``train.class_weights``), and the values that come from the data
    (``vocab_size``, ``label_names``, ``problem_type``, ``pad_id``, ``tokenizer_kind``,
    ``text_fields``) are filled in by the task, which returns a new config.
    """

    task: TaskName = "classification"  # which registry entry builds it (see textrnn.training.registry)
    vocab_size: int = 0  # the tokenizer's vocabulary size (filled in from the tokenizer)
    embedding_dim: int = 128  # E, the width of each token's embedding
    hidden_size: int = 256  # H, the state size of each layer and direction
    num_layers: int = 1  # L, stacked recurrent layers
    cell: Cell = "lstm"  # lstm | gru | rnn, or mingru | minlstm: gates from the input only, trained in parallel
    bidirectional: bool = False  # classifier: read each text both ways (D = 2)
    dropout: float = 0.0  # between stacked RNN layers
    embedding_dropout: float = 0.0  # on the embeddings (same mask at every step of a sequence)
    word_dropout: float = 0.0  # training: each token becomes <unk> with this probability
    weight_dropout: float = 0.0  # training: DropConnect on the hidden-to-hidden weights (AWD-LSTM)
    output_dropout: float = 0.0  # before the output layer
    strategy: Strategy = "auto"  # auto | packed | padded (see textrnn.models.encoder)
    # mingru/minlstm: plain (stacked as an LSTM's) | residual (pre-norm residual layers) | residual_mlp (each
    # residual layer followed by a residual gated MLP, as in Hawk)
    block: Block = "plain"
    pooling: Pooling = "last"  # classifier: last | mean | max | attention
    num_labels: int = 2  # classifier: C, the number of labels (filled in from the data)
    ensemble_size: int = 1  # classifier: K independently initialized members, probabilities averaged
    aux_lm_head: bool = False  # classifier: a projection for the auxiliary LM loss (set when train.lm_loss_weight > 0)
    label_names: Optional[list] = None  # classifier: the label names in id order (filled in from the data)
    problem_type: ProblemType = "single_label"  # classifier: single_label (softmax) | multi_label (sigmoid per label)
    thresholds: Optional[list] = None  # multi_label: decision threshold per label (None: 0.5), tuned on validation
    text_fields: Optional[list] = None  # classifier: the text columns it reads, joined by field_separator
    field_separator: str = " | "  # classifier: between the text fields of one example
    pretrained_vectors: Optional[str] = None  # word vectors to start the embedding from (see textrnn.models.vectors)
    freeze_embedding: Any = field(default=False, metadata={"or_int": True})  # true, false, or N: frozen for N epochs
    # classifier: a language model run or checkpoint to copy (see textrnn.models.transfer)
    init_from: Optional[str] = None
    init_from_backward: Optional[str] = None  # classifier: a right-to-left language model for the backward direction
    tie_weights: bool = False  # language model: share embedding and output weights (projected when sizes differ)
    # language model: an adaptive softmax's cluster boundaries, e.g. [2000, 10000] (10k+ word vocabularies)
    adaptive_softmax_cutoffs: Optional[list] = None
    adaptive_softmax_div_value: float = 4.0  # each tail cluster's projection is this many times narrower
    init_range: Optional[float] = None  # language model: embedding (and output layer) start uniform in [-r, r]
    reverse: bool = False  # language model: reads text right to left (a backward LM for model.init_from_backward)
    pad_id: int = 0  # the padding id (the tokenizer's <pad>)
    tokenizer_kind: TokenizerKind = "char"  # char | word | bpe, the tokenizer's kind (filled in from the tokenizer)
    format_version: int = FORMAT_VERSION  # the config.json format; older folders are upgraded on load

    def validate(self) -> "RNNConfig":
        """Raise ConfigError with a one-line fix for any value that cannot build a model.

        Task-specific rules (a language model is unidirectional, ...) are the model class's
        ``check_config``.
        """
        for name in ("embedding_dim", "hidden_size", "num_layers", "ensemble_size"):
            require(getattr(self, name) >= 1, f"model.{name} must be a positive integer, got {getattr(self, name)}")
        require(self.init_range is None or self.init_range > 0,
                f"model.init_range must be positive (or null for PyTorch's defaults), got {self.init_range}")
        for name in ("dropout", "embedding_dropout", "word_dropout", "weight_dropout", "output_dropout"):
            value = getattr(self, name)
            require(0.0 <= value < 1.0, f"model.{name} must be in [0, 1), got {value}")
        check_choices(self, "model")
        require(self.cell in ("mingru", "minlstm") or self.block == "plain",
                f"model.block={self.block} shapes the layers of the mingru and minlstm cells; set model.block=plain "
                f"for a {self.cell}")
        require(self.cell not in ("mingru", "minlstm") or not self.weight_dropout,
                f"model.weight_dropout drops hidden-to-hidden weights, which a {self.cell} has none of: set "
                "model.weight_dropout=0 (dropout and embedding_dropout still apply)")
        self._validate_labels()
        require(self.vocab_size >= 0 and (self.vocab_size == 0 or 0 <= self.pad_id < self.vocab_size),
                f"model.pad_id must be an id of the vocabulary (0 to {self.vocab_size - 1}), got {self.pad_id}")
        require(self.text_fields is None or (isinstance(self.text_fields, list) and all(
            isinstance(f, str) for f in self.text_fields)), f"model.text_fields must be a list of column names, "
                f"got {self.text_fields!r}")
        return self

    def _validate_labels(self) -> None:
        require(self.num_labels >= 1, f"model.num_labels must be a positive integer, got {self.num_labels}")
        names = self.label_names
        require(names is None or (isinstance(names, list) and all(isinstance(n, str) for n in names)),
                f"model.label_names must be a list of strings, got {names!r}")
        require(names is None or len(names) == self.num_labels,
                f"label_names has {len(names or [])} names but num_labels is {self.num_labels}; "
                "give one name per label")
        thresholds = self.thresholds
        require(thresholds is None or (isinstance(thresholds, list) and len(thresholds) == self.num_labels),
                f"model thresholds must be a list of one number per label, got {thresholds!r}")
        for t in thresholds or []:
            require(isinstance(t, (int, float)) and 0 < t < 1, f"model thresholds must be in (0, 1), got {t!r}")

    def to_dict(self) -> dict:
        """The config as plain data (what ``config.json`` holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RNNConfig":
        """A config from ``config.json``'s data; unknown keys are one-line errors."""
        return build_dataclass(cls, data, "config")


@dataclass
class DataConfig:
    """The ``data:`` section: where the text comes from, its columns and splits, and batching."""

    dataset: str = "textrnn:python_docs"  # Hub name, local path, or the built-in corpus
    config_name: Optional[str] = None  # the Hub dataset's configuration, e.g. simplified for go_emotions
    text_column: str = field(default="text", metadata={"or_list": True})  # or a list: [title, body]
    field_separator: str = " | "  # between the fields of a list text_column
    encoding: str = "utf-8"  # of local text files (csv, tsv, json, txt), e.g. latin-1; utf-8 drops a leading BOM
    label_column: Optional[str] = "label"  # ClassLabel/int/str/bool, or a list column (multi-label)
    label_columns: Optional[list] = None  # multi-label from several 0/1 columns (instead of label_column)
    train_split: str = "train"  # the split to train on
    validation_split: Optional[str] = None  # None: 'validation' if present, else cut from train
    validation_fraction: float = 0.1  # the share cut from the training split when there is no validation split
    # classification: keep the first max_length tokens of each text, warning how many were cut (null: no cap)
    max_length: Optional[int] = 1024
    batch_size: int = 64  # sequences per training batch (per process under torchrun)
    eval_batch_size: int = 256  # sequences per evaluation batch; a language model's evaluation streams
    bucket_size: int = 100  # batches per length-sorted chunk
    seq_len: int = 128  # language model: truncated-backprop window
    separator: Optional[str] = None  # language model: text between rows (None: auto)
    # language model: more training text; each a path/Hub name or {dataset, split, text_column}
    unlabeled: Optional[list] = None
    # prepared data (tokenizer, encoded splits), shared by runs and ranks; None: $TEXTRNN_CACHE, else
    # $HF_HOME/textrnn, else ~/.cache/textrnn (see textrnn.data.cache)
    cache_dir: Optional[str] = None
    prepare_timeout: float = 7200.0  # seconds a process waits for another one preparing the same data
    streaming: bool = False  # read the data as it streams (nothing prepared; needs train.max_steps)
    shuffle_buffer: int = 10000  # streaming classification: rows shuffled together, then bucketed by length
    validation_rows: int = 2000  # streaming: validation is the first rows of the validation split (or of train)

    def validate(self) -> "DataConfig":
        """One-line errors for values no run can use; returns self."""
        d = self
        for name in ("batch_size", "eval_batch_size", "seq_len", "bucket_size", "shuffle_buffer", "validation_rows"):
            require(getattr(d, name) >= 1, f"data.{name} must be a positive integer, got {getattr(d, name)}")
        fraction = d.validation_fraction
        require(0.0 < fraction < 1.0, f"data.validation_fraction must be in (0, 1), got {fraction}")
        require(d.prepare_timeout > 0, f"data.prepare_timeout must be positive seconds, got {d.prepare_timeout}")
        require(d.max_length is None or d.max_length >= 1, f"data.max_length must be positive, got {d.max_length}")
        return self


@dataclass
class TokenizerConfig:
    """The ``tokenizer:`` section: the kind of tokens and how the vocabulary is chosen."""

    kind: TokenizerKind = "word"  # char | word | bpe
    lowercase: bool = False  # lowercase text before tokenizing
    # word: punctuation (words and punctuation apart) | whitespace (pre-tokenized text, PTB)
    split: WordSplit = "punctuation"
    min_freq: Any = field(default=1, metadata={"or_auto": True})  # or auto: scaled to the training corpus (see tasks)
    max_size: Optional[int] = None  # at most this many vocabulary entries, the most frequent (null: no limit)
    vocab_size: int = 8000  # bpe target
    sample_texts: int = 100000  # streaming: the tokenizer is trained on the first this many training texts
    from_file: Optional[str] = None  # a tokenizer.json (or a model folder) to use instead of training one

    def validate(self) -> "TokenizerConfig":
        """One-line errors for values no tokenizer can use; returns self."""
        require(self.sample_texts >= 1, "tokenizer.sample_texts must be a positive integer")
        require(self.min_freq == "auto" or self.min_freq >= 1,
                f"tokenizer.min_freq must be a positive integer or auto, got {self.min_freq!r}")
        check_choices(self, "tokenizer")
        return self


@dataclass
class TrainConfig:
    """The ``train:`` section: optimization, schedule, evaluation, checkpoints, stopping and devices."""

    output_dir: str = "runs/default"  # the run folder: checkpoints, metrics.jsonl, curves
    seed: int = 0  # seeds weights, data order and dropout; a run is reproducible from it
    max_epochs: int = 10  # passes over the training data at most
    max_steps: Optional[int] = None  # updates at most (null: as many as max_epochs gives)
    min_steps: Optional[int] = None  # at least this many updates: a small dataset gets more epochs than max_epochs
    max_minutes: Optional[float] = None  # wall-clock budget: stop cleanly, evaluate, save
    schedule_by_time: bool = False  # decay the learning rate over max_minutes too (not bit-reproducible)
    # adamw | sgd | ntasgd: SGD, then the average of the weights from when validation stalls
    optimizer: Optimizer = "adamw"
    lr: Union[float, str] = 2e-3  # the peak learning rate, or find: lr-find's suggestion, swept first
    weight_decay: float = 0.01  # AdamW's decoupled decay, SGD's L2 (not on biases, norms and embeddings)
    plateau_factor: Optional[float] = None  # multiply the learning rate by this after a validation with no gain
    nonmono: int = 5  # ntasgd: average once validation is worse than the best before the last this many evaluations
    warmup_steps: int = 100  # updates of linear warmup before the cosine decay
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0  # clip the gradient norm to this (0: no clipping)
    accumulate_steps: int = 1  # batches per update: the gradient of a batch this many times data.batch_size
    label_smoothing: float = 0.0  # classifier: cross-entropy against (1 - s) one-hot + s uniform
    lm_loss_weight: float = 0.0  # classifier: weight of an auxiliary language-model loss on the encoder
    class_weights: Optional[Any] = None  # classifier: "balanced" or one weight per label (multi-label: positives)
    threshold: Optional[float] = None  # multi-label: fixed decision threshold in (0, 1); None tunes it on validation
    threshold_per_label: bool = False  # multi-label: tune one threshold per label instead of one for all
    layer_lr_decay: float = 1.0  # > 1: each layer group below the top trains this many times slower (ULMFiT: 2.6)
    unfreeze: Any = None  # null | gradual | [epoch each layer group starts training, from the top]
    ema_decay: float = 0.0  # > 0: evaluate and save an exponential moving average of the weights
    eval_every: int = 500  # steps; 0 means only at the end of each epoch
    # an evaluation in training reads at most this many validation tokens (a language model: the first; a classifier:
    # rows drawn once, seed 0), an estimate metrics.jsonl sizes; null: the whole split (textrnn evaluate reads it all)
    eval_tokens: Optional[int] = 200_000
    patience: Optional[int] = 5  # evaluations without improvement before stopping (null: never stop early)
    keep_checkpoints: int = 2  # step checkpoints kept besides the best
    save_every_minutes: Optional[float] = 10.0  # also save (without evaluating) this often: a crash loses at most this
    resume: Optional[Literal["auto"]] = None  # auto: continue from output_dir/last when there is one, else start fresh
    on_divergence: OnDivergence = "rollback"  # rollback (to the last checkpoint, lower lr) | stop
    divergence_factor: float = 10.0  # a batch loss above this times max(running mean, 0.5) has diverged
    max_rollbacks: int = 3  # rollbacks after a divergence before the run stops
    rollback_lr_factor: float = 0.5  # the learning rate is multiplied by this at each rollback
    device: str = "auto"  # auto | cpu | cuda | mps | cuda:N
    bf16: bool = False  # bf16 autocast on CUDA
    skip_nonfinite: bool = False  # skip a batch whose loss is NaN/inf instead of stopping
    eval_on_interrupt: bool = True  # evaluate before saving when Ctrl-C or SIGTERM stops the run
    num_threads: Optional[int] = None  # CPU threads for torch (null: torch's default)
    progress: bool = True  # show the progress bar
    report_to: list = field(default_factory=list)  # more places for metrics: tensorboard, wandb, mlflow (extras)

    def validate(self) -> "TrainConfig":
        """One-line errors for values no run can use; returns self."""
        t = self
        require(t.max_epochs >= 1, f"train.max_epochs must be a positive integer, got {t.max_epochs}")
        require(t.lr == "find" or isinstance(t.lr, float) and t.lr > 0, f"train.lr must be > 0 or find, got {t.lr!r}")
        require(t.num_threads is None or t.num_threads >= 1,
                f"train.num_threads must be a positive integer (or null for torch's default), got {t.num_threads}")
        require(t.max_minutes is None or t.max_minutes > 0, f"train.max_minutes must be positive, got {t.max_minutes}")
        require(t.max_steps is None or t.max_steps >= 1, f"train.max_steps must be positive, got {t.max_steps}")
        require(t.accumulate_steps >= 1, f"train.accumulate_steps must be at least 1, got {t.accumulate_steps}")
        require(t.min_steps is None or t.min_steps >= 1,
                f"train.min_steps must be positive (or null), got {t.min_steps}")
        require(t.eval_every >= 0, f"train.eval_every must be >= 0, got {t.eval_every}")
        require(t.eval_tokens is None or t.eval_tokens >= 1,
                f"train.eval_tokens must be a positive integer (or null for the whole split), got {t.eval_tokens}")
        require(0.0 <= t.label_smoothing < 1.0, f"train.label_smoothing must be in [0, 1), got {t.label_smoothing}")
        require(t.lm_loss_weight >= 0, f"train.lm_loss_weight must be >= 0, got {t.lm_loss_weight}")
        require(t.threshold is None or 0 < t.threshold < 1, f"train.threshold must be in (0, 1), got {t.threshold}")
        check_choices(t, "train")
        require(t.divergence_factor > 1, f"train.divergence_factor must be > 1, got {t.divergence_factor}")
        require(0 < t.rollback_lr_factor <= 1,
                f"train.rollback_lr_factor must be in (0, 1], got {t.rollback_lr_factor}")
        require(t.save_every_minutes is None or t.save_every_minutes > 0,
                f"train.save_every_minutes must be positive (or null for never), got {t.save_every_minutes}")
        require(t.patience is None or t.patience >= 1, f"train.patience must be >= 1 or null, got {t.patience}")
        require(t.plateau_factor is None or 0 < t.plateau_factor < 1,
                f"train.plateau_factor must be in (0, 1) or null, got {t.plateau_factor}")
        require(t.nonmono >= 1, f"train.nonmono must be at least 1, got {t.nonmono}")
        require(not (t.optimizer == "ntasgd" and t.ema_decay),
                "train.optimizer=ntasgd averages the weights itself; set train.ema_decay=0 or use sgd/adamw")
        _check_class_weights(t.class_weights)
        require(t.layer_lr_decay > 0, f"train.layer_lr_decay must be positive (1 means off), got {t.layer_lr_decay}")
        ok = t.unfreeze in (None, "gradual") or (
            isinstance(t.unfreeze, list)
            and all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in t.unfreeze)
        )
        require(
            ok,
            f"train.unfreeze must be null, gradual or a list of epochs (one per layer group, from the top); "
            f"got {t.unfreeze!r}",
        )
        require(isinstance(t.report_to, list),
                f"train.report_to must be a list, e.g. [tensorboard]; got {t.report_to!r}")
        bad = [name for name in t.report_to if name not in REPORT_TO]
        require(not bad, f"train.report_to takes {', '.join(REPORT_TO)}; got {bad}")
        return self


@dataclass
class ExperimentConfig:
    """A whole training run: the task and its ``data``, ``tokenizer``, ``model`` and ``train`` sections."""

    task: TaskName = "classification"  # classification | language_model
    data: DataConfig = field(default_factory=DataConfig)  # where the text comes from (DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)  # how text becomes ids (TokenizerConfig)
    model: RNNConfig = field(default_factory=RNNConfig)  # the architecture (RNNConfig)
    train: TrainConfig = field(default_factory=TrainConfig)  # how it is trained (TrainConfig)
    # classifier: train a language model on the data first (see textrnn.training.pretraining)
    pretrain: Optional[dict] = None
    # classifier: learn from a teacher's outputs on a transfer set (textrnn distill; textrnn.training.distill_config)
    distill: Optional[dict] = None

    def validate(self) -> "ExperimentConfig":
        """Each section's checks, then those across sections; the task's own (``registry.check_experiment``) run
        when training starts."""
        check_choices(self, "")
        for section in (self.model, self.data, self.tokenizer, self.train):
            section.validate()
        require(not self.data.streaming or self.train.max_steps is not None,
                "data.streaming needs train.max_steps (a stream has no length to count epochs in); set train.max_steps")
        return self

    def model_config(self) -> RNNConfig:
        """The model section with this experiment's task, as a new config (nothing is changed in place)."""
        return dataclasses.replace(self.model, task=self.task)


def _check_class_weights(weights: Any) -> None:
    if weights is None or weights == "balanced":
        return
    ok = isinstance(weights, list) and weights and all(isinstance(w, (int, float)) and w > 0 for w in weights)
    require(bool(ok),
            f"train.class_weights must be 'balanced' or a list of positive numbers, one per label; got {weights!r}")

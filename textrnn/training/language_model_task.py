"""The language-model task: next-token prediction on one token stream, truncated backprop with the state carried.

::

    stream   t0 t1 t2 ... (train text, then validation text: nanoGPT's 90/10 cut when the data has no split)
    batch    B streams side by side, a (B, seq_len) window each step; the state flows on, its history cut
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..core.config import ExperimentConfig, RNNConfig
from ..core.distributed import Dist, gather_stack
from ..core.errors import require
from ..data.batching import LMStreamLoader
from ..data.preparation import PreparedLM, prepare_language_model
from ..data.streaming import open_lm_stream
from ..data.streams import stream_counts
from ..data.tokenization import PAD_ID
from ..models.base import TextModel
from ..models.language_model import RNNLanguageModel
from .evaluation import eval_budget_note, evaluate_lm, lm_eval_tokens
from .task import Carry, StepOutput, given_tokenizer, load_loader_state, loader_state, to_device

LOG = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- language model
class LanguageModelTask:
    """Next-token prediction on one token stream, truncated backprop with the state carried."""

    metric, greater_is_better = "loss", False

    @staticmethod
    def check_experiment(config: ExperimentConfig) -> None:
        """Language-model rules on an experiment config; raises ConfigError before any data is read."""
        for name in ("label_smoothing", "lm_loss_weight"):
            require(getattr(config.train, name) == 0, f"train.{name} applies to classifiers only: set train.{name}=0")
        for name in ("init_from", "init_from_backward"):
            require(getattr(config.model, name) is None, f"model.{name} starts a classifier from a language model: "
                    f"drop it here (train-generator)")
        require(config.pretrain is None,
                "pretrain: belongs to a classifier config (it trains the language model first)")
        require(not (config.data.streaming and config.model.reverse),
                "model.reverse reads the text last token first, which a stream cannot: set data.streaming=false")

    def __init__(self, config: ExperimentConfig, dist: Dist, device: torch.device, workdir: Path,
                 checkpoint: Optional[Path] = None, raw: Any = None) -> None:
        self.dist, self.device, self.config = dist, device, config
        self.carry: Carry = None  # the state the last training window ended in, which the next one starts from
        self.train_loader: Any
        if config.data.streaming:  # batches as the data arrives; token counts from the tokenizer's sample
            s = open_lm_stream(config, given_tokenizer(config, checkpoint), raw, dist.rank, dist.world_size, workdir)
            self.tokenizer, self.train_loader, self.data_note = s.tokenizer, s.train_loader, s.note
            self.valid_tokens, self.counted = s.valid_tokens, s.sample_ids
            return
        prepared = self.prepare(config, checkpoint, raw)
        self.tokenizer, self.data_note = prepared.tokenizer, prepared.note
        self.train_tokens, self.valid_tokens = prepared.train_tokens, prepared.valid_tokens
        self.counted = self.train_tokens
        self.train_loader = LMStreamLoader(prepared.train_tokens, config.data.batch_size, config.data.seq_len,
                                           dist.rank, dist.world_size)

    @staticmethod
    def prepare(config: ExperimentConfig, checkpoint: Optional[Path] = None, raw: Any = None) -> PreparedLM:
        """The run's tokenizer and token streams, from the prepared-data cache (built there if missing);
        a resumed run keeps its checkpoint's tokenizer."""
        return prepare_language_model(config, given_tokenizer(config, checkpoint), raw)

    def model_config(self) -> RNNConfig:
        """The experiment's model section with the data's values filled in (a new config)."""
        return dataclasses.replace(self.config.model_config(), vocab_size=self.tokenizer.vocab_size, pad_id=PAD_ID,
                                   tokenizer_kind=self.tokenizer.kind)

    def new_epoch(self, epoch: int) -> None:
        """Nothing: the streams are read in order."""

    def token_counts(self) -> np.ndarray:
        """How often each id occurs in the training stream (pretrained vectors report their coverage against it)."""
        return stream_counts(self.counted, len(self.tokenizer))

    def step_loss(self, model: torch.nn.Module, batch: dict) -> StepOutput:
        """Next-token loss of one (B, T) window, the state carried from the previous one."""
        batch = to_device(batch, self.device)
        # Truncated backprop: the state flows on from the previous window, but its history is
        # cut (detached); otherwise backward would run through every window since the start.
        _, loss, self.carry = model(batch["input_ids"], state=detach_state(self.carry), targets=batch["targets"])
        return StepOutput(loss, batch["input_ids"].numel())

    def state_dict(self) -> dict:
        """The carried state, as ``carry_h`` (and an LSTM's ``carry_c``) stacked over the ranks, and a stream's
        position."""
        state = {}
        if self.carry is not None:
            parts = self.carry if isinstance(self.carry, tuple) else (self.carry,)
            for name, part in zip(("carry_h", "carry_c"), parts):
                state[name] = gather_stack(part.detach(), self.dist, self.device)
        return state | loader_state(self.train_loader, self.dist)

    def load_state_dict(self, state: dict, rank: int) -> None:
        """This rank's carried state and stream position."""
        if "carry_h" in state:
            h = state["carry_h"][rank].to(self.device)
            self.carry = (h, state["carry_c"][rank].to(self.device)) if "carry_c" in state else h
        load_loader_state(self.train_loader, state, rank)

    def reset_state(self) -> None:
        """The next window starts from a zero state."""
        self.carry = None

    @property
    def eval_note(self) -> Optional[str]:
        """What part of the validation stream evaluations read, when not all of it."""
        used, total = len(self.eval_tokens) - 1, len(self.valid_tokens) - 1
        return eval_budget_note(used, total, "tokens") if used < total else None

    @property
    def eval_tokens(self) -> np.ndarray:
        """The validation tokens an evaluation reads (``train.eval_tokens``)."""
        return lm_eval_tokens(self.valid_tokens, self.config.train.eval_tokens)

    def evaluate(self, model: TextModel) -> dict:
        """Loss per token over the validation stream, or its first ``train.eval_tokens`` (and bits per character
        for a char model)."""
        assert isinstance(model, RNNLanguageModel)  # the task built it
        return evaluate_lm(model, self.eval_tokens, self.config.data.eval_batch_size, self.config.data.seq_len,
                           self.dist, self.device, self.tokenizer.kind == "char")


def detach_state(state: Carry) -> Carry:
    """The carried state cut from its history (truncated backprop)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return state[0].detach(), state[1].detach()
    return state.detach()

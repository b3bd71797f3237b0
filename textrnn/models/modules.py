"""The pieces models are composed of: dropout variants, pooling, the backbone, an auxiliary LM head.

Each is a small ``nn.Module`` with a contract docstring; the ones whose output feeds another
layer report their width with ``get_output_dim()`` (AllenNLP's convention), so a model is
wired by asking its parts, not by repeating their arithmetic::

    RNNClassifier      = RNNBackbone -> Pooling -> dropout -> Linear head
    RNNLanguageModel   = RNNBackbone -> dropout -> [projection] -> Linear head
    ClassifierEnsemble = K RNNClassifiers, probabilities averaged

This module builds no model from a config (see :mod:`textrnn.models`), so it imports none.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.tokenization import PAD_ID, UNK_ID
from .encoder import RNNEncoder, State, valid_mask
from .parallel import PARALLEL_CELLS, ParallelEncoder


# ---------------------------------------------------------------------------- dropout variants
class EmbeddingDropout(nn.Module):
    """Dropout on embeddings (B, T, E) with one mask per sequence, shared across time steps.

    Dropping the same embedding dimensions at every step (variational dropout, Gal &
    Ghahramani 2016) regularizes an RNN better than a fresh mask per step, which the
    recurrence simply averages away.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:  # x: (B, T, E)
        """Embeddings (B, T, E) with one dropout mask per sequence (training only)."""
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - self.p) / (1 - self.p)  # (B, 1, E)
        return x * mask


class WordDropout(nn.Module):
    """In training, replace each non-pad token id (B, T) by ``<unk>`` with probability ``p``.

    A tokenizer trained on the training split with ``min_freq=1`` sees every training word,
    so ``<unk>`` never occurs in training and its embedding stays random, yet at test time
    every unseen word maps to it (5% of SST-2's validation tokens, in 56% of its sentences).
    Dropping words to ``<unk>`` trains that embedding as "a word I do not know" and makes the
    model lean on context (word dropout, Iyyer et al. 2015). ``tokenizer.min_freq > 1`` does
    the same with the rare words only, which measured better on SST-2 (docs/results.md).
    """

    def __init__(self, p: float, pad_id: int = PAD_ID, unk_id: int = UNK_ID) -> None:
        super().__init__()
        self.p, self.pad_id, self.unk_id = p, pad_id, unk_id

    def forward(self, input_ids: Tensor) -> Tensor:
        """Ids (B, T) with some replaced by ``<unk>`` (training only)."""
        if not self.training or self.p == 0:
            return input_ids
        drop = (torch.rand(input_ids.shape, device=input_ids.device) < self.p) & (input_ids != self.pad_id)
        return input_ids.masked_fill(drop, self.unk_id)  # (B, T)


# ---------------------------------------------------------------------------- backbone
class RNNBackbone(nn.Module):
    """Token ids -> encoder outputs: word dropout -> embedding -> embedding dropout -> RNNEncoder.

    ``forward(input_ids (B, T), lengths (B,) or None, state=None) -> (outputs (B, T, D*H), state)``
    with the :class:`~textrnn.models.encoder.RNNEncoder` contract (outputs are zero at padding, the
    state is read at each sequence's own length). The same backbone serves the classifier
    and the language model, so one's weights load into the other.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, *, num_layers: int = 1,
                 cell: str = "lstm", bidirectional: bool = False, dropout: float = 0.0, embedding_dropout: float = 0.0,
                 word_dropout: float = 0.0, weight_dropout: float = 0.0, strategy: str = "auto",
                 pad_id: int = PAD_ID, block: str = "plain") -> None:
        super().__init__()
        self.word_dropout = WordDropout(word_dropout, pad_id)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.embedding_dropout = EmbeddingDropout(embedding_dropout)
        self.encoder: Any = (ParallelEncoder(embedding_dim, hidden_size, num_layers, cell, bidirectional, dropout,
                                             block=block)
                             if cell in PARALLEL_CELLS else
                             RNNEncoder(embedding_dim, hidden_size, num_layers, cell, bidirectional, dropout, strategy,
                                        weight_dropout))

    def forward(self, input_ids: Tensor, lengths: Optional[Tensor] = None,
                state: Optional[State] = None) -> tuple[Tensor, State]:
        """(B, T) ids -> encoder outputs (B, T, D*H) and final state."""
        lengths = as_lengths(lengths, input_ids)
        x = self.embedding_dropout(self.embedding(self.word_dropout(input_ids)))  # (B, T, E)
        return self.encoder(x, lengths, state)  # (B, T, D*H), final state

    def get_output_dim(self) -> int:
        """D*H, the width of each output step."""
        return self.encoder.get_output_dim()


# ---------------------------------------------------------------------------- pooling
class LastPooling(nn.Module):
    """Each direction's final state of the top layer, concatenated: (B, D*H).

    The forward direction's state is at the last token, the backward direction's at the
    first; an empty sequence gives its initial (zero) state.
    """

    def __init__(self, encoder: RNNEncoder) -> None:
        super().__init__()
        self.num_directions, self.width = encoder.num_directions, encoder.get_output_dim()

    def forward(self, outputs: Tensor, state: State, lengths: Tensor) -> Tensor:
        """(B, T, D*H) outputs, state, (B,) lengths -> (B, D*H)."""
        h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
        top = h_n[-self.num_directions:]  # (D, B, H) of the last layer
        return top.transpose(0, 1).reshape(outputs.size(0), -1)  # (B, D*H)

    def get_output_dim(self) -> int:
        """The pooled width, D*H."""
        return self.width


class MeanPooling(LastPooling):
    """The mean of the valid steps' outputs: (B, D*H); zeros for an empty sequence."""

    def forward(self, outputs: Tensor, state: State, lengths: Tensor) -> Tensor:
        """(B, T, D*H) outputs -> their mean over each sequence's valid steps (B, D*H)."""
        lengths = lengths.to(outputs.device)
        return outputs.sum(1) / lengths.clamp(min=1)[:, None].to(outputs.dtype)  # padding is zero already


class MaxPooling(LastPooling):
    """The elementwise max over valid steps: (B, D*H); zeros for an empty sequence."""

    def forward(self, outputs: Tensor, state: State, lengths: Tensor) -> Tensor:
        """(B, T, D*H) outputs -> their max over each sequence's valid steps (B, D*H)."""
        lengths = lengths.to(outputs.device)
        masked = outputs.masked_fill(~valid_mask(lengths, outputs.size(1))[:, :, None], float("-inf")).amax(1)
        return torch.where(lengths[:, None] > 0, masked, torch.zeros_like(masked))  # (B, D*H)


class AttentionPooling(LastPooling):
    """A learned softmax-weighted sum of the valid steps: (B, D*H); zeros for an empty sequence."""

    def __init__(self, encoder: RNNEncoder) -> None:
        super().__init__(encoder)
        self.score = nn.Linear(self.width, 1)

    def forward(self, outputs: Tensor, state: State, lengths: Tensor) -> Tensor:
        """(B, T, D*H) outputs -> their attention-weighted sum over valid steps (B, D*H)."""
        mask = valid_mask(lengths.to(outputs.device), outputs.size(1))  # (B, T)
        scores = self.score(outputs).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.softmax(scores, dim=1).nan_to_num(0.0)  # empty rows: all -inf -> zeros
        return torch.bmm(weights[:, None, :].to(outputs.dtype), outputs)[:, 0]  # (B, D*H)


POOLINGS = {"last": LastPooling, "mean": MeanPooling, "max": MaxPooling, "attention": AttentionPooling}


def as_lengths(lengths: Union[None, Tensor, Sequence[int]], input_ids: Tensor) -> Optional[Tensor]:
    """Lengths as a (B,) int64 tensor on the CPU: a list, tuple or array is converted; None stays None."""
    if lengths is None or isinstance(lengths, Tensor):
        return lengths
    return torch.as_tensor(lengths, dtype=torch.long)


# ---------------------------------------------------------------------------- auxiliary LM head
class AuxiliaryLMHead(nn.Module):
    """Auxiliary language-model loss: each direction predicts the word it has not read yet.

    ``forward(outputs (B, T, D*H), input_ids (B, T), lengths (B,), embedding (V, E)) -> scalar``.
    ``outputs`` come from the encoder's top layer, ``input_ids`` before word dropout. The
    forward half at step t predicts token t+1, the backward half (it has read t..end) token t-1::

        tokens     x0   x1   x2   x3   <pad>
        forward    ->x1 ->x2 ->x3   -     -
        backward    -   x0<- x1<- x2<-    -

    Every word of the batch gets a gradient from its contexts, rare ones included, which the
    one label per sentence cannot give (multitask LM objective, Rei 2017). The softmax runs
    over the batch's distinct target words, scored against the input embeddings through
    ``projection``: a full softmax over a word vocabulary would cost more than the classifier
    itself, and the sampled one is only a training signal. 0 when no sequence has two tokens.
    """

    def __init__(self, hidden_size: int, embedding_dim: int, num_directions: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden, self.num_directions = hidden_size, num_directions
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(hidden_size, embedding_dim, bias=False)

    def forward(self, outputs: Tensor, input_ids: Tensor, lengths: Tensor, embedding: Tensor) -> Tensor:
        """The auxiliary language-model loss of a batch (a scalar); see the class docstring."""
        H = self.hidden
        lengths = lengths.to(outputs.device)
        pairs = valid_mask(lengths - 1, outputs.size(1) - 1)  # (B, T-1): steps that have a next word
        states, targets = [outputs[:, :-1, :H][pairs]], [input_ids[:, 1:][pairs]]  # (N, H), (N,)
        if self.num_directions == 2:
            states.append(outputs[:, 1:, H:][pairs])  # backward states that have a previous word
            targets.append(input_ids[:, :-1][pairs])
        hidden, wanted = torch.cat(states), torch.cat(targets)  # (2N, H), (2N,)
        words, target = torch.unique(wanted, return_inverse=True)  # (W,), (2N,) indices into words
        scores = self.projection(self.dropout(hidden)) @ embedding[words].t()  # (2N, W)
        # a sum over max(1, 2N), not a mean: with no pairs it is 0 and every parameter still in the graph (DDP)
        return F.cross_entropy(scores.float(), target, reduction="sum") / max(1, target.numel())

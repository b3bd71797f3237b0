"""An RNN/LSTM/GRU encoder for padded, variable-length batches.

Contract
--------
``RNNEncoder(inputs, lengths, state) -> (outputs, final_state)``

* ``inputs``  (B, T, E) float, ``batch_first``.
* ``lengths`` (B,) int64, each in ``[0, T]``, in any order (no sorting needed). ``None`` means
  every sequence has length T.
* ``state``   the initial state in PyTorch's layout, or ``None`` for zeros:
  (L*D, B, H) for ``rnn``/``gru``, a pair of those ``(h, c)`` for ``lstm``
  (L = num_layers, D = 2 if bidirectional else 1, layer-major, forward direction first).
* ``outputs`` (B, T, D*H), zero at padded positions.
* ``final_state`` the same layout as ``state``, taken at each sequence's own length.

The results are those of ``pack_padded_sequence(..., enforce_sorted=False)``: padding never
reaches a valid position, the backward direction starts at each sequence's own last token,
and the final state is read at each sequence's own length. An empty sequence (length 0)
gives zero outputs and returns its initial state unchanged.

Two strategies compute this, with equal results (tests check outputs, states and gradients):

* ``packed``: ``pack_padded_sequence`` then one fused RNN call. cuDNN runs this fast, so it is
  the default on CUDA.
* ``padded``: the RNN runs on the padded tensor, one call per layer and direction. Padding at
  the end cannot change earlier steps of a left-to-right RNN, so the forward direction only
  needs its final state gathered at ``lengths - 1``. The backward direction reverses each
  sequence *within its own length*, runs left to right, and reverses back::

      tokens      a b c . .        (length 3, two pads)
      reversed    c b a . .        pads stay at the end
      run  ->     hc hb ha . .
      back        ha hb hc . .

  On CPU PyTorch runs packed batches one time step at a time, so this is the CPU default.
  An LSTM's cell state is not among its outputs; to read it at each sequence's own length we
  *hold* it through the padding: one extra input column, 1 at padded steps, with weight
  +1e4 into the forget gate and -1e4 into the input gate, makes ``f = 1`` and ``i = 0``
  exactly in floating point, so ``c`` leaves the last valid step unchanged and gradients
  through the padded steps are exactly zero.

The parameters are PyTorch's own (``weight_ih_l0``, ``weight_hh_l0_reverse``, ...), so a
``state_dict`` loads into a plain ``nn.LSTM``/``nn.GRU``/``nn.RNN`` with ``batch_first=True``
and back.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..core.config import STRATEGIES
from .cells import KERNELS
from .onnx_rnn import native_layers

State = Union[Tensor, Tuple[Tensor, Tensor]]
_HOLD = 1e4  # sigmoid(1e4) == 1.0 and sigmoid(-1e4) == 0.0 exactly in float32 and bf16


def reverse_index(lengths: Tensor, steps: int) -> Tensor:
    """(B, T) index that reverses each row within its own length and leaves padding in place."""
    t = torch.arange(steps, device=lengths.device)  # (T,)
    index = lengths[:, None] - 1 - t[None, :]  # (B, T)
    return torch.where(index >= 0, index, t[None, :])


def valid_mask(lengths: Tensor, steps: int) -> Tensor:
    """(B, T) bool, true at each sequence's valid steps."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def take_steps(x: Tensor, index: Tensor) -> Tensor:
    """x (B, T, F) gathered along time with index (B, T') -> (B, T', F)."""
    return x.gather(1, index[:, :, None].expand(-1, -1, x.size(2)))


class EncoderWidths:
    """What every encoder here says of its shape (it has ``hidden_size`` and ``bidirectional``): the LSTM/GRU
    :class:`RNNEncoder` and the parallel cells' :class:`~textrnn.models.parallel.ParallelEncoder` share the
    contract of this module's docstring, and poolings and heads read only these."""

    hidden_size: int
    bidirectional: bool

    @property
    def num_directions(self) -> int:
        """The number of directions D, 2 when bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    def get_output_dim(self) -> int:
        """D*H, the width of each output step."""
        return self.num_directions * self.hidden_size


class RNNEncoder(EncoderWidths, nn.RNNBase):
    """Embeddings (B, T, E) + lengths (B,) -> outputs (B, T, D*H) and final state.

    Args:
        input_size: E, the embedding size.
        hidden_size: H.
        num_layers: stacked layers L.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"`` (tanh).
        bidirectional: D = 2 when true.
        dropout: dropout on the outputs of every layer but the last.
        weight_dropout: in training, DropConnect on the hidden-to-hidden matrices: one mask per
            forward call, the same at every time step and for every sequence of the batch
            (AWD-LSTM, Merity et al. 2018). It regularizes the recurrence itself, which dropout
            on inputs and outputs does not reach, and leaves the fused kernels usable. On CUDA
            cuDNN then copies the weights into one buffer at every call (and warns so).
        strategy: ``"packed"``, ``"padded"`` or ``"auto"`` (packed on CUDA, padded elsewhere).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, cell: str = "lstm",
                 bidirectional: bool = False, dropout: float = 0.0, strategy: str = "auto",
                 weight_dropout: float = 0.0) -> None:
        if cell not in KERNELS:
            raise ValueError(f"cell must be one of {', '.join(KERNELS)}, got {cell!r}")
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        with warnings.catch_warnings():  # PyTorch warns about dropout with one layer; it is a no-op
            warnings.simplefilter("ignore")
            super().__init__(KERNELS[cell].mode, input_size, hidden_size, num_layers=num_layers, bias=True,
                             batch_first=True, dropout=float(dropout), bidirectional=bidirectional)
        self.cell, self.kernel = cell, KERNELS[cell]  # what the cell computes (textrnn.models.cells)
        self.strategy = strategy
        self.weight_dropout = float(weight_dropout)
        self.nonlinearity = "tanh"

    def layer_weights(self, layer: int, direction: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(w_ih, w_hh, b_ih, b_hh)`` of one layer and direction, in PyTorch's gate order.

        These are the live parameters (no dropout applied), for code that runs the cells itself.
        """
        k = layer * self.num_directions + direction
        w_ih, w_hh, b_ih, b_hh = self._flat_weights[4 * k: 4 * k + 4]
        return w_ih, w_hh, b_ih, b_hh  # type: ignore[return-value]  # every RNN here has biases

    def fused_step(self, state: State, rows: int) -> "FusedStep":
        """A one-token-at-a-time runner of this (unidirectional) stack, from ``state`` copied to ``rows`` rows."""
        if self.bidirectional:
            raise ValueError("a bidirectional encoder reads the whole sequence; it cannot run one step at a time")
        return FusedStep(self.kernel, self.hidden_size, self._step_weights(), state, rows)

    def _step_weights(self) -> list:
        """Per layer, the weights in FusedStep's layout; cached until a weight changes.

        Building them copies every recurrent matrix. Doing that on each ``generate`` call costs
        more than a short generation itself (fresh memory, cold caches), so the result is kept
        and keyed on each parameter's storage and version counter.
        """
        weights = [self.layer_weights(k) for k in range(self.num_layers)]
        key = tuple((w.data_ptr(), w._version) for layer in weights for w in layer)
        cached = getattr(self, "_step_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        layers = [self.kernel.fuse(self.hidden_size, *(w.detach() for w in layer)) for layer in weights]
        self._step_cache = (key, layers)
        return layers

    def extra_repr(self) -> str:
        """PyTorch's summary, with the cell and the strategy."""
        drop = f", weight_dropout={self.weight_dropout}" if self.weight_dropout else ""
        return super().extra_repr() + f", cell={self.cell}, strategy={self.strategy}{drop}"

    def resolve_strategy(self, device: torch.device) -> str:
        """The strategy used on ``device``: ``auto`` is packed on CUDA, padded elsewhere."""
        if self.strategy != "auto":
            return self.strategy
        return "packed" if device.type == "cuda" else "padded"

    def initial_state(self, batch_size: int, like: Tensor) -> State:
        """Zeros in the state layout, for ``batch_size`` sequences, on ``like``'s device and dtype."""
        h = like.new_zeros(self.num_layers * self.num_directions, batch_size, self.hidden_size)
        return (h, h.clone()) if self.kernel.state_parts == 2 else h

    # ------------------------------------------------------------------ public entry
    def forward(  # type: ignore[override]
        self, inputs: Tensor, lengths: Optional[Tensor] = None, state: Optional[State] = None
    ) -> Tuple[Tensor, State]:
        """(B, T, E) inputs, (B,) lengths, initial state -> outputs (B, T, D*H), final state (see the module)."""
        batch, steps, _ = inputs.shape
        if state is None:
            state = self.initial_state(batch, inputs)
        weights = self._weights()
        # An ONNX export traces once, and the graph must hold for every batch and length: native nodes with no
        # Python branch on the data (the exporter says when it is tracing; nothing sets a flag from outside).
        if torch.onnx.is_in_onnx_export() and lengths is not None:
            return self._forward_onnx(inputs, lengths.long(), state, weights)
        if lengths is None or batch == 0 or bool((lengths == steps).all()):
            # No padding: one fused call for all layers and directions (LM training lands here).
            return self._run(inputs, state, weights, self.num_layers, self.bidirectional)
        lengths = lengths.to(device="cpu", dtype=torch.long)
        if lengths.dim() != 1 or lengths.numel() != batch or int(lengths.min()) < 0 or int(lengths.max()) > steps:
            raise ValueError(f"lengths must be (B,)={batch} values in [0, {steps}], got {lengths.tolist()}")
        if self.resolve_strategy(inputs.device) == "packed":
            return self._forward_packed(inputs, lengths, state, weights)
        return self._forward_padded(inputs, lengths, state, weights)

    def _weights(self) -> list[Tensor]:
        """The flat weights, with DropConnect on each hidden-to-hidden matrix in training.

        ``_flat_weights`` holds (w_ih, w_hh, b_ih, b_hh) per layer and direction.
        """
        weights: list[Tensor] = list(self._flat_weights)  # type: ignore[arg-type]  # all set: biases on
        if self.training and self.weight_dropout > 0:
            for k in range(1, len(weights), 4):
                weights[k] = F.dropout(weights[k], self.weight_dropout, training=True)
        return weights

    # ------------------------------------------------------------------ kernels
    def _run(self, x: Tensor, state: State, weights: list, layers: int, bidirectional: bool,
             batch_sizes: Optional[Tensor] = None) -> Tuple[Tensor, State]:
        """One call into PyTorch's fused RNN kernels (the same ones nn.LSTM uses)."""
        dropout = self.dropout if layers > 1 else 0.0
        head = (x,) if batch_sizes is None else (x, batch_sizes)
        tail = (True, layers, dropout, self.training, bidirectional) + ((True,) if batch_sizes is None else ())
        return self.kernel.sequence(head, state, weights, tail)

    def _forward_packed(self, x: Tensor, lengths: Tensor, state: State, weights: list) -> Tuple[Tensor, State]:
        # pack_padded_sequence rejects length 0: pack those as length 1 and restore them after.
        empty = lengths == 0
        packed = pack_padded_sequence(x, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
        assert packed.sorted_indices is not None and packed.unsorted_indices is not None  # enforce_sorted=False
        sorted_state = _reorder_state(state, packed.sorted_indices)
        out, final = self._run(packed.data, sorted_state, weights, self.num_layers, self.bidirectional,
                               packed.batch_sizes)
        out, _ = pad_packed_sequence(packed._replace(data=out), batch_first=True, total_length=x.size(1))  # (B, T, D*H)
        final = _reorder_state(final, packed.unsorted_indices)
        if bool(empty.any()):
            keep = (~empty).to(x.device)
            out = out * keep[:, None, None].to(out.dtype)
            final = _select_state(keep, final, state)
        return out, final

    def _forward_padded(self, x: Tensor, lengths: Tensor, state: State, weights: list) -> Tuple[Tensor, State]:
        batch, steps, _ = x.shape
        lengths = lengths.to(x.device)
        mask = valid_mask(lengths, steps)  # (B, T)
        hold = (~mask)[:, :, None].to(x.dtype) if self.kernel.state_parts == 2 else None  # (B, T, 1): an LSTM's c
        reverse = reverse_index(lengths, steps) if self.bidirectional else None  # (B, T)
        last = (lengths - 1).clamp(min=0)[:, None]  # (B, 1)
        hs, cs, layer_input = [], [], x
        for layer in range(self.num_layers):
            outs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                inp = layer_input if reverse is None or direction == 0 else take_steps(layer_input, reverse)
                out, h, c = self._run_direction(inp, hold, _state_slice(state, k), weights[4 * k : 4 * k + 4])
                hs.append(take_steps(out, last)[:, 0])  # (B, H) at each sequence's own last step
                cs.append(c)
                outs.append(out if reverse is None or direction == 0 else take_steps(out, reverse))
            layer_input = torch.cat(outs, dim=2) * mask[:, :, None].to(x.dtype)  # (B, T, D*H)
            if layer < self.num_layers - 1 and self.dropout > 0 and self.training:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        h_n = torch.stack(hs)  # (L*D, B, H)
        final = (h_n, torch.stack(cs)) if self.kernel.state_parts == 2 else h_n
        empty = lengths == 0
        if torch.onnx.is_in_onnx_export() or bool(empty.any()):
            final = _select_state(~empty, final, state)
        return layer_input, final

    def _forward_onnx(self, x: Tensor, lengths: Tensor, state: State, weights: list) -> Tuple[Tensor, State]:
        """While exporting: the padded strategy's values, given to the graph as one native ONNX node a layer
        (:mod:`~textrnn.models.onnx_rnn`); an empty row runs as length 1 there and is restored here."""
        values = self._forward_padded(x, lengths, state, weights)
        out, final = native_layers(self.kernel, x, lengths.clamp(min=1), state, weights, values, self.hidden_size,
                                   self.num_layers, self.bidirectional)
        mask = valid_mask(lengths, x.size(1))[:, :, None].to(out.dtype)  # (B, T, 1)
        return out * mask, _select_state(lengths > 0, final, state)

    def _run_direction(self, x: Tensor, hold: Optional[Tensor], state: State, weights: list):
        """One layer, one direction, left to right; returns outputs, h_T and (for LSTM) the held c."""
        if hold is None:
            out, h = self._run(x, state, weights, 1, False)
            return out, h, None
        w_ih, w_hh, b_ih, b_hh = weights
        hidden = self.hidden_size
        column = w_ih.new_zeros(4 * hidden, 1)  # gate order i, f, g, o
        column[:hidden] = -_HOLD
        column[hidden : 2 * hidden] = _HOLD
        weights = [torch.cat([w_ih, column], dim=1), w_hh, b_ih, b_hh]
        out, (h, c) = self._run(torch.cat([x, hold], dim=2), state, weights, 1, False)
        return out, h, c[0]


def _state_slice(state: State, k: int) -> State:
    if isinstance(state, tuple):
        return state[0][k : k + 1], state[1][k : k + 1]
    return state[k : k + 1]


def _reorder_state(state: State, index: Tensor) -> State:
    """The state's batch dimension (1) taken in the order of ``index``."""
    if isinstance(state, tuple):
        return state[0].index_select(1, index), state[1].index_select(1, index)
    return state.index_select(1, index)


def _select_state(keep: Tensor, new: State, old: State) -> State:
    """Per sequence, the new state where keep (B,) is true, else the old one."""
    if isinstance(new, tuple) and isinstance(old, tuple):
        return _select(keep, new[0], old[0]), _select(keep, new[1], old[1])
    assert isinstance(new, Tensor) and isinstance(old, Tensor)  # both states of one cell
    return _select(keep, new, old)


def _select(keep: Tensor, new: Tensor, old: Tensor) -> Tensor:
    return torch.where(keep[None, :, None], new, old)  # (L*D, B, H)


# ---------------------------------------------------------------------------- one step at a time
class FusedStep:
    """One time step of a whole unidirectional stack for N rows, in as few ops as PyTorch allows.

    ``step(x (N, E)) -> h (N, H)``, the top layer's new state; each layer's state is carried.
    ``nn.LSTM`` on a single time step goes through oneDNN on CPU, whose per-call setup costs
    about 10x the arithmetic at batch 1. Here each layer is the cell kernel's ``step``
    (:mod:`textrnn.models.cells`): for the LSTM one ``addmm`` over the concatenated input and
    hidden state, then the gate nonlinearities.
    """

    def __init__(self, kernel: Any, hidden_size: int, layers: list, state: State, rows: int) -> None:
        self.kernel, self.hidden, self.layers = kernel, hidden_size, layers
        h = state[0] if isinstance(state, tuple) else state  # (L, 1, H)
        self.h = [layer.expand(rows, -1).contiguous() for layer in h[:, 0]]
        self.c = ([layer.expand(rows, -1).contiguous() for layer in state[1][:, 0]]
                  if isinstance(state, tuple) else None)

    def reorder(self, index: Tensor) -> None:
        """Row i of the state becomes row ``index[i]`` (beam search keeps the beams it extends)."""
        self.h = [h[index] for h in self.h]
        if self.c is not None:
            self.c = [c[index] for c in self.c]

    def step(self, x: Tensor) -> Tensor:
        """x (N, E) -> the top layer's new state (N, H); every layer's state is updated."""
        for layer, params in enumerate(self.layers):
            h, c = self.kernel.step(params, x, self.h[layer], self.c[layer] if self.c is not None else None,
                                    self.hidden)
            self.h[layer] = x = h
            if self.c is not None:
                self.c[layer] = c
        return x

"""The fused recurrent cells behind :class:`~textrnn.models.encoder.RNNEncoder`, one class each.

A cell kernel says what one cell computes, in the two forms the encoder runs it in:

* ``sequence``: a whole (packed or padded) sequence through PyTorch's fused kernels (the ones
  ``nn.LSTM``/``nn.GRU``/``nn.RNN`` call), all layers or one;
* ``fuse`` + ``step``: one token at a time for generation, beam search and the server, on the
  weights rearranged once by ``fuse`` (:class:`~textrnn.models.encoder.FusedStep`).

It also says the shape of its state (``state_parts``: 2 for the LSTM's ``(h, c)``, else 1)
and its ONNX operator with its gate order (``onnx_op``, ``onnx_gates``), which an export emits
(:mod:`~textrnn.models.onnx_rnn`). The encoder asks ``KERNELS`` for its cell's kernel and never branches on
the cell's name. The parallel cells (minGRU, minLSTM) are another encoder,
:class:`~textrnn.models.parallel.ParallelEncoder`, with the same contract.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

import torch
from torch import _VF, Tensor


class CellKernel(Protocol):
    """What a fused cell provides to the encoder."""

    mode: str  # nn.RNNBase's mode name, which sizes its weights
    state_parts: int  # 2: an (h, c) pair; 1: h alone
    onnx_op: str  # the ONNX operator of this cell (textrnn.models.onnx_rnn)
    onnx_gates: tuple[int, ...]  # PyTorch's gate blocks in the order ONNX's operator wants them

    def sequence(self, head: tuple, state: Any, weights: list, tail: tuple) -> tuple[Tensor, Any]:
        """One fused call: ``head`` is ``(x,)`` or ``(packed data, batch_sizes)``, ``tail`` the kernel flags."""
        ...

    def fuse(self, hidden: int, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> tuple:
        """One layer's weights in the layout :meth:`step` reads."""
        ...

    def step(self, params: tuple, x: Tensor, h: Tensor, c: Optional[Tensor], hidden: int
             ) -> tuple[Tensor, Optional[Tensor]]:
        """x (N, In), h (N, H) [, c] -> the new h (and c)."""
        ...


class LSTMKernel:
    """The LSTM: gates i, f, g, o; a cell state ``c`` beside ``h``."""

    mode, state_parts = "LSTM", 2
    onnx_op = "LSTM"
    onnx_gates: tuple[int, ...] = (0, 3, 1, 2)  # PyTorch's i, f, g, o as ONNX's i, o, f, c

    def sequence(self, head: tuple, state: Any, weights: list, tail: tuple) -> tuple[Tensor, Any]:
        """One fused call over the whole sequence (PyTorch's own kernel for this cell)."""
        out, h, c = _VF.lstm(*head, state, weights, *tail)  # type: ignore[call-overload]  # two overloads
        return out, (h, c)

    def fuse(self, hidden: int, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> tuple:
        """One (In+H, 4H) matrix over [x, h], gate rows reordered i, f, o, g so one sigmoid covers three."""
        weight, bias = torch.cat([w_ih, w_hh], dim=1), b_ih + b_hh  # (4H, In+H), (4H,)
        order = torch.cat([torch.arange(0, 2 * hidden), torch.arange(3 * hidden, 4 * hidden),
                           torch.arange(2 * hidden, 3 * hidden)]).to(weight.device)
        return weight[order].t().contiguous(), bias[order]

    def step(self, params: tuple, x: Tensor, h: Tensor, c: Optional[Tensor], hidden: int
             ) -> tuple[Tensor, Optional[Tensor]]:
        """x (N, In), h (N, H) [, c] -> the new h (and c)."""
        H = hidden
        assert c is not None  # an LSTM always carries its cell state
        gates = torch.addmm(params[1], torch.cat([x, h], dim=1), params[0])  # (N, 4H)
        ifo = gates[:, : 3 * H].sigmoid()
        c = torch.addcmul(ifo[:, H : 2 * H] * c, ifo[:, :H], gates[:, 3 * H :].tanh())
        return ifo[:, 2 * H :] * c.tanh(), c


class GRUKernel:
    """The GRU: reset and update gates; the candidate reads ``r * (W_hn h + b_hn)``, so input and hidden
    products stay apart."""

    mode, state_parts = "GRU", 1
    onnx_op = "GRU"
    onnx_gates: tuple[int, ...] = (1, 0, 2)  # PyTorch's r, z, n as ONNX's z, r, h

    def sequence(self, head: tuple, state: Any, weights: list, tail: tuple) -> tuple[Tensor, Any]:
        """One fused call over the whole sequence (PyTorch's own kernel for this cell)."""
        return _VF.gru(*head, state, weights, *tail)  # type: ignore[call-overload]  # two overloads

    def fuse(self, hidden: int, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> tuple:
        """One layer's weights in the layout :meth:`step` reads."""
        return w_ih.t().contiguous(), w_hh.t().contiguous(), b_ih, b_hh

    def step(self, params: tuple, x: Tensor, h: Tensor, c: Optional[Tensor], hidden: int
             ) -> tuple[Tensor, Optional[Tensor]]:
        """x (N, In), h (N, H) [, c] -> the new h (and c)."""
        H = hidden
        gi = torch.addmm(params[2], x, params[0])  # (N, 3H)
        gh = torch.addmm(params[3], h, params[1])  # (N, 3H)
        rz = (gi[:, : 2 * H] + gh[:, : 2 * H]).sigmoid()
        n = torch.tanh(gi[:, 2 * H :] + rz[:, :H] * gh[:, 2 * H :])
        return torch.lerp(n, h, rz[:, H:]), None  # (1 - z) * n + z * h


class TanhKernel:
    """The Elman RNN: ``h = tanh(W [x, h] + b)``."""

    mode, state_parts = "RNN_TANH", 1
    onnx_op = "RNN"
    onnx_gates: tuple[int, ...] = (0,)  # ONNX's RNN is tanh unless told otherwise

    def sequence(self, head: tuple, state: Any, weights: list, tail: tuple) -> tuple[Tensor, Any]:
        """One fused call over the whole sequence (PyTorch's own kernel for this cell)."""
        return _VF.rnn_tanh(*head, state, weights, *tail)  # type: ignore[call-overload]  # two overloads

    def fuse(self, hidden: int, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> tuple:
        """One layer's weights in the layout :meth:`step` reads."""
        return torch.cat([w_ih, w_hh], dim=1).t().contiguous(), b_ih + b_hh

    def step(self, params: tuple, x: Tensor, h: Tensor, c: Optional[Tensor], hidden: int
             ) -> tuple[Tensor, Optional[Tensor]]:
        """x (N, In), h (N, H) [, c] -> the new h (and c)."""
        return torch.addmm(params[1], torch.cat([x, h], dim=1), params[0]).tanh(), None


KERNELS: dict[str, CellKernel] = {"lstm": LSTMKernel(), "gru": GRUKernel(), "rnn": TanhKernel()}

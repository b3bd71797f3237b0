"""The encoder in an ONNX export: one native ``LSTM``/``GRU``/``RNN`` node a layer, lengths included.

ONNX's recurrent operators take ``sequence_lens`` and run both directions themselves, each row
within its own length (the backward direction starts at the row's last token, outputs past the
length are zero, the final state is the one at the length): the semantics of
``pack_padded_sequence``. The exporter does not emit them from a padded batch (packed sequences
do not export: pytorch #49936, #62240), and the padded strategy traced as it is becomes a graph of
about 250 nodes (the reversal gathers, the LSTM's held cell state, the state selection) that
cost ONNX Runtime more than the recurrence itself at batch 1 (measured in docs/transfer.md).

So the encoder, while ``torch.onnx.is_in_onnx_export()``, runs its padded strategy for the
values and passes them through ``_NativeNode``, whose ``symbolic`` gives the exporter one
node a layer in their place. The padded strategy's operations then feed nothing in the graph
and the exporter drops them; every export is still checked against torch by onnxruntime
(:mod:`textrnn.serving.export`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .cells import CellKernel

# ONNX TensorProto type code of int32, the type ``sequence_lens`` takes.
_INT32 = 6


class _NativeNode(torch.autograd.Function):
    """One layer, all directions: ``x`` (T, B, In) -> ``y`` (T, D, B, H), ``h`` (D, B, H), ``c`` (D, B, H).

    ``forward`` returns ``y``, ``h`` and ``c`` as given (torch computed them); ``symbolic`` is the ONNX
    node that computes them from ``x``, the lengths, the initial state and the weights in ONNX's layout.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, lengths: Tensor, h0: Tensor, c0: Tensor, w: Tensor, r: Tensor, b: Tensor,
                y: Tensor, h: Tensor, c: Tensor, op: str, hidden: int, bidirectional: bool) -> Any:
        return y.clone(), h.clone(), c.clone()

    @staticmethod
    def symbolic(g: Any, x: Any, lengths: Any, h0: Any, c0: Any, w: Any, r: Any, b: Any, y: Any, h: Any, c: Any,
                 op: str, hidden: int, bidirectional: bool) -> Any:
        lens = g.op("Cast", lengths, to_i=_INT32)
        direction = "bidirectional" if bidirectional else "forward"
        if op == "LSTM":
            return g.op("LSTM", x, w, r, b, lens, h0, c0, hidden_size_i=hidden, direction_s=direction, outputs=3)
        extra = {"linear_before_reset_i": 1} if op == "GRU" else {}  # PyTorch's GRU applies r after W_hn h
        y_out, h_out = g.op(op, x, w, r, b, lens, h0, hidden_size_i=hidden, direction_s=direction, outputs=2,
                            **extra)
        return y_out, h_out, c0


def onnx_weights(kernel: CellKernel, layer: list[list[Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    """One layer's ``[[w_ih, w_hh, b_ih, b_hh] per direction]`` in ONNX's layout: W (D, G*H, In), R (D, G*H, H)
    and B (D, 2*G*H), the gate blocks in ONNX's order (``kernel.onnx_gates`` names PyTorch's blocks in it)."""

    def reorder(t: Tensor) -> Tensor:
        blocks = t.chunk(len(kernel.onnx_gates), dim=0)
        return torch.cat([blocks[k] for k in kernel.onnx_gates], dim=0)

    w = torch.stack([reorder(d[0]) for d in layer])
    r = torch.stack([reorder(d[1]) for d in layer])
    b = torch.stack([torch.cat([reorder(d[2]), reorder(d[3])]) for d in layer])
    return w, r, b


def native_layers(kernel: CellKernel, x: Tensor, lengths: Tensor, state: Any, weights: list[Tensor],
                  values: tuple[Tensor, Any], hidden: int, num_layers: int, bidirectional: bool
                  ) -> tuple[Tensor, Any]:
    """The encoder's ``(outputs (B, T, D*H), final state)`` as native nodes, given the same from torch.

    ``x`` (B, T, In), ``lengths`` (B,) at least 1 (the encoder restores empty rows after),
    ``state`` and ``values`` in the encoder's layouts, ``weights`` its flat list.
    """
    batch, steps, _ = x.shape
    d = 2 if bidirectional else 1
    out, final = values
    h_all, c_all = state if isinstance(state, tuple) else (state, state)
    final_h, final_c = final if isinstance(final, tuple) else (final, final)
    layer_input = x.transpose(0, 1)  # (T, B, In)
    hs, cs = [], []
    for k in range(num_layers):
        rows = slice(k * d, (k + 1) * d)
        per_direction = [weights[4 * j: 4 * j + 4] for j in range(k * d, (k + 1) * d)]
        # The padded strategy's outputs for the last layer; an inner layer's value is only a placeholder of the
        # right shape, since the next node computes from its input in ONNX and passes torch's values through.
        y_value = (out.view(batch, steps, d, hidden).permute(1, 2, 0, 3) if k == num_layers - 1
                   else x.new_zeros(steps, d, batch, hidden))
        y, h, c = _NativeNode.apply(layer_input, lengths, h_all[rows], c_all[rows],
                                    *onnx_weights(kernel, per_direction), y_value, final_h[rows], final_c[rows],
                                    kernel.onnx_op, hidden, bidirectional)
        hs.append(h)
        cs.append(c)
        layer_input = y.permute(0, 2, 1, 3).reshape(steps, batch, d * hidden)  # (T, B, D*H)
    h_n = torch.cat(hs)  # (L*D, B, H)
    return layer_input.transpose(0, 1), ((h_n, torch.cat(cs)) if isinstance(state, tuple) else h_n)

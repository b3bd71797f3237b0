"""Recurrent cells whose gates read the input only: minGRU and minLSTM (Feng et al. 2024, "Were RNNs all we
needed?"), trained over a whole sequence at once and run one token at a time for generation.

Each layer is a linear recurrence, elementwise over the state's H channels::

    minGRU    z = sigmoid(W_z x)   h~ = W_h x          a = 1 - z           b = z h~
    minLSTM   f, i = sigmoid(W_f x), sigmoid(W_i x)    a = f / (f + i)     b = i / (f + i) W_h x
    both      h_t = a_t * h_{t-1} + b_t

Since ``a`` and ``b`` depend on the input alone, one matrix product computes them for every step (the work an
LSTM does step by step), and what is left over time is the elementwise recurrence, a *scan*:

* ``loop`` (the CPU default): the recurrence step by step with a hand-written backward (itself the same
  recurrence run in reverse), one fused multiply-add per step and no autograd graph per step. On a CPU the
  per-step work is a few kilobytes, cache-resident, so this beats every parallel form we measured
  (``benchmarks/bench_cells.py``).
* ``doubling`` (the CUDA default): Hillis-Steele's scan, log2(T) rounds of whole-tensor products and sums
  (products of ``a`` only shrink, so nothing overflows), for a GPU that is idle on one small step at a time.

Contract
--------
The :class:`~textrnn.models.encoder.RNNEncoder` one: ``forward(inputs (B, T, E), lengths (B,) or None, state)
-> (outputs (B, T, D*H), final_state (L*D, B, H))`` with ``pack_padded_sequence`` semantics. Padded steps
*hold* the state (``a = 1, b = 0``), so the state at the end of the padded tensor is each text's state at its
own length, padding never reaches a valid step, and an empty text keeps its initial state; the backward
direction reverses each text within its length. Outputs are zero at padding. ``fused_step`` runs one token at a
time (generation, beam search, the server) with the same weights, equal to the scan's outputs.
"""

from __future__ import annotations

import functools
from typing import Any, Optional, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .encoder import EncoderWidths, reverse_index

PARALLEL_CELLS = ("mingru", "minlstm")  # the config's model.cell values built here (core.config.CELLS has them)
SCANS = ("auto", "loop", "doubling")


class LinearScan(torch.autograd.Function):
    """``h_t = a_t * h_{t-1} + b_t`` over time-major (T, N, H) tensors from ``h0`` (N, H); backward by the same
    recurrence in reverse: ``g_t = dh_t + a_{t+1} g_{t+1}``, ``db = g``, ``da_t = g_t h_{t-1}``, ``dh0 = a_0 g_0``."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:  # type: ignore[override]
        """The states (T, N, H), written step by step into one preallocated tensor."""
        h = torch.empty_like(b)
        previous = h0
        for t in range(b.size(0)):
            previous = torch.addcmul(b[t], a[t], previous, out=h[t])
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        """The gradients of ``a``, ``b`` and ``h0`` from the states' (the recurrence in reverse)."""
        a, h, h0 = ctx.saved_tensors
        g = torch.empty_like(grad)
        carry = torch.zeros_like(h0)
        for t in range(grad.size(0) - 1, -1, -1):
            torch.add(grad[t], carry, out=g[t])
            carry = a[t] * g[t]
        before = torch.cat([h0[None], h[:-1]])  # h_{t-1}
        return g * before, g, carry


def loop_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """(T, B, H) coefficients, time-major, (B, H) start -> (T, B, H) states, step by step (see
    :class:`LinearScan`); each step reads and writes one contiguous (B, H) slice."""
    return LinearScan.apply(a.contiguous(), b.contiguous(), h0.contiguous())


class MinGRUScan(torch.autograd.Function):
    """minGRU's coefficients and the loop scan in one autograd node, for training on the CPU.

    From the layer's gates (T, N, 2H) = [k, h~]: ``z = sigmoid(k)`` (times the (T, N, 1) mask: a padded step
    has ``z = 0``, so ``a = 1 - z = 1`` and ``b = z h~ = 0``), then ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``.
    The backward runs the recurrence in reverse once (``g_t = dh_t + a_{t+1} g_{t+1}``, one fused multiply-add
    a step) and writes ``dk = g (h~ - h_{t-1}) z (1 - z)`` and ``dh~ = g z`` straight into one (T, N, 2H)
    gradient. Autograd over the separate ops made about twelve whole-tensor passes; this makes about seven, and
    keeps for the backward pass the gates (for ``h~``), ``z`` and ``h``: four (T, N, H) widths, with ``1 - z``
    recomputed rather than kept. ``benchmarks/bench_cells.py`` measures the difference.
    """

    @staticmethod
    def forward(ctx: Any, gates: Tensor, mask: Optional[Tensor], h0: Tensor) -> Tensor:  # type: ignore[override]
        """(T, N, 2H) gates, (T, N, 1) mask or None, (N, H) start -> the states (T, N, H)."""
        k, candidate = gates.chunk(2, dim=-1)
        z = torch.sigmoid(k)
        if mask is not None:
            z.mul_(mask)
        a, b = 1 - z, z * candidate
        h = torch.empty_like(b)
        previous = h0
        for t in range(b.size(0)):
            previous = torch.addcmul(b[t], a[t], previous, out=h[t])
        ctx.save_for_backward(gates, z, h, h0)
        return h

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, Tensor]:  # type: ignore[override]
        """The gates' gradient (T, N, 2H) and the start's (N, H)."""
        gates, z, h, h0 = ctx.saved_tensors
        if grad.size(0) == 0:  # an empty sequence: nothing ran
            return torch.zeros_like(gates), None, torch.zeros_like(h0)
        a, candidate = 1 - z, gates.chunk(2, dim=-1)[1]
        g = torch.empty_like(grad)
        g[-1] = grad[-1]
        for t in range(grad.size(0) - 2, -1, -1):
            torch.addcmul(grad[t], a[t + 1], g[t + 1], out=g[t])
        d_gates = torch.empty_like(gates)
        dk, d_candidate = d_gates.chunk(2, dim=-1)
        torch.mul(g, z, out=d_candidate)
        torch.sub(candidate[1:], h[:-1], out=dk[1:])  # h~_t - h_{t-1}: dh_t/dz_t
        torch.sub(candidate[0], h0, out=dk[0])
        dk.mul_(d_candidate).mul_(a)  # g z (h~ - h_prev) (1 - z): through the sigmoid
        return d_gates, None, a[0] * g[0]


EXPORT_ROUNDS = 16  # an exported graph scans up to 2**16 steps: its rounds cannot depend on the traced length


def doubling_scan(a: Tensor, b: Tensor, h0: Tensor, rounds: Optional[int] = None) -> Tensor:
    """The same states by Hillis-Steele doubling: after round r each step holds the combination of the 2^r steps
    ending at it; log2(T) rounds of whole-tensor work (``rounds`` of them when given: a round past the length
    changes nothing, so a traced graph with a fixed count serves every length up to 2**rounds)."""
    b = torch.cat([torch.addcmul(b[:1], a[:1], h0[None]), b[1:]])  # time-major; h0 folded into step 0
    for r in range(rounds if rounds is not None else max(0, (b.size(0) - 1).bit_length())):
        shift = 1 << r
        b = torch.cat([b[:shift], torch.addcmul(b[shift:], a[shift:], b[:-shift])])
        a = torch.cat([a[:shift], a[shift:] * a[:-shift]])
    return b


class MinimalLayer(nn.Module):
    """One layer and direction: ``gates`` maps the input (…, In) to the coefficients of the recurrence."""

    def __init__(self, cell: str, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.cell = cell
        self.gates = nn.Linear(input_size, (2 if cell == "mingru" else 3) * hidden_size)

    def coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (…, In) -> (a, b), each (…, H): ``h = a * h_prev + b``."""
        gates = self.gates(x)
        if self.cell == "mingru":
            k, candidate = gates.chunk(2, dim=-1)
            return torch.sigmoid(-k), torch.sigmoid(k) * candidate  # 1 - z, z h~
        f, i, candidate = gates.chunk(3, dim=-1)
        f, i = torch.sigmoid(f), torch.sigmoid(i)
        total = f + i  # normalized gates (the paper's time-independent scale): a + b's weight = 1
        return f / total, i / total * candidate


class GatedMLP(nn.Module):
    """x (…, W) -> (…, W): ``W_out (gelu(W_g n) * W_u n)`` on the layer-normed ``n = norm(x)``, a GeGLU of
    inner width W (Shazeer 2020). It is what a linear recurrence lacks: its only nonlinearity is in the gates,
    and ``h~ = W_h x`` is linear."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm, self.inner, self.out = nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        """(…, W) -> (…, W)."""
        gate, up = self.inner(self.norm(x)).chunk(2, dim=-1)
        return self.out(F.gelu(gate) * up)


class ParallelEncoder(EncoderWidths, nn.Module):
    """Embeddings (B, T, E) + lengths (B,) -> outputs (B, T, D*H) and final state (L*D, B, H), like
    :class:`~textrnn.models.encoder.RNNEncoder` (see the module docstring for the contract).

    Args:
        input_size: E.
        hidden_size: H, each layer's state.
        num_layers: L.
        cell: ``"mingru"`` or ``"minlstm"``.
        bidirectional: D = 2 when true (the backward direction reads each text from its own last token).
        dropout: on the outputs of every layer but the last.
        scan: ``"loop"``, ``"doubling"`` or ``"auto"`` (doubling on CUDA, loop elsewhere).
        block: ``"plain"``: layers stacked as an LSTM's; ``"residual"``: the input is projected to D*H, and each
            layer adds its cells' output (dropped out) to its input, the cells reading a layer-normed copy;
            the stack ends with a layer norm (a pre-norm residual stack, as deep sequence models use);
            ``"residual_mlp"``: the same, each layer followed by a pre-norm residual :class:`GatedMLP` (Hawk's
            block, De et al. 2024): the recurrence mixes time, the MLP mixes channels nonlinearly.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, cell: str = "mingru",
                 bidirectional: bool = False, dropout: float = 0.0, scan: str = "auto", block: str = "plain") -> None:
        super().__init__()
        if cell not in PARALLEL_CELLS:
            raise ValueError(f"cell must be one of {', '.join(PARALLEL_CELLS)}, got {cell!r}")
        if scan not in SCANS:
            raise ValueError(f"scan must be one of {', '.join(SCANS)}, got {scan!r}")
        self.cell, self.hidden_size, self.num_layers, self.bidirectional = cell, hidden_size, num_layers, bidirectional
        self.dropout, self.scan = float(dropout), scan
        directions, width = 2 if bidirectional else 1, (2 if bidirectional else 1) * hidden_size
        self.block, self.residual = block, block in ("residual", "residual_mlp")
        first = width if self.residual else input_size
        self.layers = nn.ModuleList(MinimalLayer(cell, first if k < directions else width, hidden_size)
                                    for k in range(num_layers * directions))
        if self.residual:
            self.project = nn.Linear(input_size, width)
            self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(num_layers + 1))  # each layer's, the end's
        if block == "residual_mlp":
            self.mlps = nn.ModuleList(GatedMLP(width) for _ in range(num_layers))

    def initial_state(self, batch_size: int, like: Tensor) -> Tensor:
        """Zeros (L*D, B, H) on ``like``'s device and dtype."""
        return like.new_zeros(self.num_layers * self.num_directions, batch_size, self.hidden_size)

    def scan_of(self, device: torch.device) -> Any:
        """The scan used on ``device``: ``auto`` is doubling on CUDA, the loop elsewhere; an ONNX export traces
        the doubling scan with a fixed number of rounds (plain tensor operations that serve any length; the
        loop's hand-written backward has no ONNX form)."""
        if torch.onnx.is_in_onnx_export():
            return functools.partial(doubling_scan, rounds=EXPORT_ROUNDS)
        kind = self.scan if self.scan != "auto" else ("doubling" if device.type == "cuda" else "loop")
        return loop_scan if kind == "loop" else doubling_scan

    def scan_layer(self, layer: MinimalLayer, x: Tensor, mask: Optional[Tensor], h0: Tensor, scan: Any) -> Tensor:
        """One layer and direction over time-major x (T, B, In) from h0 (B, H) -> states (T, B, H); padded steps
        (``mask`` (T, B) false) hold the state: a = 1, b = 0."""
        if scan is loop_scan and layer.cell == "mingru":  # the fused node: fewer passes, less memory
            return MinGRUScan.apply(layer.gates(x), None if mask is None else mask[:, :, None].to(x.dtype), h0)
        a, b = layer.coefficients(x)  # (T, B, H) each
        if mask is not None:
            keep = mask[:, :, None]
            a, b = torch.where(keep, a, torch.ones_like(a)), torch.where(keep, b, torch.zeros_like(b))
        return scan(a, b, h0)

    def forward(self, inputs: Tensor, lengths: Optional[Tensor] = None,
                state: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """(B, T, E) inputs, (B,) lengths, initial state -> outputs (B, T, D*H), final state (L*D, B, H)."""
        batch, steps, _ = inputs.shape
        state = self.initial_state(batch, inputs) if state is None else state
        if isinstance(state, tuple):
            raise ValueError(f"a {self.cell} state is one tensor (L*D, B, H), not an LSTM's (h, c) pair")
        scan = self.scan_of(inputs.device)
        # time-major inside: each step of the scan is then one contiguous (B, H) slice
        mask = None if lengths is None else (torch.arange(steps, device=inputs.device)[:, None]
                                             < lengths.to(device=inputs.device, dtype=torch.long)[None, :])  # (T, B)
        reverse = None
        if self.bidirectional and lengths is not None:
            reverse = reverse_index(lengths.to(device=inputs.device, dtype=torch.long), steps).t()  # (T, B)
        finals, layer_input = [], inputs.transpose(0, 1).contiguous()  # (T, B, E)
        residual = self.residual
        if residual:
            layer_input = self.project(layer_input)  # (T, B, D*H)
        for layer in range(self.num_layers):
            outs = []
            read = self.norms[layer](layer_input) if residual else layer_input
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                x = read if direction == 0 else reversed_within(read, reverse)
                h = self.scan_layer(cast(MinimalLayer, self.layers[k]), x, mask, state[k], scan)  # (T, B, H)
                finals.append(h[-1] if steps else state[k])  # held through the padding: each text's own end
                outs.append(h if direction == 0 else reversed_within(h, reverse))
            out = torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]
            if residual:
                layer_input = layer_input + F.dropout(out, self.dropout, training=self.training)
                if self.block == "residual_mlp":  # per token: padded steps never reach a valid one
                    mlp = cast(GatedMLP, self.mlps[layer])
                    layer_input = layer_input + F.dropout(mlp(layer_input), self.dropout, training=self.training)
            else:
                layer_input = out
                if layer < self.num_layers - 1 and self.dropout > 0 and self.training:
                    layer_input = F.dropout(layer_input, self.dropout, training=True)
        if residual:
            layer_input = self.norms[-1](layer_input)
        if mask is not None:
            layer_input = layer_input * mask[:, :, None].to(layer_input.dtype)
        return layer_input.transpose(0, 1).contiguous(), torch.stack(finals)  # (B, T, D*H), (L*D, B, H)

    def fused_step(self, state: Tensor, rows: int) -> "ParallelStep":
        """A one-token-at-a-time runner of this (unidirectional) stack, from ``state`` copied to ``rows`` rows."""
        if self.bidirectional:
            raise ValueError("a bidirectional encoder reads the whole sequence; it cannot run one step at a time")
        return ParallelStep(self, state, rows)

    def extra_repr(self) -> str:
        """The cell, sizes and scan."""
        return (f"cell={self.cell}, hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, scan={self.scan}")


class ParallelStep:
    """One token for N rows through the stack: ``step(x (N, E)) -> h (N, H)``, each layer's state carried."""

    def __init__(self, encoder: ParallelEncoder, state: Tensor, rows: int) -> None:
        self.encoder, self.layers = encoder, [cast(MinimalLayer, layer) for layer in encoder.layers]
        self.h = [layer.expand(rows, -1).contiguous() for layer in state[:, 0]]  # from (L, 1, H)

    def reorder(self, index: Tensor) -> None:
        """Row i of the state becomes row ``index[i]`` (beam search keeps the beams it extends)."""
        self.h = [h[index] for h in self.h]

    def step(self, x: Tensor) -> Tensor:
        """x (N, E) -> the top layer's new state (N, H)."""
        residual, encoder = self.encoder.residual, self.encoder
        x = encoder.project(x) if residual else x
        for k, layer in enumerate(self.layers):
            a, b = layer.coefficients(encoder.norms[k](x) if residual else x)
            self.h[k] = torch.addcmul(b, a, self.h[k])
            x = x + self.h[k] if residual else self.h[k]
            if encoder.block == "residual_mlp":
                x = x + encoder.mlps[k](x)
        return encoder.norms[-1](x) if residual else x


def reversed_within(x: Tensor, index: Optional[Tensor]) -> Tensor:
    """Time-major x (T, B, F) with each text reversed within its own length (``index`` (T, B) from
    :func:`~textrnn.models.encoder.reverse_index`), or the whole time axis when there is no padding."""
    if index is None:
        return x.flip(0)
    return x.gather(0, index[:, :, None].expand(-1, -1, x.size(2)))

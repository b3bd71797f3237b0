"""The cell kernels: each one's step equals PyTorch's own cell, and the encoder asks them instead of branching."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from textrnn.models.cells import KERNELS

TORCH_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


@pytest.mark.parametrize("cell", list(KERNELS))
def test_a_kernels_step_is_pytorchs_cell(cell):
    torch.manual_seed(0)
    reference = TORCH_CELLS[cell](5, 7, batch_first=True).double()
    kernel = KERNELS[cell]
    params = kernel.fuse(7, *(p.detach() for p in reference.parameters()))
    x, h = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 7, dtype=torch.float64)
    c = torch.randn(3, 7, dtype=torch.float64) if kernel.state_parts == 2 else None
    state = (h[None], c[None]) if c is not None else h[None]
    _, expected = reference(x[:, None], state)
    got_h, got_c = kernel.step(params, x, h, c, 7)
    torch.testing.assert_close(got_h, (expected[0] if c is not None else expected)[0])
    if c is not None:
        torch.testing.assert_close(got_c, expected[1][0])


@pytest.mark.parametrize("cell", list(KERNELS))
def test_a_kernels_sequence_is_the_fused_kernel(cell):
    torch.manual_seed(0)
    reference = TORCH_CELLS[cell](4, 6, num_layers=2, batch_first=True)
    kernel = KERNELS[cell]
    x = torch.randn(2, 5, 4)
    h = torch.zeros(2, 2, 6)
    state = (h, h.clone()) if kernel.state_parts == 2 else h
    out, _ = kernel.sequence((x,), state, list(reference._flat_weights), (True, 2, 0.0, False, False, True))
    torch.testing.assert_close(out, reference(x)[0])


def test_the_encoder_never_branches_on_a_cell_name():
    source = (Path(__file__).resolve().parents[2] / "textrnn" / "models" / "encoder.py").read_text()
    assert "_VF" not in source  # the fused kernels are called by the cell kernels only
    for name in KERNELS:
        assert f'== "{name}"' not in source and f"== '{name}'" not in source

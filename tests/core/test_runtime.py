"""Process-level helpers."""

import pytest
import torch

from textrnn.core.runtime import eval_mode


@pytest.mark.parametrize("start_training", [True, False])
def test_eval_mode_restores_the_mode_after_an_exception(start_training):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)).train(start_training)
    with pytest.raises(RuntimeError, match="boom"):
        with eval_mode(model):
            assert not model.training and not model[1].training
            raise RuntimeError("boom")
    assert model.training is start_training and model[1].training is start_training



"""Fault injection (textrnn.core.faults): nothing acts unless TEXTRNN_FAULT says so."""

import pytest

from textrnn.core import faults


@pytest.fixture
def clean_env(monkeypatch):
    # The counters live in os.environ: set them through monkeypatch so that they are removed afterwards, or a
    # count left behind would shift the faults of every later test (and of the processes it starts).
    for name in ("_TEXTRNN_FAULT_step", "_TEXTRNN_FAULT_save"):
        monkeypatch.setenv(name, "0")
    for name in ("TEXTRNN_FAULT", "TORCHELASTIC_RESTART_COUNT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_no_fault_set_means_no_step_hook(clean_env):
    assert faults.step_hook() is None
    clean_env.setenv("TEXTRNN_FAULT", "save:3")  # a save fault is not a step fault
    assert faults.step_hook() is None


def test_a_spike_multiplies_the_loss_at_its_step_only(clean_env):
    clean_env.setenv("TEXTRNN_FAULT", "spike:3")
    hook = faults.step_hook()
    assert hook is not None
    assert [hook(0) for _ in range(5)] == [1.0, 1.0, 1e4, 1.0, 1.0]


def test_a_spike_with_a_plus_lasts_from_its_step_on(clean_env):
    clean_env.setenv("TEXTRNN_FAULT", "spike:2+")
    hook = faults.step_hook()
    assert [hook(0) for _ in range(4)] == [1.0, 1e4, 1e4, 1e4]


def test_kill_rank_spares_other_ranks_and_restarted_groups(clean_env):
    clean_env.setenv("TEXTRNN_FAULT", "kill_rank:1:2")
    hook = faults.step_hook()
    assert [hook(0) for _ in range(3)] == [1.0, 1.0, 1.0]  # rank 0 is not the one named
    clean_env.setenv("_TEXTRNN_FAULT_step", "0")
    clean_env.setenv("TORCHELASTIC_RESTART_COUNT", "1")  # a restarted torchrun group runs on
    assert [hook(1) for _ in range(3)] == [1.0, 1.0, 1.0]

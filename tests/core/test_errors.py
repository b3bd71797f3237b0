"""The error types and their helpers (textrnn.core.errors)."""

import pytest

from textrnn import CheckpointError, ConfigError, DataError, TextRNNError, TrainingError
from textrnn.core.errors import one_line, require


def test_every_error_is_a_textrnn_error_the_cli_prints_in_one_line():
    for kind in (ConfigError, DataError, CheckpointError, TrainingError):
        assert issubclass(kind, TextRNNError)


def test_require_raises_a_config_error_with_the_message_only_when_the_rule_fails():
    require(True, "never raised")
    with pytest.raises(ConfigError, match="^model.hidden_size must be positive$"):
        require(False, "model.hidden_size must be positive")


def test_one_line_keeps_the_first_line_or_names_the_type():
    assert one_line(ValueError("first line\n  second line\nthird")) == "first line"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(RuntimeError("   \n")) == "RuntimeError"

"""User-facing errors.

Every problem a user can fix (a wrong column, a missing file, a bad config value, a
checkpoint from another task) is raised as a :class:`TextRNNError` whose message is one line
that names the problem and the fix. The command-line entry points print that line to stderr
and exit with status 2, so users never see a traceback from deep inside torch.
"""

from __future__ import annotations


class TextRNNError(Exception):
    """A problem in the user's input, with a one-line message that says how to fix it."""


class ConfigError(TextRNNError):
    """A bad configuration key or value."""


class DataError(TextRNNError):
    """A dataset, column, label or file that cannot be used."""


class CheckpointError(TextRNNError):
    """A checkpoint folder that is missing, corrupt, from another task or from a newer version."""


class TrainingError(TextRNNError):
    """Training cannot go on (for example the loss became NaN)."""


def require(ok: bool, message: str) -> None:
    """Raise a :class:`ConfigError` with ``message`` (one line, naming the fix) unless ``ok``."""
    if not ok:
        raise ConfigError(message)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, for wrapping library errors."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

"""textrnn's messages: one logger tree under ``textrnn``, each line printed bare to stderr, by rank 0 only.

Every module logs through ``logging.getLogger(__name__)``; nothing in the package prints to stderr itself
(the architecture test checks it). :func:`install` (run once when ``textrnn`` is imported) gives the
``textrnn`` logger one handler:

* it writes the message alone (``note: ...``, ``data: prepared ...``), as the lines always looked;
* it writes to whatever ``sys.stderr`` is when the line is logged, so a notebook, pytest's capture or a
  redirect sees it;
* it passes a line only on rank 0 (``RANK`` unset or 0, as torchrun sets it), so a DDP run of N processes
  says each thing once; errors pass on every rank.

The logger does not propagate to the root logger, so an application's own logging setup does not print each
line twice; set its level (``logging.getLogger("textrnn").setLevel(logging.WARNING)``) to quiet it, or add
handlers to it to send its lines elsewhere.
"""

from __future__ import annotations

import logging
import os
import sys

ROOT_LOGGER = "textrnn"


class RankZeroFilter(logging.Filter):
    """Passes a record on rank 0, and errors on every rank."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether this process shows ``record``."""
        return record.levelno >= logging.ERROR or os.environ.get("RANK", "0") in ("", "0")


class StderrHandler(logging.StreamHandler):
    """A handler on the current ``sys.stderr``, looked up at each line (not the one there at import time)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        """``sys.stderr`` as it is now."""
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property ignores it
        pass


def install() -> logging.Logger:
    """Give the ``textrnn`` logger its stderr handler and rank-0 filter (once; later calls change nothing)."""
    logger = logging.getLogger(ROOT_LOGGER)
    if not any(isinstance(handler, StderrHandler) for handler in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(RankZeroFilter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger

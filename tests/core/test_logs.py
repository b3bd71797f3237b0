"""textrnn's lines: bare messages on the current stderr, once per DDP run (rank 0), one handler however often
the package is set up."""

import contextlib
import io
import logging

from textrnn.core import logs


def lines_of(emit) -> str:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):  # the handler finds the stderr of the moment, as a notebook's
        emit()
    return err.getvalue()


def test_a_line_is_the_bare_message_on_the_current_stderr():
    logs.install()
    assert lines_of(lambda: logging.getLogger("textrnn.data.cache").info("data: found /x")) == "data: found /x\n"


def test_only_rank_zero_speaks_except_for_errors(monkeypatch):
    log = logging.getLogger("textrnn.training.trainer")
    monkeypatch.setenv("RANK", "1")
    assert lines_of(lambda: log.info("note: plan")) == "" and lines_of(lambda: log.warning("careful")) == ""
    assert lines_of(lambda: log.error("broken")) == "broken\n"
    monkeypatch.setenv("RANK", "0")
    assert lines_of(lambda: log.info("note: plan")) == "note: plan\n"


def test_install_is_idempotent_and_does_not_echo_through_the_root_logger():
    logger = logs.install()
    logs.install()
    assert sum(isinstance(h, logs.StderrHandler) for h in logger.handlers) == 1 and not logger.propagate

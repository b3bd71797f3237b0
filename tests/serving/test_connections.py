"""Connections no client can hold: request headers and bodies that must arrive in time (slowloris)."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from ..helpers import char_tokenizer, classifier
from ..server_harness import running_server

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("connections") / "classifier"
    classifier(char_tokenizer()).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_slow_clients_are_closed_and_everyone_else_is_served(classifier_dir):
    """The audit's slowloris: connections that never finished their headers or body stayed open (one after 40 s),
    and 260 of them trickling bytes made /health answer 503 to everyone. A trickle now resets nothing."""
    with running_server(classifier_dir, "--header-timeout-s", "1", "--body-timeout-s", "1",
                        "--limit-concurrency", "8") as url:
        port = int(url.rsplit(":", 1)[1])
        slow = []
        for _ in range(6):  # most of --limit-concurrency
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
            slow.append(sock)
        body = socket.create_connection(("127.0.0.1", port), timeout=5)
        body.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"te")  # a body that never finishes
        start = time.monotonic()
        for _ in range(4):  # each trickles one more byte a second: a reset timer would keep them open
            time.sleep(0.5)
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X")
        for sock in slow:
            sock.settimeout(5)
            assert sock.recv(100) == b"" and time.monotonic() - start < 5  # closed by the server
        assert b"408" in body.recv(1000).split(b"\r\n")[0]
        assert all(httpx.get(f"{url}/health", timeout=5).status_code == 200 for _ in range(10))

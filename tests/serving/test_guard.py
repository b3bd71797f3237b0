"""The ASGI guard in front of the app: body size, Host allowlist, API key; each refusal one JSON line."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("fastapi")

from textrnn.serving.guard import Guard, default_hosts  # noqa: E402


def call(guard: Guard, path: str = "/predict", **headers: str) -> tuple[int, dict]:
    """One request through ``guard``: (status, JSON body); the app behind it answers 200 {"reached": true}."""
    sent: list = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": path,
             "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"reached": true}'})


def test_a_negative_content_length_is_a_bad_request_not_a_large_one():
    """The body limit reads Content-Length before the app does (uvicorn passes what h11 accepts)."""
    for length, status in (("-5", 400), ("abc", 400), ("5000000", 413), ("2", 200)):
        code, body = call(Guard(app, 1_000_000), content_length=length)
        assert code == status, (length, body)
        assert ("non-negative integer" in body.get("error", "")) == (status == 400)


def test_only_the_allowed_host_names_are_answered():
    guard = Guard(app, 1000, allowed_hosts=default_hosts("127.0.0.1"))
    assert call(guard, host="localhost:8000") == (200, {"reached": True})
    assert call(guard, host="127.0.0.1:8000")[0] == 200 and call(guard, host="[::1]:8000")[0] == 200
    status, body = call(guard, host="rebound.attacker.example:8000")
    assert status == 400 and "'rebound.attacker.example:8000'" in body["error"] and "--allowed-hosts" in body["error"]
    assert call(Guard(app, 1000, allowed_hosts=default_hosts("0.0.0.0")), host="anything.example")[0] == 200


def test_an_api_key_is_needed_everywhere_but_health_and_the_page():
    guard = Guard(app, 1000, api_key="k3y")
    assert call(guard)[0] == 401 and call(guard, authorization="Bearer nope")[0] == 401
    assert call(guard, authorization="Bearer k3y") == (200, {"reached": True})
    assert call(guard, "/health")[0] == 200 and call(guard, "/")[0] == 200 and call(guard, "/info")[0] == 401
    assert call(Guard(app, 1000))[0] == 200  # no key set: nothing asked


def test_the_body_is_counted_as_it_arrives_whatever_length_was_declared():
    """The audit's smuggling: Content-Length 26 with Transfer-Encoding: chunked, while h11 framed a 50 MB body by its
    chunks; the guard trusted the 26 and the app read it all. Now CL + TE is refused, and every body is counted."""
    chunks = [b"x" * 600_000, b"x" * 600_000]

    def send_body(guard: Guard, **headers: str) -> int:
        sent: list = []
        pieces = iter([*({"type": "http.request", "body": c, "more_body": True} for c in chunks),
                       {"type": "http.request", "body": b"", "more_body": False}])

        async def receive():
            return next(pieces)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/predict",
                 "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]}
        asyncio.run(guard(scope, receive, send))
        return sent[0]["status"]

    assert send_body(Guard(app, 1_000_000), content_length="26", transfer_encoding="chunked") == 400
    assert send_body(Guard(app, 1_000_000), content_length="26") == 413  # a lying length: the bytes decide
    assert send_body(Guard(app, 2_000_000), content_length="26") == 200

"""What the server checks before the app reads a request: the Host header, the API key, the body size.

One plain ASGI middleware (Starlette's ``BaseHTTPMiddleware`` runs every request through extra
tasks and streams, which cost more than the model's forward pass on a short text). Each refusal
is a one-line JSON error:

* **Host** not in ``allowed_hosts``: 400. A page on another site cannot reach a server on
  localhost through DNS rebinding, because its requests carry that site's name.
* **API key**: with ``api_key`` set, every route but ``/health`` needs ``Authorization: Bearer KEY``
  (401 without it). The page at ``/`` passes on a ``?key=`` it was opened with.
* **Body** not in within ``body_timeout_s``: 408 (slow headers are :mod:`textrnn.serving.connections`'s).
* **Body** over ``max_body_bytes``: 413, from a declared Content-Length and, whatever was declared, counted
  while the body arrives; Content-Length together with Transfer-Encoding is refused (400), as RFC 9112 allows.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, Optional, Sequence

OPEN_PATHS = ("/health", "/")  # what a client without the key may fetch: liveness, and the page (no data in it)


class Guard:
    """ASGI middleware: host allowlist, bearer key and body limit, before the app sees the request."""

    def __init__(self, app: Any, max_body_bytes: int, api_key: Optional[str] = None,
                 allowed_hosts: Optional[Sequence[str]] = None, body_timeout_s: float = 30.0) -> None:
        self.app, self.max_body_bytes, self.api_key, self.body_timeout_s = app, max_body_bytes, api_key, body_timeout_s
        self.allowed_hosts = None if allowed_hosts is None or "*" in allowed_hosts else {h.lower() for h in
                                                                                        allowed_hosts}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await reply(scope, receive, send, *refusal)
        length = headers.get(b"content-length")
        if length is not None and b"transfer-encoding" in headers:  # RFC 9112 6.3: a smuggling attempt, refuse
            return await reply(scope, receive, send, 400, "send Content-Length or Transfer-Encoding, not both")
        if length is not None:
            if not length.isdigit():
                return await reply(scope, receive, send, 400, "Content-Length must be a non-negative integer of bytes")
            if int(length) > self.max_body_bytes:
                return await reply(scope, receive, send, 413, self._too_large())
        # whatever was declared, the body is counted as it arrives: the server's framing decides its real size
        parts, size, more = [], 0, True
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - asyncio.get_running_loop().time()))
            except asyncio.TimeoutError:
                return await reply(scope, receive, send, 408, f"the request body did not arrive within "
                                   f"{self.body_timeout_s:g} s; send it at once")
            if message["type"] == "http.disconnect":
                return None
            parts.append(message.get("body", b""))
            size, more = size + len(parts[-1]), message.get("more_body", False)
            if size > self.max_body_bytes:
                return await reply(scope, receive, send, 413, self._too_large())
        return await self.app(scope, replay(b"".join(parts), receive), send)

    def _refusal(self, scope: dict, headers: dict) -> Optional[tuple[int, str]]:
        host = headers.get(b"host", b"").decode("latin-1")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if self.allowed_hosts is not None and name.lower() not in self.allowed_hosts:
            return 400, (f"Host {host!r} is not one this server answers to; serve with --allowed-hosts naming it "
                         "(or '*')")
        if self.api_key and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.api_key}".encode()):
                return 401, "missing or wrong API key; send the header Authorization: Bearer <key>"
        return None

    def _too_large(self) -> str:
        return f"request body over {self.max_body_bytes:,} bytes; send fewer or shorter texts per request"


async def reply(scope, receive, send, status: int, error: str) -> None:
    """A one-line JSON error, sent before the app reads anything."""
    from fastapi.responses import JSONResponse

    await JSONResponse({"error": error}, status_code=status)(scope, receive, send)


def replay(body: bytes, receive):
    """An ASGI ``receive`` that gives ``body`` once, then defers to the real one (for the disconnect)."""
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def default_hosts(host: str) -> list[str]:
    """The Host names to answer for ``--host``: this machine's names on a loopback address, any name otherwise."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return ["127.0.0.1", "localhost", "[::1]", "::1"]
    return ["*"]

"""Connections no single client can hold: request headers and bodies that must arrive in time.

uvicorn closes an idle keep-alive connection, but a client that trickles a byte of its headers now and
then resets that timer and is never closed (slowloris): a few hundred such sockets fill
``--limit-concurrency`` and every other client gets 503. Here each request's headers must be complete
within ``header_timeout_s`` of the connection opening (or of the previous response), whatever arrives
meanwhile; the body's deadline is :class:`~textrnn.serving.guard.Guard`'s, which reads it.
"""

from __future__ import annotations

from typing import Any, Optional


def timed_h11(header_timeout_s: float) -> Any:
    """uvicorn's h11 protocol, closing a connection whose request headers are not in after ``header_timeout_s``."""
    import asyncio

    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        header_deadline: Optional[asyncio.TimerHandle] = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a request's headers are complete: its body is the guard's to time
                self._disarm()

        def on_response_complete(self) -> None:
            self._arm()  # before the next pipelined request, which disarms it again
            super().on_response_complete()

        def connection_lost(self, exc: Optional[Exception]) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self.header_deadline = self.loop.call_later(header_timeout_s, self._late)

        def _disarm(self) -> None:
            if self.header_deadline is not None:
                self.header_deadline.cancel()
                self.header_deadline = None

        def _late(self) -> None:
            self.header_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return TimedH11Protocol

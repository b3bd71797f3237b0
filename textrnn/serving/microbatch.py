"""The ``/predict`` micro-batcher: the texts of concurrent requests share one forward pass.

::

    request A (3 texts) ─┐
    request B (1 text)  ─┼─► queue ─► take all waiting, wait up to 2 ms for more ─► one forward pass ─► split back
    request C (2 texts) ─┘

One worker thread runs the model, so requests never run it at the same time, and a batch of
several requests gives each the probabilities it would get alone. The batch loop survives a
request cancelled while it waits (its client left), follows the event loop it is called from (a
second test client, a restarted server), and a loop that died anyway is reported by ``/health``
and started again by the next request.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from ..core.errors import TextRNNError, one_line


class ServerBusy(TextRNNError):
    """Too many requests are waiting; the client should retry later (HTTP 429)."""


class ModelFailure(Exception):
    """The model raised on a request's texts (HTTP 500, one line); other requests of its batch are answered."""


class MicroBatcher:
    """Collects the texts of concurrent requests for up to ``window_s`` (or ``max_batch`` texts), predicts once."""

    def __init__(self, predict: Callable[[list], list], window_s: float = 0.002, max_batch: int = 64,
                 max_queue: int = 64) -> None:
        self.predict, self.window_s, self.max_batch, self.max_queue = predict, window_s, max_batch, max_queue
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textrnn-model")
        self.queue: Optional[asyncio.Queue] = None
        self.task: Optional[asyncio.Task] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.stats = {"requests": 0, "batches": 0, "largest_batch_requests": 0}

    def failure(self) -> Optional[str]:
        """Why the batch loop died, in one line; None while it runs (or before the first request)."""
        if self.task is None or not self.task.done() or self.task.cancelled():
            return None
        error = self.task.exception()
        why = f"{type(error).__name__}: {one_line(error)}" if error else "it returned"
        return f"the /predict batch loop stopped: {why}"

    async def submit(self, texts: list[str]) -> list[dict]:
        """Label ``texts`` together with requests that arrive within the window; returns their results."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop or self.task is None or self.task.done():  # first call, new loop, or it died
            self.loop, self.queue = loop, asyncio.Queue()
            self.task = loop.create_task(self._run())
        assert self.queue is not None
        if self.queue.qsize() >= self.max_queue:
            raise ServerBusy(f"server busy: {self.queue.qsize()} /predict requests are waiting (the limit, "
                             "--max-queue); retry shortly")
        future = loop.create_future()
        await self.queue.put((texts, future))
        return await future

    async def _gather(self) -> list:
        """The first waiting request, every request already queued, and those arriving within the window."""
        assert self.queue is not None  # made by the first submit
        items = [await self.queue.get()]
        loop, count = asyncio.get_running_loop(), len(items[0][0])
        deadline = loop.time() + self.window_s
        while count < self.max_batch:
            if not self.queue.empty():
                items.append(self.queue.get_nowait())
            else:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(self.queue.get(), left))
                except asyncio.TimeoutError:
                    break
            count += len(items[-1][0])
        return [(texts, future) for texts, future in items if not future.done()]  # a cancelled one is dropped

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._gather()
            if not items:
                continue
            texts = [t for batch, _ in items for t in batch]
            self.stats["requests"] += len(items)
            self.stats["batches"] += 1
            self.stats["largest_batch_requests"] = max(self.stats["largest_batch_requests"], len(items))
            try:
                results = await loop.run_in_executor(self.executor, self.predict, texts)
            except asyncio.CancelledError:
                raise
            except BaseException:  # noqa: B036  # a PanicException from a tokenizer is a BaseException
                await self._one_by_one(items)  # the error fails only the requests whose texts raise it
                continue
            settle(items, results=results)

    async def _one_by_one(self, items: list) -> None:
        """Each request of a batch that failed, predicted alone: its results, or its own error."""
        loop = asyncio.get_running_loop()
        for texts, future in items:
            try:
                result = await loop.run_in_executor(self.executor, self.predict, texts)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: B036  # answered whatever it was, never left waiting
                error = exc if isinstance(exc, TextRNNError) else ModelFailure(
                    f"the model failed on this request's texts ({type(exc).__name__}: {one_line(exc)})")
                settle([(texts, future)], error=error)
                continue
            settle([(texts, future)], results=result)


def settle(items: list, results: Any = None, error: Optional[BaseException] = None) -> None:
    """Hand each waiting request its part of ``results`` (or ``error``); one that left meanwhile is skipped."""
    start = 0
    for batch, future in items:
        if not future.done():
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(results[start:start + len(batch)])
        start += len(batch)

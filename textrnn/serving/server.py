"""``textrnn serve``: an HTTP API and a page for one checkpoint, on FastAPI + uvicorn (the ``serve`` extra).

Endpoints: ``GET /`` (the page), ``GET /health``, ``GET /info``, ``POST /predict`` (classifiers),
``POST /generate`` (language models; server-sent events, or one JSON body with ``"stream": false``),
and FastAPI's own ``/docs`` (OpenAPI). Every bad request is a 4xx with ``{"error": "one line"}``
and the server goes on serving.

Concurrent ``/predict`` requests are micro-batched::

    request A (3 texts) ─┐
    request B (1 text)  ─┼─► queue ─► take all waiting, wait up to 2 ms for more ─► one forward pass ─► split back
    request C (2 texts) ─┘

One worker thread runs the model, so requests never run it at the same time, and texts of
many clients share a batch: under load throughput grows with concurrency, and a batch of
several requests gives each the probabilities it would get alone.
"""

import asyncio  # no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run time
import gc
import json
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any, Optional

from ..core.errors import TextRNNError, one_line
from ..models.card import without_local_paths


def require_serving() -> None:
    """Nothing when FastAPI and uvicorn are installed, else a one-line error naming the extra to install."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise TextRNNError(f"textrnn serve needs fastapi and uvicorn ({exc.name} is missing): "
                           "pip install 'textrnn[serve]'") from None


class MicroBatcher:
    """Collects the texts of concurrent requests for up to ``window_s`` (or ``max_batch`` texts), predicts once."""

    def __init__(self, predict, window_s: float = 0.002, max_batch: int = 64) -> None:
        self.predict, self.window_s, self.max_batch = predict, window_s, max_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textrnn-model")
        self.queue: Optional[asyncio.Queue] = None
        self.stats = {"requests": 0, "batches": 0, "largest_batch_requests": 0}

    async def submit(self, texts: list[str]) -> list[dict]:
        """Label ``texts`` together with requests that arrive within the window; returns their results."""
        if self.queue is None:
            self.queue = asyncio.Queue()
            asyncio.get_running_loop().create_task(self._run())
        future = asyncio.get_running_loop().create_future()
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
        return items

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._gather()
            texts = [t for batch, _ in items for t in batch]
            self.stats["requests"] += len(items)
            self.stats["batches"] += 1
            self.stats["largest_batch_requests"] = max(self.stats["largest_batch_requests"], len(items))
            try:
                results = await loop.run_in_executor(self.executor, self.predict, texts)
            except Exception as exc:  # the model's error goes to every request of the batch
                for _, future in items:
                    future.set_exception(exc)
                continue
            start = 0
            for batch, future in items:
                future.set_result(results[start:start + len(batch)])
                start += len(batch)


def page() -> str:
    """The HTML page served at ``/``."""
    return resources.files("textrnn").joinpath("serving/static/index.html").read_text(encoding="utf-8")


def info(model: Any) -> dict:
    """What ``/info`` says of a model: its task, labels and sizes."""
    c = model.config
    out = {"task": model.task, "vocab_size": c.vocab_size, "tokenizer_kind": c.tokenizer_kind,
           "config": without_local_paths(c.to_dict())}
    if model.is_classifier:
        out.update(labels=model.label_names, problem_type=c.problem_type)
    return out


def stream_generation(model: Any, request: dict, loop: asyncio.AbstractEventLoop, executor: Any) -> asyncio.Queue:
    """Run ``generate_text`` in the worker; each piece, then the end (or the error), lands in the returned queue."""
    queue: asyncio.Queue = asyncio.Queue()

    def put(item: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        try:
            text = model.generate_text(on_token=lambda pieces: put(("piece", pieces[0])) if pieces[0] else None,
                                       **request)[0]
            put(("done", text))
        except Exception as exc:  # reported to the client as an error event
            put(("error", exc))

    executor.submit(work)
    return queue


def sse(event: dict) -> str:
    """One server-sent event."""
    return f"data: {json.dumps(event)}\n\n"


def serve(checkpoint: str, host: str = "127.0.0.1", port: int = 8000, device: str = "auto", **limits) -> None:
    """Load ``checkpoint`` and serve it until interrupted."""
    require_serving()
    import uvicorn

    from ..core.runtime import select_device
    from ..models.registry import load_model

    app = create_app(load_model(checkpoint, map_location=select_device(device)), **limits)
    # Everything alive now (torch, the model, the app) lives as long as the server: keep it out of
    # the collector's full passes, which otherwise stall every request in flight for tens of ms.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def create_app(model: Any, max_body_bytes: int = 1_000_000, max_new_tokens: int = 1000, max_texts: int = 256,
               batch_window_ms: float = 2.0, max_batch: int = 64) -> Any:
    """The FastAPI app serving ``model`` (see the module docstring for the endpoints)."""
    require_serving()
    from fastapi import FastAPI

    app = FastAPI(title="textrnn", description=f"A textrnn {model.task} model", version="1")
    app.state.model = model
    app.state.batcher = MicroBatcher(lambda texts: model.predict(texts, batch_size=max_batch), batch_window_ms / 1000,
                                     max_batch)
    app.state.generation = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textrnn-generate")
    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes)
    _error_handlers(app)
    _routes(app, model, _request_models(max_texts, max_new_tokens))
    return app


def _request_models(max_texts: int, token_limit: int):
    from pydantic import BaseModel, ConfigDict, Field

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        texts: list[str] = Field(min_length=1, max_length=max_texts, description="the texts to label")

    class GenerateRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prompt: str = ""
        max_new_tokens: int = Field(min(200, token_limit), ge=1, le=token_limit)
        temperature: float = Field(0.8, ge=0)
        top_k: Optional[int] = Field(None, ge=1)
        top_p: Optional[float] = Field(None, gt=0, le=1)
        seed: Optional[int] = None
        repetition_penalty: float = Field(1.0, gt=0)
        no_repeat_ngram_size: int = Field(0, ge=0)
        min_new_tokens: int = Field(0, ge=0)
        num_beams: int = Field(1, ge=1, le=16)
        stop: list[str] = Field(default_factory=list, max_length=16)
        stream: bool = True

    return PredictRequest, GenerateRequest


def _error_handlers(app) -> None:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        first = exc.errors()[0]
        if first.get("type") == "json_invalid":
            return JSONResponse({"error": "the body is not valid JSON; send a JSON object"}, status_code=400)
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(TextRNNError)
    async def user_error(request, exc):
        return JSONResponse({"error": str(exc)}, status_code=400)


class BodyLimit:
    """ASGI middleware: a body over ``max_body_bytes`` gets a one-line 413 before the app reads it.

    A declared Content-Length is checked up front; a chunked body (no length) is read up to the
    limit and handed on whole, so it is capped too. Plain ASGI rather than ``@app.middleware``:
    Starlette's BaseHTTPMiddleware runs every request through extra tasks and streams, which
    cost more than the model's forward pass on a short text.
    """

    def __init__(self, app, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await _reply(scope, receive, send, 400, "Content-Length must be a non-negative integer of bytes")
            if int(length) > self.max_body_bytes:
                return await self._too_large(scope, receive, send)
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body, more = body + message.get("body", b""), message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                return await self._too_large(scope, receive, send)
        return await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, scope, receive, send) -> None:
        error = f"request body over {self.max_body_bytes:,} bytes; send fewer or shorter texts per request"
        await _reply(scope, receive, send, 413, error)


async def _reply(scope, receive, send, status: int, error: str) -> None:
    """A one-line JSON error, sent from the middleware before the app reads anything."""
    from fastapi.responses import JSONResponse

    await JSONResponse({"error": error}, status_code=status)(scope, receive, send)


def _replay(body: bytes, receive):
    """An ASGI ``receive`` that gives ``body`` once, then defers to the real one (for the disconnect)."""
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _routes(app, model, request_models) -> None:
    from fastapi import HTTPException
    from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

    PredictRequest, GenerateRequest = request_models

    def need(classifier: bool) -> None:
        if model.is_classifier != classifier:
            verb, kind = ("/predict", "classifier") if classifier else ("/generate", "language model")
            raise HTTPException(400, f"{verb} needs a {kind}; this server holds a {model.task} model")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return page()

    @app.get("/health")
    async def health():
        return {"status": "ok", **app.state.batcher.stats}

    @app.get("/info")
    async def model_info():
        return info(model)

    @app.post("/predict")
    async def predict(body: PredictRequest):  # type: ignore[valid-type]  # a class made by _request_models
        need(classifier=True)  # a JSONResponse as is: FastAPI's encoder walks every float of a dict it is given
        return JSONResponse({"predictions": await app.state.batcher.submit(body.texts)})  # type: ignore[attr-defined]

    @app.post("/generate")
    async def generate(body: GenerateRequest):  # type: ignore[valid-type]
        need(classifier=False)
        request = body.model_dump(exclude={"stream"})  # type: ignore[attr-defined]
        queue = stream_generation(model, request, asyncio.get_running_loop(), app.state.generation)
        first = await queue.get()
        if first[0] == "error":  # bad settings fail before the first token: a plain 4xx
            raise _http_error(first[1])
        if not body.stream:  # type: ignore[attr-defined]
            while first[0] == "piece":  # until it is done, or fails part way
                first = await queue.get()
            if first[0] == "error":
                raise _http_error(first[1])
            return JSONResponse({"text": first[1]})
        return StreamingResponse(_events(first, queue), media_type="text/event-stream")


def _http_error(exc: BaseException) -> Exception:
    """A generation's failure as what the handler raises: a one-line 4xx for bad settings, else a 500."""
    from starlette.exceptions import HTTPException

    return exc if isinstance(exc, TextRNNError) else HTTPException(500, f"generation failed: {one_line(exc)}")


async def _events(first: tuple, queue: asyncio.Queue):
    item = first
    while True:
        kind, value = item
        if kind == "piece":
            yield sse({"text": value})
        elif kind == "done":
            yield sse({"done": True, "text": value})
            return
        else:
            yield sse({"error": str(value)})
            return
        item = await queue.get()

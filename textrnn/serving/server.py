"""``textrnn serve``: an HTTP API and a page for one checkpoint, on FastAPI + uvicorn (the ``serve`` extra).

Endpoints: ``GET /`` (the page), ``GET /health``, ``GET /info``, ``POST /predict`` (classifiers),
``POST /generate`` (language models; server-sent events, or one JSON body with ``"stream": false``),
and FastAPI's own ``/docs`` (OpenAPI). Every bad request is a 4xx with ``{"error": "one line"}``
and the server goes on serving.

Concurrent ``/predict`` requests share forward passes (:mod:`textrnn.serving.microbatch`); the Host
header, an API key and the body size are checked first (:mod:`textrnn.serving.guard`). Each request's
cost is capped: texts per request, prompt tokens, new tokens, beams x new tokens, and requests
waiting (429 past it). A generation whose client disconnects is stopped at its next token.
"""

import asyncio  # no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run time
import concurrent.futures
import gc
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Any, Optional, TypeVar, cast

from ..core.errors import TextRNNError, one_line
from ..models.base import TextModel
from ..models.card import without_local_paths
from ..models.classifier import TextClassifier
from ..models.generation_config import fill_page
from ..models.language_model import RNNLanguageModel
from ..models.prediction import keep_top_k
from .connections import timed_h11
from .guard import Guard, default_hosts
from .microbatch import MicroBatcher, ModelFailure, ServerBusy
from .requests import check_cost, check_texts, explained, generation_request

LOG = logging.getLogger(__name__)
Served = TypeVar("Served", TextClassifier, RNNLanguageModel)  # what a route needs the model to be


def require_serving() -> None:
    """Nothing when FastAPI and uvicorn are installed, else a one-line error naming the extra to install."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise TextRNNError(f"textrnn serve needs fastapi and uvicorn ({exc.name} is missing): "
                           "pip install -e '.[serve]' in textrnn's clone") from None


def page() -> str:
    """The HTML page served at ``/``, its stylesheet and highlighting script (shared with the web export)
    inlined: one response."""
    static = resources.files("textrnn").joinpath("serving/static")
    css = static.joinpath("page.css").read_text(encoding="utf-8")
    script = static.joinpath("highlight.js").read_text(encoding="utf-8")
    return fill_page(static.joinpath("index.html").read_text(encoding="utf-8")).replace(
        '<link rel="stylesheet" href="page.css">', f"<style>\n{css}</style>").replace(
        '<script src="highlight.js"></script>', f"<script>\n{script}</script>")


def info(model: TextModel) -> dict:
    """What ``/info`` says of a model: its task, labels and sizes."""
    c = model.config
    out = {"task": model.task, "vocab_size": c.vocab_size, "tokenizer_kind": c.tokenizer_kind,
           "config": without_local_paths(c.to_dict())}
    if isinstance(model, TextClassifier):
        out.update(labels=model.label_names, problem_type=c.problem_type)
    return out


QUEUE_PIECES = 64  # pieces of text a generation may run ahead of its client


class GenerationCancelled(Exception):
    """Raised in the worker at the next token once a generation's client has gone."""


def stream_generation(model: RNNLanguageModel, prompt: str, config: Any, loop: asyncio.AbstractEventLoop, executor: Any,
                      cancel: threading.Event, on_end: Any = None) -> asyncio.Queue:
    """Run ``stream_text(prompt, generation_config=config)`` in the worker; each piece, then the end (or the
    error), lands in the returned queue.

    Setting ``cancel`` stops the generation at its next token (its client left); ``on_end(cancelled)`` runs
    in the event loop when the worker is done with it, however it ended.
    """
    queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_PIECES)

    def put(item: Any) -> None:
        """Hand ``item`` to the event loop, waiting while the queue is full: the generation goes no faster than
        its client reads, so a slow client costs no memory, and a client that left stops it here."""
        while not cancel.is_set():
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            try:
                future.result(timeout=0.5)
                return
            except concurrent.futures.TimeoutError:
                if not future.cancel():  # it went in just now
                    return
        raise GenerationCancelled

    def generated() -> str:
        text = ""
        for piece in model.stream_text(prompt, generation_config=config):
            if piece:
                put(("piece", piece))
                text += piece
            elif cancel.is_set():
                raise GenerationCancelled
        return text

    def work() -> None:
        cancelled = False
        try:
            try:
                result: tuple = ("done", generated())
            except GenerationCancelled:
                raise
            except Exception as exc:  # reported to the client as an error event
                result = ("error", exc)
            put(result)
        except GenerationCancelled:
            cancelled = True
        finally:
            if on_end is not None:
                loop.call_soon_threadsafe(on_end, cancelled)

    executor.submit(work)
    return queue


def sse(event: dict) -> str:
    """One server-sent event."""
    return f"data: {json.dumps(event)}\n\n"


def serve(checkpoint: str, host: str = "127.0.0.1", port: int = 8000, device: str = "auto",
          limit_concurrency: Optional[int] = 256, timeout_keep_alive: int = 5, **limits) -> None:
    """Load ``checkpoint`` and serve it until interrupted.

    ``limits`` are :class:`Limits` fields; ``allowed_hosts`` defaults to this machine's names when
    ``host`` is a loopback address. uvicorn answers 503 past ``limit_concurrency`` open connections
    and closes an idle keep-alive connection after ``timeout_keep_alive`` seconds.
    """
    require_serving()
    import uvicorn

    from ..core.runtime import select_device
    from ..models.registry import load_model

    limits.setdefault("allowed_hosts", default_hosts(host))
    app = create_app(load_model(checkpoint, map_location=select_device(device)), **limits)
    # said once the model has loaded: a checkpoint that fails to load never claims to be served
    LOG.info(f"serving {checkpoint} on http://{host}:{port} (page at /, API docs at /docs); one access-log line "
             "per request follows")
    # Everything alive now (torch, the model, the app) lives as long as the server: keep it out of
    # the collector's full passes, which otherwise stall every request in flight for tens of ms.
    gc.collect()
    gc.freeze()
    header_timeout = Limits(**limits).header_timeout_s
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=True, http=timed_h11(header_timeout),
                limit_concurrency=limit_concurrency, timeout_keep_alive=timeout_keep_alive)
    exit_even_if_stuck(app)


def exit_even_if_stuck(app: Any, grace_s: float = 5.0) -> None:
    """After SIGTERM has stopped uvicorn: the model's worker threads get ``grace_s`` to finish; one stuck in a
    forward pass or a tokenizer call (Rust code Python cannot interrupt) would keep the process alive forever,
    since Python waits for its threads at exit, so the process then ends without waiting for it."""
    import os
    import time

    for executor in (app.state.batcher.executor, app.state.generation):
        executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace_s
    workers = [t for t in threading.enumerate() if t.name.startswith(("textrnn-model", "textrnn-generate"))]
    while any(t.is_alive() for t in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    if any(t.is_alive() for t in workers):
        LOG.warning(f"a model call was still running {grace_s:g} s after shutdown; exiting without it")
        os._exit(0)


@dataclass
class Limits:
    """What one request may cost; each is an option of ``textrnn serve``, and a request past one gets a 4xx
    that names it."""

    max_body_bytes: int = 1_000_000
    max_texts: int = 256  # texts per /predict request
    max_new_tokens: int = 1000  # per /generate request
    max_prompt_tokens: int = 4096  # a /generate prompt's tokens
    max_beam_tokens: int = 4000  # num_beams x max_new_tokens of one /generate request
    max_queue: int = 64  # requests waiting for the model (each of /predict and /generate); 429 past it
    batch_window_ms: float = 2.0  # how long a lone /predict waits for company
    header_timeout_s: float = 10.0  # a request's headers must arrive within this (slow clients are closed)
    body_timeout_s: float = 30.0  # a request's body must arrive within this (408 past it)
    max_batch: int = 64  # texts in one forward pass
    api_key: Optional[str] = None  # if set, every route but /health and / needs Authorization: Bearer KEY
    allowed_hosts: Optional[list] = None  # Host header names answered (None: any)


def create_app(model: TextModel, **limits) -> Any:
    """The FastAPI app serving ``model`` (see the module docstring); ``limits`` are :class:`Limits` fields."""
    require_serving()
    from fastapi import FastAPI

    lim = Limits(**limits)
    app = FastAPI(title="textrnn", description=f"A textrnn {model.task} model", version="1")
    app.state.model, app.state.limits = model, lim
    app.state.generations = {"generations_waiting": 0, "generations_cancelled": 0}
    # only a classifier's routes call it (a language model's /predict is refused before the batcher)
    app.state.batcher = MicroBatcher(lambda texts: cast(TextClassifier, model).predict(texts, batch_size=lim.max_batch),
                                     lim.batch_window_ms / 1000, lim.max_batch, lim.max_queue)
    app.state.generation = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textrnn-generate")
    app.add_middleware(Guard, max_body_bytes=lim.max_body_bytes, api_key=lim.api_key,
                       allowed_hosts=lim.allowed_hosts, body_timeout_s=lim.body_timeout_s)
    _error_handlers(app)
    _routes(app, model)
    return app


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
        return JSONResponse({"error": str(exc)}, status_code=429 if isinstance(exc, ServerBusy) else 400)

    @app.exception_handler(ModelFailure)
    async def model_failure(request, exc):
        return JSONResponse({"error": str(exc)}, status_code=500)


def _routes(app, model: TextModel) -> None:
    from fastapi import Body, HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

    from .schemas import PredictRequest

    def need(kind: type[Served]) -> Served:
        """The model as ``kind``, or a 400 naming what the route needs."""
        if not isinstance(model, kind):
            verb, what = ("/predict", "classifier") if kind is TextClassifier else ("/generate", "language model")
            raise HTTPException(400, f"{verb} needs a {what}; this server holds a {model.task} model")
        return model

    html = page()  # read and assembled once, not on every request

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return html

    @app.get("/health")
    async def health():
        failure = app.state.batcher.failure()
        if failure is not None:
            return JSONResponse({"status": "error", "error": failure}, status_code=503)
        return {"status": "ok", **app.state.generations, **app.state.batcher.stats}

    @app.get("/info")
    async def model_info():
        return info(model)

    @app.post("/predict")
    async def predict(body: PredictRequest):
        classifier = need(TextClassifier)
        check_texts(body.texts, app.state.limits)
        if body.explain:  # gradients, so not in the micro-batches: one worker
            results = await explained(app, classifier, body.texts)
        else:
            results = await app.state.batcher.submit(body.texts)
        # a JSONResponse as is: FastAPI's encoder walks every float of a dict it is given
        return JSONResponse({"predictions": [keep_top_k(r, body.top_k) for r in results]})

    @app.post("/generate")
    async def generate(request: Request, body: dict[str, Any] = Body(...)):
        generator = need(RNNLanguageModel)
        prompt, streamed, config = generation_request(body, app.state.limits)
        check_cost(generator, prompt, config, app.state.limits)
        counts = app.state.generations
        if counts["generations_waiting"] >= app.state.limits.max_queue:
            raise ServerBusy(f"server busy: {counts['generations_waiting']} generations are running or waiting "
                             "(the limit, --max-queue); retry shortly")
        counts["generations_waiting"] += 1
        cancel = threading.Event()

        def finished(cancelled: bool) -> None:
            counts["generations_waiting"] -= 1
            counts["generations_cancelled"] += cancelled

        queue = stream_generation(generator, prompt, config, asyncio.get_running_loop(), app.state.generation, cancel,
                                  finished)
        first = await _next(queue, request, cancel)
        if first[0] == "error":  # bad settings fail before the first token: a plain 4xx
            raise _http_error(first[1])
        if not streamed:
            while first[0] == "piece":  # until it is done, or fails part way
                first = await _next(queue, request, cancel)
            if first[0] == "error":
                raise _http_error(first[1])
            return JSONResponse({"text": first[1]})
        return StreamingResponse(_events(first, queue, cancel), media_type="text/event-stream")


async def _next(queue: asyncio.Queue, request: Any, cancel: threading.Event) -> tuple:
    """The next item of a generation, checking twice a second that its client is still there (else cancel it)."""
    while True:
        try:
            return await asyncio.wait_for(queue.get(), 0.5)
        except asyncio.TimeoutError:
            if await request.is_disconnected():
                cancel.set()
                return ("error", GenerationCancelled())


def _http_error(exc: BaseException) -> Exception:
    """A generation's failure as what the handler raises: a one-line 4xx for bad settings, else a 500."""
    from starlette.exceptions import HTTPException

    if isinstance(exc, GenerationCancelled):
        return HTTPException(499, "the client closed the request")
    return exc if isinstance(exc, TextRNNError) else HTTPException(500, f"generation failed: {one_line(exc)}")


async def _events(first: tuple, queue: asyncio.Queue, cancel: threading.Event):
    item = first
    try:
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
    finally:  # the client left (Starlette closes the stream) or it ended: either way the worker may stop
        cancel.set()

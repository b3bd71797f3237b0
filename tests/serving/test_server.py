"""`textrnn serve`: the real server on a free local port, with a tiny trained classifier and generator."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from textrnn import load_config, load_model
from textrnn.training.api import train

from ..conftest import CORPUS, write_sentiment
from ..server_harness import running_server

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve_cls")
    data = write_sentiment(tmp / "data")
    train(load_config(None, [f"data.dataset={data}", "data.text_column=sentence", f"train.output_dir={tmp / 'run'}",
                             "data.batch_size=16", "model.embedding_dim=16", "model.hidden_size=16",
                             "train.max_epochs=3", "train.lr=0.02", "train.progress=false"], task="classification"))
    return tmp / "run"


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve_lm")
    corpus = tmp / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    train(load_config(None, [f"data.dataset={corpus}", f"train.output_dir={tmp / 'run'}", "tokenizer.kind=char",
                             "data.batch_size=8", "data.seq_len=32", "model.embedding_dim=16", "model.hidden_size=32",
                             "train.max_steps=60", "train.max_epochs=50", "train.progress=false"],
                      task="language_model"))
    return tmp / "run"


@pytest.fixture(scope="module")
def classifier_url(classifier_dir):
    with running_server(classifier_dir, "--max-body-bytes", "4000", "--max-new-tokens", "50") as url:
        yield url


@pytest.fixture(scope="module")
def generator_url(generator_dir):
    with running_server(generator_dir, "--max-new-tokens", "500") as url:
        yield url


def test_health_info_docs_and_page(classifier_url):
    assert httpx.get(f"{classifier_url}/health").json()["status"] == "ok"
    response = httpx.get(f"{classifier_url}/info")
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["task"] == "classification" and info["labels"] == ["neg", "pos"] and info["vocab_size"] > 4
    assert httpx.get(f"{classifier_url}/docs").status_code == 200
    assert "/predict" in httpx.get(f"{classifier_url}/openapi.json").json()["paths"]
    page = httpx.get(f"{classifier_url}/")
    assert page.status_code == 200 and "<textarea" in page.text
    assert not any(f'{attr}="{scheme}' in page.text for attr in ("src", "href") for scheme in ("http", "//"))  # no CDN


def test_predict_gives_what_the_model_gives(classifier_url, classifier_dir):
    texts = ["a good film", "bad and dull", ""]
    got = httpx.post(f"{classifier_url}/predict", json={"texts": texts}).json()["predictions"]
    want = load_model(classifier_dir).predict(texts)
    assert [g["label"] for g in got] == [w["label"] for w in want]
    for g, w in zip(got, want):
        assert g["probabilities"] == pytest.approx(w["probabilities"], abs=1e-6)


def test_concurrent_requests_are_batched_and_get_their_own_answers(classifier_url, classifier_dir):
    texts = [f"{'good ' * (i % 5)}film {'bad ' * (i % 3)}" for i in range(24)]
    alone = load_model(classifier_dir).predict(texts)
    results: dict = {}
    start = threading.Barrier(len(texts))

    def client(i: int) -> None:
        start.wait()
        results[i] = httpx.post(f"{classifier_url}/predict", json={"texts": [texts[i]]}, timeout=30).json()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, want in enumerate(alone):
        assert results[i]["predictions"][0]["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)
    assert httpx.get(f"{classifier_url}/health").json()["largest_batch_requests"] > 1  # requests shared a batch


@pytest.mark.parametrize(
    "call,status,message",
    [
        (lambda u: httpx.post(f"{u}/predict", json={"texts": []}), 422, "texts"),
        (
            lambda u: httpx.post(
                f"{u}/predict", content=b'{"texts": ["a"', headers={"content-type": "application/json"}
            ),
            400,
            "not valid JSON",
        ),
        (lambda u: httpx.post(f"{u}/predict", json={"texts": ["x" * 5000]}), 413, "over 4,000 bytes"),
        (lambda u: httpx.post(f"{u}/predict", json={"text": "a"}), 422, "texts"),
        # chunked, so no Content-Length to check up front: the body is still capped as it arrives
        (
            lambda u: httpx.post(
                f"{u}/predict",
                content=iter([b'{"texts": ["', b"x" * 3000, b"x" * 3000, b'"]}']),
                headers={"content-type": "application/json"},
            ),
            413,
            "over 4,000 bytes",
        ),
        (
            lambda u: httpx.post(
                f"{u}/predict",
                content=iter([b'{"texts": ', b'["a chunked body under the limit"]}']),
                headers={"content-type": "application/json"},
            ),
            200,
            None,
        ),
        (lambda u: httpx.post(f"{u}/generate", json={"prompt": "a"}), 400, "/generate needs a language model"),
    ],
)
def test_bad_requests_get_a_4xx_and_the_server_keeps_serving(classifier_url, call, status, message):
    response = call(classifier_url)
    assert response.status_code == status
    if status == 200:
        assert len(response.json()["predictions"]) == 1
    else:
        error = response.json()["error"]
        assert message in error and "\n" not in error
    assert httpx.post(f"{classifier_url}/predict", json={"texts": ["good"]}).status_code == 200


@pytest.mark.parametrize(
    "body,message",
    [
        ({"max_new_tokens": 501}, "max_new_tokens"),
        ({"temperature": -0.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"prompt": "\u2603\u2603"}, "no token the model knows"),
        ({"temperature": 1e-300}, "temperature"),
        ({"repetition_penalty": 1e-300}, "repetition_penalty"),
        ({"seed": 10**30}, "seed"),
        ({"prompt": "All\ud800"}, "not valid Unicode"),
    ],
)
def test_bad_generation_requests(generator_url, body, message):
    raw = json.dumps({"prompt": "All", **body}).encode()  # ASCII escapes: a lone surrogate travels as \ud800
    response = httpx.post(f"{generator_url}/generate", content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500 and message in response.json()["error"]
    assert httpx.post(f"{generator_url}/predict", json={"texts": ["a"]}).status_code == 400


def test_generation_streams_before_it_ends_and_matches_the_whole_text(generator_url):
    body = {"prompt": "All:", "max_new_tokens": 400, "temperature": 0.8, "seed": 5}
    events, times, started = [], [], time.monotonic()
    with httpx.stream("POST", f"{generator_url}/generate", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                times.append(time.monotonic() - started)
    assert events[-1]["done"] and len(events) > 10
    assert times[0] < times[-1]  # the first piece came before the generation ended
    streamed = "".join(e["text"] for e in events[:-1])
    assert streamed == events[-1]["text"]
    whole = httpx.post(f"{generator_url}/generate", json={**body, "stream": False}, timeout=60).json()["text"]
    assert whole == streamed  # same seed, same text
    cut = httpx.post(f"{generator_url}/generate", json={**body, "stream": False, "stop": [whole[20:23]]}).json()["text"]
    assert cut == whole[: whole.index(whole[20:23])]


def test_a_generation_that_fails_midway_answers_at_once_and_the_server_keeps_serving(generator_url):
    """Each character used once (no_repeat_ngram_size=1) bans the whole vocabulary after a few dozen tokens,
    so sampling fails after its first tokens; a non-streaming request used to wait for a 'done' that never came."""
    body = {"prompt": "All:", "max_new_tokens": 300, "temperature": 1.0, "seed": 0, "no_repeat_ngram_size": 1}
    answer = httpx.post(f"{generator_url}/generate", json={**body, "stream": False}, timeout=30)
    assert answer.status_code >= 400 and "error" in answer.json()  # an answer, not a hang
    assert httpx.get(f"{generator_url}/health", timeout=10).json()["status"] == "ok"
    short = httpx.post(f"{generator_url}/generate", json={"prompt": "All:", "max_new_tokens": 5, "stream": False},
                       timeout=30)
    assert short.status_code == 200 and len(short.json()["text"]) > 0


@pytest.mark.slow
def test_the_page_in_a_real_browser(classifier_url, generator_url, classifier_dir, tmp_path):
    """Headless Chromium loads the page, a text is typed, the prediction and a stream of text appear.

    Needs the Debian chromium package (apt-get install chromium). With TEXTRNN_SCREENSHOTS=DIR
    the screenshots are kept there (the docs' come from this test).
    """
    import os
    import shutil

    from ..server_harness import Browser

    assert shutil.which("chromium"), "install the browser: apt-get install -y chromium"
    shots = Path(os.environ.get("TEXTRNN_SCREENSHOTS", tmp_path))
    browser = Browser(tmp_path / "profile")
    try:
        browser.call("Page.navigate", url=f"{classifier_url}/")
        browser.wait_for("document.body.dataset.ready === 'classification'")
        browser.type_into("text", "a good film with a great plot")
        browser.evaluate("document.getElementById('predict').click()")
        browser.wait_for("document.querySelectorAll('#bars .bar').length === 2")
        shown = browser.evaluate("document.querySelector('#bars .bar.chosen').dataset.label")
        assert shown == load_model(classifier_dir).predict(["a good film with a great plot"])[0]["label"]
        browser.screenshot(shots / "serve_classifier.png")
        browser.call("Page.navigate", url=f"{generator_url}/")
        browser.wait_for("document.body.dataset.ready === 'language_model'")
        browser.type_into("prompt", "All:")
        browser.evaluate("document.getElementById('run').click()")
        browser.wait_for("document.getElementById('output').textContent.length > 0")  # streamed pieces arrive
        browser.wait_for("document.getElementById('output').dataset.done === 'true'")
        assert len(browser.evaluate("document.getElementById('output').textContent")) > 50
        assert browser.evaluate("document.getElementById('error').textContent") == ""
        browser.screenshot(shots / "serve_generator.png")
    finally:
        browser.close()


def test_a_negative_content_length_is_a_bad_request_not_a_large_one():
    """The body limit reads Content-Length before the app does (uvicorn passes what h11 accepts)."""
    import asyncio

    from textrnn.serving.server import BodyLimit

    async def app(scope, receive, send):  # the app behind the limit: must not be reached
        raise AssertionError("the request reached the app")

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    for length, status in ((b"-5", 400), (b"abc", 400), (b"5000000", 413)):
        sent.clear()
        scope = {"type": "http", "method": "POST", "path": "/predict", "headers": [(b"content-length", length)]}
        asyncio.run(BodyLimit(app, 1_000_000)(scope, receive, send))
        assert sent[0]["status"] == status, (length, sent[0])
        body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
        assert ("non-negative integer" in body["error"]) == (status == 400)

"""`textrnn serve`: the real server on a free local port, with a tiny trained classifier and generator."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from textrnn import load_model

from ..server_harness import running_server

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def classifier_dir(trained_classifier):
    return trained_classifier


@pytest.fixture(scope="module")
def generator_dir(trained_generator):
    return trained_generator


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


def test_a_poison_text_among_concurrent_requests_fails_only_its_own(classifier_url):
    results: dict = {}
    start = threading.Barrier(12)

    def client(i: int) -> None:
        body = b'{"texts": ["\\ud800"]}' if i == 5 else b'{"texts": ["a good film"]}'
        start.wait()
        results[i] = httpx.post(f"{classifier_url}/predict", content=body, timeout=30,
                                headers={"content-type": "application/json"}).status_code

    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.pop(5) == 400 and set(results.values()) == {200}


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
        (lambda u: httpx.post(f"{u}/predict", json={"texts": ["a"], "top_k": 0}), 422, "top_k"),
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
        # a lone surrogate: a 400 for this request alone (it was a plain-text 500 for its whole micro-batch)
        (lambda u: httpx.post(f"{u}/predict", content=b'{"texts": ["fine", "\\ud800"]}',
                              headers={"content-type": "application/json"}), 400, "texts[1] is not valid Unicode"),
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
        ({"temperatur": 0.5}, "unknown generation setting(s) temperatur"),  # GenerationConfig's own checks
        ({"top_k": "5"}, "top_k must be an integer"),
        ({"num_samples": 2}, "one sample per request"),
        ({"num_beams": 17}, "num_beams must be an integer of at most 16"),
        ({"stream": "yes"}, "stream true or false"),
    ],
)
def test_bad_generation_requests(generator_url, body, message):
    raw = json.dumps({"prompt": "All", **body}).encode()  # ASCII escapes: a lone surrogate travels as \ud800
    response = httpx.post(f"{generator_url}/generate", content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500 and message in response.json()["error"]
    assert httpx.post(f"{generator_url}/predict", json={"texts": ["a"]}).status_code == 400


def test_a_request_without_settings_decodes_as_the_library_does(generator_url, generator_dir):
    answer = httpx.post(f"{generator_url}/generate", json={"prompt": "All:", "seed": 4, "stream": False}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"] == load_model(generator_dir).generate_text("All:", seed=4)[0]


def test_generation_streams_before_it_ends_and_matches_the_whole_text(generator_url):
    body = {"prompt": "All:", "max_new_tokens": 400, "temperature": 0.8, "seed": 5}
    events = []
    with httpx.stream("POST", f"{generator_url}/generate", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["done"] and len(events) > 10  # that events arrive before the end: the next test
    streamed = "".join(e["text"] for e in events[:-1])
    assert streamed == events[-1]["text"]
    whole = httpx.post(f"{generator_url}/generate", json={**body, "stream": False}, timeout=60).json()["text"]
    assert whole == streamed  # same seed, same text
    cut = httpx.post(f"{generator_url}/generate", json={**body, "stream": False, "stop": [whole[20:23]]}).json()["text"]
    assert cut == whole[: whole.index(whole[20:23])]


def test_a_generation_that_runs_out_of_tokens_ends_and_answers_at_once(generator_url):
    """Each character used once (no_repeat_ngram_size=1) bans the whole vocabulary after a few dozen tokens.
    Sampling then failed part way, and a non-streaming request waited for a 'done' that never came; now the
    sample ends there, as at <eos>, streamed or not."""
    body = {"prompt": "All:", "max_new_tokens": 300, "temperature": 1.0, "seed": 0, "no_repeat_ngram_size": 1}
    answer = httpx.post(f"{generator_url}/generate", json={**body, "stream": False}, timeout=30)
    assert answer.status_code == 200, answer.text
    text = answer.json()["text"]
    assert 0 < len(text) == len(set(text + "All:")) - len(set("All:"))  # every character once, prompt's excluded
    events = [json.loads(line[6:]) for line in httpx.post(f"{generator_url}/generate", json=body, timeout=30)
              .text.splitlines() if line.startswith("data: ")]
    assert events[-1] == {"done": True, "text": text}
    assert httpx.get(f"{generator_url}/health", timeout=10).json()["status"] == "ok"


def test_the_page_in_a_real_browser(classifier_url, generator_url, classifier_dir, tmp_path):
    """Headless Chromium loads the page, a text is typed, the prediction and a stream of text appear.

    Needs the Debian chromium package (apt-get install chromium). With TEXTRNN_SCREENSHOTS=DIR
    the screenshots are kept there (the docs' come from this test).
    """
    import os
    import shutil

    from ..server_harness import Browser

    if not shutil.which("chromium"):
        pytest.skip("needs headless Chromium: apt-get install -y chromium (make test installs it as root)")
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
        browser.evaluate("document.getElementById('explain').click()")  # tick: the words are highlighted
        browser.evaluate("document.getElementById('predict').click()")
        browser.wait_for("document.querySelectorAll('#explanation .token').length === 7")
        shown = browser.evaluate("[...document.querySelectorAll('#explanation .token')].map(s => "
                                 "Number(s.dataset.attribution))")
        want = load_model(classifier_dir).explain("a good film with a great plot")["attributions"]
        assert shown == pytest.approx(want, abs=1e-5)
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


def test_each_cost_limit_is_a_4xx_that_names_it(generator_url):
    long_prompt = {"prompt": "All: " * 3000, "max_new_tokens": 5, "stream": False}  # 15,000 chars and tokens
    answer = httpx.post(f"{generator_url}/generate", json=long_prompt, timeout=30)
    assert answer.status_code == 422 and "--max-prompt-tokens" in answer.json()["error"]
    beams = {"prompt": "All:", "max_new_tokens": 300, "num_beams": 16, "stream": False}
    answer = httpx.post(f"{generator_url}/generate", json=beams, timeout=30)
    assert answer.status_code == 422 and "--max-beam-tokens" in answer.json()["error"]
    assert httpx.get(f"{generator_url}/health", timeout=10).json()["status"] == "ok"


@pytest.mark.slow
def test_events_stream_before_the_end_and_a_client_that_leaves_stops_its_generation(generator_dir):
    """5M tokens (100 MB of events, more than any socket buffers) would keep the one generation thread busy for
    minutes; the generation runs no faster than its client reads, and stops once the client leaves."""
    with running_server(generator_dir, "--max-new-tokens", "5000000", "--max-beam-tokens", "5000000") as url:
        body = {"prompt": "All:", "max_new_tokens": 5_000_000, "temperature": 1.0, "seed": 0}
        with httpx.stream("POST", f"{url}/generate", json=body, timeout=30) as events:
            lines = events.iter_lines()  # kept: a dropped line iterator closes the connection
            assert json.loads(next(lines)[6:])["text"]  # the first piece arrived...
            # ...while the generation runs on: a server that sent the events in one body at the end fails here
            assert httpx.get(f"{url}/health", timeout=10).json()["generations_waiting"] == 1
        deadline = time.monotonic() + 30
        health = httpx.get(f"{url}/health", timeout=10).json()
        while health["generations_waiting"] and time.monotonic() < deadline:
            time.sleep(0.1)
            health = httpx.get(f"{url}/health", timeout=10).json()
        assert health["generations_waiting"] == 0 and health["generations_cancelled"] == 1
        after = httpx.post(f"{url}/generate", json={"prompt": "All:", "max_new_tokens": 5, "stream": False}, timeout=30)
        assert after.status_code == 200


def test_an_api_key_guards_every_route_but_health_and_the_page_and_hosts_are_checked(classifier_dir):
    with running_server(classifier_dir, "--api-key", "s3cret") as url:
        assert httpx.post(f"{url}/predict", json={"texts": ["good"]}, timeout=10).status_code == 401
        wrong = httpx.post(f"{url}/predict", json={"texts": ["good"]}, headers={"Authorization": "Bearer nope"},
                           timeout=10)
        assert wrong.status_code == 401 and "Authorization: Bearer" in wrong.json()["error"]
        right = httpx.post(f"{url}/predict", json={"texts": ["good"]}, headers={"Authorization": "Bearer s3cret"},
                           timeout=10)
        assert right.status_code == 200 and right.json()["predictions"][0]["label"] in ("neg", "pos")
        assert httpx.get(f"{url}/info", timeout=10).status_code == 401
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        assert httpx.get(url, timeout=10).status_code == 200
        rebound = httpx.get(f"{url}/health", headers={"Host": "attacker.example"}, timeout=10)
        assert rebound.status_code == 400 and "--allowed-hosts" in rebound.json()["error"]


@pytest.mark.slow
def test_the_server_process_ends_even_when_a_model_call_is_stuck(classifier_dir):
    """After SIGTERM, uvicorn returns, but Python waits for its threads at exit: a worker stuck in Rust (the audit's
    tokenizer past its regex retry limit) kept the process alive 28 minutes. Now it ends after a grace period."""
    import subprocess
    import sys

    from ..conftest import ROOT

    code = f"""
import time
from textrnn import load_model
from textrnn.serving.server import create_app, exit_even_if_stuck
app = create_app(load_model({str(classifier_dir)!r}))
app.state.batcher.executor.submit(time.sleep, 600)  # a call that will not return
time.sleep(0.2)
exit_even_if_stuck(app, grace_s=0.5)
"""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and "exiting without it" in proc.stderr and time.monotonic() - start < 60


def test_predict_explains_on_request(classifier_url, classifier_dir):
    texts = ["a good film", "a dull plot"]
    answer = httpx.post(f"{classifier_url}/predict", json={"texts": texts, "explain": True}, timeout=60).json()
    want = load_model(classifier_dir).explain(texts)
    for got, expected in zip(answer["predictions"], want):
        assert got["explanation"]["tokens"] == expected["tokens"] == got["explanation"]["tokens"]
        assert got["explanation"]["attributions"] == pytest.approx(expected["attributions"], abs=1e-5)
    too_many = httpx.post(f"{classifier_url}/predict", json={"texts": ["a"] * 9, "explain": True}, timeout=30)
    assert too_many.status_code == 422 and "explain takes at most 8 texts" in too_many.json()["error"]
    assert "explanation" not in httpx.post(f"{classifier_url}/predict", json={"texts": texts}).json()["predictions"][0]


def test_predict_keeps_the_top_k_labels(classifier_url):
    full = httpx.post(f"{classifier_url}/predict", json={"texts": ["good", "bad film"]}).json()["predictions"]
    top = httpx.post(f"{classifier_url}/predict", json={"texts": ["good", "bad film"], "top_k": 1}).json()
    assert [list(p["probabilities"]) for p in top["predictions"]] == [[p["label"]] for p in full]

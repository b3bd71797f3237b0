"""The /predict micro-batcher: cancelled waiters, a second event loop, a full queue, a loop that died."""

from __future__ import annotations

import asyncio
import time

import pytest

from textrnn.serving.microbatch import MicroBatcher, ModelFailure, ServerBusy

from ..helpers import char_tokenizer, classifier


@pytest.fixture(scope="module")
def predict():
    model = classifier(char_tokenizer())
    return lambda texts: model.predict(texts)


def test_a_request_cancelled_while_it_waits_leaves_the_others_served(predict):
    async def scenario():
        batcher = MicroBatcher(predict, window_s=0.2)
        first = asyncio.ensure_future(batcher.submit(["the fox"]))
        leaver = asyncio.ensure_future(batcher.submit(["a stitch"]))
        await asyncio.sleep(0.05)  # both are in the window now
        leaver.cancel()
        kept = await asyncio.wait_for(first, 10)
        later = await asyncio.wait_for(batcher.submit(["in time"]), 10)  # the loop lived on
        return kept, later, batcher.failure()

    kept, later, failure = asyncio.run(scenario())
    assert kept == predict(["the fox"]) and later == predict(["in time"]) and failure is None


def test_a_second_event_loop_is_served_too(predict):
    batcher = MicroBatcher(predict)
    for text in ("the fox", "lazy dog"):  # two asyncio.run calls: two loops (a second test client, a restart)
        assert asyncio.run(asyncio.wait_for(batcher.submit([text]), 10)) == predict([text])


def test_a_full_queue_is_a_busy_error_not_a_longer_wait(predict):
    def slow(texts):
        time.sleep(0.5)  # the model is busy with the first request while the others queue
        return predict(texts)

    async def scenario():
        batcher = MicroBatcher(slow, window_s=0.0, max_queue=1)
        running = asyncio.ensure_future(batcher.submit(["one"]))
        await asyncio.sleep(0.1)
        queued = asyncio.ensure_future(batcher.submit(["two"]))
        await asyncio.sleep(0.05)
        with pytest.raises(ServerBusy, match="--max-queue"):
            await batcher.submit(["three"])
        return await running, await queued

    one, two = asyncio.run(scenario())
    assert one == predict(["one"]) and two == predict(["two"])


def test_a_dead_batch_loop_is_reported_and_the_next_request_starts_a_new_one(predict):
    """A predict that returns nothing breaks the loop's own bookkeeping (not the model's error, which every
    waiting request receives): /health must say so, and the next request must not hang."""
    broken = MicroBatcher(lambda texts: None)

    async def scenario():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(broken.submit(["x"]), 1.0)
        await asyncio.sleep(0.05)
        failure = broken.failure()
        broken.predict = predict  # the model is back
        return failure, await asyncio.wait_for(broken.submit(["the fox"]), 10)

    failure, answer = asyncio.run(scenario())
    assert failure and failure.startswith("the /predict batch loop stopped: TypeError")
    assert answer == predict(["the fox"])


class Panic(BaseException):
    """What tokenizers raises past Oniguruma's retry limit (pyo3's PanicException is a BaseException)."""


@pytest.mark.parametrize("error", [ValueError, Panic])
def test_a_model_that_raises_on_one_text_fails_only_that_request(predict, error):
    def fragile(texts):
        if "poison" in texts:
            raise error("boom")
        return predict(texts)

    async def scenario():
        batcher = MicroBatcher(fragile, window_s=0.2)
        requests = [asyncio.ensure_future(batcher.submit([text])) for text in ("the fox", "poison", "a stitch")]
        return await asyncio.wait_for(asyncio.gather(*requests, return_exceptions=True), 10), batcher

    (fox, poison, stitch), batcher = asyncio.run(scenario())
    assert fox == predict(["the fox"]) and stitch == predict(["a stitch"])
    assert isinstance(poison, ModelFailure) and f"{error.__name__}: boom" in str(poison)
    assert batcher.failure() is None  # the loop lives on

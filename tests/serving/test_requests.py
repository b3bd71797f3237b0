"""Request bodies checked before any work: /generate bodies into a GenerationConfig, /predict against the
server's limits."""

from __future__ import annotations

import pytest

from textrnn import GenerationConfig
from textrnn.serving.server import Limits

pytest.importorskip("fastapi")
from fastapi import HTTPException  # noqa: E402

from textrnn.serving.requests import MAX_BEAMS, generation_request  # noqa: E402


def test_a_body_becomes_the_prompt_the_stream_flag_and_the_settings():
    prompt, streamed, config = generation_request({"prompt": "All:", "temperature": 0, "stop": ["\n"]}, Limits())
    assert (prompt, streamed) == ("All:", True)
    assert config == GenerationConfig(temperature=0, stop=("\n",))
    _, _, capped = generation_request({}, Limits(max_new_tokens=50))
    assert capped.max_new_tokens == 50  # the default, lowered to this server's limit


@pytest.mark.parametrize("body,message", [
    ({"max_new_tokens": 51}, "over this server's limit of 50 (--max-new-tokens)"),
    ({"num_beams": MAX_BEAMS + 1}, f"at most {MAX_BEAMS}"),
    ({"num_samples": 2}, "one sample per request"),
    ({"prompt": 3}, "prompt must be a string"),
    ({"top_p": 0}, "top_p must be in (0, 1]"),
    ({"colour": "red"}, "unknown generation setting(s) colour"),
])
def test_a_bad_body_is_a_422_naming_the_setting(body, message):
    with pytest.raises(HTTPException) as error:
        generation_request(body, Limits(max_new_tokens=50))
    assert error.value.status_code == 422 and message in error.value.detail


def test_more_texts_than_the_server_takes_is_a_422_naming_the_option(trained_classifier):
    from fastapi.testclient import TestClient

    from textrnn import load_model
    from textrnn.serving.server import create_app

    with TestClient(create_app(load_model(trained_classifier), max_texts=3)) as client:
        assert client.post("/predict", json={"texts": ["good", "bad", "fine"]}).status_code == 200
        answer = client.post("/predict", json={"texts": ["good"] * 4})
        assert answer.status_code == 422
        assert answer.json()["error"] == ("texts: 4 texts is over this server's limit of 3 (--max-texts); "
                                          "send fewer per request")

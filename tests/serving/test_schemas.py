"""The /predict body: what FastAPI parses and describes at /docs (the server's texts limit is the route's)."""

from __future__ import annotations

import pytest

pytest.importorskip("pydantic")
from pydantic import ValidationError  # noqa: E402

from textrnn.serving.schemas import PredictRequest  # noqa: E402


def test_a_body_parses_with_its_defaults():
    body = PredictRequest.model_validate({"texts": ["a good film"]})
    assert (body.texts, body.top_k, body.explain) == (["a good film"], None, False)


@pytest.mark.parametrize("body,field", [
    ({"texts": []}, "texts"),
    ({"text": "a"}, "texts"),
    ({"texts": ["a"], "top_k": 0}, "top_k"),
    ({"texts": ["a"], "colour": "red"}, "colour"),
    ({"texts": "a"}, "texts"),
])
def test_a_bad_body_names_its_field(body, field):
    with pytest.raises(ValidationError) as error:
        PredictRequest.model_validate(body)
    assert field in {str(part) for e in error.value.errors() for part in e["loc"]}


def test_the_schema_at_docs_names_the_server_s_limit():
    assert "--max-texts" in PredictRequest.model_json_schema()["properties"]["texts"]["description"]

"""The ``/predict`` body as a pydantic model, for FastAPI to parse and to describe at ``/docs``.

Its own module because pydantic comes with the ``serve`` extra: :mod:`textrnn.serving.server` imports it
only once FastAPI is known to be installed. The server's own limit on texts per request is checked
in the route (:func:`textrnn.serving.requests.check_texts`), so the class is the same for every server.
"""

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from .requests import EXPLAIN_TEXTS


class PredictRequest(BaseModel):
    """``{"texts": [...], "top_k": k, "explain": false}``; any other key is a 422."""

    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(min_length=1, description="the texts to label (at most the server's --max-texts)")
    top_k: Optional[int] = Field(None, ge=1, description="keep the k most likely labels, most likely first")
    explain: bool = Field(False, description=f"add each text's token attributions (at most {EXPLAIN_TEXTS} texts)")

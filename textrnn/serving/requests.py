"""What a request to ``textrnn serve`` asks for, checked against the model and the server's limits
before any work: ``/generate`` bodies into a :class:`~textrnn.models.generation_config.GenerationConfig`,
their cost, ``/predict``'s texts, and ``/predict`` with explanations (run on the server's one worker thread)."""

import asyncio
from typing import Any

from ..core.errors import TextRNNError
from ..data.encoding import MAX_CHARS_PER_TOKEN, require_unicode
from ..models.classifier import TextClassifier
from ..models.generation import prompt_ids
from ..models.generation_config import GenerationConfig
from ..models.language_model import RNNLanguageModel
from ..models.prediction import predict_stream

MAX_BEAMS = 16  # per /generate request
EXPLAIN_TEXTS = 8  # per /predict request with "explain": true


def generation_request(body: dict, limits: Any) -> tuple[str, bool, GenerationConfig]:
    """A /generate body -> (prompt, stream, settings): the body's ``prompt`` and ``stream``, and any
    :class:`~textrnn.models.generation_config.GenerationConfig` setting but ``num_samples`` (one sample a
    request), validated there; a 422 otherwise."""
    from fastapi import HTTPException

    body = dict(body)
    prompt, streamed = body.pop("prompt", ""), body.pop("stream", True)
    if not isinstance(prompt, str) or not isinstance(streamed, bool):
        raise HTTPException(422, "prompt must be a string and stream true or false")
    if "num_samples" in body:
        raise HTTPException(422, "num_samples: this server generates one sample per request; send several requests")
    defaults = GenerationConfig()
    capped = defaults.replace(max_new_tokens=min(defaults.max_new_tokens, limits.max_new_tokens))  # this server's
    try:
        config = capped.replace(**body).validate()
    except TextRNNError as exc:
        raise HTTPException(422, str(exc)) from None
    if config.num_beams > MAX_BEAMS:
        raise HTTPException(422, f"num_beams must be an integer of at most {MAX_BEAMS} on this server")
    if config.max_new_tokens > limits.max_new_tokens:
        raise HTTPException(422, f"max_new_tokens is {config.max_new_tokens:,}, over this server's limit of "
                                 f"{limits.max_new_tokens:,} (--max-new-tokens); ask for fewer")
    return prompt, streamed, config


def check_texts(texts: list[str], limits: Any) -> None:
    """A 422 naming ``--max-texts`` when a /predict body holds more texts than this server takes; a 400 for a
    text that is not valid Unicode (each text fails its own request, before any work)."""
    from fastapi import HTTPException

    if len(texts) > limits.max_texts:
        raise HTTPException(422, f"texts: {len(texts):,} texts is over this server's limit of {limits.max_texts:,} "
                                 "(--max-texts); send fewer per request")
    for i, text in enumerate(texts):
        require_unicode(text, f"texts[{i}]")


async def explained(app: Any, model: TextClassifier, texts: list) -> list:
    """Predictions with explanations, run on the server's one worker thread (at most ``EXPLAIN_TEXTS`` texts)."""
    from fastapi import HTTPException

    if len(texts) > EXPLAIN_TEXTS:
        raise HTTPException(422, f"explain takes at most {EXPLAIN_TEXTS} texts a request (each costs about 128 "
                                 "forward and backward passes); send fewer")
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(app.state.generation, lambda: list(predict_stream(model, texts, explain=True)))


def check_cost(model: RNNLanguageModel, prompt: str, config: GenerationConfig, limits: Any) -> None:
    """A 422 naming the limit when a /generate request would cost more than the server allows."""
    from fastapi import HTTPException

    beams = config.num_beams * config.max_new_tokens
    if beams > limits.max_beam_tokens:
        raise HTTPException(422, f"num_beams x max_new_tokens is {beams:,}, over this server's limit of "
                                 f"{limits.max_beam_tokens:,} (--max-beam-tokens); lower either")
    cap = limits.max_prompt_tokens
    head = prompt[: cap * MAX_CHARS_PER_TOKEN + 1]  # a huge prompt costs no more than a long one to count
    tokens = len(prompt_ids(model.require_tokenizer(), head))  # generation's checks: valid Unicode, known tokens
    if tokens > cap or len(head) < len(prompt):
        raise HTTPException(422, f"the prompt is over this server's limit of {cap:,} tokens "
                                 "(--max-prompt-tokens); send a shorter one")

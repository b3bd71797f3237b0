"""One table from a task name to its model class (transformers' Auto mappings), and the two
functions that build or load whichever model a config or folder describes::

    config.json {"task": "classification", ...}
        -> MODELS["classification"].build(config)  -> RNNClassifier or ClassifierEnsemble

The training side of a task (data, loss, evaluation) is :mod:`textrnn.training.registry`.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Optional, Union

import numpy as np
import torch

from ..core.config import RNNConfig
from ..core.schema import choice_error
from ..data.tokenization import TextTokenizer
from .base import TextModel
from .classifier import RNNClassifier
from .hub import locate
from .language_model import RNNLanguageModel
from .pretrained import read_config
from .transfer import copy_from_language_model
from .vectors import embeddings_of, load_pretrained_vectors

LOG = logging.getLogger(__name__)

MODELS: dict[str, type[TextModel]] = {RNNClassifier.task: RNNClassifier, RNNLanguageModel.task: RNNLanguageModel}


def model_class(task: str) -> type[TextModel]:
    """The model class of a task name, or a one-line error naming the tasks there are."""
    if task not in MODELS:
        raise choice_error("task", MODELS, task)
    return MODELS[task]


def build_model(config: RNNConfig, tokenizer: Optional[TextTokenizer] = None,
                token_counts: Optional[Callable[[], np.ndarray]] = None) -> TextModel:
    """The model ``config`` describes, whatever its task, started from what the config names.

    Fresh weights, then ``pretrained_vectors`` copied into the embedding (``token_counts()``,
    the training ids' counts, only measures their coverage) and ``init_from`` /
    ``init_from_backward`` language models copied into the encoder. A saved model loads with
    ``load_model`` instead: its weights already hold what these gave it.
    """
    model = model_class(config.task).build(config, tokenizer)
    if config.pretrained_vectors:
        counts = token_counts() if token_counts is not None else None
        coverage = load_pretrained_vectors(embeddings_of(model), config.pretrained_vectors, model.require_tokenizer(),
                                           counts, config.pad_id)
        LOG.info(f"note: {coverage.line()}")
    for direction, source in enumerate([config.init_from, config.init_from_backward]):
        if source:
            copy_from_language_model(model, load_model(source), direction)
    return model


def load_model(path: Union[str, os.PathLike], map_location: Union[str, torch.device] = "cpu",
               revision: Optional[str] = None) -> TextModel:
    """Load whichever model a checkpoint holds (AutoModel): folder, run folder or Hub id (at ``revision``:
    a branch, tag or commit of the Hub repository)."""
    folder = locate(path, revision)
    return model_class(read_config(folder).task).from_pretrained(folder, map_location)

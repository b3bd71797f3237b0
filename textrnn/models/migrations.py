"""Upgrades of checkpoint folders written by earlier releases, applied on load.

Checkpoints from earlier releases keep loading: each format change bumps
``config.FORMAT_VERSION`` and adds a step here that rewrites the old ``config.json`` fields
and weight names into the new ones. Nothing on disk is changed.

Format 2 -> 3 added ``problem_type``, ``thresholds``, ``text_fields`` and
``field_separator`` to ``config.json``; their defaults are what format 2 meant.

Format 1 -> 2 (the composition release):

* the loss options ``label_smoothing`` and ``lm_loss_weight`` left the model config (they are
  ``train.*`` settings now); a classifier trained with the auxiliary LM loss keeps its
  projection as ``aux_lm_head: true``;
* ``tie_projection`` is gone (``tie_weights`` adds the projection whenever sizes differ);
* weights moved into the composed modules: ``embedding.*`` and ``encoder.*`` into
  ``backbone.*``, ``attention.*`` into ``pooling.score.*``, ``lm_projection.*`` into
  ``aux_lm.projection.*`` (an ensemble's ``members.{k}.`` prefix stays).
"""

from __future__ import annotations

import re

_RENAMES_V1 = [  # (old prefix, new prefix), matched after an optional members.{k}. prefix
    ("embedding.", "backbone.embedding."),
    ("encoder.", "backbone.encoder."),
    ("attention.", "pooling.score."),
    ("lm_projection.", "aux_lm.projection."),
]
_MEMBER = re.compile(r"^(members\.\d+\.)?(.*)$")


def migrate_config(data: dict) -> dict:
    """A config.json dict of any known format, as the current format reads it."""
    data = dict(data)
    if data.get("format_version") == 1:
        data["aux_lm_head"] = bool(data.pop("lm_loss_weight", 0.0))
        data.pop("label_smoothing", None)
        data.pop("tie_projection", None)
        data["format_version"] = 2
    if data.get("format_version") == 2:  # format 3 only added fields (multi-label, text fields), with defaults
        data["format_version"] = 3
    return data


def migrate_weight_name(name: str, version: int) -> str:
    """A weight's name in a ``version`` checkpoint -> its name in the current models."""
    if version >= 2:  # weight names did not change from format 2 on
        return name
    match = _MEMBER.match(name)
    assert match is not None  # the pattern matches any name
    member, rest = match.groups()
    for old, new in _RENAMES_V1:
        if rest.startswith(old):
            return (member or "") + new + rest[len(old):]
    return name


def migrate_experiment(data: dict) -> dict:
    """An experiment config saved by a run of an earlier release (trainer_state.json)."""
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    model, train = data.get("model", {}), data.setdefault("train", {})
    for key in ("label_smoothing", "lm_loss_weight"):
        if key in model:
            train.setdefault(key, model.pop(key))
    model.pop("tie_projection", None)
    if "format_version" in model:
        model["format_version"] = migrate_config({"format_version": model["format_version"]})["format_version"]
    return data

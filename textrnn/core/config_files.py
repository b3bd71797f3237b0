"""Configs from files and command lines: YAML, dotted ``key=value`` overrides, nested dicts, and
the help text of every key (read from the comments in :mod:`textrnn.core.config`).

Every key is optional: a file changes only defaults. Unknown keys, wrong types and keys that
moved are one-line errors that name the fix.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import yaml

from .config import TASK_NAMES, ExperimentConfig, build_dataclass
from .errors import ConfigError
from .schema import choice_error


def field_help(cls: type) -> dict[str, str]:
    """Each field of a config dataclass and its help: the comment on its line, else the comments just above it.

    The comments in this file are the configs' documentation; the reference page is generated from them.
    """
    import inspect
    import io
    import tokenize

    source = inspect.getsource(cls)
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    lines, names = source.splitlines(), {f.name for f in dataclasses.fields(cls)}
    helps: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        name = line.strip().split(":", 1)[0]
        if name in names and name not in helps:
            above: list[str] = []
            row = number - 1
            while row in comments and lines[row - 1].strip().startswith("#"):
                above.insert(0, comments[row])
                row -= 1
            helps[name] = comments.get(number) or " ".join(above)
    return helps


def parse_overrides(items: list[str]) -> dict:
    """``["train.lr=1e-3", "model.bidirectional=true"]`` -> nested dict (values parsed as YAML)."""
    pairs = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value, e.g. train.lr=0.001")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else None
        if isinstance(value, str) and _looks_numeric(raw):
            value = float(raw)  # YAML 1.1 reads '1e-3' as a string
        pairs.append((key, value, item))
    return dotted_tree(pairs)


def dotted_tree(pairs: list) -> dict:
    """``(dotted key, value, what to name in an error)`` triples -> the nested dict of sections they set."""
    tree: dict = {}
    for key, value, item in pairs:
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} sets a key inside a value")
        node[parts[-1]] = value
    return tree


def _looks_numeric(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True


def merge(base: dict, update: dict) -> dict:
    """``update`` merged into ``base`` section by section (a new dict; nothing is changed in place)."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(path: Optional[str], overrides: Optional[list] = None, task: Optional[str] = None) -> ExperimentConfig:
    """Read a YAML config (every key optional: files change only defaults) plus overrides."""
    data: dict = {}  # the file's sections, before the overrides go over them
    if path is not None:
        if not os.path.isfile(path):
            raise ConfigError(f"config file not found: {path}; pass --config with an existing YAML file")
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    return config_from_dict(merge(data, parse_overrides(overrides or [])), task)


def config_from_dict(data: dict, task: Optional[str] = None) -> ExperimentConfig:
    """An experiment config from nested sections (every key optional), checked; ``task`` is the command's."""
    check_moved_keys(data)
    named = data.get("task", task or "classification")  # ExperimentConfig.task's default
    if named not in TASK_NAMES:  # before the sections: a wrong task would make their errors misleading
        raise choice_error("task", TASK_NAMES, named)
    if task is not None:
        if named != task:
            raise ConfigError(f"config task is {named!r} but this command trains a {task!r} model; use the other "
                              "train command")
        data["task"] = task
    return build_dataclass(ExperimentConfig, data, "config").validate()


def config_to_dict(config: ExperimentConfig) -> dict:
    """An experiment config as nested plain data (what ``config.yaml`` holds)."""
    return dataclasses.asdict(config)


MOVED_KEYS = {"model.label_smoothing": "train.label_smoothing", "model.lm_loss_weight": "train.lm_loss_weight"}


def check_moved_keys(data: dict) -> None:
    """Keys that earlier releases read elsewhere: a one-line error that names the new key."""
    for old, new in MOVED_KEYS.items():
        section, key = old.split(".")
        if isinstance(data.get(section), dict) and key in data[section]:
            raise ConfigError(f"{old} is a training option now (the model config holds the architecture): use {new}")
    if isinstance(data.get("model"), dict) and "tie_projection" in data["model"]:
        raise ConfigError(
            "model.tie_projection is gone: model.tie_weights adds the projection when sizes differ; drop the key"
        )

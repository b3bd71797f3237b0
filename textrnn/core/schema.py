"""Dataclasses built from mappings (YAML, JSON, keyword arguments), each value checked against its annotation:
an unknown key suggests the nearest valid one, and a value of the wrong type is one line naming key, value and type."""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, Iterable, Optional, Union

from .errors import ConfigError, require


def _field_types(cls) -> dict[str, Any]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _allowed_types(hint: Any) -> tuple[bool, Optional[tuple]]:
    """(null allowed, the non-null types a field takes; None: any) from its annotation."""
    if hint is Any:
        return True, None
    if typing.get_origin(hint) is Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(hint))
        if any(a is Any for a in args):
            return True, None
        return nullable, tuple(_plain_type(a) for a in args)
    return False, (_plain_type(hint),)


def _plain_type(hint: Any) -> Any:
    """The runtime type a hint's values have: ``Literal["a", "b"]`` is ``str``, ``list[int]`` is ``list``."""
    if typing.get_origin(hint) is typing.Literal:
        return type(typing.get_args(hint)[0])
    return typing.get_origin(hint) or hint


def choices(hint: Any) -> Optional[tuple]:
    """The values a ``Literal`` (or ``Optional[Literal]``) annotation allows; None for any other annotation."""
    if typing.get_origin(hint) is Union:
        found = [choices(a) for a in typing.get_args(hint) if a is not type(None)]
        return found[0] if len(found) == 1 else None
    return typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else None


def check_choices(section: Any, where: str) -> None:
    """The one check of every choice key: each field annotated ``Literal[...]`` holds one of its values (None
    where the annotation is ``Optional``), else a one-line error naming the key, the choices and the value."""
    hints = typing.get_type_hints(type(section))
    for f in dataclasses.fields(section):
        allowed, value = choices(hints[f.name]), getattr(section, f.name)
        if allowed is None or value in allowed or (value is None and _allowed_types(hints[f.name])[0]):
            continue
        raise choice_error(f"{where}.{f.name}".removeprefix("."), allowed, value)


def choice_error(key: str, allowed: Iterable[Any], value: Any, error: type[Exception] = ConfigError) -> Exception:
    """The one error for a value outside its choices (``error``, a config error unless said): the key, the
    choices, the value, and the nearest choice when the value looks like a misspelling of one."""
    allowed = list(allowed)
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    return error(f"{key} must be one of {', '.join(map(str, allowed))}, got {value!r}"
                 + (f"; did you mean {close[0]!r}?" if close else ""))


def build_dataclass(cls, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping; unknown keys suggest the nearest valid one."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of keys to values, got {type(data).__name__}")
    fields, hints = _field_types(cls), typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean '{where}.{close[0]}'?" if close else f"; valid keys: {', '.join(fields)}"
            raise ConfigError(f"unknown config key '{where}.{key}'{hint}".replace("'config.", "'"))
        default = fields[key].default_factory() if fields[key].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            kwargs[key] = build_dataclass(type(default), value, f"{where}.{key}")
        else:
            meta = fields[key].metadata
            or_list = meta.get("or_list") and isinstance(value, list) and all(isinstance(v, str) for v in value)
            as_is = (
                or_list
                or (meta.get("or_auto") and value == "auto")
                or (meta.get("or_int") and isinstance(value, int) and not isinstance(value, bool) and value >= 0)
            )
            require(not meta.get("or_auto") or as_is or isinstance(value, int),
                    f"{where}.{key} must be an integer or auto, got {value!r}".removeprefix("config."))
            nullable, kinds = _allowed_types(hints[key])
            require(value is not None or nullable, f"{where}.{key} cannot be null; give a value or leave the key out"
                    .removeprefix("config."))
            kwargs[key] = value if as_is or value is None else _coerce(value, kinds, f"{where}.{key}")
    return cls(**kwargs)


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list",
               dict: "a mapping"}


def _coerce(value: Any, kinds: Optional[tuple], where: str) -> Any:
    """``value`` checked against the field's annotated types (an int becomes a float where floats go); a
    one-line error naming the key, the value and the type it takes (``train.max_steps=ten`` included)."""
    where = where.removeprefix("config.")
    if kinds is None:
        return value
    for kind in kinds:
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, bool):
            continue
        if isinstance(value, kind):
            return value
    wanted = " or ".join(_TYPE_WORDS.get(kind, kind.__name__) for kind in kinds)
    raise ConfigError(f"{where} must be {wanted}, got {value!r}")

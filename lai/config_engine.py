"""The engine under ``lai.config``: mappings checked against dataclass annotations, nested merges, and the
differences between two configurations.

Nothing here knows a section of lai's configuration: :func:`from_dict` builds any dataclass from a mapping
(unknown keys and wrong types refused with a message naming the dotted field), :func:`merge` lays one nested
mapping over another, and :func:`differences` / :func:`saved_differences` / :func:`describe_differences` say
where two configurations disagree. (``--set`` strings are parsed in ``lai.config``, which reads YAML.)
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from lai.errors import ConfigError, shorten

# --------------------------------------------------------------------------- mappings -> dataclasses

SWITCH = "switch"  # dataclass field metadata: a text field of auto / on / off, which YAML's booleans set to on / off
MAX_INT = 2**53  # the largest integer a configuration holds: exact as a float, far from overflowing 64-bit sizes


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a type annotation, converting ints to floats where allowed."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return {_coerce(k, args[0], where): _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        if abs(value) > MAX_INT:  # torch would overflow its 64-bit sizes: a C++ error, not a message
            raise ConfigError(f"{where} must be an integer of at most 2^53 in size, got {value}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if isinstance(value, bool):  # YAML 1.1 reads on/off as booleans
            return "on" if value else "off"
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where)
    return value


def from_dict(cls, data: dict[str, Any] | None, where: str = ""):
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types. A section (``where``) given as
    null, an empty text or any other non-mapping is refused (``--set model=`` would reset it to the defaults)."""
    data = {} if data is None and not where else data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__} must be a mapping of its keys (e.g. {where or 'section'}.key=value), "
                          f"got {'null' if data is None else shorten(repr(data), 80)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    not_text = [k for k in data if not isinstance(k, str)]
    if not_text:
        raise ConfigError(f"configuration key {shorten(repr(not_text[0]), 40)}{' in ' + where if where else ''} is not "
                          f"a name; expected one of: {', '.join(sorted(names))}")
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown configuration key(s) {', '.join(prefix + k for k in unknown)}; "
            f"expected one of: {', '.join(sorted(names))}"
        )
    switches = {f.name for f in dataclasses.fields(cls) if f.metadata.get(SWITCH)}
    for k, v in data.items():  # YAML 1.1 reads yes, no, on, off as booleans: only a switch takes them as on / off
        if isinstance(v, bool) and hints[k] is str and k not in switches:
            raise ConfigError(f"{where + '.' if where else ''}{k} must be text, got {str(v).lower()} (YAML reads yes, no, "
                              "on, off, true and false as a boolean): quote it, e.g. name='no'")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


# --------------------------------------------------------------------------- nested mappings


def merge(base: dict, update: dict) -> dict:
    """``base`` with the nested mapping ``update`` laid over it (sub-mappings merged, other values replaced)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- differences


def differences(a, b, where: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted field, value in ``a``, value in ``b``) of every compared field where two configurations differ."""
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        return [d for f in dataclasses.fields(a) if f.compare
                for d in differences(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}" if where else f.name)]
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in differences(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))]
    return [] if a == b else [(where, a, b)]


def absent_fields(saved: dict, config) -> list[str]:
    """Dotted fields of dataclass ``config`` that ``saved`` (its mapping, as a file holds it) lacks."""
    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name not in saved:
            out.append(f.name)
        elif dataclasses.is_dataclass(value) and isinstance(saved[f.name], dict):
            out += [f"{f.name}.{k}" for k in absent_fields(saved[f.name], value)]
    return out


class _NotSaved:
    def __repr__(self) -> str:
        return "(not saved)"


NOT_SAVED = _NotSaved()  # the value "there" of a field a saved configuration lacks


def saved_differences(saved: dict, old, new) -> list[tuple[str, Any, Any]]:
    """Where configuration ``new`` differs from ``old``, read from the mapping ``saved``: :func:`differences`, and
    every field ``saved`` lacks (value there: ``NOT_SAVED``; written before that field existed, it is never taken
    for its default here)."""
    absent = absent_fields(saved, old)
    value = lambda obj, dotted: obj if not dotted else value(getattr(obj, dotted[0]), dotted[1:])  # noqa: E731
    return ([(k, NOT_SAVED, value(new, k.split("."))) for k in absent]
            + [d for d in differences(old, new) if not any(d[0] == k or d[0].startswith(k + ".") for k in absent)])


def _there_here(x, y, short) -> str:
    """``"X there, Y here"``, shortened unless the cut hides the difference: then what only one list holds, or in
    full."""
    a, b = short(x), short(y)
    if (a != repr(x) or b != repr(y)) and a.removesuffix("...")[:37] == b.removesuffix("...")[:37]:
        x_only, y_only = ([v for v in x if v not in y], [v for v in y if v not in x]) if \
            isinstance(x, list) and isinstance(y, list) else ([], [])
        if x_only or y_only:
            return f"{short(x_only)} only there, {short(y_only)} only here"
        a, b = repr(x), repr(y)
    return f"{a} there, {b} here"


def describe_differences(diffs: list[tuple[str, Any, Any]], most: int = 3) -> str:
    """``"different train.epochs: 7 there, 1 here; ...; its configuration lacks extras: ..."``, ``most`` of each."""
    short = lambda v: (r if len(r := repr(v)) <= 40 else r[:37] + "...")  # noqa: E731
    more = lambda items: f" and {len(items) - most} more" if len(items) > most else ""  # noqa: E731
    changed = [d for d in diffs if d[1] is not NOT_SAVED]
    absent = [k for k, there, _ in diffs if there is NOT_SAVED]
    parts = []
    if changed:
        parts.append("different " + "; ".join(f"{k}: {_there_here(x, y, short)}" for k, x, y in changed[:most])
                     + (";" + more(changed) if more(changed) else ""))
    if absent:
        parts.append(f"its configuration lacks {', '.join(absent[:most])}{more(absent)}: written by another version of lai")
    return "; ".join(parts)

"""Parameter dataclasses: declaring, parsing ``key=value`` strings, validating, (de)serialising.

Every contribution (cell, block, task, decoder, template) and every config in a project describes its
settings with a plain dataclass.  Fields carry their constraints in ``metadata`` (see :func:`param`), so the
same declaration drives the CLI's ``--set``, the inspector form and the project file reader.
Nothing here imports torch or Qt.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Literal, Mapping

__all__ = [
    "ParamError",
    "param",
    "field_info",
    "parse_value",
    "params_from_dict",
    "params_to_dict",
    "apply_settings",
    "validate_params",
    "describe_params",
    "parse_assignments",
    "suggest",
]


class ParamError(ValueError):
    """A setting has an unknown name, a value of the wrong type, or a value out of range."""


def param(default: Any = dataclasses.MISSING, *, help: str = "", min: float | None = None,
          max: float | None = None, choices: tuple | list | None = None,
          default_factory: Any = dataclasses.MISSING, ui: str | None = None) -> Any:
    """A dataclass field with a help text and constraints (``min``/``max`` inclusive, ``choices``).

    ``ui`` is a hint for the inspector (e.g. ``"path"`` or ``"cell"`` for a cell chooser).
    """
    meta = {"help": help, "min": min, "max": max, "choices": tuple(choices) if choices else None, "ui": ui}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    name: str
    type: Any           # the resolved annotation
    base: type          # int, float, bool, str (the non-None part)
    optional: bool      # ``X | None``
    default: Any
    help: str
    min: float | None
    max: float | None
    choices: tuple | None
    ui: str | None

    def describe(self) -> str:
        parts = [f"{self.name} ({self.type_name()}, default {self.default!r})"]
        if self.choices:
            parts.append("one of " + ", ".join(map(str, self.choices)))
        if self.min is not None or self.max is not None:
            lo = "-inf" if self.min is None else f"{self.min:g}"
            hi = "inf" if self.max is None else f"{self.max:g}"
            parts.append(f"range [{lo}, {hi}]")
        if self.help:
            parts.append(self.help)
        return "; ".join(parts)

    def type_name(self) -> str:
        name = self.base.__name__
        return f"{name} or none" if self.optional else name


_HINT_CACHE: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINT_CACHE:
        _HINT_CACHE[cls] = typing.get_type_hints(cls)
    return _HINT_CACHE[cls]


def field_info(cls: type) -> list[FieldInfo]:
    """The fields of a parameters dataclass with their resolved types and constraints."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = _hints(cls if isinstance(cls, type) else type(cls))
    out = []
    for f in dataclasses.fields(cls):
        ann = hints.get(f.name, f.type)
        base, optional, choices = _unpack(ann)
        meta: Mapping[str, Any] = f.metadata or {}
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        out.append(FieldInfo(
            name=f.name, type=ann, base=base, optional=optional, default=default,
            help=meta.get("help", ""), min=meta.get("min"), max=meta.get("max"),
            choices=meta.get("choices") or choices, ui=meta.get("ui"),
        ))
    return out


def _unpack(ann: Any) -> tuple[type, bool, tuple | None]:
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported parameter type {ann!r}")
        base, _, choices = _unpack(args[0])
        return base, True, choices
    if origin is Literal:
        values = typing.get_args(ann)
        return type(values[0]), False, tuple(values)
    if ann in (int, float, bool, str):
        return ann, False, None
    raise TypeError(f"unsupported parameter type {ann!r} (use int, float, bool, str, Literal or X | None)")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(info: FieldInfo, value: Any, owner: str) -> Any:
    """Convert ``value`` (a string from the command line or a JSON value) to the field's type, then check it."""
    where = f"{owner}.{info.name}" if owner else info.name
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null") and info.optional):
        if info.optional:
            return None
        raise ParamError(f"{where}: a value is required ({info.type_name()})")
    base = info.base
    out: Any
    try:
        if base is bool:
            if isinstance(value, bool):
                out = value
            elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                out = value.strip().lower() in _TRUE
            else:
                raise ValueError
        elif base is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):
                out = value
            elif isinstance(value, float) and value.is_integer():
                out = int(value)
            elif isinstance(value, str):
                text = value.strip()
                if "e" in text.lower():  # 1e3 -> 1000, exactly, or refused
                    f = float(text)
                    if not f.is_integer() or abs(f) > 2 ** 53:
                        raise ValueError
                    out = int(f)
                else:
                    out = int(text)  # int() accepts 1_000 but not _1
            else:
                raise ValueError
        elif base is float:
            if isinstance(value, bool):
                raise ValueError
            out = float(value.strip()) if isinstance(value, str) else float(value)
            if not math.isfinite(out):
                raise ValueError
        elif base is str:
            if not isinstance(value, str):
                raise ValueError
            out = value
        else:  # pragma: no cover - _unpack only admits the four
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        raise ParamError(f"{where}: expected {info.type_name()}, got {value!r}") from None
    _check(info, out, where)
    return out


def _check(info: FieldInfo, value: Any, where: str) -> None:
    if value is None:
        return
    if info.choices is not None and value not in info.choices:
        opts = ", ".join(map(str, info.choices))
        raise ParamError(f"{where}: {value!r} is not one of: {opts}")
    if info.min is not None and value < info.min:
        raise ParamError(f"{where}: {value!r} is below the minimum {info.min:g}")
    if info.max is not None and value > info.max:
        raise ParamError(f"{where}: {value!r} is above the maximum {info.max:g}")


def suggest(name: str, options: typing.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _lookup(cls: type, name: str, owner: str) -> FieldInfo:
    infos = {i.name: i for i in field_info(cls)}
    if name not in infos:
        where = f"{owner!r} " if owner else ""
        known = ", ".join(infos) or "(none)"
        raise ParamError(f"unknown setting {name!r}{suggest(name, infos)}; {where}accepts: {known}")
    return infos[name]


def parse_value(cls: type, name: str, text: Any, owner: str = "") -> Any:
    """Parse one value for field ``name`` of dataclass ``cls``; raises :class:`ParamError`."""
    return _convert(_lookup(cls, name, owner), text, owner)


def params_from_dict(cls: type, data: Mapping[str, Any] | None, owner: str = "", *,
                     ignore_unknown: bool = False) -> Any:
    """Build a validated ``cls`` instance from a JSON-style mapping (missing keys take defaults)."""
    if data is not None and not isinstance(data, Mapping):
        raise ParamError(f"{owner or cls.__name__}: expected an object of settings, got {type(data).__name__}")
    data = dict(data or {})
    kwargs = {}
    infos = {i.name: i for i in field_info(cls)}
    for key, value in data.items():
        if key not in infos:
            if ignore_unknown:
                continue
            _lookup(cls, key, owner)  # raises with suggestions
        kwargs[key] = _convert(infos[key], value, owner)
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # a required field without a default
        raise ParamError(f"{owner or cls.__name__}: {exc}") from None
    validate_params(obj, owner)
    return obj


def params_to_dict(obj: Any) -> dict[str, Any]:
    """Plain JSON-ready dict of a parameters dataclass (top level only: fields are scalars)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def validate_params(obj: Any, owner: str = "") -> None:
    """Check every field's type and constraints; then the dataclass's own ``validate()`` if it has one."""
    for info in field_info(type(obj)):
        value = getattr(obj, info.name)
        _convert(info, value, owner)
    check = getattr(obj, "validate", None)
    if callable(check):
        try:
            check()
        except ParamError:
            raise
        except (ValueError, TypeError) as exc:
            raise ParamError(f"{owner + ': ' if owner else ''}{exc}") from None


def apply_settings(obj: Any, settings: Mapping[str, Any], owner: str = "") -> Any:
    """A copy of ``obj`` with ``settings`` (strings or values) parsed, applied and validated."""
    changes = {name: parse_value(type(obj), name, value, owner) for name, value in settings.items()}
    new = dataclasses.replace(obj, **changes)
    validate_params(new, owner)
    return new


def describe_params(cls: type) -> list[str]:
    return [i.describe() for i in field_info(cls)]


def parse_assignments(items: typing.Iterable[str]) -> dict[str, str]:
    """``["a=1", "b.c=x"]`` -> ``{"a": "1", "b.c": "x"}``; raises :class:`ParamError` on a malformed item."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise ParamError(f"malformed setting {item!r}: expected key=value")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key or any(c.isspace() for c in key):
            raise ParamError(f"malformed setting {item!r}: expected key=value")
        out[key] = value
    return out

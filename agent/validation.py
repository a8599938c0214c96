"""Configuration documents validated into frozen ``msgspec`` structs (the config boundary).

The agent's configuration, a remote configuration's sources, the options of each bridge
source type and register map files are ``Strict`` structs: frozen, keyword-only, unknown keys
refused, constraints written as ``Annotated[int, msgspec.Meta(ge=1)]`` and cross-field rules
in ``__post_init__``. ``convert`` turns a parsed TOML/JSON mapping into one; a
``msgspec.ValidationError`` it raises is described by ``describe`` as ``field.path: problem``
and each package raises that once as its own configuration error.

Values are converted the lenient way (``"30"`` is accepted for a number, ``"true"`` for a
boolean): environment overrides arrive as strings. ``__post_init__`` rules raise
``FieldProblem`` to name the field they concern.
"""

from __future__ import annotations

import enum
import os
import re
import types
from pathlib import Path
from typing import Annotated, Final, Literal, TypeVar, Union, get_args, get_origin

import msgspec

__all__ = ["FieldProblem", "Strict", "convert", "describe"]

T = TypeVar("T")

_AT: Final = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_STEP: Final = re.compile(r"\.(?P<field>\w+)|\[[^\]]*\]")
_KEY: Final = re.compile(
    r"^Object (?P<what>missing required|contains unknown) field `(?P<key>[^`]*)`$"
)


class Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every configuration struct: frozen, keyword-only, unknown keys refused.

    Subclasses inherit all three; they repeat ``frozen=True, kw_only=True`` for type checkers.
    """


class FieldProblem(ValueError):
    """A ``__post_init__`` rule broken by one field (``field`` is relative to the struct)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _dec_hook(type_: type, obj: object) -> object:
    if type_ is Path:
        if isinstance(obj, str | os.PathLike):
            return Path(obj)
        raise TypeError(f"Expected a path string, got `{type(obj).__name__}`")
    # msgspec's dec_hook protocol: NotImplementedError reports the type as unsupported, which
    # msgspec turns into a ValidationError naming the field (translated once in describe())
    raise NotImplementedError(f"no conversion to {type_!r}")


def convert(doc: object, type_: type[T]) -> T:
    """``doc`` (parsed TOML/JSON) as a ``type_``; raises ``msgspec.ValidationError``."""
    return msgspec.convert(doc, type_, strict=False, dec_hook=_dec_hook)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path and key and not key.startswith("[") else path + key


def _unwrap(type_: object) -> object:
    """``type_`` without ``Annotated`` constraints and without ``| None``."""
    while True:
        origin = get_origin(type_)
        if origin is Annotated:
            type_ = get_args(type_)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(type_) if a is not type(None)]
            if len(args) != 1:
                return type_
            type_ = args[0]
        else:
            return type_


def _type_at(root: type, path: str) -> object:
    """The declared type at ``path`` (``.sources[0].interval_s``) of ``root``, or None."""
    type_: object = root
    for step in _STEP.finditer(path):
        type_ = _unwrap(type_)
        if step["field"] is None:  # an item of a list or a value of a dict
            args = get_args(type_)
            type_ = args[-1] if args else None
        elif isinstance(type_, type) and issubclass(type_, msgspec.Struct):
            fields = {f.name: f.type for f in msgspec.structs.fields(type_)}
            type_ = fields.get(step["field"])
        else:
            return None
    return _unwrap(type_)


def _choices(type_: object) -> str:
    """``'a', 'b'``: the values a Literal or Enum type allows ("" for other types)."""
    if get_origin(type_) is Literal:
        values: list[object] = list(get_args(type_))
    elif isinstance(type_, type) and issubclass(type_, enum.Enum):
        values = [member.value for member in type_]
    else:
        return ""
    return ", ".join(repr(v) for v in values)


def describe(exc: msgspec.ValidationError, type_: type, *, at: str = "") -> str:
    """``field.path: problem`` for a validation error of ``convert(doc, type_)``.

    ``sources[0].interval_s: Expected float > 0.0``; a value outside a fixed set of choices
    lists them. ``at`` is the path of the converted document itself within a larger one.
    """
    match = _AT.match(str(exc))
    assert match is not None  # the pattern matches any text
    raw_path = match["path"] or ""
    msg, path = match["msg"], _join(at, raw_path.removeprefix("."))
    if msg.startswith("Invalid enum value") and (choices := _choices(_type_at(type_, raw_path))):
        msg += f"; expected one of {choices}"
    msg = msg.replace("\\\\", "\\")  # regexes are quoted with repr()
    cause = exc.__cause__
    if isinstance(cause, FieldProblem):
        path, msg = _join(path, cause.field), cause.problem
    elif key := _KEY.match(msg):
        path = _join(path, key["key"])
        msg = "required" if key["what"] == "missing required" else "unknown setting"
    msg = msg.replace("`", "")
    return f"{path}: {msg}" if path else msg

"""Validation errors that carry a sub-path, so ``PlanError.path`` can point at the bad field."""

from __future__ import annotations

_MARK = "@@"


def located(subpath: str, message: str) -> ValueError:
    """A ``ValueError`` for the field at ``subpath`` below the one being validated."""
    return ValueError(f"{_MARK}{subpath}{_MARK}{message}")


def split_located(message: str) -> tuple[str, str]:
    """``(subpath, message)`` from a :func:`located` message (``("", message)`` otherwise)."""
    if _MARK not in message:
        return "", message
    _, sub, msg = message.split(_MARK, 2)
    return sub, msg

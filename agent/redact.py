"""Secrets never printed: URLs with a password are shown with the password masked.

Pure functions, used wherever a broker or database URL reaches a log line, an error message or
the terminal (the agent and the collector).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "redact_text", "redact_url"]

MASK: Final = "***"
# scheme://user:password@ inside any text (a URL in an exception message, a log line).
_USERINFO: Final = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*):(?P<pw>[^\s/@]*)@")
# libpq key=value strings: password=secret or password='se cret'.
_KV_PASSWORD: Final = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)")


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; other parts unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password is None:
        return redact_text(url)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{user}:{MASK}@{host}" + (f":{port}" if port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redact_text(text: str) -> str:
    """``text`` with the password of every URL or ``password=`` setting in it masked."""
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _KV_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)

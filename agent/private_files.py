"""Files only the agent's user may read (mode 0600): the buffer, credentials, saved state."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

__all__ = ["PRIVATE_MODE", "make_private", "write_private"]

PRIVATE_MODE: Final = 0o600


def make_private(path: Path) -> None:
    """Create ``path`` if missing, owner read/write only; tighten it if it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, the new file 0600 from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)

"""One transaction at a time on a shared RS-485 bus, across sources and processes.

Several meters on one bus are configured as several sources sharing one serial device. Two
open handles of a tty steal each other's input bytes, so each poll opens the port, talks,
and closes it while holding an advisory lock (``flock``) on a lock file named after the
device. The lock is free when no poll runs; waiting for it never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from firmware_bridge.errors import DeviceError

__all__ = ["bus_lock", "lock_path"]


def lock_path(device: str) -> Path:
    """The lock file of a serial device (``/dev/ttyUSB0`` → ``…/tally-bus-dev_ttyUSB0.lock``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.realpath(device).strip("/"))
    return Path(tempfile.gettempdir()) / f"tally-bus-{safe}.lock"


@contextlib.asynccontextmanager
async def bus_lock(device: str, *, source: str, timeout_s: float) -> AsyncIterator[None]:
    """Hold the bus of ``device`` exclusively; DeviceError if it stays busy for ``timeout_s``."""
    fd = os.open(lock_path(device), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if loop.time() >= deadline:
                    raise DeviceError(
                        f"bus {device} stayed busy for {timeout_s:g} s", source=source
                    ) from None
                await asyncio.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

"""A virtual null-modem cable: two pseudo-terminals whose masters are cross-connected.

Each end has a device path (``/dev/pts/N``) that any serial program can open, like the two
ends of a real RS-485/RS-232 cable. The relay runs on the asyncio loop that opened the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty
from collections.abc import Callable

__all__ = ["PtyLink", "open_pty", "write_or_drop"]


def open_pty() -> tuple[int, str]:
    """A new pseudo-terminal in raw mode: (master fd, slave device path)."""
    master, slave = os.openpty()
    tty.setraw(slave, termios.TCSANOW)
    path = os.ttyname(slave)
    os.close(slave)
    return master, path


def write_or_drop(fd: int, data: bytes) -> int:
    """Write to a non-blocking pty master; bytes nobody reads are dropped (returns the count)."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except (BlockingIOError, OSError):
            return len(view)
        view = view[n:]
    return 0


class PtyLink:
    """Two pty devices, ``a`` and ``b``: bytes written to one come out of the other."""

    def __init__(self, *, tamper_a_to_b: Callable[[bytes], bytes] | None = None) -> None:
        """``tamper_a_to_b`` may alter bytes travelling from ``a`` to ``b`` (line faults)."""
        self._tamper = tamper_a_to_b
        self._ma, self.a = open_pty()
        self._mb, self.b = open_pty()
        # keep one slave handle per end open so a master never reads EIO between clients
        self._keep = [os.open(p, os.O_RDWR | os.O_NOCTTY) for p in (self.a, self.b)]
        for fd in self._keep:
            tty.setraw(fd, termios.TCSANOW)
        for fd in (self._ma, self._mb):
            os.set_blocking(fd, False)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> PtyLink:
        loop = asyncio.get_running_loop()
        loop.add_reader(self._ma, self._relay, self._ma, self._mb, self._tamper)
        loop.add_reader(self._mb, self._relay, self._mb, self._ma, None)
        self._loop = loop
        return self

    @staticmethod
    def _relay(src: int, dst: int, tamper: Callable[[bytes], bytes] | None) -> None:
        try:
            data = os.read(src, 4096)
        except OSError:
            return
        if data and tamper is not None:
            data = tamper(data)
        if data:
            write_or_drop(dst, data)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._ma)
            self._loop.remove_reader(self._mb)
            self._loop = None
        for fd in (*self._keep, self._ma, self._mb):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._keep = []

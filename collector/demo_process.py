"""Process plumbing of the demo: signals, the work-directory lock, port checks.

Nothing here knows about Tally; ``collector.demo`` composes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TypeVar

from collector.errors import CollectorError

__all__ = [
    "DemoError",
    "Interrupted",
    "Stopper",
    "check_port_free",
    "check_reachable",
    "without_sigint",
    "workdir_lock",
]

_T = TypeVar("_T")


class DemoError(CollectorError):
    """The demo cannot start (port in use, server failed to start, ...)."""


class Interrupted(DemoError):
    """Ctrl-C / SIGTERM arrived while starting up."""


class Stopper:
    """SIGINT/SIGTERM handler: records the request and wakes the running loop, never raises.

    A second signal while stopping only says so; a third one exits at once (state is kept on
    disk, the next run picks it up).
    """

    def __init__(self) -> None:
        self.requested = False
        self._signals = 0
        self._wake: Callable[[], None] | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 2:
            os.write(2, b"tally-demo: still stopping; press Ctrl-C once more to quit at once\n")
        if self._signals >= 3:
            os._exit(130)
        if self.requested:
            return
        self.requested = True
        if self._wake is not None:
            self._wake()

    def attach(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        def wake() -> None:
            loop.call_soon_threadsafe(event.set)

        self._wake = wake
        if self.requested:
            event.set()

    def detach(self) -> None:
        self._wake = None

    def check(self) -> None:
        if self.requested:
            raise Interrupted


def without_sigint(fn: Callable[[], _T]) -> _T:
    """Run ``fn`` with SIGINT blocked, so a child it spawns ignores the terminal's Ctrl-C and
    is stopped by us, in order, instead (the signal mask is inherited across fork/exec)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return fn()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise DemoError(
                f"cannot serve the API on {host}:{port}: {exc.strerror or exc} "
                "(another demo or collector running?); choose a port with --api-port"
            ) from exc


@contextlib.contextmanager
def workdir_lock(workdir: Path) -> Iterator[None]:
    """One demo per work directory: two would share agent buffers and device ids."""
    with (workdir / "demo.lock").open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise DemoError(
                f"another demo is already running in {workdir} (stop it, or use --workdir)"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_reachable(host: str, port: int, what: str, option: str) -> None:
    """Fail fast, with the option to fix it, when nothing listens at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as exc:
        raise DemoError(
            f"cannot reach the {what} at {host}:{port}: {exc.strerror or exc}; "
            f"check {option} (or leave it out to use an embedded one)"
        ) from exc

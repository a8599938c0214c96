"""A few shared SQLite threads for the buffers of many agents hosted in one process.

aiosqlite gives every connection a thread of its own. A process hosting thousands of agents
(the fleet simulator, ``agent.fleet``) then runs thousands of mostly idle threads, and every
statement is a hand-off between two of them, fought over under the GIL. ``SqliteThreads`` runs
the connections of many buffers on a few threads instead. Nothing else changes for a buffer:
each keeps its own file, connection, transactions and fsyncs, and its statements still run one
at a time, in order, on one thread (a connection is pinned to the thread that opened it, as
sqlite3 requires). Several threads rather than one because a durable commit waits for fsync
with the GIL released, so commits to different files overlap.

A deployed agent (one device per process) keeps aiosqlite's own thread: ``SqliteBuffer.open``
uses this only when given ``connect=threads.connect``.

The connection is aiosqlite's own ``Connection`` with its queue pointed at a shared thread;
``SqliteThreads`` checks the aiosqlite internals it relies on when it starts and fails loudly
(``RuntimeError``) if a new aiosqlite release changed them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from queue import SimpleQueue
from typing import Any, Final

import aiosqlite

_Item = tuple[asyncio.Future[Any] | None, Callable[[], Any]]
_STOP: Final = object()


def _stop() -> object:
    return _STOP


def _settle(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def _serve(queue: SimpleQueue[_Item]) -> None:
    """Run queued calls in order; hand each outcome to its future's event loop."""
    while True:
        future, call = queue.get()
        result: Any = None
        exc: BaseException | None = None
        try:
            result = call()
        except BaseException as e:  # handed to the awaiting coroutine
            exc = e
        if result is _STOP:
            return
        if future is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                future.get_loop().call_soon_threadsafe(_settle, future, result, exc)


class _AlreadyRunning(threading.Thread):
    """Stands for aiosqlite's per-connection thread, which ``await connect(...)`` starts."""

    def start(self) -> None:
        return None


class _SharedConnection(aiosqlite.Connection):
    """aiosqlite's connection, its calls queued to a shared thread instead of its own."""

    def __init__(self, connector: Callable[[], sqlite3.Connection],
                 queue: SimpleQueue[_Item]) -> None:
        super().__init__(connector, 64)
        self._tx = queue
        self._thread = _AlreadyRunning()

    def stop(self) -> asyncio.Future[Any] | None:
        """Close the sqlite3 connection on its thread; the shared thread keeps running."""
        self._running = False

        def close() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        future: asyncio.Future[Any] | None
        try:
            future = asyncio.get_running_loop().create_future()
        except RuntimeError:
            future = None
        self._tx.put_nowait((future, close))
        return future


def _check_aiosqlite() -> None:
    probe = aiosqlite.Connection(lambda: sqlite3.connect(":memory:"), 64)
    tx, thread = getattr(probe, "_tx", None), getattr(probe, "_thread", None)
    if not isinstance(tx, SimpleQueue) or not isinstance(thread, threading.Thread):
        raise RuntimeError(  # noqa: TRY004 - a changed dependency, not a caller's wrong type
            f"aiosqlite {getattr(aiosqlite, '__version__', '?')} no longer queues a "
            "connection's calls to Connection._tx run by Connection._thread; SqliteThreads "
            "needs updating (or run one thread per connection: SqliteBuffer.open without "
            "connect=)")


class SqliteThreads:
    """``threads`` SQLite threads shared by every connection made with ``connect``.

    Start with ``start()`` (or ``with SqliteThreads(...) as threads:``), stop with ``close()``
    after every connection made here is closed.
    """

    def __init__(self, threads: int = 8) -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self._size = threads
        self._queues: list[SimpleQueue[_Item]] = []
        self._threads: list[threading.Thread] = []
        self._next = itertools.cycle(range(threads))

    def start(self) -> SqliteThreads:
        if self._threads:
            return self
        _check_aiosqlite()
        for n in range(self._size):
            queue: SimpleQueue[_Item] = SimpleQueue()
            thread = threading.Thread(target=_serve, args=(queue,), name=f"sqlite-{n}",
                                      daemon=True)
            thread.start()
            self._queues.append(queue)
            self._threads.append(thread)
        return self

    def connect(self, database: str | Path, **kwargs: Any) -> aiosqlite.Connection:
        """As ``aiosqlite.connect(database, **kwargs)``, on the next shared thread."""
        if not self._threads:
            raise RuntimeError("SqliteThreads.start() first")
        loc = str(database)
        return _SharedConnection(lambda: sqlite3.connect(loc, **kwargs),
                                 self._queues[next(self._next)])

    def close(self) -> None:
        """Stop the threads once the calls already queued have run."""
        for queue in self._queues:
            queue.put_nowait((None, _stop))
        for thread in self._threads:
            thread.join()
        self._queues.clear()
        self._threads.clear()

    def __enter__(self) -> SqliteThreads:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

"""A TCP proxy the test controls: cut it to make a server unreachable without stopping it, or
slow it down (latency and a bandwidth limit, both ways) to make a link poor without cutting it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LinkShape:
    """A poor link: every chunk is held ``latency_s`` and the bytes of each direction pass at
    most ``bytes_per_s`` (a token bucket per connection and direction)."""

    latency_s: float
    bytes_per_s: float

    def __post_init__(self) -> None:
        if self.latency_s < 0 or self.bytes_per_s <= 0:
            raise ValueError("latency_s must be >= 0 and bytes_per_s > 0")


class TcpProxy:
    """Forward 127.0.0.1:<port> to (host, port) or to a unix-socket dir and port.

    ``cut()`` drops all links and refuses new ones until ``restore()``; ``slow(shape)`` makes
    every link (open or new) poor until ``fast()``.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self._shape: LinkShape | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = self._connect_upstream()
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        host, port = self._target
        if host.startswith("/"):  # a unix-socket directory, as PostgreSQL uses
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(f"{host}/.s.PGSQL.{port}")
            return sock
        return socket.create_connection(self._target, timeout=5)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        free_at = 0.0  # when the bandwidth limit lets the next byte through
        try:
            while data := src.recv(65536 if self._shape is None else 4096):
                shape = self._shape
                if shape is not None:
                    now = time.monotonic()
                    # the chunk is through once the bytes ahead of it and its own have passed
                    # at the link's rate, and not before the latency
                    free_at = max(now, free_at) + len(data) / shape.bytes_per_s
                    time.sleep(max(max(free_at, now + shape.latency_s) - now, 0.0))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until ``restore()``."""
        self._open.clear()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self._open.set()

    def slow(self, shape: LinkShape) -> None:
        """Make every link poor (both directions) until ``fast()``."""
        self._shape = shape

    def fast(self) -> None:
        self._shape = None

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

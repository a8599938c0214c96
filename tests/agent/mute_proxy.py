"""A TCP proxy that can go deaf one way: after ``mute()`` the client's bytes still reach the
server but nothing from the server reaches the client (PUBACKs vanish, PUBLISHes arrive)."""

from __future__ import annotations

import contextlib
import socket
import threading


class MuteProxy:
    """127.0.0.1:<port> -> target; ``mute()`` drops server->client traffic on every link."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self.muted = threading.Event()
        self._socks: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                return
            upstream.settimeout(None)
            self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_server and self.muted.is_set():
                    continue  # swallowed: the client never hears back
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def mute(self) -> None:
        self.muted.set()

    def unmute(self) -> None:
        self.muted.clear()

    def close(self) -> None:
        self._closed = True
        for s in [self._listener, *self._socks]:
            with contextlib.suppress(OSError):
                s.close()

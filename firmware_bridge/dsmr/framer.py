"""Incremental framer for a P1 byte stream: finds ``/…!CRC\\r\\n`` telegrams in any chunking.

Pure and deterministic: the telegrams found depend only on the bytes, never on how they
were split into chunks. Bytes outside telegrams (line noise, a telegram cut off when the
reader started) are skipped and counted.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_TELEGRAM_BYTES", "TelegramFramer"]

MAX_TELEGRAM_BYTES: Final = 16_384
_MARK: Final = re.compile(rb"[!/]")
_HEX: Final = frozenset(b"0123456789ABCDEFabcdef")
_AGAIN: Final = object()


class TelegramFramer:
    """Feed bytes as they arrive; get complete telegrams (``/`` to the line end after the CRC)."""

    def __init__(self, max_bytes: int = MAX_TELEGRAM_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_bytes
        self.skipped_bytes = 0
        self.telegrams = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while (frame := self._next()) is not None:
            out.append(frame)
        self.telegrams += len(out)
        return out

    def _skip(self, n: int) -> None:
        self.skipped_bytes += n
        del self._buf[:n]

    def _next(self) -> bytes | None:
        while True:
            step = self._step()
            if step is not _AGAIN:
                return step  # type: ignore[return-value]

    def _step(self) -> bytes | object | None:  # noqa: PLR0911 - one return per framing decision
        """One framing decision: a frame, None (need more bytes) or _AGAIN (skipped, rescan)."""
        buf = self._buf
        start = buf.find(b"/")
        if start < 0:
            self._skip(len(buf))
            return None
        if start:
            self._skip(start)
        limit = min(len(buf), self._max)
        mark = _MARK.search(buf, 1, limit)
        if mark is None:
            if len(buf) >= self._max:
                self._skip(1)  # too long without an end: not a telegram
                return _AGAIN
            return None
        if buf[mark.start()] == ord("/"):
            self._skip(mark.start())  # a new start before the end: the previous one was cut
            return _AGAIN
        bang = mark.start()
        j = bang + 1
        while j < len(buf) and j - bang - 1 < 4 and buf[j] in _HEX:
            j += 1
        if j >= len(buf):
            return None  # the CRC or the line end may still be arriving
        if len(buf) < j + 2:
            if buf[j] == ord("\r"):
                return None
            self._skip(1)
            return _AGAIN
        if buf[j : j + 2] != b"\r\n":
            self._skip(1)
            return _AGAIN
        frame = bytes(buf[: j + 2])
        del buf[: j + 2]
        return frame

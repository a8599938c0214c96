"""Read a number from a command's output (argv, never a shell) or from a file, by regex.

The regex's named group ``value`` (or else its first group, or else the whole match) is the
number; ``scale`` multiplies it. A command that times out, exits non-zero, or prints no
match fails the poll with ``SourceError``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.errors import SourceError
from agent.protocol import Kind, Reading
from firmware_bridge.errors import DecodeError, DeviceError
from firmware_bridge.measurement import Measurement, to_readings

__all__ = ["CommandSource", "FileSource", "ValueSpec", "parse_number"]


def parse_number(text: str, pattern: re.Pattern[str]) -> float:
    """The number ``pattern`` finds in ``text``; DecodeError if none."""
    m = pattern.search(text)
    if m is None:
        raise DecodeError(f"pattern {pattern.pattern!r} matches nothing in {text[:80]!r}")
    if "value" in pattern.groupindex:
        raw = m.group("value")
    elif pattern.groups:
        raw = m.group(1)
    else:
        raw = m.group(0)
    try:
        number = float(raw)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"{raw!r:.40} is not a number") from exc
    if not math.isfinite(number):
        raise DecodeError(f"{raw!r:.40} is not a finite number")
    return number


@dataclass(frozen=True, slots=True)
class ValueSpec:
    """How to find the number and what it is."""

    pattern: re.Pattern[str]
    metric: str
    unit: str
    kind: Kind
    scale: float = 1.0


class _ParsedSource(abc.ABC):
    def __init__(self, name: str, spec: ValueSpec, *, meter: str | None, interval_s: float) -> None:
        self._name = name
        self._spec = spec
        self._meter = meter or name
        self._interval_s = interval_s

    @property
    def name(self) -> str:
        return self._name

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @abc.abstractmethod
    async def _text(self) -> str:
        raise NotImplementedError

    async def read(self, now: datetime) -> Sequence[Reading]:
        ts_ms = int(now.timestamp() * 1000)
        try:
            spec = self._spec
            value = parse_number(await self._text(), spec.pattern) * spec.scale
            return to_readings(
                self._meter, [Measurement(spec.metric, spec.unit, spec.kind, ts_ms, value)]
            )
        except (DecodeError, DeviceError, OSError) as exc:
            raise SourceError(f"{self._name}: {exc}", source=self._name) from exc

    async def close(self) -> None:
        return None


class CommandSource(_ParsedSource):
    """Runs ``argv`` at each poll and parses its standard output."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        spec: ValueSpec,
        *,
        meter: str | None = None,
        interval_s: float = 60.0,
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__(name, spec, meter=meter, interval_s=interval_s)
        if not argv:
            raise ValueError("argv must not be empty")
        self._argv = list(argv)
        self._timeout_s = timeout_s

    async def _text(self) -> str:
        proc = await asyncio.create_subprocess_exec(
            *self._argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(self._timeout_s):
                out, err = await proc.communicate()
        except TimeoutError as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise DeviceError(
                f"command {self._argv[0]!r} did not finish within {self._timeout_s:g} s",
                source=self._name,
            ) from exc
        if proc.returncode != 0:
            raise DeviceError(
                f"command {self._argv[0]!r} exited with {proc.returncode}: "
                f"{err.decode(errors='replace').strip()[:200]}",
                source=self._name,
            )
        return out.decode(errors="replace")


class FileSource(_ParsedSource):
    """Reads ``path`` at each poll (e.g. a sysfs counter or a file a logger rewrites)."""

    def __init__(
        self,
        name: str,
        path: str,
        spec: ValueSpec,
        *,
        meter: str | None = None,
        interval_s: float = 60.0,
        max_bytes: int = 65_536,
    ) -> None:
        super().__init__(name, spec, meter=meter, interval_s=interval_s)
        self._path = Path(path)
        self._max_bytes = max_bytes

    async def _text(self) -> str:
        def load() -> str:
            with self._path.open("rb") as f:
                return f.read(self._max_bytes).decode(errors="replace")

        return await asyncio.to_thread(load)

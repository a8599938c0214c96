"""Exceptions raised by the firmware bridge.

    BridgeError
    ├── DecodeError(ValueError)       bytes/values that do not decode (has .data and .offset)
    │   └── FrameError                a frame/telegram is malformed or fails its checksum
    ├── DeviceError                   no answer, or an exception response (has .source)
    └── BridgeConfigError(ValueError) a ``[[sources]]`` entry or a register map is invalid

Adapters translate these (and third-party errors) into ``agent.errors.SourceError`` at
``Source.read`` so the agent flags the failed poll and keeps going.
"""

from __future__ import annotations

__all__ = ["BridgeConfigError", "BridgeError", "DecodeError", "DeviceError", "FrameError"]


class BridgeError(Exception):
    """Base class of every error the firmware bridge raises."""


class DecodeError(BridgeError, ValueError):
    """Input that does not decode; carries the offending bytes and the offset of the fault."""

    def __init__(self, message: str, *, data: bytes = b"", offset: int | None = None) -> None:
        super().__init__(message)
        self.data = bytes(data[:256])
        self.offset = offset


class FrameError(DecodeError):
    """A frame or telegram is malformed or fails its checksum."""


class DeviceError(BridgeError):
    """A device failed to answer (timeout) or answered with an exception response."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


class BridgeConfigError(BridgeError, ValueError):
    """A source configuration or a register map is invalid."""

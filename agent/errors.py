"""Exceptions raised by the agent package.

    AgentError
    ├── ProtocolError(ValueError)   a payload or reading breaks the wire protocol (has .field)
    ├── ConfigError(ValueError)     the agent configuration is invalid
    ├── BufferError_                the local SQLite buffer failed
    │   ├── BufferFullError         the buffer is at its size limit and the policy refuses
    │   └── DiskFullError           the disk (or SQLite's page limit) is full; retry later
    ├── PublishError                the MQTT publisher failed (has .rc, paho's reason code)
    ├── EnrollError                 enrollment at the collector failed (has .status, .reason)
    └── SourceError                 a reading source failed (has .source)
"""

from __future__ import annotations

__all__ = [
    "AgentError",
    "BufferError_",
    "BufferFullError",
    "ConfigError",
    "DiskFullError",
    "EnrollError",
    "ProtocolError",
    "PublishError",
    "SourceError",
]


class AgentError(Exception):
    """Base class of every error the agent raises."""


class ProtocolError(AgentError, ValueError):
    """A payload or reading violates the Tally wire protocol."""

    def __init__(self, message: str, *, field: str = "payload") -> None:
        super().__init__(message)
        self.field = field
        self.reason = message


class ConfigError(AgentError, ValueError):
    """The agent configuration is invalid."""


class BufferError_(AgentError):  # trailing underscore: the builtin BufferError exists
    """The durable buffer failed."""


class BufferFullError(BufferError_):
    """The buffer reached its configured maximum and the policy is to refuse new readings."""


class DiskFullError(BufferError_):
    """The disk holding the buffer is full; nothing was written, retry when space returns."""


class PublishError(AgentError):
    """Publishing to the broker failed."""

    def __init__(self, message: str, *, rc: int | None = None) -> None:
        super().__init__(message)
        self.rc = rc


class SourceError(AgentError):
    """A reading source failed to produce readings."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


class EnrollError(AgentError):
    """Enrollment at the collector failed; ``status`` is the HTTP status (0: no answer) and
    ``reason`` the collector's refusal kind (expired, used, rate_limited, …) when it gave one."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

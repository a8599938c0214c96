"""Tally wire protocol v1: the batch envelope an agent publishes and the collector decodes.

Pure code: bytes in, validated values out (and back). No sockets, no clock: callers pass
``now_ms`` where validation needs the current time. The format is documented for humans in
``docs/protocol.md``; golden files live in ``tests/protocol/golden``.

Topic scheme::

    tally/v1/<device_id>/readings   batches (QoS 1, not retained)
    tally/v1/<device_id>/status     retained status / last will (JSON)
    tally/v1/<device_id>/ack        the collector's acknowledgement (agent.protocol_ack)

Envelope (JSON shown; the same map encoded as CBOR is accepted, told apart by the first byte)::

    {"v": 1, "device": "dev-1", "seq": 42, "sent": 1732492800000, "agent": "0.1.0",
     "series": [{"meter": "main", "metric": "energy_import", "unit": "kWh", "kind": "cumulative",
                 "t0": 1732492740000, "dt": [0, 60000], "val": [1234.5, 1234.61]}]}

``seq`` is the per-device batch sequence number: the unit of deduplication. A batch re-sent
after a crash carries the same ``seq`` and exactly the same readings. The optional ``low`` is the
lowest seq the agent still holds unconfirmed; the collector's acknowledgement on
``tally/v1/<device_id>/ack`` (``agent.protocol_ack``) lists the durable seqs from there up. The
optional ``skipped`` lists (as ``[first, last]`` ranges) seqs of batches the agent dropped
before they were confirmed (``drop_oldest`` on a full buffer): the collector records them as
deliberately skipped, not as a gap.
"""

from __future__ import annotations

import enum
import json
import math
import re
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import cbor2

from agent.errors import ProtocolError

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "MAX_READINGS_PER_BATCH",
    "MAX_SERIES_PER_BATCH",
    "MIN_TIMESTAMP_MS",
    "PROTOCOL_VERSION",
    "Batch",
    "Encoding",
    "Kind",
    "Reading",
    "Series",
    "config_topic",
    "decode_batch",
    "device_from_topic",
    "encode_batch",
    "readings_topic",
    "series_from_readings",
    "status_topic",
]

PROTOCOL_VERSION: Final = 1
TOPIC_PREFIX: Final = "tally/v1"
MAX_PAYLOAD_BYTES: Final = 1_048_576
MAX_READINGS_PER_BATCH: Final = 20_000
MAX_SERIES_PER_BATCH: Final = 256
MIN_TIMESTAMP_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_SKIPPED_RANGES: Final = 64
MAX_SKIPPED_SPAN: Final = 100_000  # seqs in one skipped range
MAX_FUTURE_SKEW_MS: Final = 24 * 3600 * 1000  # a reading may be at most 1 day ahead of `now`
_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")  # \Z: "$" lets "x\n" in
_UNIT_RE: Final = re.compile(r"^[A-Za-z0-9%°/^.*_³²µ-]{1,16}$")


class Kind(enum.StrEnum):
    """How a series' values relate to consumption."""

    CUMULATIVE = "cumulative"  # a register that only grows (kWh total, m³ index, bytes counter)
    DELTA = "delta"  # consumption since the previous reading of the series
    GAUGE = "gauge"  # an instantaneous level (kW, °C, connected devices)


class Encoding(enum.StrEnum):
    JSON = "json"
    CBOR = "cbor"


def _check_id(what: str, value: object) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ProtocolError(
            f"{what} must be 1-64 characters of [A-Za-z0-9._:-], got {value!r:.80}", field=what
        )
    return value


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one meter metric at one instant, as an agent takes it."""

    meter: str
    metric: str
    unit: str
    kind: Kind
    ts_ms: int
    value: float

    def __post_init__(self) -> None:
        _check_id("meter", self.meter)
        _check_id("metric", self.metric)
        if not _UNIT_RE.match(self.unit):
            raise ProtocolError(f"bad unit {self.unit!r}", field="unit")
        if not math.isfinite(self.value):
            raise ProtocolError(f"value must be finite, got {self.value!r}", field="val")
        if self.ts_ms < MIN_TIMESTAMP_MS:
            raise ProtocolError(f"timestamp {self.ts_ms} is before 2000-01-01", field="t0")

    @property
    def series_key(self) -> tuple[str, str, str, Kind]:
        return (self.meter, self.metric, self.unit, self.kind)


_BUFFER_FORMATS: Final = {"q": ("q", "l"), "d": ("d",)}  # int64 is "l" on LP64 platforms


def _column(values: Iterable[Any], typecode: str) -> array[Any]:
    """``values`` as an array of ``typecode``: as is if it is one, copied in one go from a
    contiguous 8-byte buffer of the same kind (a numpy column), else value by value."""
    if isinstance(values, array) and values.typecode == typecode:
        return values
    try:
        view = memoryview(values)  # type: ignore[arg-type]
    except TypeError:
        return array(typecode, values)
    with view:
        if (view.ndim == 1 and view.itemsize == 8 and view.c_contiguous
                and view.format in _BUFFER_FORMATS[typecode]):
            out = array(typecode)
            out.frombytes(view.cast("B"))
            return out
    return array(typecode, values)


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """Columnar readings of one meter metric: timestamps (Unix ms) and values.

    The columns are stored as ``array('q')`` and ``array('d')`` (any sequence of numbers given
    is copied into one): compact, and readable without copying through the buffer protocol
    (``numpy.frombuffer``) by code that wants numpy. The agent itself does not load numpy.
    """

    meter: str
    metric: str
    unit: str
    kind: Kind
    ts_ms: array[int]
    values: array[float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts_ms", _column(self.ts_ms, "q"))
        object.__setattr__(self, "values", _column(self.values, "d"))
        if len(self.ts_ms) != len(self.values):
            raise ProtocolError(
                f"series {self.meter}/{self.metric}: {len(self.ts_ms)} timestamps but"
                f" {len(self.values)} values", field="val"
            )

    def __len__(self) -> int:
        return len(self.ts_ms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Series):
            return NotImplemented
        return (
            (self.meter, self.metric, self.unit, self.kind)
            == (other.meter, other.metric, other.unit, other.kind)
            and self.ts_ms == other.ts_ms
            and self.values == other.values
        )

    def __hash__(self) -> int:
        return hash((self.meter, self.metric, self.unit, self.kind, len(self)))

    def readings(self) -> list[Reading]:
        return [
            Reading(self.meter, self.metric, self.unit, self.kind, t, v)
            for t, v in zip(self.ts_ms, self.values, strict=True)
        ]


@dataclass(frozen=True, slots=True)
class Batch:
    """A published batch: the unit of transport, acknowledgement and deduplication."""

    device: str
    seq: int
    sent_ms: int
    agent_version: str
    series: tuple[Series, ...]
    low: int | None = None  # lowest seq the agent still holds unconfirmed (optional)
    skipped: tuple[tuple[int, int], ...] = ()  # seq ranges the agent dropped unsent (optional)

    @property
    def reading_count(self) -> int:
        return sum(len(s) for s in self.series)


def readings_topic(device: str) -> str:
    return f"{TOPIC_PREFIX}/{_check_id('device', device)}/readings"


def status_topic(device: str) -> str:
    return f"{TOPIC_PREFIX}/{_check_id('device', device)}/status"


def config_topic(device: str) -> str:
    """Where the collector publishes the device's remote configuration (retained)."""
    return f"{TOPIC_PREFIX}/{_check_id('device', device)}/config"


def device_from_topic(topic: str) -> str:
    """The device id in a ``tally/v1/<device>/readings`` topic; ProtocolError otherwise."""
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != TOPIC_PREFIX or parts[3] != "readings":
        raise ProtocolError(
            f"topic {topic!r:.120} is not tally/v1/<device>/readings", field="topic"
        )
    return _check_id("device", parts[2])


def series_from_readings(readings: Iterable[Reading]) -> tuple[Series, ...]:
    """Group readings into columnar series, keeping first-seen order of series and readings."""
    groups: dict[tuple[str, str, str, Kind], tuple[list[int], list[float]]] = {}
    for r in readings:
        ts, vals = groups.setdefault(r.series_key, ([], []))
        ts.append(r.ts_ms)
        vals.append(r.value)
    return tuple(
        Series(m, q, u, k, array("q", ts), array("d", vals))
        for (m, q, u, k), (ts, vals) in groups.items()
    )


def encode_batch(batch: Batch, encoding: Encoding = Encoding.JSON) -> bytes:
    """Encode a batch; the result decodes back to an equal batch."""
    doc: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "device": batch.device,
        "seq": batch.seq,
        "sent": batch.sent_ms,
        "agent": batch.agent_version,
        "series": [
            {
                "meter": s.meter,
                "metric": s.metric,
                "unit": s.unit,
                "kind": s.kind.value,
                "t0": s.ts_ms[0] if len(s) else 0,
                "dt": _offsets(s.ts_ms),
                "val": s.values.tolist(),
            }
            for s in batch.series
        ],
    }
    if batch.low is not None:
        doc["low"] = batch.low
    if batch.skipped:
        doc["skipped"] = [[lo, hi] for lo, hi in batch.skipped]
    if encoding is Encoding.CBOR:
        return cbor2.dumps(doc)
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def _offsets(ts_ms: array[int]) -> list[int]:
    if not ts_ms:
        return []
    return list(map((-ts_ms[0]).__add__, ts_ms))


def _load(payload: bytes) -> object:
    if not payload:
        raise ProtocolError("empty payload", field="payload")
    if payload[:1] in (b"{", b" ", b"\n", b"\t", b"\r"):
        try:
            return json.loads(payload, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"not valid JSON: {exc}", field="payload") from exc
    if 0xA0 <= payload[0] <= 0xBF:
        try:
            return cbor2.loads(payload)
        except (ValueError, EOFError, cbor2.CBORDecodeError, RecursionError) as exc:
            raise ProtocolError(f"not valid CBOR: {exc}", field="payload") from exc
    raise ProtocolError(
        f"payload is neither a JSON object nor a CBOR map (first byte 0x{payload[0]:02x})",
        field="payload",
    )


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def _int(doc: Mapping[str, Any], key: str, *, lo: int, hi: int) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{key!r} must be an integer, got {type(value).__name__}", field=key)
    if not lo <= value <= hi:
        raise ProtocolError(f"{key!r}={value} is outside [{lo}, {hi}]", field=key)
    return value


def _str(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"{key!r} must be a string, got {type(value).__name__}", field=key)
    return value


def _ints(value: object, key: str) -> array[int]:
    if not isinstance(value, list):
        raise ProtocolError(f"{key!r} must be an array", field=key)
    if not all(type(x) is int for x in value):
        raise ProtocolError(f"{key!r} must hold integers only", field=key)
    try:
        return array("q", value)
    except OverflowError as exc:
        raise ProtocolError(f"{key!r} holds an integer out of range", field=key) from exc


def _floats(value: object, key: str) -> array[float]:
    if not isinstance(value, list):
        raise ProtocolError(f"{key!r} must be an array", field=key)
    if not all(type(x) is int or type(x) is float for x in value):
        raise ProtocolError(f"{key!r} must hold numbers only", field=key)
    try:
        arr = array("d", value)
    except OverflowError as exc:
        raise ProtocolError(f"{key!r} holds a number out of range", field=key) from exc
    # A finite sum proves every value finite; only a NaN, an infinity or an overflowing sum
    # (huge finite values) needs the look at each value.
    if not math.isfinite(sum(arr)) and not all(map(math.isfinite, arr)):
        raise ProtocolError(f"{key!r} holds NaN or infinity", field=key)
    return arr


def _decode_series(raw: object, index: int, now_ms: int) -> Series:
    where = f"series[{index}]"
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where} must be an object", field="series")
    meter = _check_id(f"{where}.meter", raw.get("meter"))
    metric = _check_id(f"{where}.metric", raw.get("metric"))
    unit = _str(raw, "unit")
    if not _UNIT_RE.match(unit):
        raise ProtocolError(f"{where}.unit {unit!r:.40} is not a unit symbol", field="unit")
    try:
        kind = Kind(str(raw.get("kind")))
    except ValueError as exc:
        raise ProtocolError(
            f"{where}.kind must be one of cumulative, delta, gauge; got {raw.get('kind')!r:.40}",
            field="kind",
        ) from exc
    t0 = _int(raw, "t0", lo=MIN_TIMESTAMP_MS, hi=now_ms + MAX_FUTURE_SKEW_MS)
    dt = _ints(raw.get("dt"), "dt")
    val = _floats(raw.get("val"), "val")
    if len(dt) != len(val):
        raise ProtocolError(f"{where}: {len(dt)} offsets but {len(val)} values", field="val")
    if not dt:
        raise ProtocolError(f"{where} has no readings", field="dt")
    if min(dt) < 0 or max(dt) > MAX_FUTURE_SKEW_MS * 400:
        raise ProtocolError(f"{where}.dt offsets must be >= 0 and within 400 days", field="dt")
    ts = array("q", map(t0.__add__, dt))
    if t0 + max(dt) > now_ms + MAX_FUTURE_SKEW_MS:
        raise ProtocolError(
            f"{where} has a timestamp more than 1 day in the future", field="dt"
        )
    return Series(meter, metric, unit, kind, ts, val)


def decode_batch(payload: bytes, *, topic_device: str | None, now_ms: int) -> Batch:
    """Decode and validate one message; raises ProtocolError with a reason for anything wrong.

    ``topic_device`` is the device named in the MQTT topic; the payload must agree with it.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}", field="payload"
        )
    doc = _load(payload)
    if not isinstance(doc, dict):
        raise ProtocolError("envelope must be an object/map", field="payload")
    version = doc.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {version!r:.20}", field="v")
    device = _check_id("device", doc.get("device"))
    if topic_device is not None and device != topic_device:
        raise ProtocolError(
            f"device {device!r} in payload differs from {topic_device!r} in topic", field="device"
        )
    seq = _int(doc, "seq", lo=0, hi=2**63 - 1)
    sent = _int(doc, "sent", lo=MIN_TIMESTAMP_MS, hi=2**53)
    agent = _str(doc, "agent")[:32]
    raw_series = doc.get("series")
    if not isinstance(raw_series, list) or not raw_series:
        raise ProtocolError("'series' must be a non-empty array", field="series")
    if len(raw_series) > MAX_SERIES_PER_BATCH:
        raise ProtocolError(
            f"{len(raw_series)} series exceed the limit of {MAX_SERIES_PER_BATCH}", field="series"
        )
    series = tuple(_decode_series(s, i, now_ms) for i, s in enumerate(raw_series))
    keys = [(s.meter, s.metric) for s in series]
    if len(set(keys)) != len(keys):
        raise ProtocolError("a meter/metric pair appears twice in one batch", field="series")
    total = sum(len(s) for s in series)
    if total > MAX_READINGS_PER_BATCH:
        raise ProtocolError(
            f"{total} readings exceed the limit of {MAX_READINGS_PER_BATCH} per batch",
            field="series",
        )
    low = None if doc.get("low") is None else _int(doc, "low", lo=0, hi=seq)
    return Batch(device, seq, sent, agent, series, low, _skipped(doc.get("skipped")))


def _skipped(value: object) -> tuple[tuple[int, int], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_SKIPPED_RANGES:
        raise ProtocolError(f"'skipped' must be an array of at most {MAX_SKIPPED_RANGES} "
                            "[first, last] pairs", field="skipped")
    out: list[tuple[int, int]] = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise ProtocolError("'skipped' must hold [first, last] pairs", field="skipped")
        pair = {"skipped": item[0]}
        lo = _int(pair, "skipped", lo=0, hi=2**63 - 1)
        pair = {"skipped": item[1]}
        hi = _int(pair, "skipped", lo=lo, hi=min(lo + MAX_SKIPPED_SPAN, 2**63 - 1))
        out.append((lo, hi))
    return tuple(out)


def batch_from_readings(
    device: str, seq: int, sent_ms: int, agent_version: str, readings: Sequence[Reading]
) -> Batch:
    """Build a batch (validated device id) from buffered readings."""
    return Batch(_check_id("device", device), seq, sent_ms, agent_version,
                 series_from_readings(readings))

"""Pure SenML (RFC 8428) decoding: a pack (JSON or CBOR) → resolved records.

Base fields (``bn``, ``bt``, ``bu``, ``bv``, ``bs``, ``bver``) apply to the record they are
in and every later record until redefined (§4.1). Resolved times below 2**28 are relative
to ``now`` (§4.5.3). CBOR packs use the integer labels of §6.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import cbor2

from firmware_bridge.errors import DecodeError

__all__ = ["MAX_PACK_BYTES", "RELATIVE_TIME_LIMIT", "SenmlRecord", "decode_pack", "resolve"]

MAX_PACK_BYTES: Final = 262_144
RELATIVE_TIME_LIMIT: Final = 2**28
SENML_VERSION: Final = 10
# RFC 8428 §6 Table 4: CBOR labels
CBOR_LABELS: Final[dict[int, str]] = {
    -1: "bver", -2: "bn", -3: "bt", -4: "bu", -5: "bv", -6: "bs",
    0: "n", 1: "u", 2: "v", 3: "vs", 4: "vb", 5: "s", 6: "t", 7: "ut", 8: "vd",
}  # fmt: skip
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-:./_]*$")
_NUMBER_FIELDS: Final = ("bt", "bv", "bs", "v", "s", "t", "ut")


_VALUE_FIELDS: Final = ("v", "vs", "vb", "vd")
_BASE_FIELDS: Final = frozenset({"bn", "bt", "bu", "bv", "bs", "bver"})


@dataclass(frozen=True, slots=True)
class SenmlRecord:
    """A resolved record: full name, base name part, unit, time (Unix s), value and/or sum.

    ``text``, ``flag`` and ``data`` keep a string (``vs``), boolean (``vb``) or data (``vd``,
    base64url text) value; such a record has no numeric ``value``.
    """

    name: str
    base_name: str
    unit: str
    time_s: float
    value: float | None
    sum: float | None
    text: str | None = None
    flag: bool | None = None
    data: str | None = None

    @property
    def numeric(self) -> bool:
        """The record carries a number (a value or a sum)."""
        return self.value is not None or self.sum is not None


def _parse(payload: bytes) -> object:
    first = payload[0]
    if first in b" \t\r\n[":
        return json.loads(payload, parse_constant=_reject)
    if 0x80 <= first <= 0x9F:
        return cbor2.loads(payload)
    raise DecodeError(
        f"neither a JSON array nor a CBOR array (first byte 0x{first:02x})",
        data=payload,
        offset=0,
    )


def _load(payload: bytes) -> list[Any]:
    if len(payload) > MAX_PACK_BYTES:
        raise DecodeError(f"pack of {len(payload)} bytes exceeds {MAX_PACK_BYTES}")
    if not payload:
        raise DecodeError("empty payload")
    try:
        doc = _parse(payload)
    except (ValueError, EOFError, RecursionError, cbor2.CBORDecodeError, TypeError) as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"pack does not parse: {exc}", data=payload) from exc
    if not isinstance(doc, list):
        raise DecodeError("a SenML pack must be an array of records", data=payload)
    return doc


def _reject(name: str) -> object:
    raise ValueError(f"{name} is not allowed in SenML")


def _normalise(raw: object, index: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DecodeError(f"record {index} is not a map/object")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        label = CBOR_LABELS.get(key) if isinstance(key, int) and not isinstance(key, bool) else key
        if not isinstance(label, str):
            raise DecodeError(f"record {index}: unknown label {key!r:.20}")
        if label.endswith("_"):
            raise DecodeError(
                f"record {index}: must-understand field {label!r:.40} (RFC 8428 §4.4)"
            )
        out[label] = value
    return out


def _num(rec: Mapping[str, Any], key: str, index: int) -> float | None:
    value = rec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(f"record {index}: {key!r} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise DecodeError(f"record {index}: {key!r} must be finite")
    return number


def _str(rec: Mapping[str, Any], key: str, index: int) -> str | None:
    value = rec.get(key)
    if value is not None and not isinstance(value, str):
        raise DecodeError(f"record {index}: {key!r} must be a string")
    return value


def _base_str(rec: Mapping[str, Any], key: str, index: int, current: str) -> str:
    if key not in rec:
        return current
    value = rec[key]
    if not isinstance(value, str):
        raise DecodeError(f"record {index}: {key!r} must be a string")
    return value


def _base_num(rec: Mapping[str, Any], key: str, index: int, current: float) -> float:
    if key not in rec:
        return current
    value = _num(rec, key, index)
    if value is None:
        raise DecodeError(f"record {index}: {key!r} must be a number")
    return value


def decode_pack(payload: bytes) -> list[dict[str, Any]]:
    """The records of a JSON or CBOR pack with labels normalised to their JSON names."""
    return [_normalise(r, i) for i, r in enumerate(_load(payload))]


def _other_value(rec: Mapping[str, Any], index: int) -> tuple[str | None, bool | None, str | None]:
    text, flag, data = rec.get("vs"), rec.get("vb"), rec.get("vd")
    if text is not None and not isinstance(text, str):
        raise DecodeError(f"record {index}: 'vs' must be a string")
    if flag is not None and not isinstance(flag, bool):
        raise DecodeError(f"record {index}: 'vb' must be a boolean")
    if data is not None and not isinstance(data, str):
        raise DecodeError(f"record {index}: 'vd' must be base64url text")
    return text, flag, data


def resolve(payload: bytes, now_s: float) -> list[SenmlRecord]:
    """Resolved records of a pack (RFC 8428 §4.6), string/boolean/data records included.

    * A record with more than one value field (``v``, ``vs``, ``vb``, ``vd``) is an error.
    * A record with no value field and no sum takes the base value ``bv`` (0 when no ``bv``
      is in force), unless it holds base fields only (a header such as ``{"bn": …}``).
    * ``vs``/``vb``/``vd`` values are kept in ``text``/``flag``/``data``; whether they are
      readings is the caller's decision (``senml_readings`` refuses or skips them explicitly).

    DecodeError for anything that is not a valid pack: an unsupported ``bver``, a name that
    is not allowed, a missing name, a wrong field type.
    """
    bn, bu = "", ""
    bt = bv = bs = 0.0
    out: list[SenmlRecord] = []
    for i, rec in enumerate(decode_pack(payload)):
        for key in _NUMBER_FIELDS:
            _num(rec, key, i)
        bver = rec.get("bver")
        if bver is not None and (
            isinstance(bver, bool) or not isinstance(bver, int) or bver > SENML_VERSION
        ):
            raise DecodeError(f"record {i}: unsupported SenML version {bver!r:.20}")
        bn = _base_str(rec, "bn", i, bn)
        bu = _base_str(rec, "bu", i, bu)
        bt = _base_num(rec, "bt", i, bt)
        bv = _base_num(rec, "bv", i, bv)
        bs = _base_num(rec, "bs", i, bs)
        name = bn + (_str(rec, "n", i) or "")
        if not name or not _NAME.match(name):
            raise DecodeError(f"record {i}: name {name!r:.60} is missing or not allowed")
        present = [k for k in _VALUE_FIELDS if k in rec]
        if len(present) > 1:
            raise DecodeError(
                f"record {i}: more than one value field ({', '.join(present)}); RFC 8428 §4.2"
            )
        value, total = _num(rec, "v", i), _num(rec, "s", i)
        text, flag, data = _other_value(rec, i)
        unit = _str(rec, "u", i) or bu
        t = bt + (_num(rec, "t", i) or 0.0)
        if t < RELATIVE_TIME_LIMIT:
            t = now_s + t
        if not present and total is None:
            if set(rec) <= _BASE_FIELDS and "bv" not in rec:
                continue  # a header record: base fields for the records after it
            value = 0.0  # no value field: the base value alone (bv + 0)
        out.append(
            SenmlRecord(
                name=name,
                base_name=bn,
                unit=unit,
                time_s=t,
                value=None if value is None else bv + value,
                sum=None if total is None else bs + total,
                text=text,
                flag=flag,
                data=data,
            )
        )
    return out

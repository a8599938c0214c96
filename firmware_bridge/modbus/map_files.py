"""Register maps as TOML data files: the shipped ones (``maps/*.toml``) or a user's own file.

File format (see ``docs/devices.md``)::

    name = "sdm630"
    description = "..."
    max_gap = 10            # registers a single read may skip over (default 0)
    [defaults]              # applied to every point that does not say otherwise
    function = 4            # 3 = holding registers, 4 = input registers
    type = "float32"        # float32, int16, uint16, int32, uint32, int64, uint64
    word_order = "big"      # big = most significant word first
    [[points]]
    metric = "energy_import"
    address = 0x0048        # 0-based wire address (register 30073 is 0x0048)
    unit = "kWh"
    kind = "cumulative"     # or "gauge"
    scale = 1.0
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, field

from agent.protocol import Kind
from agent.validation import Strict, convert, describe
from firmware_bridge.errors import BridgeConfigError
from firmware_bridge.modbus.registers import (
    MAX_READ_REGISTERS,
    DataType,
    Point,
    RegisterMap,
    WordOrder,
)

__all__ = ["builtin_map_names", "load_map", "parse_map"]


class _Defaults(Strict, frozen=True, kw_only=True):
    function: Literal[3, 4] = 4
    type: DataType = DataType.FLOAT32
    word_order: WordOrder = WordOrder.BIG
    scale: float = 1.0


class _PointModel(Strict, frozen=True, kw_only=True):
    metric: Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")]
    address: Annotated[int, Meta(ge=0, le=0xFFFF)]
    unit: Annotated[str, Meta(min_length=1, max_length=16)]
    kind: Literal["cumulative", "gauge"]
    function: Literal[3, 4] | None = None
    type: DataType | None = None
    word_order: WordOrder | None = None
    scale: float | None = None
    description: str = ""


class _MapModel(Strict, frozen=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1)]
    description: str = ""
    reference: str = ""
    max_gap: Annotated[int, Meta(ge=0, le=MAX_READ_REGISTERS)] = 0
    max_block: Annotated[int, Meta(ge=1, le=MAX_READ_REGISTERS)] = MAX_READ_REGISTERS
    defaults: _Defaults = field(default_factory=_Defaults)
    points: Annotated[list[_PointModel], Meta(min_length=1)]


def parse_map(text: str, *, origin: str = "<string>") -> RegisterMap:
    """A validated register map from TOML text; BridgeConfigError names what is wrong."""
    try:
        doc = tomllib.loads(text)
        model = convert(doc, _MapModel)
    except tomllib.TOMLDecodeError as exc:
        raise BridgeConfigError(f"register map {origin}: not valid TOML: {exc}") from exc
    except msgspec.ValidationError as exc:
        raise BridgeConfigError(f"register map {origin}: {describe(exc, _MapModel)}") from exc
    d = model.defaults
    try:
        points = tuple(
            Point(
                metric=p.metric,
                address=p.address,
                function=p.function if p.function is not None else d.function,
                dtype=p.type if p.type is not None else d.type,
                word_order=p.word_order if p.word_order is not None else d.word_order,
                scale=p.scale if p.scale is not None else d.scale,
                unit=p.unit,
                kind=Kind(p.kind),
            )
            for p in model.points
        )
        return RegisterMap(model.name, points, model.max_gap, model.max_block, model.description)
    except ValueError as exc:
        raise BridgeConfigError(f"register map {origin}: {exc}") from exc


def builtin_map_names() -> list[str]:
    """Names of the maps shipped in ``firmware_bridge/modbus/maps``."""
    folder = resources.files("firmware_bridge.modbus") / "maps"
    return sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".toml"))


def load_map(name_or_path: str) -> RegisterMap:
    """A shipped map by name (``sdm630``) or a user map from a ``.toml`` file path."""
    if name_or_path in builtin_map_names():
        res = resources.files("firmware_bridge.modbus") / "maps" / f"{name_or_path}.toml"
        return parse_map(res.read_text(encoding="utf-8"), origin=name_or_path)
    path = Path(name_or_path)
    if path.suffix != ".toml" or not path.is_file():
        raise BridgeConfigError(
            f"register map {name_or_path!r} is neither a shipped map "
            f"({', '.join(builtin_map_names())}) nor an existing .toml file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BridgeConfigError(f"register map {path}: {exc}") from exc
    return parse_map(text, origin=str(path))

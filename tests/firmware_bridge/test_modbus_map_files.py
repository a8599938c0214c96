"""Register map files: shipped maps load, user maps load from a path, mistakes are explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_bridge.errors import BridgeConfigError
from firmware_bridge.modbus.map_files import builtin_map_names, load_map, parse_map
from firmware_bridge.modbus.registers import DataType, WordOrder

USER_MAP = """
name = "heat-meter"
[defaults]
function = 3
type = "uint32"
word_order = "little"
[[points]]
metric = "heat_energy"
address = 100
unit = "kWh"
kind = "cumulative"
scale = 0.01
[[points]]
metric = "flow_temp"
address = 104
type = "int16"
unit = "°C"
kind = "gauge"
scale = 0.1
"""


def test_shipped_maps_are_listed() -> None:
    """Both Eastron maps ship with the package."""
    assert {"sdm120", "sdm630"} <= set(builtin_map_names())


def test_user_map_from_path(tmp_path: Path) -> None:
    """A .toml path loads, with defaults applied and per-point overrides kept."""
    path = tmp_path / "heat.toml"
    path.write_text(USER_MAP, encoding="utf-8")
    rmap = load_map(str(path))
    energy, temp = rmap.points
    assert (energy.function, energy.dtype, energy.word_order, energy.scale) == (
        3,
        DataType.UINT32,
        WordOrder.LITTLE,
        0.01,
    )
    assert (temp.dtype, temp.unit) == (DataType.INT16, "°C")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (USER_MAP.replace("function = 3", "function = 6"), "function"),
        (USER_MAP.replace('kind = "gauge"', 'kind = "counter"'), "kind"),
        (USER_MAP.replace("flow_temp", "heat_energy"), "twice"),
        (USER_MAP + "\nbogus = 1\n", "bogus"),
        ("name = ", "TOML"),
        ('name = "x"\npoints = []', "points"),
    ],
)
def test_bad_maps_are_explained(text: str, fragment: str) -> None:
    """Each mistake raises BridgeConfigError naming the problem."""
    with pytest.raises(BridgeConfigError, match=fragment):
        parse_map(text, origin="test.toml")


def test_unknown_map_name_lists_the_shipped_ones() -> None:
    """A name that is neither shipped nor a file says which names exist."""
    with pytest.raises(BridgeConfigError, match="sdm630"):
        load_map("sdm999")

"""Agent configuration: TOML, environment overrides, errors that name the bad field."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.buffer_fake import MemoryBuffer
from agent.buffer_port import FullPolicy
from agent.config import load_config, parse_config
from agent.errors import ConfigError
from agent.protocol import Encoding
from agent.sources.factory import build_source, build_sources
from agent.sources.simulated import SimulatedEnergyMeter

EXAMPLE = Path(__file__).resolve().parents[2] / "agent" / "examples" / "agent.toml"
MINIMAL = {"device_id": "dev-1"}


def test_example_config_loads_and_builds_its_sources() -> None:
    """The shipped example is valid and every source in it can be built."""
    cfg = load_config(EXAMPLE, {})
    sources = build_sources(cfg.sources, MemoryBuffer())
    assert [s.name for s in sources] == [c.name for c in cfg.sources]
    assert cfg.batch.max_readings == 1000


def test_defaults() -> None:
    """A config with only a device id gets the documented defaults."""
    cfg = parse_config(MINIMAL)
    assert (cfg.broker.host, cfg.broker.port, cfg.encoding) == ("127.0.0.1", 1883, Encoding.JSON)
    assert (cfg.batch.max_readings, cfg.batch.in_flight) == (1000, 8)


def test_env_overrides_top_level_and_section_fields() -> None:
    """TALLY_AGENT_* variables override file values, with type coercion."""
    env = {
        "TALLY_AGENT_DEVICE_ID": "dev-9",
        "TALLY_AGENT_BROKER_URL": "mqtts://broker.example:8884",
        "TALLY_AGENT_BUFFER_POLICY": "refuse_new",
        "TALLY_AGENT_BATCH_MAX_READINGS": "500",
        "TALLY_AGENT_CONFIG": "/ignored.toml",
    }
    cfg = parse_config({"device_id": "dev-1", "broker": {"url": "mqtt://a:1"}}, env)
    assert cfg.device_id == "dev-9"
    assert cfg.broker.port == 8884
    assert cfg.broker.use_tls
    assert cfg.buffer.policy is FullPolicy.REFUSE_NEW
    assert cfg.batch.max_readings == 500


def test_unknown_env_override_is_an_error() -> None:
    """A misspelt override is reported, not silently ignored."""
    with pytest.raises(ConfigError, match="TALLY_AGENT_BROKER_URI"):
        parse_config(MINIMAL, {"TALLY_AGENT_BROKER_URI": "mqtt://x:1"})


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({}, "device_id"),
        ({"device_id": "has space"}, "device_id"),
        ({**MINIMAL, "broker": {"url": "http://x:1"}}, "broker.url"),
        ({**MINIMAL, "broker": {"url": "mqtt://x:notaport"}}, "broker.url"),
        ({**MINIMAL, "buffer": {"policy": "maybe"}}, "buffer.policy"),
        ({**MINIMAL, "batch": {"max_readings": 50_000}}, "batch.max_readings"),
        ({**MINIMAL, "encoding": "xml"}, "encoding"),
        ({**MINIMAL, "colour": "red"}, "colour"),
        ({**MINIMAL, "sources": [{"type": "simulated-energy", "name": "a", "interval_s": 0}]},
         "sources[0].interval_s"),
        ({**MINIMAL, "sources": [{"type": "simulated-energy", "name": "a", "interval_s": 1},
                                 {"type": "simulated-water", "name": "a", "interval_s": 1}]},
         "sources"),
    ],
)
def test_bad_config_names_the_field(doc: dict[str, object], field: str) -> None:
    """Each invalid value raises ConfigError whose message starts the problem with its field."""
    with pytest.raises(ConfigError) as info:
        parse_config(doc)
    assert f"{field}:" in str(info.value)


def test_bad_toml_is_config_error(tmp_path: Path) -> None:
    """A file that is not TOML gives ConfigError naming the file."""
    path = tmp_path / "a.toml"
    path.write_text("device_id = \n")
    with pytest.raises(ConfigError, match=r"a\.toml is not valid TOML"):
        load_config(path)


def test_missing_file_is_config_error(tmp_path: Path) -> None:
    """A missing file gives ConfigError, not FileNotFoundError."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.toml")


def test_builtin_source_gets_its_options() -> None:
    """Type-specific keys of a [[sources]] entry reach the simulator's constructor."""
    cfg = parse_config({**MINIMAL, "sources": [
        {"type": "simulated-energy", "name": "e", "interval_s": 5, "peak_kw": 7.5}]})
    source = build_source(cfg.sources[0], MemoryBuffer())
    assert isinstance(source, SimulatedEnergyMeter)
    assert source.power_kw(19.0) > 5


def test_unknown_builtin_option_names_the_source() -> None:
    """A misspelt option of a simulated source is a ConfigError naming the source."""
    cfg = parse_config({**MINIMAL, "sources": [
        {"type": "simulated-water", "name": "w", "interval_s": 5, "daily_litres": 3}]})
    with pytest.raises(ConfigError, match="'w'"):
        build_source(cfg.sources[0], MemoryBuffer())


def test_unknown_type_without_bridge_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """With firmware_bridge.registry missing an unknown type is 'unknown source type'."""
    monkeypatch.setitem(sys.modules, "firmware_bridge.registry", None)
    cfg = parse_config({**MINIMAL, "sources": [{"type": "modbus", "name": "m", "interval_s": 5}]})
    with pytest.raises(ConfigError, match="unknown source type 'modbus'"):
        build_source(cfg.sources[0], MemoryBuffer())


def test_bridge_source_is_built_by_the_firmware_bridge(tmp_path: Path) -> None:
    """A non-simulated type is handed to firmware_bridge.registry with its options."""
    cfg = parse_config({**MINIMAL, "sources": [
        {"type": "file", "name": "f1", "interval_s": 7, "path": str(tmp_path / "v.txt"),
         "metric": "level", "unit": "m", "kind": "gauge"}]})
    source = build_source(cfg.sources[0], MemoryBuffer())
    assert source.name == "f1"
    assert source.interval_s == 7


def test_bridge_option_errors_become_config_errors() -> None:
    """The bridge's validation error for bad options surfaces as ConfigError naming the source."""
    cfg = parse_config({**MINIMAL, "sources": [
        {"type": "file", "name": "f2", "interval_s": 7, "metric": "level"}]})
    with pytest.raises(ConfigError, match="'f2'"):
        build_source(cfg.sources[0], MemoryBuffer())

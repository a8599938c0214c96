"""Configuration structs: lenient conversion, refused keys, and messages that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec
import pytest

from agent.buffer_fake import MemoryBuffer
from agent.buffer_port import FullPolicy
from agent.config import BrokerConfig, parse_config, parse_source
from agent.errors import ConfigError
from agent.protocol import Encoding
from agent.remote_config import parse_remote_config
from agent.sources.factory import build_source
from agent.validation import FieldProblem, Strict, convert, describe


class _Inner(Strict, frozen=True, kw_only=True):
    mode: Literal["a", "b"] = "a"
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.high < self.low:
            raise FieldProblem("high", "must not be below low")


class _Outer(Strict, frozen=True, kw_only=True):
    count: Annotated[int, msgspec.Meta(ge=1)] = 1
    where: Path | None = None
    items: list[_Inner] = msgspec.field(default_factory=list)


def _problem(doc: object, *, at: str = "") -> str:
    with pytest.raises(msgspec.ValidationError) as info:
        convert(doc, _Outer)
    return describe(info.value, _Outer, at=at)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"count": 0}, "count: Expected int >= 1"),
        ({"count": "x"}, "count: Expected int, got str"),
        ({"colour": 1}, "colour: unknown setting"),
        ({"items": [{}, {"extra": 1}]}, "items[1].extra: unknown setting"),
        ({"items": [{"mode": "c"}]},
         "items[0].mode: Invalid enum value 'c'; expected one of 'a', 'b'"),
        ({"items": [{"low": 2}]}, "items[0].high: must not be below low"),
        ({"where": 5}, "where: Expected a path string, got int"),
        ([], "Expected object, got array"),
    ],
)
def test_describe_names_the_field_path(doc: object, message: str) -> None:
    """Each kind of mistake is described as its dotted path and the problem."""
    assert _problem(doc) == message


def test_describe_prefixes_the_position_of_the_document() -> None:
    """``at`` places the converted document within a larger one."""
    assert _problem({"count": 0}, at="outer[2]") == "outer[2].count: Expected int >= 1"
    assert _problem([], at="outer[2]") == "outer[2]: Expected object, got array"


def test_convert_accepts_strings_for_numbers_and_paths() -> None:
    """Numbers and booleans given as strings (environment overrides) and paths as strings."""
    got = convert({"count": "3", "where": "/tmp/x", "items": [{"low": "0.5"}]}, _Outer)
    assert got == _Outer(count=3, where=Path("/tmp/x"), items=[_Inner(low=0.5)])


def test_convert_accepts_path_objects_and_enum_members() -> None:
    """A mapping built in code may hold Path objects and enum members, as a parsed file
    holds strings."""
    cfg = parse_config({"device_id": "d1", "encoding": Encoding.CBOR,
                        "buffer": {"path": Path("/tmp/b.db"), "policy": FullPolicy.REFUSE_NEW}})
    assert (cfg.encoding, cfg.buffer.path, cfg.buffer.policy) == (
        Encoding.CBOR, Path("/tmp/b.db"), FullPolicy.REFUSE_NEW)


def test_structs_are_frozen_and_check_their_rules_when_built_directly() -> None:
    """Cross-field rules hold for directly built structs too; fields cannot be reassigned."""
    with pytest.raises(FieldProblem, match="high: must not be below low"):
        _Inner(low=2.0)
    with pytest.raises(ValueError, match="url: must look like"):
        BrokerConfig(url="http://x:1")
    inner = _Inner()
    with pytest.raises(AttributeError):
        inner.low = 3.0  # type: ignore[misc]


@pytest.mark.parametrize(("spelling", "value"), [("yes", True), ("On", True), ("0", False),
                                                 ("f", False), ("TRUE", True)])
def test_boolean_override_spellings(spelling: str, value: bool) -> None:
    """TALLY_AGENT_BROKER_TLS takes the usual spellings of a boolean."""
    cfg = parse_config({"device_id": "d1"}, {"TALLY_AGENT_BROKER_TLS": spelling})
    assert cfg.broker.tls is value


def test_empty_override_clears_an_optional_setting() -> None:
    """An empty override sets an optional setting to None (no reading limit)."""
    cfg = parse_config({"device_id": "d1"}, {"TALLY_AGENT_BUFFER_MAX_READINGS": ""})
    assert cfg.buffer.max_readings is None


def test_source_entry_keeps_its_options_apart() -> None:
    """Keys besides type/name/interval_s are the source's options, in file order."""
    src = parse_source({"type": "file", "name": "f", "interval_s": "5", "path": "/x", "unit": "m"})
    assert (src.type, src.name, src.interval_s) == ("file", "f", 5.0)
    assert src.options == {"path": "/x", "unit": "m"}


def test_bridge_metric_with_trailing_newline_is_refused() -> None:
    """Option patterns are matched to the end: a trailing newline is not a valid metric."""
    with pytest.raises(ConfigError, match="metric: Expected str matching regex"):
        build_source(parse_source({"type": "file", "name": "f", "interval_s": 5, "path": "/x",
                                   "metric": "e\n", "unit": "kWh", "kind": "gauge"}),
                     MemoryBuffer())


def test_remote_config_names_the_bad_source() -> None:
    """A bad source in a remote document is named by its position and field."""
    doc = (b'{"v": 1, "device_id": "d1", "version": 2, "sources": ['
           b'{"type": "file", "name": "a", "interval_s": 5},'
           b'{"type": "file", "name": "b", "interval_s": -1}]}')
    with pytest.raises(ConfigError, match=r"sources\[1\]\.interval_s: Expected float > 0\.0"):
        parse_remote_config(doc, "d1")

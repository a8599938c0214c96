"""Sealing rows into series: the plain-Python grouping gives the batches the numpy one gave."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.batching import Row, SeriesKey, series_from_rows
from agent.protocol import Kind
from tests.agent.numpy_batching import numpy_series_from_rows

_KEY = st.tuples(
    st.sampled_from(["a", "b", "main"]),
    st.sampled_from(["energy", "power", "flow"]),
    st.sampled_from(["kWh", "W"]),
    st.sampled_from([k.value for k in Kind]),
)


@st.composite
def _rows_and_keys(draw: st.DrawFn) -> tuple[list[Row], dict[int, SeriesKey]]:
    sids = draw(st.lists(st.integers(1, 300), min_size=1, max_size=8, unique=True))
    keys = {sid: draw(_KEY) for sid in sids}  # two ids may share a key: order must still agree
    n = draw(st.integers(0, 200))
    ids = draw(st.lists(st.integers(1, 10**9), min_size=n, max_size=n, unique=True))
    rows: list[Row] = [
        (
            row_id,
            draw(st.sampled_from(sids)),
            draw(st.integers(946_684_800_000, 946_684_800_000 + 50)),  # many equal timestamps
            draw(st.floats(allow_nan=False, allow_infinity=False)),
        )
        for row_id in ids
    ]
    return rows, keys


@settings(max_examples=300, deadline=None)  # a shared, loaded machine: no per-example deadline
@given(_rows_and_keys())
def test_same_series_as_the_numpy_grouping(case: tuple[list[Row], dict[int, SeriesKey]]) -> None:
    rows, keys = case
    got = series_from_rows(rows, keys)
    want = numpy_series_from_rows(rows, keys)
    assert got == want
    assert [(s.meter, s.metric, s.unit, s.kind) for s in got] == [
        (s.meter, s.metric, s.unit, s.kind) for s in want
    ]


def test_series_ordered_by_key_readings_by_time_then_row_id() -> None:
    keys = {7: ("b", "energy", "kWh", "cumulative"), 3: ("a", "power", "W", "gauge")}
    rows: list[Row] = [(5, 7, 2000, 2.0), (4, 7, 1000, 1.0), (9, 3, 1000, 9.0),
                       (2, 3, 1000, 8.0)]
    got = series_from_rows(rows, keys)
    assert [(s.meter, s.ts_ms.tolist(), s.values.tolist()) for s in got] == [
        ("a", [1000, 1000], [8.0, 9.0]),
        ("b", [1000, 2000], [1.0, 2.0]),
    ]
    assert series_from_rows([], keys) == ()


def test_agent_run_path_loads_neither_numpy_nor_optional_packages() -> None:
    """The run command's modules, a parsed config, a remote config and a bridge source built
    from its options load none of numpy, pydantic, httpx, rich or pymodbus."""
    code = (
        "import sys, agent.cli, agent.runner, agent.buffer, agent.publisher;"
        " from agent.config import parse_config;"
        " from agent.remote_config import parse_remote_config;"
        " from agent.sources.factory import build_sources;"
        " from agent.buffer_fake import MemoryBuffer;"
        " cfg = parse_config({'device_id': 'd1', 'sources': [{'type': 'file', 'name': 'f',"
        " 'interval_s': 5, 'path': '/nonexistent', 'metric': 'm', 'unit': 'kWh',"
        " 'kind': 'gauge'}]});"
        " build_sources(cfg.sources, MemoryBuffer());"
        " parse_remote_config(b'{\"v\": 1, \"device_id\": \"d1\", \"version\": 2,"
        " \"sources\": [{\"type\": \"file\", \"name\": \"g\", \"interval_s\": 5}]}', 'd1');"
        " print(','.join(sorted(m for m in ('numpy', 'pydantic', 'httpx', 'rich', 'pymodbus')"
        " if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""

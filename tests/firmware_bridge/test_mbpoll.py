"""An independent Modbus client (mbpoll, Debian package ``mbpoll``) reads the simulator."""

from __future__ import annotations

import asyncio
import os
import re
import shutil

import pytest

from firmware_bridge.modbus.map_files import load_map
from firmware_bridge.simulators.load import LoadModel
from firmware_bridge.simulators.modbus_server import (
    MeterRegisters,
    bound_port,
    start_tcp_server,
    stop_server,
)
from tests.firmware_bridge.conftest import T0, FakeClock


async def test_mbpoll_reads_sdm630_import_and_export(clock: FakeClock) -> None:
    """mbpoll reads input registers 30073/30075 as big-endian floats: 1234.5 and 12.25 kWh."""
    mbpoll = shutil.which("mbpoll")
    if mbpoll is None and os.environ.get("TALLY_FAIL_ON_SKIP") != "1":
        pytest.skip("mbpoll is not installed (Debian: apt-get install -y mbpoll)")
    assert mbpoll, "mbpoll is not installed; CI must run: apt-get install -y mbpoll"
    server = await start_tcp_server(
        MeterRegisters(load_map("sdm630"), LoadModel(t0_s=T0)), "127.0.0.1", 0, clock=clock
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            mbpoll, "-m", "tcp", "-p", str(bound_port(server)), "-a", "1",
            "-r", "73", "-c", "2", "-t", "3:float", "-B", "-1", "127.0.0.1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        await stop_server(server)
    assert proc.returncode == 0, err.decode()
    values = dict(re.findall(r"\[(\d+)\]:\s+(\S+)", out.decode()))
    assert float(values["73"]) == pytest.approx(1234.5)
    assert float(values["75"]) == pytest.approx(12.25)

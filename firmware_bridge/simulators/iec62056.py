"""An IEC 62056-21 mode C meter on a pseudo-terminal: answers sign-on, sends a data block."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from firmware_bridge.iec62056.readout import ETX, STX, bcc
from firmware_bridge.simulators.load import LoadModel
from firmware_bridge.simulators.pty_link import open_pty, write_or_drop

__all__ = ["IecMeterSimulator", "make_data_block"]


def make_data_block(model: LoadModel, t_s: float, *, serial_no: str = "12345678") -> bytes:
    """``STX`` data lines ``! CR LF ETX BCC`` of the simulated meter at ``t_s``."""
    v = model.values(t_s)
    lines = [
        f"0.0.0({serial_no})",
        f"1-0:1.8.0({v['energy_import']:010.3f}*kWh)",
        f"1-0:2.8.0({v['energy_export']:010.3f}*kWh)",
        f"1-0:1.7.0({v['power'] / 1000:07.3f}*kW)",
        f"1-0:32.7.0({v['voltage_l1']:05.1f}*V)",
        f"1-0:31.7.0({v['current_l1']:06.2f}*A)",
        "!",
    ]
    body = ("\r\n".join(lines) + "\r\n").encode("ascii") + bytes([ETX])
    return bytes([STX]) + body + bytes([bcc(body)])


class IecMeterSimulator:
    """Serves the mode C exchange on the master side of a pty; clients open ``self.path``."""

    def __init__(
        self,
        model: LoadModel,
        *,
        ident: str = "/TLY5SIM-IEC-01",
        clock: Callable[[], float] = time.time,
        corrupt_bcc: bool = False,
    ) -> None:
        self._model = model
        self._ident = ident
        self._clock = clock
        self.corrupt_bcc = corrupt_bcc
        self._master, self.path = open_pty()
        os.set_blocking(self._master, False)
        self._buf = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.readouts = 0

    def start(self) -> IecMeterSimulator:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._master, self._on_readable)
        return self

    def _on_readable(self) -> None:
        try:
            self._buf += os.read(self._master, 1024)
        except OSError:
            return
        while True:
            end = self._buf.find(b"\r\n")
            if end < 0:
                return
            line = bytes(self._buf[:end])
            del self._buf[: end + 2]
            start = line.rfind(b"/?")
            if start >= 0 and line.endswith(b"!"):
                write_or_drop(self._master, self._ident.encode("ascii") + b"\r\n")
            elif line[:1] == b"\x06" and len(line) == 4:
                block = make_data_block(self._model, self._clock())
                if self.corrupt_bcc:
                    block = block[:-1] + bytes([block[-1] ^ 0xFF])
                write_or_drop(self._master, block)
                self.readouts += 1

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._master)
            self._loop = None
        os.close(self._master)

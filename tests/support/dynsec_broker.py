"""A private Mosquitto started with deploy/mosquitto/mosquitto.conf, only ports and paths changed.

The TLS files come from a throwaway CA made with ``cryptography``; the dynamic-security file is
made by ``mosquitto_ctrl dynsec init`` exactly as deploy/mosquitto/bootstrap.sh does.
"""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.embedded.broker import free_port, wait_for_port

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"
ADMIN_USER = "tally-admin"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_server(directory: Path) -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key) for 127.0.0.1/localhost."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("Tally test CA")).issuer_name(
            _name("Tally test CA")).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return paths


class DynsecBroker:
    """The production broker configuration on two free ports in ``directory``."""

    def __init__(self, directory: Path, admin_password: str = "admin-secret-0123456789") -> None:
        self.dir = directory
        self.admin_password = admin_password
        self.port = free_port()
        self.tls_port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self.ca_file, server_crt, server_key = make_ca_and_server(directory / "certs")
        data = directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.dynsec_file = data / "dynamic-security.json"
        subprocess.run(
            [shutil.which("mosquitto_ctrl") or "/usr/bin/mosquitto_ctrl", "dynsec", "init",
             str(self.dynsec_file), ADMIN_USER, admin_password],
            check=True, capture_output=True,
        )
        text = DEPLOY_CONF.read_text()
        swaps = {
            r"^listener 1883$": f"listener {self.port} 127.0.0.1",
            r"^listener 8883$": f"listener {self.tls_port} 127.0.0.1",
            r"^certfile .*$": f"certfile {server_crt}",
            r"^keyfile .*$": f"keyfile {server_key}",
            r"^cafile .*$": f"cafile {self.ca_file}",
            r"^plugin_opt_config_file .*$": f"plugin_opt_config_file {self.dynsec_file}",
            r"^persistence_location .*$": f"persistence_location {data}/",
            r"^log_dest syslog$": f"log_dest file {directory / 'mosquitto.log'}",
        }
        for pattern, repl in swaps.items():
            text, n = re.subn(pattern, repl, text, flags=re.MULTILINE)
            assert n == 1, f"deploy config has no line matching {pattern}"
        # Started as root, Mosquitto would drop to the `mosquitto` user, who cannot read the tmp
        # dir; the deployed service runs as that user and owns its files instead.
        text += f"\nuser {getpass.getuser()}\n"
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text(text)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}"

    @property
    def admin_url(self) -> str:
        return f"mqtt://{ADMIN_USER}:{self.admin_password}@127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self._proc = subprocess.Popen(
            [binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        wait_for_port(self.tls_port)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None

    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text() if path.exists() else ""

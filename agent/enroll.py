"""``tally-agent enroll``: trade a one-time code for this device's identity and configuration.

The agent makes its own broker secret (it never leaves the device except in the one TLS request
to the collector), sends it with the code, and writes what the collector answers: the password
file and the agent configuration, both owner-only (0600). Safe to run again: an enrolled device
is left alone (no second identity); a request whose answer was lost is retried with the same
secret, which the collector recognises and answers with the same device.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import tomli_w

from agent import __version__
from agent.config import load_config
from agent.errors import ConfigError, EnrollError
from agent.private_files import write_private

__all__ = ["EnrollOutcome", "EnrollRequest", "enroll", "parse_qr"]

CREDENTIALS_NAME = "broker.password"
PENDING_FILE = "enroll.pending.json"


@dataclass(frozen=True, slots=True)
class EnrollRequest:
    collector_url: str
    code: str
    config_path: Path
    state_dir: Path
    ca_file: Path | None = None  # CA of the collector's HTTPS certificate (private CAs)
    broker_ca_file: Path | None = None  # CA of the broker's certificate (default: ca_file)
    timeout_s: float = 30.0


def parse_qr(text: str) -> tuple[str, str | None]:
    """(code, collector URL or None) from a scanned ``tally-enroll:?code=…&collector=…``."""
    if not text.startswith("tally-enroll:"):
        raise EnrollError("not a Tally enrollment QR code (expected tally-enroll:?code=...)")
    query = parse_qs(urlsplit(text).query)
    codes = query.get("code")
    if not codes:
        raise EnrollError("the QR code holds no enrollment code")
    collectors = query.get("collector")
    return codes[0], collectors[0] if collectors else None


@dataclass(frozen=True, slots=True)
class EnrollOutcome:
    device_id: str
    already_enrolled: bool
    config_version: int = 0


def _enrolled(req: EnrollRequest) -> str | None:
    """The device id if this device is already enrolled (config and password file present)."""
    if not req.config_path.exists():
        return None
    try:
        cfg = load_config(req.config_path, {})
    except ConfigError:
        return None
    pw = cfg.broker.password_file
    return cfg.device_id if pw is not None and pw.exists() else None


def _pending(req: EnrollRequest) -> dict[str, str]:
    """The secret of an attempt still in flight, or a new one (stored before it is sent)."""
    path = req.state_dir / PENDING_FILE
    if path.exists():
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("code") == req.code:
            return {k: str(v) for k, v in doc.items()}
    doc = {"code": req.code, "secret": secrets.token_urlsafe(32),
           "installation": uuid.uuid4().hex}
    write_private(path, json.dumps(doc).encode())
    return doc


def _post(req: EnrollRequest, body: dict[str, str],
          transport: httpx.BaseTransport | None) -> dict[str, Any]:
    verify: Any = str(req.ca_file) if req.ca_file else True
    url = req.collector_url.rstrip("/") + "/enroll"
    try:
        with httpx.Client(verify=verify, timeout=req.timeout_s, transport=transport) as client:
            response = client.post(url, json=body)
    except httpx.ConnectError as exc:
        raise EnrollError(f"cannot reach the collector at {url}: {exc} (for a private CA "
                          "pass --ca-file)") from exc
    except httpx.HTTPError as exc:
        raise EnrollError(f"enrollment request to {url} failed: {exc}") from exc
    if response.status_code != 200:
        reason, message = "", response.text[:300]
        try:
            detail = response.json().get("detail")
            if isinstance(detail, dict):
                reason, message = str(detail.get("reason", "")), str(detail.get("message", ""))
            elif detail is not None:
                message = str(detail)
        except ValueError:
            pass
        raise EnrollError(f"the collector refused the enrollment ({response.status_code}): "
                          f"{message}", status=response.status_code, reason=reason)
    doc = response.json()
    if not isinstance(doc, dict) or not isinstance(doc.get("device_id"), str):
        raise EnrollError("the collector's answer has no device_id")
    return doc


def _agent_config(req: EnrollRequest, answer: dict[str, Any]) -> dict[str, Any]:
    broker: dict[str, Any] = {
        "url": answer["broker_url"], "username": answer["username"],
        "password_file": str((req.state_dir / CREDENTIALS_NAME).resolve()),
    }
    ca = req.broker_ca_file or req.ca_file
    if ca is not None:
        broker["ca_file"] = str(ca.resolve())
    return {
        "device_id": answer["device_id"],
        "broker": broker,
        "buffer": {"path": str((req.state_dir / "buffer.db").resolve())},
        "sources": answer.get("sources", []),
    }


def enroll(req: EnrollRequest, *, transport: httpx.BaseTransport | None = None) -> EnrollOutcome:
    """Enroll this device (or report that it already is); raises ``EnrollError``."""
    existing = _enrolled(req)
    if existing is not None:
        return EnrollOutcome(existing, already_enrolled=True)
    pending = _pending(req)
    answer = _post(req, {"code": req.code, "secret": pending["secret"],
                         "installation": pending["installation"],
                         "agent_version": __version__}, transport)
    write_private(req.state_dir / CREDENTIALS_NAME, pending["secret"].encode())
    write_private(req.config_path, tomli_w.dumps(_agent_config(req, answer)).encode())
    (req.state_dir / PENDING_FILE).unlink(missing_ok=True)
    return EnrollOutcome(str(answer["device_id"]), already_enrolled=False,
                         config_version=int(answer.get("config_version", 0)))

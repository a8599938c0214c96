"""Why a broker connection failed, in words an installer can act on (pure).

paho reports refusals as CONNACK reason codes and TLS problems as ``ssl`` exceptions; both are
turned into one sentence naming the likely cause and the setting to check.
"""

from __future__ import annotations

import ssl

__all__ = ["explain_refusal", "explain_transport"]

_REFUSALS = {
    # MQTT 3.1.1 CONNACK return codes and their MQTT 5 counterparts
    1: "the broker does not accept this MQTT protocol version",
    2: "the broker refused the client id",
    3: "the broker is unavailable",
    4: "bad username or password (broker.username / broker.password_file; re-enroll if the "
       "device was wiped or its secret replaced)",
    5: "not authorised: the broker does not know this device or it was revoked "
       "(decommissioned); check broker.username / broker.password_file or re-enroll",
    0x86: "bad username or password (broker.username / broker.password_file)",
    0x87: "not authorised: the broker does not know this device or it was revoked "
          "(decommissioned)",
    0x8A: "banned by the broker",
}


def explain_refusal(rc: int, text: str) -> str:
    """A CONNACK refusal (``rc`` numeric, ``text`` paho's name for it)."""
    return f"broker refused the connection ({text}): " + _REFUSALS.get(
        rc, "see the broker log for details"
    )


def _certificate(exc: ssl.SSLCertVerificationError) -> str:
    why = exc.verify_message or str(exc)
    if "unable to get local issuer" in why or "self-signed" in why or "self signed" in why:
        return (f"TLS: the broker's certificate is signed by an unknown CA ({why}); set "
                "broker.ca_file to the operator CA")
    if "hostname" in why or "IP address mismatch" in why:
        return (f"TLS: the broker's certificate does not match the host name ({why}); "
                "use the name in its certificate in broker.url")
    if "expired" in why:
        return f"TLS: the broker's certificate has expired ({why})"
    return f"TLS: bad broker certificate ({why})"


def _tls(exc: ssl.SSLError) -> str:
    reason = str(exc.reason or exc)
    if "WRONG_VERSION_NUMBER" in reason.upper():
        return (f"TLS: the port does not speak TLS ({reason}); use mqtt:// for a plain "
                "listener or the broker's TLS port")
    if "CERTIFICATE" in reason.upper():
        return f"TLS: the broker rejected this device's certificate ({reason})"
    return f"TLS handshake failed ({reason})"


def explain_transport(exc: BaseException) -> str:
    """A failure before the MQTT handshake (TCP, TLS)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate(exc)
    if isinstance(exc, ssl.SSLError):
        return _tls(exc)
    if isinstance(exc, ConnectionRefusedError):
        return "nothing listens on the broker's address and port (connection refused)"
    if isinstance(exc, TimeoutError):
        return "the broker did not answer in time (network or firewall)"
    return f"cannot reach the broker: {exc!r}"

"""Pure parts of enrollment on the agent: QR text, connection-failure explanations."""

from __future__ import annotations

import ssl

import pytest

from agent.connect_errors import explain_refusal, explain_transport
from agent.enroll import parse_qr
from agent.errors import EnrollError


def test_qr_text_gives_code_and_collector() -> None:
    code, collector = parse_qr(
        "tally-enroll:?code=K7QF2-MX9PD&collector=https%3A%2F%2Ftally.example")
    assert code == "K7QF2-MX9PD"
    assert collector == "https://tally.example"
    assert parse_qr("tally-enroll:?code=ABCDE-FGHJK") == ("ABCDE-FGHJK", None)


@pytest.mark.parametrize("text", ["https://x?code=1", "tally-enroll:?collector=x", ""])
def test_other_qr_texts_are_refused(text: str) -> None:
    with pytest.raises(EnrollError):
        parse_qr(text)


@pytest.mark.parametrize(
    ("rc", "words"),
    [(5, "not authorised"), (0x87, "revoked"), (4, "bad username or password"),
     (0x86, "bad username or password"), (99, "broker log")],
)
def test_refusals_say_why(rc: int, words: str) -> None:
    assert words in explain_refusal(rc, "text")


def test_transport_failures_say_why() -> None:
    unknown_ca = ssl.SSLCertVerificationError(1, "x")
    unknown_ca.verify_message = "unable to get local issuer certificate"
    assert "unknown CA" in explain_transport(unknown_ca)
    mismatch = ssl.SSLCertVerificationError(1, "x")
    mismatch.verify_message = "IP address mismatch, certificate is not valid for '10.0.0.1'"
    assert "host name" in explain_transport(mismatch)
    assert "connection refused" in explain_transport(ConnectionRefusedError())

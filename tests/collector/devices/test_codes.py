"""Enrollment codes and the guessing limiter (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.devices.codes import ALPHABET, code_digest, new_code, normalise_code
from collector.devices.guessing import AttemptLimiter
from collector.errors import EnrollmentRefused


def test_codes_are_grouped_unambiguous_and_distinct() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    for c in list(codes)[:50]:
        assert c[5] == "-"
        assert all(ch in ALPHABET for ch in c.replace("-", ""))
    assert not set("01ILOU") & set(ALPHABET)


@given(st.sampled_from([" ", "-", ""]), st.booleans())
def test_typing_variants_normalise_to_the_same_digest(sep: str, lower: bool) -> None:
    code = "K7QF2-MX9PD"
    typed = f"K7QF2{sep}MX9PD"
    typed = typed.lower() if lower else typed
    assert code_digest(typed) == code_digest(code)
    assert normalise_code(typed) == "K7QF2MX9PD"


@pytest.mark.parametrize("text", ["", "K7QF2", "K7QF2-MX9PDX", "K7QF0-MX9PD", "K7QF2-MX9P!"])
def test_malformed_codes_are_refused(text: str) -> None:
    with pytest.raises(EnrollmentRefused) as err:
        normalise_code(text)
    assert err.value.kind == "malformed"


def test_limiter_per_client_and_window() -> None:
    lim = AttemptLimiter(max_failures=2, global_failures=100, window_s=60)
    for t in (0.0, 1.0):
        assert lim.allowed("a", t)
        lim.failed("a", t)
    assert not lim.allowed("a", 2.0)
    assert lim.allowed("b", 2.0)  # other clients are not affected
    assert not lim.allowed("a", 59.0)
    assert lim.allowed("a", 61.5)  # both failures left the window


def test_limiter_global_cap() -> None:
    lim = AttemptLimiter(max_failures=100, global_failures=3, window_s=60)
    for i in range(3):
        lim.failed(f"c{i}", 0.0)
    assert not lim.allowed("fresh", 1.0)
    assert lim.allowed("fresh", 61.0)

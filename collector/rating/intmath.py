"""Exact integer helpers for the vectorised engine (int64, or Python ints when int64 overflows).

Every function is exact: sums of int64 micro-units via float64 ``bincount`` are split into a
high and a low 24-bit half so each partial sum stays below 2**53; products that could overflow
int64 switch to ``object`` arrays of Python ints.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
AnyInt = npt.NDArray[Any]  # int64 or object (Python int)

_EXACT = 2**53
_SAFE = 2**62
_LOW_BITS = 24


def run_starts(keys: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """Index of the first element of every run of equal consecutive ``keys``."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.intp)
    return np.concatenate(([0], np.flatnonzero(keys[1:] != keys[:-1]) + 1))


def run_sums(keys: npt.NDArray[np.integer[Any]], weights: npt.NDArray[Any], bins: int) -> F64:
    """``np.bincount(keys, weights, minlength=bins)``, summed per run of equal consecutive keys
    first (``np.add.reduceat``): rows grouped by key, as billing passes them, cost a few fast
    passes instead of a weighted scatter per row (about 30 times slower). Integer weights are
    summed as integers within a run (exact while a key's sum fits int64); float weights in
    numpy's own order, so a float sum may differ from the scatter's in its last bits."""
    starts = run_starts(keys)
    if starts.size * 2 > keys.size:  # hardly any runs: the plain scatter
        weights = weights.astype(np.float64)
    else:
        keys, weights = keys[starts], np.add.reduceat(weights, starts).astype(np.float64)
    return np.asarray(np.bincount(keys, weights=weights, minlength=bins), dtype=np.float64)


def exact_sums(keys: npt.NDArray[np.integer[Any]], values: I64, bins: int) -> AnyInt:
    """Exact ``sum(values[keys == k])`` for every ``k < bins`` (values non-negative); an
    ``object`` array of Python ints if a sum does not fit int64."""
    if values.size == 0:
        return np.zeros(bins, dtype=np.int64)
    top = int(values.max())
    if top * values.size >= _EXACT and top * int(np.bincount(keys).max()) < _EXACT:
        top = 0  # no single bin can reach 2**53: one float pass is exact
    if top * values.size < _EXACT:
        # every run's integer sum is part of one key's sum (< 2**53): exact as int64 and float
        return run_sums(keys, values, bins).astype(np.int64)
    lo = np.bincount(
        keys, weights=(values & ((1 << _LOW_BITS) - 1)).astype(np.float64), minlength=bins
    ).astype(np.int64)
    hi = np.bincount(keys, weights=(values >> _LOW_BITS).astype(np.float64), minlength=bins).astype(
        np.int64
    )
    if int(hi.max()) >= 2 ** (62 - _LOW_BITS):
        wide: AnyInt = hi.astype(object) * (1 << _LOW_BITS) + lo.astype(object)
        return wide
    return (hi << _LOW_BITS) + lo


def _widen(a: AnyInt, factor: int) -> AnyInt:
    """``a`` as object ints if ``max|a| * factor`` might overflow int64."""
    if a.dtype == object:
        return a
    top = int(np.abs(a).max()) if a.size else 0
    return a.astype(object) if top * abs(factor) >= _SAFE else a


def mul(a: AnyInt, factor: int) -> AnyInt:
    """Exact ``a * factor``."""
    return _widen(a, factor) * factor


def mul_arrays(a: AnyInt, b: AnyInt) -> AnyInt:
    """Exact element-wise ``a * b``."""
    ta = int(np.abs(a).max()) if a.size else 0
    tb = int(np.abs(b).max()) if b.size else 0
    if object in (a.dtype, b.dtype) or ta * tb >= _SAFE:
        wide: AnyInt = a.astype(object) * b.astype(object)
        return wide
    return a * b


def scale_half_even(a: AnyInt, factor: Fraction) -> AnyInt:
    """``a * factor`` rounded half to even, exactly (``a`` non-negative)."""
    prod = mul(a, factor.numerator)
    den = factor.denominator
    if den == 1:
        return prod
    q, r = prod // den, prod % den
    twice = r * 2
    up = (twice > den) | ((twice == den) & (q % 2 == 1))
    out: AnyInt = q + up.astype(q.dtype)
    return out


def div_half_up(a: AnyInt, den: int) -> AnyInt:
    """``a / den`` rounded half away from zero (``a`` non-negative, ``den`` positive)."""
    out: AnyInt = (mul(a, 2) + den) // (2 * den)
    return out


def narrow(a: AnyInt) -> AnyInt:
    """``a`` as int64 if every value fits, else unchanged."""
    if a.dtype != object:
        return a
    if a.size == 0 or max(abs(int(v)) for v in a) < _SAFE:
        return a.astype(np.int64)
    return a

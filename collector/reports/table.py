"""A report table and its exports: JSON rows, CSV and Parquet (pyarrow).

A ``Table`` is a frozen value: column names and rows of plain values (int, float, Decimal,
str, datetime, date, bool, None). Money columns hold ``Decimal`` and stay exact in every
format: CSV writes the decimal text, Parquet a ``decimal128`` column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from collector.errors import ValidationFailed

__all__ = ["Cell", "Table", "to_csv", "to_parquet"]

Cell = int | float | Decimal | str | datetime | date | bool | None


@dataclass(frozen=True, slots=True)
class Table:
    """``columns`` and ``rows`` (each a tuple with one cell per column)."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def __post_init__(self) -> None:
        for r in self.rows:
            if len(r) != len(self.columns):
                raise ValidationFailed(f"report {self.name}: a row has {len(r)} cells")

    def records(self) -> list[dict[str, Cell]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


def _text(v: Cell) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime | date):
        return v.isoformat()
    return str(v)


def to_csv(table: Table) -> bytes:
    """RFC 4180 CSV with a header row, UTF-8; decimals as exact text, times as ISO 8601."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(table.columns)
    for r in table.rows:
        w.writerow([_text(v) for v in r])
    return buf.getvalue().encode()


def _column(values: Sequence[Cell]) -> Any:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, Decimal) for v in present):
        decs = [v for v in present if isinstance(v, Decimal)]
        scale = max(max(-int(d.as_tuple().exponent), 0) for d in decs)
        digits = max(len(d.as_tuple().digits) for d in decs)
        precision = min(max(digits + scale, scale + 1, 18), 38)
        return pa.array(values, type=pa.decimal128(precision, scale))
    return pa.array(values)


def to_parquet(table: Table) -> bytes:
    """The table as one Parquet file (types inferred per column; decimals exact)."""
    cols = list(zip(*table.rows, strict=True)) if table.rows else [() for _ in table.columns]
    arrow = pa.table({name: _column(list(c)) for name, c in zip(table.columns, cols, strict=True)})
    sink = pa.BufferOutputStream()
    pq.write_table(arrow, sink)
    out: bytes = sink.getvalue().to_pybytes()
    return out

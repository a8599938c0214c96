"""Staff reports: tables of revenue, consumers, unbilled/estimated usage, device health and
invoice reconciliation, each exportable as JSON, CSV or Parquet.

    Table(name, columns, rows)           frozen value (cells: int, float, Decimal, str, time)
    to_csv(table) -> bytes               RFC 4180, decimals exact
    to_parquet(table) -> bytes           pyarrow, decimals as decimal128
    reconcile_period(conn, "2026-03")    final invoices vs the usage behind them, re-rated

SQL lives in ``collector.storage.report_queries``; routes in ``collector.api.report_routes``.
"""

from __future__ import annotations

from collector.reports.table import Cell, Table, to_csv, to_parquet

__all__ = ["Cell", "Table", "to_csv", "to_parquet"]

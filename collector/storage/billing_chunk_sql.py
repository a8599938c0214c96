"""The SQL that reaches the invoices of a chunk of customers (close, finalize, drafts)."""

from __future__ import annotations

from typing import Final

from psycopg import sql

__all__ = ["CHUNK_DRAFTS", "CHUNK_FINALS"]

# The invoices of some customers (``%s``: an id array) for one period (``%s``) and status,
# reached by one index probe per customer: the LATERAL subquery with its LIMIT is never turned
# into a join. A plain ``customer_id = ANY(...) AND period = ... AND status = ...`` is planned
# from statistics that lag far behind while a close writes 100,000 drafts, and became a walk
# of every invoice of the period, once per chunk.
_CHUNK: Final = (
    "unnest(%s::bigint[]) AS c (customer_id) CROSS JOIN LATERAL (SELECT * FROM invoices"
    " WHERE customer_id = c.customer_id AND period = %s AND status = {} LIMIT 1) i"
)
CHUNK_DRAFTS: Final = sql.SQL(_CHUNK).format(sql.Literal("draft"))
CHUNK_FINALS: Final = sql.SQL(_CHUNK).format(sql.Literal("final"))

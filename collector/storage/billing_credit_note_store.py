"""Credit notes in PostgreSQL: issued (numbered and stored) in one step, read back, listed.

The number comes from ``credit_note_sequences`` under its row lock in the issuing transaction
(gapless, like invoices); credit notes and their lines are immutable (0026 triggers)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from collector.billing.credit_notes import CreditNote, CreditNoteDraft, CreditNoteLine
from collector.billing.model import Lineage
from collector.billing.numbering import format_invoice_number
from collector.errors import NotFound
from collector.storage.billing_errors import translated

Conn = psycopg.Connection[Any]

_COLS = (
    "credit_note_id, number, customer_id, corrects_invoice_id, reason, currency, tax_rate,"
    " subtotal, tax, total, issuer, issued_at"
)


def _allocate(conn: Conn, issuer: str, prefix: str, year: int) -> int:
    row = conn.execute(
        "INSERT INTO credit_note_sequences AS s (issuer, prefix, year, last_value)"
        " VALUES (%s, %s, %s, 1) ON CONFLICT (issuer, prefix, year)"
        " DO UPDATE SET last_value = s.last_value + 1 RETURNING last_value",
        (issuer, prefix, year),
    ).fetchone()
    assert row is not None
    return int(row[0])


def issue(conn: Conn, drafts: Sequence[CreditNoteDraft], now: datetime) -> list[tuple[int, str]]:
    """Number and store ``drafts`` in the caller's transaction; ``(id, number)`` pairs."""
    out: list[tuple[int, str]] = []
    with translated("issue credit notes"):
        for d in drafts:
            tz = ZoneInfo(str(d.customer_snapshot.get("time_zone", "UTC")))
            year = now.astimezone(tz).year
            number = format_invoice_number(
                d.prefix, year, _allocate(conn, d.corrects.issuer, d.prefix, year)
            )
            row = conn.execute(
                "INSERT INTO credit_notes (number, customer_id, corrects_invoice_id, reason,"
                " currency, tax_rate, subtotal, subtotal_unrounded, tax, total, issuer, prefix,"
                " customer_snapshot, issuer_snapshot, issued_at) VALUES"
                " (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,"
                " (SELECT document FROM issuers WHERE code = %s), %s) RETURNING credit_note_id",
                (
                    number,
                    d.customer_id,
                    d.corrects.invoice_id,
                    d.reason,
                    d.corrects.currency,
                    d.corrects.tax_rate,
                    d.subtotal,
                    d.subtotal_unrounded,
                    d.tax,
                    d.total,
                    d.corrects.issuer,
                    d.prefix,
                    Jsonb(d.customer_snapshot),
                    d.corrects.issuer,
                    now,
                ),
            ).fetchone()
            assert row is not None
            cn_id = int(row[0])
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO credit_note_lines (credit_note_id, line_no, description,"
                    " quantity, unit, unit_price, amount_unrounded, amount, subscription_id,"
                    " lineage) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    [
                        (
                            cn_id,
                            ln.line_no,
                            ln.description,
                            ln.quantity,
                            ln.unit,
                            ln.unit_price,
                            ln.amount_unrounded,
                            ln.amount,
                            ln.subscription_id,
                            json.dumps(ln.lineage.to_json()),
                        )
                        for ln in d.lines
                    ],
                )
            out.append((cn_id, number))
    return out


def _note(row: Sequence[Any], lines: tuple[CreditNoteLine, ...]) -> CreditNote:
    return CreditNote(
        credit_note_id=int(row[0]),
        number=row[1],
        customer_id=int(row[2]),
        corrects_invoice_id=int(row[3]),
        reason=row[4],
        currency=row[5].strip(),
        tax_rate=row[6],
        subtotal=row[7],
        tax=row[8],
        total=row[9],
        issuer=row[10],
        issued_at=row[11],
        lines=lines,
    )


def get_credit_note(conn: Conn, credit_note_id: int) -> CreditNote:
    with translated("get credit note"):
        row = conn.execute(
            f"SELECT {_COLS} FROM credit_notes WHERE credit_note_id = %s",  # noqa: S608 (constant)
            (credit_note_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"credit note {credit_note_id} does not exist")
        rows = conn.execute(
            "SELECT line_no, description, quantity, unit, unit_price, amount_unrounded, amount,"
            " subscription_id, lineage FROM credit_note_lines WHERE credit_note_id = %s"
            " ORDER BY line_no",
            (credit_note_id,),
        ).fetchall()
    lines = tuple(
        CreditNoteLine(
            line_no=int(r[0]),
            description=r[1],
            quantity=r[2],
            unit=r[3],
            unit_price=r[4],
            amount_unrounded=r[5],
            amount=r[6],
            subscription_id=r[7],
            lineage=Lineage.from_json(r[8]),
        )
        for r in rows
    )
    return _note(row, lines)


def snapshots(conn: Conn, credit_note_id: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The customer and issuer snapshots of a credit note."""
    with translated("get credit note snapshots"):
        row = conn.execute(
            "SELECT customer_snapshot, issuer_snapshot FROM credit_notes"
            " WHERE credit_note_id = %s",
            (credit_note_id,),
        ).fetchone()
    if row is None:
        raise NotFound(f"credit note {credit_note_id} does not exist")
    return dict(row[0]), (None if row[1] is None else dict(row[1]))


def list_for_invoice(conn: Conn, invoice_id: int) -> list[CreditNote]:
    """The credit notes that correct ``invoice_id``, oldest first (without lines)."""
    with translated("list credit notes"):
        rows = conn.execute(
            f"SELECT {_COLS} FROM credit_notes WHERE corrects_invoice_id = %s"  # noqa: S608
            " ORDER BY credit_note_id",
            (invoice_id,),
        ).fetchall()
    return [_note(r, ()) for r in rows]

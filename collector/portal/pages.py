"""The invoice page and the sign-in / error pages of the portal."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from collector.billing.model import Invoice
from collector.portal import figures as fig
from collector.portal.layout import ESTIMATE_NOTE, fill, page, text

__all__ = ["invoice_html", "login_html", "not_found_html", "signed_in_html"]


def _decimal(value: Decimal) -> str:
    """A quantity or unit price for reading: at most 6 decimals, thousands separated."""
    if value.as_tuple().exponent < -6:  # type: ignore[operator]
        value = value.quantize(Decimal("0.000001"))
    return f"{value.normalize():,f}"


def invoice_html(inv: Invoice, tz: str) -> str:
    """The body of a final invoice's page: lines, totals, links to the PDF and CSV."""
    rows = "".join(
        f"<tr><td>{text(ln.description)}{' *' if ln.is_estimated else ''}</td>"
        f'<td class="n">{text(f"{_decimal(ln.quantity)} {ln.unit}")}</td>'
        f'<td class="n">{text("" if ln.unit_price is None else _decimal(ln.unit_price))}'
        f'</td><td class="n">{text(fig.money(ln.amount, inv.currency))}</td></tr>'
        for ln in inv.lines
    )
    estimated = any(ln.is_estimated for ln in inv.lines)
    end_day = inv.period_end.astimezone(ZoneInfo(tz)).date()
    last_day = (end_day - timedelta(days=1)).strftime("%d %b %Y")
    return fill(
        "invoice.html",
        number=text(inv.number or ""),
        period_text=text(
            f"Period {inv.period}: {fig.local(inv.period_start, tz, '%d %b %Y')} – {last_day}"
        ),
        issued=text(fig.local(inv.finalized_at, tz) if inv.finalized_at else ""),
        invoice_id=str(int(inv.invoice_id)),
        lines=(
            '<table><tr><th>Description</th><th class="n">Quantity</th>'
            f'<th class="n">Unit price</th><th class="n">Amount</th></tr>{rows}</table>'
        ),
        subtotal=text(fig.money(inv.subtotal, inv.currency)),
        tax_rate=text(f"{(inv.tax_rate * 100).normalize():f}%"),
        tax=text(fig.money(inv.tax, inv.currency)),
        total=text(fig.money(inv.total, inv.currency)),
        estimate_note=text(f"* contains estimated usage. {ESTIMATE_NOTE}" if estimated else ""),
    )


def login_html(message: str | None = None) -> str:
    """A complete sign-in page (``message``: why the visitor is here, e.g. an expired token)."""
    msg = f'<p class="error">{text(message)}</p>' if message else ""
    return page("Sign in", fill("login.html", message=msg), signed_in=False)


def signed_in_html() -> str:
    """A complete page that continues to the dashboard (meta refresh, and a link)."""
    return page(
        "Signed in",
        '<h1>Signed in</h1><p><a href="/portal/">Continue to your dashboard</a></p>',
        signed_in=True,
    ).replace("<head>", '<head>\n<meta http-equiv="refresh" content="0; url=/portal/">', 1)


def not_found_html(customer: str) -> str:
    """A complete 'not found' page (also for other customers' data)."""
    return page(
        "Not found",
        '<h1>Not found</h1><p>There is nothing here. <a href="/portal/">Back to the dashboard</a>'
        "</p>",
        customer=customer,
    )

"""HTML bodies of the staff console (everything escaped; the frame is the portal's layout)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from collector.billing.model import Customer, Invoice, Plan, PlanVersion, Subscription
from collector.console.access import SECTIONS, Action, StaffMember, authorize
from collector.console.plan_preview import Preview
from collector.portal.layout import text
from collector.portal.locale_format import LocalFormat
from collector.storage.billing_run_store import BillingRun
from collector.storage.ingest_queries import DeadLetterRow, DeviceIngest

__all__ = [
    "billing_html",
    "customer_html",
    "customers_html",
    "dead_letters_html",
    "devices_html",
    "home_html",
    "login_html",
    "plans_html",
]

FMT = LocalFormat("en", "UTC")
_NUM = ' class="n"'


_TAGS = re.compile(r"<[^>]*>")
_PROSE_CHARS = 40


def _cell_class(i: int, numeric: frozenset[int], prose: set[int]) -> str:
    if i in numeric:
        return _NUM
    return ' class="t"' if i in prose else ""


def _table(
    heads: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[int] = frozenset()
) -> str:
    """A table; cells are HTML already. Cells stay on one line (a wide table scrolls in its
    own box) except in columns of long free text (reasons, descriptions), which wrap."""
    prose = {i for i in range(len(heads))
             if any(len(_TAGS.sub("", r[i])) > _PROSE_CHARS for r in rows if i < len(r))}
    th = "".join(
        f'<th scope="col"{_NUM if i in numeric else ""}>{text(h)}</th>' for i, h in enumerate(heads)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{_cell_class(i, numeric, prose)}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f'<div class="scroll" tabindex="0"><table><tr>{th}</tr>{body}</table></div>'


def _when(t: datetime | None) -> str:
    return text(FMT.moment(t, seconds=True)) if t else "—"


def _hidden_csrf(csrf: str) -> str:
    return f'<input type="hidden" name="csrf" value="{text(csrf)}">'


def login_html(message: str | None, open_mode: bool) -> str:
    msg = f'<p class="error" role="alert">{text(message)}</p>' if message else ""
    hint = (
        "No staff tokens are configured (the API is open on this loopback address): leave the"
        " field empty."
        if open_mode
        else "Sign in with your staff token."
    )
    return (
        f"<h1>Staff sign-in</h1>{msg}<p>{text(hint)}</p>"
        '<form class="signin" method="post" action="/console/login">'
        '<label for="token">Staff token</label>'
        '<input id="token" name="token" type="password" autocomplete="off">'
        '<button type="submit">Sign in</button></form>'
    )


def home_html(member: StaffMember) -> str:
    items = "".join(
        f'<li><a href="{text(s.path)}">{text(s.title)}</a></li>'
        for s in SECTIONS
        if authorize(member, s.action)
    )
    return (
        "<h1>Staff console</h1>"
        f'<p class="sub">Signed in as {text(member.subject)}</p><ul>{items}</ul>'
    )


def customers_html(customers: Sequence[Customer]) -> str:
    rows = [
        (
            f'<a href="/console/customers/{c.customer_id}">{text(c.spec.name)}</a>',
            text(c.customer_id),
            text(c.spec.currency),
            text(c.spec.time_zone),
            text(c.spec.language),
        )
        for c in customers
    ]
    return "<h1>Customers</h1>" + _table(["Name", "Id", "Currency", "Zone", "Language"], rows)


def customer_html(
    c: Customer,
    *,
    subs: Sequence[Subscription],
    versions: Sequence[tuple[Plan, PlanVersion]],
    period: str,
    chosen: int | None,
    result: Preview | None,
    error: str | None,
) -> str:
    sub_rows = [
        (
            text(s.subscription_id),
            text(s.series_id),
            text(s.plan_version_id),
            _when(s.valid_from),
            _when(s.valid_to),
        )
        for s in subs
    ]
    options = "".join(
        f'<option value="{v.plan_version_id}"{" selected" if v.plan_version_id == chosen else ""}>'
        f"{text(p.name or p.code)} v{v.version} ({text(p.currency)})</option>"
        for p, v in versions
    )
    form = (
        f'<form class="signin" method="get" action="/console/customers/{c.customer_id}">'
        '<label for="plan_version">Plan</label>'
        f'<select id="plan_version" name="plan_version">{options}</select>'
        '<label for="period">Period (YYYY-MM)</label>'
        f'<input id="period" name="period" value="{text(period)}"'
        ' pattern="\\d{4}-\\d{2}" required>'
        '<button type="submit">Preview</button></form>'
    )
    out = ""
    if error:
        out = f'<p class="error" role="alert">{text(error)}</p>'
    elif result is not None:
        cur = result.currency
        rows = [
            (
                text(meter),
                text(ln.description),
                f"{text(FMT.number(ln.quantity, 3))} {text(ln.unit)}",
                text(FMT.money(ln.amount, cur)),
            )
            for meter, ln in result.lines
        ]
        t = result.totals
        out = (
            f'<div class="panel" id="preview"><h3>On this plan, {text(period)} would cost'
            f' <span data-total="{t.total}">{text(FMT.money(t.total, cur))}</span></h3>'
            + _table(["Meter", "Charge", "Quantity", "Amount"], rows, frozenset({2, 3}))
            + f"<p>Subtotal {text(FMT.money(t.subtotal, cur))}"
            f" · tax {text(FMT.money(t.tax, cur))}</p></div>"
        )
    return (
        f"<h1>{text(c.spec.name)}</h1>"
        f'<p class="sub">Customer {c.customer_id} · {text(c.spec.currency)}'
        f" · {text(c.spec.time_zone)}"
        f" · {text(c.spec.language)} · tax {text(c.spec.tax_rate)}</p>"
        "<h2>Subscriptions</h2>"
        + _table(["Subscription", "Meter (series)", "Plan version", "From", "To"], sub_rows)
        + "<h2>Plan preview: what would this customer pay on another plan?</h2>"
        + form
        + out
    )


def plans_html(versions: Sequence[tuple[Plan, Sequence[PlanVersion]]]) -> str:
    rows = [
        (
            text(p.code),
            text(p.name),
            text(p.currency),
            ", ".join(f"v{v.version} (#{v.plan_version_id})" for v in vs),
        )
        for p, vs in versions
    ]
    return "<h1>Plans</h1>" + _table(["Code", "Name", "Currency", "Versions"], rows)


def devices_html(
    devices: Sequence[DeviceIngest], now: datetime, offline_after_s: float = 900
) -> str:
    rows = []
    for d in devices:
        state = d.status.state if d.status and d.status.state else None
        fresh = d.last_seen is not None and (now - d.last_seen).total_seconds() <= offline_after_s
        health = state or ("online" if fresh else "offline")
        rows.append(
            (
                text(d.device_id),
                text(health),
                _when(d.last_seen),
                text(d.batches),
                text(d.readings),
                text(d.missing_batches),
                text(
                    d.status.buffer_depth if d.status and d.status.buffer_depth is not None else "—"
                ),
            )
        )
    return (
        "<h1>Devices and fleet health</h1>"
        f'<p class="sub">{len(devices)} devices; offline = no batch for'
        f" {int(offline_after_s // 60)} minutes"
        " and no status saying otherwise</p>"
        + _table(
            ["Device", "Health", "Last seen", "Batches", "Readings", "Missing batches", "Buffer"],
            rows,
            frozenset({3, 4, 5, 6}),
        )
    )


def billing_html(
    period: str,
    *,
    runs: Sequence[BillingRun],
    drafts: Sequence[Invoice],
    finals: int,
    member: StaffMember,
    csrf: str,
) -> str:
    running = any(r.status == "running" for r in runs)
    run_rows = [
        (
            text(r.run_id),
            text(r.kind),
            f'<span data-run-status="{text(r.status)}">{text(r.status)}</span>',
            f'<progress max="1" value="{r.progress:.4f}"'
            f' aria-label="Run {r.run_id} progress"></progress>'
            f" {r.done_customers}/{r.total_customers}",
            text(r.invoices_written),
            _when(r.started_at),
            _when(r.finished_at),
        )
        for r in runs
    ]
    draft_rows = [
        (
            text(i.invoice_id),
            text(i.customer_id),
            text(FMT.money(i.subtotal, i.currency)),
            text(FMT.money(i.total, i.currency)),
            f'<a href="/invoices/{i.invoice_id}?format=pdf">PDF</a>',
        )
        for i in drafts
    ]
    forms = ""
    if authorize(member, Action.RUN_CLOSE):
        forms += (
            f'<form class="inline" method="post" action="/console/billing/{text(period)}/close">'
            f"{_hidden_csrf(csrf)}"
            f'<button type="submit">Close {text(period)} (draft invoices)</button></form>'
        )
    if drafts and authorize(member, Action.FINALIZE):
        forms += (
            f'<form class="inline" method="post" action="/console/billing/{text(period)}/finalize">'
            f"{_hidden_csrf(csrf)}"
            '<p><input type="checkbox" id="reviewed" name="reviewed" value="yes" required>'
            f' <label for="reviewed">I have reviewed the {len(drafts)} draft invoices'
            " above</label></p>"
            f'<button type="submit">Finalize {text(period)}</button></form>'
        )
    refresh = (
        '<p class="note" role="status">A run is in progress; this page reloads every 2 seconds.</p>'
        if running
        else ""
    )
    return (
        f"<h1>Period close {text(period)}</h1>"
        '<form class="signin" method="get" action="/console/billing">'
        '<label for="p">Period (YYYY-MM)</label>'
        f'<input id="p" name="period" value="{text(period)}" required>'
        '<button type="submit">Show</button></form>'
        f"{refresh}<h2>Runs</h2>"
        + _table(["Run", "Kind", "Status", "Progress", "Invoices", "Started", "Finished"], run_rows)
        + f"<h2>Review: {len(drafts)} draft invoices ({finals} final)</h2>"
        + _table(
            ["Invoice", "Customer", "Subtotal", "Total", "Document"], draft_rows, frozenset({2, 3})
        )
        + forms
    )


def dead_letters_html(rows: Sequence[DeadLetterRow]) -> str:
    cells = [
        (
            text(r.id),
            _when(r.received_at),
            text(r.topic),
            text(r.reason),
            text(r.field or ""),
            text(len(r.payload)),
        )
        for r in rows
    ]
    return (
        "<h1>Dead letters</h1>"
        '<p class="sub">Messages the collector could not use, kept with their reason'
        " (conflicting redeliveries appear here once the collector records them).</p>"
        + _table(["Id", "Received", "Topic", "Reason", "Field", "Bytes"], cells, frozenset({5}))
    )

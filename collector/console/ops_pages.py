"""HTML bodies of the console's operations sections: enrollments (with the new code's QR code),
batch conflicts, alerts and webhook deliveries (everything escaped; QR codes are inline SVG
made by segno, so nothing is loaded from elsewhere)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import segno

from collector.alerts.rules import AlertRule
from collector.console.pages import FMT, _hidden_csrf, _table, _when
from collector.devices.model import Enrollment
from collector.portal.layout import text
from collector.storage.alert_store import Alert
from collector.storage.ingest_conflicts import BatchConflict
from collector.storage.webhook_store import Delivery

__all__ = [
    "Issued",
    "alerts_html",
    "conflicts_html",
    "deliveries_html",
    "enrollments_html",
    "qr_svg",
]


def qr_svg(data: str, title: str) -> str:
    """``data`` as an inline SVG QR code (no XML declaration, with a title for screen readers)."""
    out = io.BytesIO()
    segno.make(data, error="m").save(
        out, kind="svg", scale=4, border=4, xmldecl=False, svgns=True, title=title
    )
    return out.getvalue().decode()


class Issued:
    """A code just created: shown once, with its QR code."""

    __slots__ = ("code", "enrollment_id", "expires_at", "qr_text")

    def __init__(self, enrollment_id: int, code: str, qr_text: str, expires_at: str) -> None:
        self.enrollment_id = enrollment_id
        self.code = code
        self.qr_text = qr_text
        self.expires_at = expires_at


def _enroll_form(csrf: str) -> str:
    return (
        '<form method="post" action="/console/enrollments" class="stack">'
        f"{_hidden_csrf(csrf)}"
        '<p><label for="e-customer">Customer reference</label>'
        '<input id="e-customer" name="customer_id" required maxlength="128" autocomplete="off">'
        "</p>"
        '<p><label for="e-site">Site</label>'
        '<input id="e-site" name="site" required maxlength="256" autocomplete="off"></p>'
        '<p><label for="e-meter">Meter name</label>'
        '<input id="e-meter" name="meter_name" value="main" required maxlength="64"'
        ' pattern="[A-Za-z0-9._:-]+"></p>'
        '<p><label for="e-type">Meter type</label>'
        '<input id="e-type" name="meter_type" value="modbus-tcp" required maxlength="64"></p>'
        '<p><label for="e-interval">Reading interval (seconds)</label>'
        '<input id="e-interval" name="interval_s" type="number" min="1" max="86400" value="60"'
        " required></p>"
        '<p><label for="e-days">Valid for (days)</label>'
        '<input id="e-days" name="days" type="number" min="1" max="90" value="7" required></p>'
        '<p><button type="submit">Create enrollment code</button></p></form>'
    )


def enrollments_html(
    pending: Sequence[Enrollment],
    *,
    csrf: str | None,
    issued: Issued | None = None,
    error: str | None = None,
    unavailable: bool = False,
) -> str:
    """Pending enrollments; the create form when ``csrf`` is given (the member may create);
    the code just issued with its QR code (shown once)."""
    if unavailable:
        return (
            "<h1>Enrollments</h1>"
            '<p class="note" role="status">Device enrollment is not configured on this'
            " collector.</p>"
        )
    parts = ["<h1>Enrollments</h1>"]
    if error:
        parts.append(f'<p class="error" role="alert">{text(error)}</p>')
    if issued is not None:
        parts.append(
            '<section class="panel" id="issued" aria-labelledby="issued-h">'
            f'<h2 id="issued-h">Enrollment {issued.enrollment_id}: code shown once</h2>'
            f'<p>Code <strong data-code="{text(issued.code)}">{text(issued.code)}</strong>,'
            f" valid until {text(issued.expires_at)}. Scan the QR code with the installer app"
            " or type the code on the device.</p>"
            f'<figure class="qr">{qr_svg(issued.qr_text, "Enrollment QR code")}'
            f"<figcaption>{text(issued.qr_text)}</figcaption></figure></section>"
        )
    if csrf is not None:
        parts.append(f"<h2>New enrollment</h2>{_enroll_form(csrf)}")
    parts.append("<h2>Pending</h2>")
    if not pending:
        parts.append('<p class="note">No pending enrollments.</p>')
    else:
        rows = [
            [
                str(e.enrollment_id),
                text(e.customer_id),
                text(e.site),
                text(e.purpose.value),
                _when(e.created_at),
                _when(e.expires_at),
            ]
            for e in pending
        ]
        parts.append(
            _table(["Id", "Customer", "Site", "Purpose", "Created", "Expires"], rows, frozenset())
        )
    return "".join(parts)


def conflicts_html(found: Sequence[BatchConflict]) -> str:
    """Batches that reused a stored (device, seq) with different readings (kept aside)."""
    head = (
        '<h1>Batch conflicts</h1><p class="sub">Batches that reused a device\'s sequence'
        " number with different readings: kept aside with their reason, never counted.</p>"
    )
    if not found:
        return head + '<p class="note">No batch conflicts.</p>'
    rows = [
        [
            _when(c.received_at),
            text(c.device_id),
            str(c.seq),
            str(c.reading_count),
            text(c.reason),
            f"<code>{text(c.digest[:12])}</code>",
        ]
        for c in found
    ]
    return head + _table(
        ["Received", "Device", "Seq", "Readings", "Reason", "Digest"], rows, frozenset({2, 3})
    )


def alerts_html(recent: Sequence[Alert], rules: Sequence[AlertRule]) -> str:
    """Recent alerts (newest first) and the active rules, customers' and staff's."""
    by_id = {r.rule_id: r for r in rules}
    parts = ["<h1>Alerts</h1><h2>Recent alerts</h2>"]
    if not recent:
        parts.append('<p class="note">No alert has been raised.</p>')
    else:
        rows = []
        for a in recent:
            r = by_id.get(a.rule_id)
            rows.append(
                [
                    _when(a.crossed_at),
                    f'<a href="/console/customers/{a.customer_id}">{a.customer_id}</a>',
                    text(a.period),
                    text(r.name or r.metric.value if r else a.rule_id),
                    text(FMT.number(a.value, 3)),
                    text(FMT.number(a.limit_value, 3)),
                ]
            )
        parts.append(
            _table(
                ["Crossed", "Customer", "Period", "Rule", "Value", "Limit"],
                rows,
                frozenset({4, 5}),
            )
        )
    parts.append("<h2>Active rules</h2>")
    active = [r for r in rules if r.active]
    if not active:
        parts.append('<p class="note">No active rules.</p>')
    else:
        parts.append(
            _table(
                ["Rule", "Owner", "Customer", "Metric", "Threshold"],
                [
                    [
                        text(f"{r.rule_id} {r.name}".strip()),
                        text(r.owner),
                        text(r.customer_id or "all"),
                        text(f"{r.metric.value} {r.unit or ''}".strip()),
                        text(f"{FMT.number(r.threshold, 3)}{' %' if r.relative else ''}"),
                    ]
                    for r in active
                ],
                frozenset({4}),
            )
        )
    return "".join(parts)


def deliveries_html(found: Sequence[Delivery], *, csrf: str | None) -> str:
    """The webhook delivery log; a redeliver button per delivery when ``csrf`` is given."""
    head = "<h1>Webhook deliveries</h1>"
    if not found:
        return head + '<p class="note">No webhook deliveries yet.</p>'
    rows = []
    for d in found:
        button = (
            ""
            if csrf is None
            else f'<form method="post" action="/console/webhooks/{d.delivery_id}/redeliver">'
            f'{_hidden_csrf(csrf)}<button type="submit"'
            f' aria-label="Redeliver {d.delivery_id}">Redeliver</button></form>'
        )
        rows.append(
            [
                str(d.delivery_id),
                text(d.event_type),
                str(d.endpoint_id),
                f'<span data-status="{text(d.status)}">{text(d.status)}</span>',
                str(d.attempts),
                text(d.last_status if d.last_status is not None else "—"),
                text(d.last_error or ""),
                _when(d.delivered_at),
                button,
            ]
        )
    return head + _table(
        ["Id", "Event", "Endpoint", "Status", "Attempts", "HTTP", "Error", "Delivered", "Action"],
        rows,
        frozenset({0, 4}),
    )

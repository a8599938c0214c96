"""Staff commands: ``tally-collector billing …`` (customers, plans, subscriptions, close).

Wiring: ``commands()`` returns the ``billing`` command for ``collector.cli`` (its
``EXTENSION_MODULES`` mechanism); ``register(subparsers)`` adds the same parser to any argparse
subparsers; ``python -m collector.billing.cli --database-url URL …`` runs it standalone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg_pool
import yaml

from collector.billing import accounts
from collector.billing.advance_run import run_advance_billing
from collector.billing.close import CloseConfig, close_period, finalize_period, refresh_period
from collector.billing.documents import render
from collector.billing.finalize_guard import force_reason
from collector.billing.model import Address, CustomerSpec
from collector.billing.parties import BuyerTax, Issuer, TaxCategory
from collector.billing.periods import PeriodKey
from collector.billing.progressive_run import run_progressive_check
from collector.errors import CollectorError
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_issuer_store as issuers
from collector.storage import billing_run_store as runs
from collector.storage import billing_store as store

Pool = psycopg_pool.ConnectionPool[Any]
Handler = Callable[[argparse.Namespace, Pool], int]


def _when(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    if t.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} needs a UTC offset, e.g. 2026-03-11T00:00+01:00"
        )
    return t


def _now(args: argparse.Namespace) -> datetime:
    now: datetime | None = getattr(args, "now", None)
    return now or datetime.now(UTC)


def _config(args: argparse.Namespace) -> CloseConfig:
    return CloseConfig(
        chunk_size=args.chunk_size,
        processes=args.processes,
        grace=timedelta(hours=args.grace_hours),
        correction_horizon=timedelta(days=args.horizon_days),
    )


def _progress_bar(args: argparse.Namespace) -> Callable[[runs.BillingRun], None]:
    from rich.progress import Progress  # noqa: PLC0415 - only for interactive runs

    if getattr(args, "plain", False):

        def plain(run: runs.BillingRun) -> None:
            print(
                f"run {run.run_id} {run.kind} {run.period}: {run.done_customers}/"
                f"{run.total_customers} customers, {run.invoices_written} invoices",
                flush=True,
            )

        return plain
    bar = Progress(transient=False)
    task = bar.add_task("billing", total=None)
    bar.start()

    def update(run: runs.BillingRun) -> None:
        bar.update(
            task,
            total=run.total_customers,
            completed=run.done_customers,
            description=f"{run.kind} {run.period}",
        )
        if run.status == "done":
            bar.stop()

    return update


def _print_run(run: runs.BillingRun) -> None:
    print(
        f"run {run.run_id} ({run.kind} {run.period}) {run.status}: {run.done_customers}/"
        f"{run.total_customers} customers, {run.invoices_written} invoices, "
        f"{run.lines_written} lines"
    )


def _close(args: argparse.Namespace, pool: Pool) -> int:
    fn = {"close": close_period, "refresh": refresh_period}[args.action]
    _print_run(
        fn(
            pool,
            PeriodKey.parse(args.period),
            _now(args),
            _config(args),
            progress=_progress_bar(args),
        )
    )
    return 0


def _finalize(args: argparse.Namespace, pool: Pool) -> int:
    _print_run(
        finalize_period(
            pool,
            PeriodKey.parse(args.period),
            _now(args),
            _config(args),
            forced=force_reason(args.force, args.reason),
            progress=_progress_bar(args),
        )
    )
    return 0


def _progressive(args: argparse.Namespace, pool: Pool) -> int:
    with pool.connection() as conn:
        issued = run_progressive_check(
            conn, PeriodKey.parse(args.period), _now(args), chunk_size=args.chunk_size
        )
    for i in issued:
        print(
            f"{i.number}  customer {i.customer_id}  subscription {i.subscription_id}"
            f"  threshold {i.threshold}  amount {i.amount} {i.currency}  total {i.total}"
        )
    print(f"{len(issued)} interim invoices issued")
    return 0


def _advance(args: argparse.Namespace, pool: Pool) -> int:
    with pool.connection() as conn:
        issued = run_advance_billing(
            conn, PeriodKey.parse(args.period), _now(args), chunk_size=args.chunk_size
        )
    for a in issued:
        print(
            f"{a.number}  customer {a.customer_id}  subtotal {a.subtotal} {a.currency}"
            f"  total {a.total}"
        )
    print(f"{len(issued)} advance invoices issued")
    return 0


def _customer_create(args: argparse.Namespace, pool: Pool) -> int:
    spec = CustomerSpec(
        name=args.name,
        address=Address(args.line1, args.city, args.country, args.postal_code),
        currency=args.currency,
        time_zone=args.tz,
        tax_rate=Decimal(args.tax_rate),
        language=args.language,
        issuer=args.issuer,
        invoice_prefix=args.prefix,
        anchor_day=args.anchor_day,
        tax=BuyerTax(
            business=args.business or bool(args.vat_id),
            vat_id=args.vat_id,
            category=TaxCategory(args.tax_category),
            exemption_reason=args.exemption_reason,
            peppol_endpoint=args.peppol_endpoint,
        ),
    )
    with pool.connection() as conn, conn.transaction():
        c = accounts.create_customer(conn, spec)
    print(f"customer {c.customer_id} created")
    return 0


def _issuer_set(args: argparse.Namespace, pool: Pool) -> int:
    doc = yaml.safe_load(args.file.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        print("billing: the issuer file must hold a mapping", file=sys.stderr)
        return 2
    try:
        issuer = Issuer.from_json({**doc, "code": args.code})
    except (KeyError, TypeError) as exc:
        print(f"billing: the issuer file lacks or mistypes {exc}", file=sys.stderr)
        return 2
    with pool.connection() as conn, conn.transaction():
        issuers.put_issuer(conn, issuer)
    print(f"issuer {issuer.code} saved")
    return 0


def _customer_list(args: argparse.Namespace, pool: Pool) -> int:
    with pool.connection() as conn:
        page = store.list_customers(
            conn, limit=args.limit, cursor=args.cursor, name_contains=args.name
        )
    for c in page.items:
        print(f"{c.customer_id:>8}  {c.spec.name:<32} {c.spec.currency} {c.spec.time_zone}")
    if page.next_cursor:
        print(f"(more: --cursor {page.next_cursor})")
    return 0


def _load_doc(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise SystemExit(f"{path}: a plan must be a mapping")
    return json.loads(json.dumps(doc, default=str))  # type: ignore[no-any-return]


def _plan_create(args: argparse.Namespace, pool: Pool) -> int:
    with pool.connection() as conn, conn.transaction():
        plan, version = accounts.create_plan(conn, args.code, args.name, _load_doc(args.file))
    print(
        f"plan {plan.plan_id} ({plan.code}) version {version.version}:"
        f" plan_version_id {version.plan_version_id}"
    )
    return 0


def _plan_version(args: argparse.Namespace, pool: Pool) -> int:
    with pool.connection() as conn, conn.transaction():
        v = accounts.new_plan_version(conn, args.plan_id, _load_doc(args.file))
    print(f"plan {v.plan_id} version {v.version}: plan_version_id {v.plan_version_id}")
    return 0


def _sub(args: argparse.Namespace, pool: Pool) -> int:
    with pool.connection() as conn, conn.transaction():
        if args.action == "assign":
            s = accounts.assign_meter(
                conn, args.customer, args.series, args.plan_version, args.start
            )
        elif args.action == "end":
            s = accounts.end_subscription(conn, args.subscription, args.at)
        elif args.action == "move":
            s = accounts.move_meter(conn, args.subscription, args.to, args.at, args.plan_version)
        else:
            s = accounts.change_plan(conn, args.subscription, args.plan_version, args.at)
    end = s.valid_to.isoformat() if s.valid_to else "open"
    print(
        f"subscription {s.subscription_id}: customer {s.customer_id} series {s.series_id}"
        f" plan_version {s.plan_version_id} [{s.valid_from.isoformat()}, {end})"
    )
    return 0


def _invoice(args: argparse.Namespace, pool: Pool) -> int:
    with pool.connection() as conn:
        if args.invoice_id is None:
            page = invoices.list_invoices(conn, period=args.period, limit=args.limit)
            for inv in page.items:
                print(
                    f"{inv.invoice_id:>8} {inv.number or '(draft)':<18} customer"
                    f" {inv.customer_id:<8} {inv.period} {inv.total} {inv.currency}"
                )
            return 0
        data = render(conn, args.invoice_id, args.format)
    if args.output:
        Path(args.output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
    return 0


def _add_close_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("period", help="YYYY-MM (each customer's month in their time zone)")
    p.add_argument("--chunk-size", type=int, default=1000, help="customers per transaction")
    p.add_argument(
        "--processes",
        type=int,
        default=0,
        help="rate chunks in this many processes of their own (default 0: in this one)",
    )
    p.add_argument(
        "--grace-hours",
        type=float,
        default=72.0,
        help="wait this long after period end before finalizing (default 72)",
    )
    p.add_argument(
        "--horizon-days",
        type=float,
        default=92.0,
        help="late data this long after a final period still corrects it",
    )
    p.add_argument("--now", type=_when, help="pretend the time is this (ISO 8601 with offset)")
    p.add_argument("--plain", action="store_true", help="plain progress lines instead of a bar")


def configure(p: argparse.ArgumentParser) -> None:
    """Add the billing subcommands to ``p``."""
    sub = p.add_subparsers(dest="billing_command", required=True, metavar="ACTION")
    for name, text in (
        ("close", "draft every customer's invoice for a period"),
        ("refresh", "re-draft the non-final invoices of a period"),
    ):
        c = sub.add_parser(name, help=text)
        _add_close_options(c)
        c.set_defaults(billing_handler=_close, action=name)
    f = sub.add_parser("finalize", help="finalize drafts past the grace window, numbering them")
    _add_close_options(f)
    f.add_argument(
        "--force",
        action="store_true",
        help="finalize before the period end + grace window (needs --reason)",
    )
    f.add_argument("--reason", help="why the finalize is forced (recorded on each invoice)")
    f.set_defaults(billing_handler=_finalize)
    pc = sub.add_parser(
        "progressive-check", help="issue the interim invoices due now (progressive billing)"
    )
    pc.add_argument("period", help="YYYY-MM")
    pc.add_argument("--now", type=_when, help="check as of this instant (default: now)")
    pc.add_argument("--chunk-size", type=int, default=500)
    pc.set_defaults(billing_handler=_progressive)
    ab = sub.add_parser("advance", help="issue the advance invoices of pay-in-advance fees")
    ab.add_argument("period", help="YYYY-MM")
    ab.add_argument("--now", type=_when, help="run as of this instant (default: now)")
    ab.add_argument("--chunk-size", type=int, default=500)
    ab.set_defaults(billing_handler=_advance)

    _configure_master_data(sub)


def _configure_issuers(sub: Any) -> None:
    iss = sub.add_parser("issuer-set", help="create or replace an issuer from a YAML/JSON file")
    iss.add_argument("code", help="the issuer code customers name (e.g. tally-nl)")
    iss.add_argument("file", type=Path, help="name, address, vat_id, iban, payment_terms_days…")
    iss.set_defaults(billing_handler=_issuer_set)


def _configure_master_data(sub: Any) -> None:
    cc = sub.add_parser("customer-create", help="create a customer")
    for opt in ("name", "line1", "city", "country", "currency", "tz", "tax-rate"):
        cc.add_argument(f"--{opt}", required=True)
    cc.add_argument("--postal-code", default="")
    cc.add_argument("--language", default="en")
    cc.add_argument("--issuer", default="default")
    cc.add_argument("--prefix", default="INV")
    cc.add_argument("--anchor-day", type=int, default=1)
    cc.add_argument("--business", action="store_true", help="a business customer")
    cc.add_argument("--vat-id", default="", help="the customer's VAT id (implies --business)")
    cc.add_argument(
        "--tax-category",
        default="S",
        choices=[c.value for c in TaxCategory],
        help="VAT category: S standard, Z zero, E exempt, AE reverse charge, K intra-EU, G export",
    )
    cc.add_argument("--exemption-reason", default="", help="printed reason (category E)")
    cc.add_argument("--peppol-endpoint", default="", help="scheme:id, e.g. 0106:12345678")
    cc.set_defaults(billing_handler=_customer_create)
    _configure_issuers(sub)
    cl = sub.add_parser("customers", help="list customers")
    cl.add_argument("--name")
    cl.add_argument("--limit", type=int, default=100)
    cl.add_argument("--cursor")
    cl.set_defaults(billing_handler=_customer_list)

    pc = sub.add_parser("plan-create", help="create a plan from a YAML/JSON tally.plan/v1 file")
    pc.add_argument("--code", required=True)
    pc.add_argument("--name", default="")
    pc.add_argument("file", type=Path)
    pc.set_defaults(billing_handler=_plan_create)
    pv = sub.add_parser("plan-version", help="new version of a plan (a price change)")
    pv.add_argument("plan_id", type=int)
    pv.add_argument("file", type=Path)
    pv.set_defaults(billing_handler=_plan_version)

    sa = sub.add_parser("assign", help="bill a meter (series) to a customer")
    sa.add_argument("--customer", type=int, required=True)
    sa.add_argument("--series", type=int, required=True)
    sa.add_argument("--plan-version", type=int, required=True)
    sa.add_argument("--start", type=_when, required=True)
    sa.set_defaults(billing_handler=_sub, action="assign")
    for name, text in (
        ("end", "stop billing a meter"),
        ("move", "move a meter to a customer"),
        ("change-plan", "switch a meter to another plan version"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("subscription", type=int)
        s.add_argument("--at", type=_when, required=True)
        s.add_argument("--plan-version", type=int, required=name == "change-plan")
        if name == "move":
            s.add_argument("--to", type=int, required=True, help="customer id")
        s.set_defaults(billing_handler=_sub, action=name)

    iv = sub.add_parser("invoice", help="list invoices, or render one")
    iv.add_argument("invoice_id", type=int, nargs="?")
    iv.add_argument("--period")
    iv.add_argument("--limit", type=int, default=100)
    iv.add_argument(
        "--format",
        choices=("json", "html", "pdf", "csv", "ubl", "cii", "facturx"),
        default="json",
    )
    iv.add_argument("--output", help="write to this file instead of stdout")
    iv.set_defaults(billing_handler=_invoice)


def run_with_url(args: argparse.Namespace, url: str) -> int:
    pool: Pool = psycopg_pool.ConnectionPool(url, min_size=1, max_size=3, open=True)
    try:
        handler: Handler = args.billing_handler
        return handler(args, pool)
    except CollectorError as exc:
        print(f"billing: {exc}", file=sys.stderr)
        return 2
    finally:
        pool.close()


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``billing`` to an argparse subparsers object; handlers read ``args.database_url``."""
    p: argparse.ArgumentParser = subparsers.add_parser("billing", help="billing staff commands")
    configure(p)
    return p


def commands() -> Sequence[Any]:
    """The ``billing`` command for ``collector.cli`` (``EXTENSION_MODULES``)."""
    from collector.cli import Command  # noqa: PLC0415 - avoid an import cycle at module load

    return [
        Command(
            "billing",
            "billing: customers, plans, subscriptions, period close",
            lambda args, config: run_with_url(args, config.database.url),
            configure,
        )
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tally-billing")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TALLY_DATABASE_URL") or os.environ.get("DATABASE_URL"),
    )
    configure(parser)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or TALLY_DATABASE_URL) is required")
    return run_with_url(args, args.database_url)


if __name__ == "__main__":
    raise SystemExit(main())

"""Templates of the portal (package data, ``string.Template`` with ``$name`` slots) and the
page frame. Every value put into a slot is HTML already: callers escape text with
``html.escape`` (the ``text`` helper) before it reaches a template."""

from __future__ import annotations

from html import escape
from importlib import resources
from string import Template

__all__ = ["ESTIMATE_NOTE", "fill", "page", "text"]

ESTIMATE_NOTE = (
    "Estimated: where readings are missing (a meter offline, a gap in the data), the usage "
    "of those intervals is estimated from the meter's own history or by interpolation. "
    "Estimates are replaced by measured values when the missing readings arrive."
)


def text(value: object) -> str:
    """Any value as escaped HTML text (quotes included, so also safe in attributes)."""
    return escape(str(value), quote=True)


def _read(name: str) -> str:
    return (resources.files("collector.portal") / "templates" / name).read_text(encoding="utf-8")


def fill(name: str, **slots: str) -> str:
    """Template ``templates/<name>`` with every ``$slot`` replaced (a missing one raises)."""
    return Template(_read(name)).substitute(slots)


def page(title: str, body: str, *, customer: str | None = None, signed_in: bool = True) -> str:
    """A complete HTML document: the frame, the inline CSS and ``body`` (HTML)."""
    links = '<a href="/portal/logout">Sign out</a>' if signed_in else ""
    return fill(
        "layout.html",
        title=text(title),
        css=_read("portal.css"),
        customer=text(customer or ""),
        links=links,
        body=body,
    )

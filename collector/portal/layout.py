"""Templates of the portal and the staff console (package data, ``string.Template`` with
``$name`` slots) and the page frame. Every value put into a slot is HTML already: callers escape
text with ``html.escape`` (the ``text`` helper) before it reaches a template.

Every asset a page needs is inside the page (inline CSS, inline SVG charts): nothing is loaded
from elsewhere, so the portal works on a network without internet access.
"""

from __future__ import annotations

from html import escape
from importlib import resources
from string import Template

from collector.portal.words import Words, words

__all__ = ["ESTIMATE_NOTE", "Frame", "fill", "page", "text"]

ESTIMATE_NOTE = words("en")["estimate_note"]


def text(value: object) -> str:
    """Any value as escaped HTML text (quotes included, so also safe in attributes)."""
    return escape(str(value), quote=True)


def _read(name: str) -> str:
    return (resources.files("collector.portal") / "templates" / name).read_text(encoding="utf-8")


def fill(name: str, **slots: str) -> str:
    """Template ``templates/<name>`` with every ``$slot`` replaced (a missing one raises)."""
    return Template(_read(name)).substitute(slots)


class Frame:
    """What the frame of a page shows: language, who is signed in, the navigation and the
    sign-out form (with the session's CSRF token)."""

    __slots__ = ("base", "csrf", "customer", "lang", "nav", "words")

    def __init__(
        self,
        *,
        lang: str = "en",
        customer: str | None = None,
        csrf: str | None = None,
        base: str = "/portal",
        nav: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        self.lang = lang
        self.words: Words = words(lang)
        self.customer = customer
        self.csrf = csrf
        self.base = base
        w = self.words
        self.nav = (
            nav
            if nav is not None
            else ((f"{base}/", w["dashboard"]), (f"{base}/invoices", w["invoices"]))
        )

    def links(self) -> str:
        if self.csrf is None:
            return ""
        items = [f'<a href="{text(href)}">{text(label)}</a>' for href, label in self.nav]
        items.append(
            f'<form method="post" action="{text(self.base)}/logout">'
            f'<input type="hidden" name="csrf" value="{text(self.csrf)}">'
            f'<button type="submit">{text(self.words["sign_out"])}</button></form>'
        )
        return "".join(items)


def page(title: str, body: str, frame: Frame | None = None) -> str:
    """A complete HTML document: the frame, the inline CSS and ``body`` (HTML)."""
    f = frame or Frame()
    return fill(
        "layout.html",
        lang=text(f.lang),
        title=text(title),
        css=_read("portal.css"),
        skip=text(f.words["skip"]),
        home=text(f"{f.base}/"),
        customer=text(f.customer or ""),
        nav_label=text("Main"),
        links=f.links(),
        body=body,
    )

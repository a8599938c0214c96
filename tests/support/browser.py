"""Real-browser test support: the collector app served by uvicorn on a free port, Debian's
Chromium driven by Playwright, axe-core injected for accessibility checks, and page
measurements (sideways scroll, rendered chart text size). Tests that need Chromium or axe-core
skip with a reason when they are missing (CI installs both and allows no skips)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

__all__ = [
    "ARTIFACTS",
    "CHROMIUM",
    "LAUNCH_ARGS",
    "axe_path",
    "axe_violations",
    "chart_text_px",
    "check_page",
    "launch",
    "need_browser",
    "serve",
    "sideways_scroll",
]

CHROMIUM = Path(os.environ.get("TALLY_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def axe_path() -> Path:
    """Where ``npm install --prefix ~/.cache/tally-npm axe-core`` put ``axe.min.js``."""
    default = Path.home() / ".cache" / "tally-npm" / "node_modules" / "axe-core" / "axe.min.js"
    return Path(os.environ.get("TALLY_AXE_JS", str(default)))


def need_browser() -> None:
    """Skip (with the reason) when Chromium, Playwright or axe-core is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    if not axe_path().exists():
        pytest.skip(f"axe-core not found at {axe_path()} (npm install axe-core)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a thread; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations of the page (injected; CSP bypassed)."""
    page.add_script_tag(path=str(axe_path()))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document)).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 3).map(n => n.html)}))"""
    )
    return found


def sideways_scroll(page: Any) -> int:
    """By how many pixels the page is wider than the window (0: no sideways scroll)."""
    width: int = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width


def chart_text_px(page: Any) -> list[float]:
    """The rendered size (CSS px) of every visible text in the page's SVG charts."""
    sizes: list[float] = page.evaluate(
        """() => [...document.querySelectorAll('svg.chart text')]
            .filter(t => getComputedStyle(t).display !== 'none')
            .map(t => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a)"""
    )
    return sizes


def split_words_in_tables(page: Any) -> list[str]:
    """Words in table cells that the layout broke over two lines ("QUAN / TITY", "€63. / 00")."""
    words: list[str] = page.evaluate(
        r"""() => {
            const broken = [];
            for (const cell of document.querySelectorAll('td, th')) {
                const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
                for (let node = walk.nextNode(); node; node = walk.nextNode()) {
                    for (const m of node.data.matchAll(/\S+/g)) {
                        const r = document.createRange();
                        r.setStart(node, m.index);
                        r.setEnd(node, m.index + m[0].length);
                        const tops = new Set([...r.getClientRects()]
                            .filter(x => x.width > 0).map(x => Math.round(x.top)));
                        if (tops.size > 1) broken.push(m[0]);
                    }
                }
            }
            return broken;
        }"""
    )
    return words


@contextmanager
def launch() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only once a browser exists

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


def check_page(page: Any, name: str) -> None:
    """No sideways scroll, no word broken inside a table cell (wide tables scroll in their own
    box instead), chart text >= 11 px, no serious/critical axe violation; screenshot saved as
    ``test-artifacts/<name>.png``."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert sideways_scroll(page) <= 0, name
    split = split_words_in_tables(page)
    assert split == [], (name, split[:10])
    sizes = chart_text_px(page)
    assert all(s >= 11 for s in sizes), (name, min(sizes, default=None))
    found = axe_violations(page)
    assert found == [], (name, [v.get("id") for v in found])

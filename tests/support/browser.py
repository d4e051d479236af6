"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, which never downloads a browser here."""

from __future__ import annotations

import io
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 800}


def chromium_path() -> str:
    """Path of the system Chromium, or skip the test saying how to install it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does it) - cannot render pages")
    return found


@contextmanager
def browser_page(artifacts: Path | None = None):
    """A Playwright page in a fresh headless Chromium profile (--headless and a new --user-data-dir); requests made
    and page errors are collected on page.requests_seen and page.errors_seen."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) drives Chromium")
    executable = chromium_path()
    with tempfile.TemporaryDirectory(prefix="mdstream-chromium-") as profile, sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT)
        try:
            page = context.new_page()
            page.requests_seen, page.errors_seen = [], []
            page.on("request", lambda request: page.requests_seen.append(request.url))
            page.on("pageerror", lambda error: page.errors_seen.append(str(error)))
            yield page
        finally:
            context.close()


def screenshot(page, path: Path):
    """Save a PNG of the page at `path` and return it as an RGB Pillow image."""
    image_module = pytest.importorskip("PIL.Image", reason="pillow (dev extra) reads the screenshots")
    data = page.screenshot(path=str(path))
    return image_module.open(io.BytesIO(data)).convert("RGB")


def chart_geometry(page) -> dict:
    """Where the chart's panes are on the page (CSS px): left, top, width, pane heights."""
    return page.evaluate("""() => {
        const box = document.getElementById('chart').getBoundingClientRect();
        const panes = window.mdstream.chart.panes().map((p) => p.getHeight());
        return {left: box.left, top: box.top, width: box.width, panes};
    }""")


def x_of(page, time_s: int) -> float:
    """Page x (CSS px) of the middle of the window starting at `time_s` (epoch seconds)."""
    return page.evaluate("(t) => document.getElementById('chart').getBoundingClientRect().left + "
                         "window.mdstream.chart.timeScale().timeToCoordinate(t)", time_s)

"""Opening an HTML file in headless Chromium (Debian's, driven by Playwright) and reading what it
rendered: every image's natural size, every table's rows, console errors, and any request that
left the file.

Chromium comes from the system (``make setup-dev`` installs Debian's ``chromium`` when missing;
Playwright's own browser download is not used). ``RETAIN_CHROMIUM`` names another binary. Without
one the test is skipped on a developer's machine and fails on CI (``CI`` set), where it must run.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SECTIONS = [
    "summary",
    "kpis",
    "cohorts",
    "segments",
    "tiers",
    "scores",
    "audiences",
    "discounts",
    "outreach",
    "run",
]
"""The report's sections, in order (a notes section comes first when there are notes)."""

# Flags for a closed network and a root user: no sandbox (root), no GPU, and none of Chromium's
# background connections (refused here, and noise in the console).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def chromium_path() -> str:
    """The Chromium binary, or skip (fail on CI) when there is none."""
    candidates = [os.environ.get("RETAIN_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    message = (
        "no Chromium: run `make setup-dev` (installs Debian's chromium) or set RETAIN_CHROMIUM"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Rendered:
    """What the browser made of a page."""

    title: str
    images: list[dict[str, object]] = field(default_factory=list)
    """One entry per <img>: alt, complete, naturalWidth, naturalHeight, and its drawn size."""
    tables: list[dict[str, int]] = field(default_factory=list)
    """One entry per <table>: body rows and header cells."""
    sections: list[str] = field(default_factory=list)
    """The id of every <section>."""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    """Every URL the page asked for besides the file itself and inline data."""
    text: str = ""
    """The text a reader sees (``innerText`` of the body: laid out and not hidden), lines joined
    by newlines and runs of spaces made one."""

    def shows(self, label: str) -> bool:
        """Whether ``label`` is visible on the page (whitespace-insensitive)."""
        return " ".join(label.split()) in " ".join(self.text.split())


def render(path: Path, screenshot: Path | None = None) -> Rendered:
    """Open ``path`` in headless Chromium, wait for it to load, and read what it rendered."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            console: list[str] = []
            errors: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            url = path.resolve().as_uri()
            page.on(
                "request",
                lambda r: (
                    requests.append(r.url)
                    if r.url != url and not r.url.startswith("data:")
                    else None
                ),
            )
            page.goto(url, wait_until="load")
            page.wait_for_function(
                "Array.from(document.images).every(i => i.complete)", timeout=30_000
            )
            images = page.evaluate(
                """Array.from(document.images).map(i => ({
                    alt: i.alt, complete: i.complete,
                    naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight,
                    width: i.getBoundingClientRect().width,
                    height: i.getBoundingClientRect().height}))"""
            )
            tables = page.evaluate(
                """Array.from(document.querySelectorAll('table')).map(t => ({
                    rows: t.tBodies.length ? t.tBodies[0].rows.length : 0,
                    headers: t.tHead ? t.tHead.rows[0].cells.length : 0,
                    height: t.getBoundingClientRect().height}))"""
            )
            sections = page.evaluate(
                "Array.from(document.querySelectorAll('section')).map(s => s.id)"
            )
            text = page.evaluate("document.body.innerText")
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            return Rendered(
                title=page.title(),
                images=images,
                tables=tables,
                sections=sections,
                console_errors=console,
                page_errors=errors,
                requests=requests,
                text=text,
            )
        finally:
            browser.close()


def assert_renders(rendered: Rendered, min_images: int, min_tables: int) -> None:
    """Every plot drawn (a decoded image with a size, laid out on the page), every table with
    rows, and a quiet page: no console or script error, no request beyond the file."""
    assert len(rendered.images) >= min_images, rendered.images
    for image in rendered.images:
        assert image["complete"], image
        assert image["naturalWidth"] > 0 and image["naturalHeight"] > 0, image  # type: ignore[operator]
        assert image["width"] > 0 and image["height"] > 0, image  # type: ignore[operator]
    assert len(rendered.tables) >= min_tables, rendered.tables
    for table in rendered.tables:
        assert table["rows"] > 0 and table["headers"] > 0 and table["height"] > 0, table
    assert rendered.console_errors == []
    assert rendered.page_errors == []
    assert rendered.requests == []

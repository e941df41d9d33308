"""``make docs-browser``: the built documentation site opened in headless Chromium.

Serves ``docs/_build/html`` on a free loopback port (``http.server``, as a reader's browser would fetch it)
and opens three pages: the index, the connection page and a how-to (mapped ingestion). Each must have its
title, its heading, the site's navigation, and code blocks that rendered as highlighted code holding the
sample they include from ``example_dags/`` (not an empty block, not the raw directive). A screenshot of
each page goes to the screenshots directory. Debian's Chromium, driven by the locked ``playwright`` package:
no browser download (``scripts/install-browser.sh`` installs Chromium; the Makefile skips this check,
loudly, where it cannot).

Exit status 0 when every check held, 1 otherwise, 2 when the site or Chromium is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aib_harness.browser import CHROMIUM_ARGS, chromium_path  # one launch recipe for both browser checks


@dataclass(frozen=True)
class PageCheck:
    """One page: its file, the words its <title> and <h1> hold, and a text one of its code blocks holds."""

    path: str
    title: str
    heading: str
    code: str
    min_code_blocks: int = 1


PAGES = (
    PageCheck("index.html", "airflow-provider-aiontheball", "airflow-provider", "AIOnTheBallVideoSensor", 2),
    PageCheck("connection.html", "The connection", "The connection", "airflow connections add", 3),
    PageCheck("mapped.html", "Many matches", "Many matches", ".output.map(video_id_of)", 3),
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` on a free loopback port while open; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def check_page(page: Any, base_url: str, check: PageCheck, out_dir: Path) -> list[str]:
    """Open one page; return what is wrong with it (empty: all held). Saves its screenshot."""
    problems: list[str] = []
    response = page.goto(f"{base_url}/{check.path}", wait_until="load")
    if response is None or response.status != 200:
        return [f"{check.path}: HTTP {None if response is None else response.status}"]
    page.screenshot(path=str(out_dir / f"{Path(check.path).stem}.png"), full_page=True)
    title = page.title()
    if check.title not in title:
        problems.append(f"{check.path}: title {title!r} does not contain {check.title!r}")
    heading = page.locator("article h1").first.inner_text() if page.locator("article h1").count() else ""
    if check.heading not in heading:
        problems.append(f"{check.path}: heading {heading!r} does not contain {check.heading!r}")
    if page.locator(".sidebar-tree a.reference").count() < 10:
        problems.append(f"{check.path}: the navigation sidebar lists fewer than 10 pages")
    blocks = page.locator("article div.highlight pre")
    texts = [blocks.nth(i).inner_text() for i in range(blocks.count())]
    if len(texts) < check.min_code_blocks:
        problems.append(f"{check.path}: {len(texts)} rendered code block(s), expected at least {check.min_code_blocks}")
    if not any(check.code in text for text in texts):
        problems.append(f"{check.path}: no code block holds {check.code!r}")
    if any("{literalinclude}" in text or "[START " in text or "[END " in text for text in texts):
        problems.append(f"{check.path}: a code block shows a directive or a [START/END] marker, not its sample")
    highlighted = page.locator("article div.highlight-python pre span").count()
    if check.path != "connection.html" and highlighted == 0:
        problems.append(f"{check.path}: no syntax-highlighted Python (the samples did not render as code)")
    print(
        f"  [{'ok' if not problems else 'FAILED'}] {check.path}: title {title!r}, {len(texts)} code block(s) "
        f"(screenshot {out_dir / (Path(check.path).stem + '.png')})",
        flush=True,
    )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("html", type=Path, help="the built site (docs/_build/html)")
    parser.add_argument("screenshots", type=Path, help="where the screenshots go (docs/_build/screenshots)")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").is_file():
        print(f"No built site in {args.html}: run make docs first.", file=sys.stderr)
        return 2
    executable = chromium_path()
    if executable is None:
        print("Chromium is not installed (scripts/install-browser.sh installs Debian's chromium).", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    args.screenshots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    print(f"The documentation site in headless Chromium ({executable}):", flush=True)
    with serve(args.html) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for check in PAGES:
                problems += check_page(page, base_url, check, args.screenshots)
        finally:
            browser.close()
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

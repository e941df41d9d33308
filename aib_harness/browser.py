"""The two places a person meets the provider in Airflow's UI, checked in headless Chromium after a real
run (``make e2e-browser``, i.e. ``scripts/demo.py --browser-check``):

(a) the add-connection form for type ``aiontheball``: "Base URL", a masked "API token", and the extra
    fields (their labels come from ``get_provider_info.CONN_FIELDS``);
(b) the "AI on the Ball video" extra link of every mapped ``wait_for_video`` task instance, pointing at
    its video's ``mp4_source`` as the API returns it (``GET /videos/{id}``). In the example DAG
    ``create_video`` does not wait, and the API's answer to the POST has no ``mp4_source`` (the docs show
    it on ``GET /videos/{id}`` only, once the video is available), so the link is on the sensor: Airflow 3
    computes a task's links when the task ends.

Airflow 3's UI only (a React app; Airflow 2's Flask UI is another page altogether). Driven with the
``playwright`` package and Debian's Chromium (``executable_path``; no browser download). Screenshots go
to ``out_dir``. Imported only when asked for: Playwright is not a test dependency.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from aib_harness.airflow import AirflowHarness
from aib_harness.report import RunReport

#: As the machine notes say: without the background-networking flags Chromium keeps trying (and
#: failing) to reach Google's hosts on this closed network.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LINK_NAME = "AI on the Ball video"


def chromium_path() -> str | None:
    return shutil.which("chromium") or (None if not Path("/usr/bin/chromium").exists() else "/usr/bin/chromium")


def _extra_field_labels() -> list[str]:
    from airflow_provider_aiontheball.get_provider_info import CONN_FIELDS

    return [str(field["label"]) for field in CONN_FIELDS.values() if isinstance(field, dict) and field.get("label")]


def check_ui(harness: AirflowHarness, report: RunReport, out_dir: Path) -> list[str]:
    """Run both checks; return what failed (empty: both held). Prints one line per check."""
    if harness.major < 3:
        print("SKIPPED the browser check: it covers Airflow 3's UI; this is Airflow " + harness.version, flush=True)
        return []
    executable = chromium_path()
    if executable is None:
        return ["Chromium is not installed (scripts/install-browser.sh installs Debian's chromium)"]
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            failures += _check_connection_form(page, harness.ui_url, out_dir)
            failures += _check_video_links(page, harness, report, out_dir)
        finally:
            browser.close()
    return failures


def _check_connection_form(page: Any, ui_url: str, out_dir: Path) -> list[str]:
    page.goto(f"{ui_url}/connections", wait_until="networkidle")
    page.get_by_role("button", name="Add Connection").click()
    # The type picker is a react-select: click its placeholder, type, pick the first match.
    page.get_by_text("Select Connection Type").first.click(force=True)
    page.keyboard.type("AI on the Ball")
    page.keyboard.press("Enter")
    page.get_by_text("Base URL", exact=True).wait_for(timeout=15_000)
    page.screenshot(path=str(out_dir / "connection-form.png"), full_page=True)
    missing = [label for label in ("Base URL", "API token") if not page.get_by_text(label, exact=True).is_visible()]
    token_inputs = page.locator("input[type=password]").count()  # the masked API token, while it shows
    page.get_by_text("Extra Fields", exact=True).first.click()  # an accordion: opening it closes the first
    page.get_by_text(_extra_field_labels()[0], exact=True).wait_for(timeout=15_000)
    page.screenshot(path=str(out_dir / "connection-form-extras.png"), full_page=True)
    missing += [label for label in _extra_field_labels() if not page.get_by_text(label, exact=True).is_visible()]
    problems = [f"connection form: no field labelled {label!r}" for label in missing]
    if token_inputs != 1:
        problems.append(
            f"connection form: expected one masked (password) input for the API token, found {token_inputs}"
        )
    print(
        f"  [{'ok' if not problems else 'FAILED'}] connection form for type aiontheball: Base URL, masked API token, "
        f"extras {', '.join(_extra_field_labels())} (screenshots connection-form*.png in {out_dir})",
        flush=True,
    )
    return problems


def _check_video_links(page: Any, harness: AirflowHarness, report: RunReport, out_dir: Path) -> list[str]:
    sources = {}
    for video in report.videos:
        detail = harness._http_json(
            f"{harness.simulator_url}/videos/{video['id']}", {"Authorization": f"Bearer {harness.api_token}"}
        )
        sources[int(video["id"])] = (detail.get("data") or detail).get("mp4_source")
    sensors = sorted(t.map_index for t in report.tasks if t.task_id == "wait_for_video" and t.state == "success")
    problems, seen = [], []
    for map_index in sensors:
        page.goto(
            f"{harness.ui_url}/dags/{report.dag_id}/runs/{report.run_id}/tasks/wait_for_video/mapped/{map_index}/details",
            wait_until="networkidle",
        )
        link = page.get_by_role("link", name=LINK_NAME)
        try:
            link.first.wait_for(timeout=15_000)
        except Exception:
            problems.append(f"wait_for_video[{map_index}]: no {LINK_NAME!r} link on its Details tab")
            continue
        href = link.first.get_attribute("href") or ""
        seen.append(href)
        if map_index == sensors[0]:
            page.screenshot(path=str(out_dir / "video-link.png"), full_page=True)
        if href not in sources.values() or not re.match(r"^https?://", href):
            problems.append(f"wait_for_video[{map_index}]: the link points at {href!r}, not a video's mp4_source")
    if len(set(seen)) != len(seen):
        problems.append(f"the links are not one per video: {seen}")
    if not sensors:
        problems.append("no successful wait_for_video task instance to look at")
    print(
        f"  [{'ok' if not problems else 'FAILED'}] {LINK_NAME!r} link on {len(sensors)} wait_for_video task "
        f"instance(s), each at its video's mp4_source (screenshot {out_dir / 'video-link.png'})",
        flush=True,
    )
    return problems

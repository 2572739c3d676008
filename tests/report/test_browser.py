"""The demo's report in a real headless Chromium (Debian's package): it renders every chart,
logs no console error and sends no request off the machine. A screenshot is left in the
test's tmp folder (and in $RAGORTUNE_REPORT_SCREENSHOT when set) for a person to look at."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ragortune.report import build_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

playwright = pytest.importorskip("playwright.sync_api",
                                 reason="playwright not installed: pip install -e '.[test]'")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason="chromium not installed: apt-get install -y chromium (.ci/run does this)")


def test_the_report_opens_offline_with_every_chart_drawn(demo_out: Path, tmp_path: Path
                                                         ) -> None:
    _, paths = build_report(demo_out)
    requests: list[str] = []
    problems: list[str] = []
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.goto(paths["html"].resolve().as_uri(), wait_until="load")
            sizes = page.eval_on_selector_all(
                "svg", "els => els.map(e => { const r = e.getBoundingClientRect();"
                       " return [r.width, r.height, e.querySelectorAll('path').length]; })")
            heading = page.inner_text("h1")
            verdict = page.inner_text("#verdict")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            page.emulate_media(media="print")
            pdf = page.pdf(format="A4")
        finally:
            browser.close()
    if os.environ.get("RAGORTUNE_REPORT_SCREENSHOT"):
        shutil.copy(shot, os.environ["RAGORTUNE_REPORT_SCREENSHOT"])
    assert len(sizes) == 2, sizes  # accuracy chart and cost chart
    for width, height, drawn in sizes:
        assert width > 200 and height > 100 and drawn > 5
    assert heading.startswith("ragortune report")
    assert "Recommendation:" in verdict
    assert problems == []
    assert requests and all(url.startswith(("file://", "data:")) for url in requests), requests
    assert shot.stat().st_size > 20_000
    assert pdf[:4] == b"%PDF"

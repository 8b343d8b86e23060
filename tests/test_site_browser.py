"""The leaderboard site in a real browser: headless Chromium driven through Selenium.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``) and the ``selenium`` Python package (in the ``test`` extra); the test is
skipped, saying what is missing, otherwise.

The site is built from ``leaderboards/results/`` (the committed official records) when that holds
records, else from fabricated ones, into ``$CRYOBENCH_SITE_DIR`` when set (CI sets it to keep
the site and its screenshots as artefacts) or a temporary directory, and served from a loopback
HTTP server. Screenshots: ``<site>/_screenshots/index.png`` and ``method.png``.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from cryobench.testing.records import write_fake_results

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = ROOT / "leaderboards" / "results"


def _browser() -> tuple[str, str]:
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser",
                                                   "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("headless Chromium not installed (apt-get install -y chromium "
                    "chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium not installed (pip install selenium, or the 'test' extra)")
    return chromium, driver


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, dict[str, int], list[str]]:
    """(site dir, rows per split, pages): built from the committed official records (or
    fabricated ones when there are none) into ``$CRYOBENCH_SITE_DIR`` or a temporary dir."""
    from cryobench.report.site import build_site

    results = OFFICIAL
    if not (OFFICIAL.is_dir() and any(OFFICIAL.rglob("*record.json"))):
        results = tmp_path_factory.mktemp("results")
        write_fake_results(results)
        write_fake_results(results, methods=[("cnn_regressor", 0.6)], split="byu-synth",
                           metric="byu", experiments=[f"tomo_{i}" for i in range(10)])
    given = os.environ.get("CRYOBENCH_SITE_DIR")
    out = Path(given) if given else tmp_path_factory.mktemp("build") / "site"
    res = build_site([results], out, n_flips=200)
    data = json.loads((out / "data" / "leaderboard.json").read_text())
    assert {s: len(rows) for s, rows in data["leaderboards"].items()} == res.boards
    return out, res.boards, res.pages


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site[0]))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = _browser()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-extensions",
                "--window-size=1400,1100"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=chromedriver), options=opts)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()


def _load(browser, url: str) -> None:
    browser.get(url)
    browser.get_log("browser")  # flush; the checks read what this page logged
    browser.refresh()


def _check_page(browser, shot: Path) -> None:
    errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, f"console errors: {errors}"
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, "
        "i.naturalWidth]);")
    assert images, "no figures on the page"
    broken = [src for src, complete, width in images if not complete or width == 0]
    assert not broken, f"figures not loaded: {broken}"
    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    png = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"],
                 "height": min(size["height"], 8000), "scale": 1}})["data"]
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.write_bytes(base64.b64decode(png))  # the whole page, not just the viewport
    assert shot.stat().st_size > 10_000


def test_index_in_chromium(browser, server, site):
    from selenium.webdriver.common.by import By

    out, boards, _ = site
    _load(browser, server + "index.html")
    assert "leaderboards" in browser.title
    for split, n in boards.items():
        rows = browser.find_elements(By.CSS_SELECTOR,
                                     f"table.leaderboard[data-split='{split}'] tbody tr")
        assert len(rows) == n, (split, len(rows), n)
    _check_page(browser, out / "_screenshots" / "index.png")


def test_method_page_in_chromium(browser, server, site):
    from selenium.webdriver.common.by import By

    out, _, _ = site
    _load(browser, server + "index.html")
    link = browser.find_element(By.CSS_SELECTOR, "table.leaderboard tbody tr a")
    method = link.text
    link.click()
    assert method in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.find_elements(By.CSS_SELECTOR, "table.per-class tbody tr")
    browser.get_log("browser")
    browser.refresh()
    _check_page(browser, out / "_screenshots" / "method.png")

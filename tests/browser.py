"""Real Chromium for the browser tests: Debian's ``chromium`` package driven by Playwright.

``playwright install`` cannot download browsers here (and need not): Playwright drives the system's
Chromium through ``executable_path``. The flags keep it from reaching the network on its own.
``launch_chromium(playwright)`` returns a headless browser; the ``chromium`` fixture gives one per test
module. Both skip where Chromium or Playwright is not installed.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def launch_chromium(playwright, **kwargs):
    """A headless Chromium (Debian's binary, not a downloaded one) that stays off every network but ours."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, **kwargs)


@pytest.fixture(scope="module")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()

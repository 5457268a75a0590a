"""Real Chromium for the browser tests: Debian's ``chromium`` package driven by Playwright.

``playwright install`` cannot download browsers here (and need not): Playwright drives the system's
Chromium through ``executable_path``. The flags keep it from reaching the network on its own.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def launch_chromium(playwright, **kwargs):
    """A headless Chromium browser (skips the test where Debian's chromium is not installed)."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, **kwargs)

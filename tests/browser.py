"""Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by Python Playwright.

`make install` installs the Debian package; Playwright's own browser download is never used (no network in CI).
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def chromium_path() -> str:
    """The Debian chromium binary; a clear failure (not a skip) when it is missing, since `make install` adds it."""
    path = CHROMIUM if CHROMIUM.exists() else (Path(shutil.which("chromium")) if shutil.which("chromium") else None)
    if path is None:
        pytest.fail("chromium is not installed: run `make install` (apt-get install -y chromium)", pytrace=False)
    return str(path)


@contextlib.contextmanager
def launch_chromium() -> Iterator["playwright.sync_api.Browser"]:  # noqa: F821
    """A headless Chromium browser for the duration of the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()

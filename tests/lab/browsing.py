"""Debian's chromium, as the lab's browser tests drive it with Playwright (no browser download):
one browser a session (Playwright's sync API runs one at a time)."""

import time
from pathlib import Path

import pytest
from playwright.sync_api import Error, sync_playwright

from tasks.lab import LAB_DOMAIN

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser(lab):
    """The browser, resolving the hub's lab name and every name under it to the hub, as the
    lab's DNS answers its hosts."""
    assert Path(CHROMIUM).exists(), "install Debian's chromium (bin/setup does)"
    rules = f"--host-resolver-rules=MAP {LAB_DOMAIN} {lab.hub_ip}, MAP *.{LAB_DOMAIN} {lab.hub_ip}"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, rules])
        yield chromium
        chromium.close()


def open_page(page, url, seconds=60):
    """Go to ``url``, again when Chromium gave the navigation up because this machine's network
    changed (ERR_NETWORK_CHANGED: the other lab's hosts come and go, each with an interface here)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return page.goto(url)
        except Error as exc:
            if "ERR_NETWORK_CHANGED" not in str(exc) or time.monotonic() >= deadline:
                raise

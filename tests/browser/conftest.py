"""Real-browser fixtures: Playwright for Python driving Debian's chromium.

Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls
from a thread with a running loop unless told it is safe, which it is here (one test
thread, the live server in its own thread).
"""

import os
from pathlib import Path

import pytest

from tests.conftest import require_service

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Where journeys write their screenshots: var/screenshots/ of the checkout (gitignored).
SCREENSHOT_DIR = Path(
    os.environ.get("SCREENSHOT_DIR") or Path(__file__).resolve().parents[2] / "var" / "screenshots"
)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        require_service("chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser tab that records every request it makes, so a test can check
    that nothing is fetched from outside the portal (no CDN)."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.requested_urls = []
    page.on("request", lambda request: page.requested_urls.append(request.url))
    page.console_errors = []
    page.on(
        "console",
        lambda message: (
            page.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    yield page
    context.close()


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR

"""Browser fixtures: the Debian package's headless Chromium driven by Playwright, against the
app served by uvicorn on a free loopback port.

Never `playwright install`: the browser is /usr/bin/chromium (`apt-get install chromium
chromium-driver`; .ci/run does it). Without it these tests skip locally, with the reason
printed, and fail in CI (CI=1).

- `browser`: one Chromium for the session.
- `live_app`: a fresh OpsLoop on SQLite, served over HTTP (a `LiveServer`: `.url`, `.ops`).
- `page`: a new browser context on `live_app` (its own cookies), 1280x800. When the test ends it
  fails on any script error or console error: a refused asset, a Content-Security-Policy
  violation, a missing file.
- `shoot(page, name)`: a full-page screenshot in test-artifacts/screenshots/NAME.png.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opsloop.service import OpsLoop
from tests.conftest import LiveServer, OpsFactory

CHROMIUM = Path("/usr/bin/chromium")
# The answer to a refused sign-in is a page with status 401 or 429, a form's problems come with
# 422, and a change refused by the state of things (a template installed already) with 409;
# Chromium reports those on the console, but that is the app working, not a problem.
EXPECTED = re.compile(
    r"Failed to load resource: the server responded with a status of (401|403|409|422|429)"
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: `apt-get install chromium chromium-driver` (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI runs the browser tests", pytrace=False)
        print(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def live_app(
    make_ops: OpsFactory, sqlite_url: str, serve: Callable[[OpsLoop], LiveServer]
) -> LiveServer:
    ops = make_ops(sqlite_url, use_clock=False)
    return serve(ops)


@pytest.fixture
def page(browser: Any, live_app: LiveServer) -> Iterator[Any]:
    context = browser.new_context(base_url=live_app.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    problems: list[str] = []
    opened.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and not EXPECTED.search(message.text)
            else None
        ),
    )
    opened.on("pageerror", lambda error: problems.append(str(error)))
    yield opened
    context.close()
    assert problems == [], f"the browser reported problems: {problems}"


@pytest.fixture
def shoot(artifacts_dir: Path) -> Callable[[Any, str], Path]:
    folder = artifacts_dir / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def sideways(page: Any) -> int:
    """How many pixels the page is wider than its layout viewport (0: it fits). Measured against
    `clientWidth`, not `innerWidth`: on a phone (`is_mobile`) the browser widens `innerWidth`
    to take in whatever overflows, so that comparison never fails."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )

"""The tracking snippet in a real browser, on a website whose origin is not OpsLoop's: pasting
the install text sends a page view, `opsloop.track` and `opsloop.identify` reach OpsLoop, a
browser that asks not to be tracked sends nothing, and no request ever leaves loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from opsloop.service.ingest import tracking
from tests.conftest import LiveServer, eventually
from tests.sinks import free_port

pytestmark = pytest.mark.browser

WRITE_KEY = "wk_browser_5d1e0b"


class Website:
    """A business's website on its own loopback port, with OpsLoop's install text pasted in."""

    def __init__(self, opsloop_url: str) -> None:
        tag = tracking.install_snippet(opsloop_url, WRITE_KEY)
        page = (
            "<!doctype html><html><head><title>Acme — Pricing</title>"
            f'<link rel="icon" href="data:,">{tag}</head><body><h1>Pricing</h1></body></html>'
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def website(live_app: LiveServer) -> Iterator[Website]:
    live_app.ops.ingest.add_source(
        "name: website\nkind: segment\n", "website.yaml", secret=WRITE_KEY, actor="test"
    )
    site = Website(live_app.url)
    site.thread.start()
    yield site
    site.server.shutdown()
    site.server.server_close()


def watch(page: Any) -> list[str]:
    """Every URL the page requests."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    return requested


def stored(app: LiveServer, **filters: str) -> list[dict[str, Any]]:
    return app.ops.ingest.list_events(limit=50, **filters)


def test_the_pasted_snippet_sends_page_views_and_calls_from_another_origin(
    page: Any, live_app: LiveServer, website: Website
) -> None:
    requested = watch(page)
    page.goto(f"{website.url}/pricing?utm_source=newsletter&utm_campaign=spring")

    [view] = eventually(lambda: stored(live_app, type="page.viewed"))
    assert view["subject"].startswith("visitor:")
    assert view["payload"]["path"] == "/pricing"
    assert view["payload"]["title"] == "Acme — Pricing"
    assert view["payload"]["call"]["context"]["campaign"] == {
        "source": "newsletter",
        "name": "spring",
    }

    page.evaluate("opsloop.track('Signed Up', {plan: 'pro'})")
    [signup] = eventually(lambda: stored(live_app, type="track.signed_up"))
    assert signup["payload"]["plan"] == "pro"
    assert signup["subject"] == view["subject"]  # the same visitor, kept in localStorage

    page.evaluate("opsloop.identify('ana@example.com', {company_size: 12})")
    [identify] = eventually(lambda: stored(live_app, type="identify"))
    assert identify["subject"] == "lead:ana@example.com"
    assert live_app.ops.ingest.get_entity("lead:ana@example.com")["traits"]["company_size"] == 12

    page.reload()  # signed in now: the next page view is the lead's
    eventually(lambda: stored(live_app, type="page.viewed", subject="lead:ana@example.com"))

    hosts = {urlsplit(url).hostname for url in requested if not url.startswith("data:")}
    assert hosts == {"127.0.0.1"}
    assert any(url.startswith(f"{live_app.url}/v1/") for url in requested)


@pytest.mark.parametrize(
    "asks_not_to_be_tracked",
    [
        "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})",
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
    ],
    ids=["do-not-track", "global-privacy-control"],
)
def test_a_browser_that_asks_not_to_be_tracked_sends_nothing(
    page: Any, live_app: LiveServer, website: Website, asks_not_to_be_tracked: str
) -> None:
    page.add_init_script(asks_not_to_be_tracked)
    requested = watch(page)
    page.goto(f"{website.url}/pricing")
    page.wait_for_function("window.opsloop && typeof opsloop.track === 'function'")
    page.evaluate("opsloop.track('Signed Up'); opsloop.identify('bo@example.com')")
    page.wait_for_load_state("networkidle")

    assert f"{live_app.url}/t.js" in requested  # the script loaded ...
    assert not [url for url in requested if "/v1/" in url]  # ... and sent nothing
    assert stored(live_app) == []
    assert page.evaluate("window.localStorage.length") == 0  # nor left an id behind

"""A paginated JSON API on a free loopback port, for the HTTP pull connector's tests.

`/page`, `/offset`, `/cursor` and `/link` serve the same items, oldest update first, paged
the four ways the connector knows; `updated_since` keeps items updated at or after a time.
It checks a bearer token, basic auth or an X-Api-Key header, can fail a page once with a 500,
and can hold a page until the test lets it go (to kill a sync while it waits)."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.sinks import free_port

TOKEN = "tok_" + "3c1f9a"  # test-only


@dataclass
class JsonApi:
    items: list[dict[str, Any]] = field(default_factory=list)
    auth: str = "bearer"
    """bearer | basic | header | none"""
    fail_once: set[str] = field(default_factory=set)
    """Pages (`page=3`, `offset=4`, `cursor=c4`) answered 500 the first time they are asked."""
    hold: set[str] = field(default_factory=set)
    """Pages that wait for `release` before answering."""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    held: threading.Event = field(default_factory=threading.Event)
    """Set when a held page has been asked for."""
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api._answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> JsonApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def pages_asked(self, path: str) -> list[dict[str, str]]:
        with self._lock:
            return [query for asked, query in self.requests if asked == path]

    # --- serving -------------------------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append((parts.path, query))
        if not self._authorized(handler):
            self._send(handler, 401, {"error": "unauthorized"})
            return
        page_id = next(
            (f"{name}={query[name]}" for name in ("page", "offset", "cursor") if name in query),
            "first",
        )
        if page_id in self.hold:
            self.held.set()
            self.release.wait(30)
        with self._lock:
            failing = page_id in self.fail_once
            self.fail_once.discard(page_id)
        if failing:
            self._send(handler, 500, {"error": "try again"})
            return
        items = sorted(self.items, key=lambda item: (item["updated_at"], item["id"]))
        if "updated_since" in query:
            items = [item for item in items if item["updated_at"] >= query["updated_since"]]
        self._page(handler, parts.path, query, items)

    def _page(
        self,
        handler: BaseHTTPRequestHandler,
        path: str,
        query: dict[str, str],
        items: list[dict[str, Any]],
    ) -> None:
        if path == "/page":
            size = int(query.get("per_page", 3))
            start = (int(query.get("page", 1)) - 1) * size
            self._send(handler, 200, {"data": items[start : start + size]})
        elif path == "/offset":
            size = int(query.get("limit", 3))
            start = int(query.get("offset", 0))
            self._send(handler, 200, {"data": items[start : start + size]})
        elif path == "/cursor":
            size = int(query.get("limit", 3))
            start = int(query.get("cursor", "c0")[1:])
            chunk = items[start : start + size]
            following = f"c{start + size}" if start + size < len(items) else None
            self._send(handler, 200, {"data": chunk, "meta": {"next_cursor": following}})
        elif path == "/link":
            size = 3
            start = int(query.get("page", 1)) - 1
            chunk = items[start * size : (start + 1) * size]
            headers = {}
            if (start + 1) * size < len(items):
                link = "/link?" + urlencode({**query, "page": start + 2})
                headers["Link"] = f'<{link}>; rel="next"'
            self._send(handler, 200, chunk, headers)
        else:
            self._send(handler, 404, {"error": "no such path"})

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        if self.auth == "bearer":
            return handler.headers.get("Authorization") == f"Bearer {TOKEN}"
        if self.auth == "basic":
            expected = base64.b64encode(f"shop:{TOKEN}".encode()).decode()
            return handler.headers.get("Authorization") == f"Basic {expected}"
        if self.auth == "header":
            return handler.headers.get("X-Api-Key") == TOKEN
        return True

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a killed client
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)


def orders(count: int, *, day: str = "2026-03-01") -> list[dict[str, Any]]:
    """`count` orders, one updated per minute from 09:00 on `day`."""
    return [
        {
            "id": n,
            "email": f"buyer{n}@example.com",
            "total": 10 * n,
            "updated_at": f"{day}T09:{n:02d}:00Z",
        }
        for n in range(1, count + 1)
    ]


def orders_source(url: str, **payload: str) -> str:
    """A pulled `orders` source on this API (bearer auth, pages of 10) whose events carry the
    given payload fields (event field: item field)."""
    fields = "".join(f"\n    {name}: {item}" for name, item in payload.items())
    return f"""\
name: orders
kind: http
mapping:
  type: order.updated
  subject: "'order:' + string(id)"
  occurred_at: updated_at
  payload:{fields}
http:
  url: {url}/page
  items: data
  auth: {{type: bearer}}
  pagination: {{type: page, size_param: per_page, size: 10}}
"""

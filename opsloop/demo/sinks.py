"""Where the demo's actions land, so a person can see them: a pretend mail server (SMTP on
loopback), a pretend chat (Slack-style incoming webhook) and a pretend CRM receiving signed
webhooks. Everything received is kept in memory (the newest `keep` of each kind) and listed by
`GET /demo/outbox`.

The chat and webhook receivers are FastAPI routes. They are mounted on the demo's app and also
served on their own loopback port while the history loads, because the service delivers the
history's actions before the main server is up.
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import orjson
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from standardwebhooks import Webhook, WebhookVerificationError

from opsloop.web.auth import PUBLIC

log = logging.getLogger(__name__)

KINDS = ("emails", "chats", "webhooks")


class Outbox:
    """What the sinks received, newest last; thread-safe."""

    def __init__(self, keep: int = 500) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, deque[dict[str, Any]]] = {k: deque(maxlen=keep) for k in KINDS}
        self._totals = dict.fromkeys(KINDS, 0)

    def add(self, kind: str, item: dict[str, Any]) -> None:
        with self._lock:
            self._items[kind].append({"received_at": datetime.now(UTC).isoformat(), **item})
            self._totals[kind] += 1

    def latest(self, kind: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest first."""
        with self._lock:
            items = list(self._items[kind])
        items.reverse()
        return items[:limit] if limit is not None else items

    def totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self._totals)

    def snapshot(self, limit: int = 20) -> dict[str, Any]:
        return {"totals": self.totals(), **{kind: self.latest(kind, limit) for kind in KINDS}}


class SmtpSink:
    """An SMTP server on a free loopback port that accepts every message into the outbox."""

    def __init__(self, outbox: Outbox, *, host: str = "127.0.0.1") -> None:
        from aiosmtpd.controller import Controller

        self.host = host
        self.port = free_port(host)
        self.controller = Controller(_SmtpHandler(outbox), hostname=host, port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


class _SmtpHandler:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = message.get_body(preferencelist=("plain",))
        self.outbox.add(
            "emails",
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "subject": str(message["Subject"] or ""),
                "message_id": str(message["Message-ID"] or ""),
                "body": part.get_content() if part is not None else "",
            },
        )
        return "250 Message accepted for delivery"


def sink_router(outbox: Outbox, *, webhook_secret: str, receivers: bool = True) -> APIRouter:
    """`POST /demo/sink/chat`, `POST /demo/sink/webhook` (unless `receivers` is false) and
    `GET /demo/outbox`.

    Public on purpose: they hold only the simulated business's messages and exist only while
    `opsloop demo` runs (on loopback by default), so the README's `curl .../demo/outbox` works
    without a token."""
    router = APIRouter(prefix="/demo", tags=["demo"], dependencies=[Depends(PUBLIC)])
    verifier = Webhook(webhook_secret)

    @router.get("/outbox", summary="The newest emails, chat messages and webhooks received")
    def latest(limit: int = Query(20, ge=1, le=500)) -> JSONResponse:
        return JSONResponse(outbox.snapshot(limit))

    if not receivers:
        return router

    @router.post("/sink/chat", summary="A pretend chat: Slack-style incoming webhook JSON")
    async def chat(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return JSONResponse({"error": 'body must be JSON like {"text": ...}'}, 400)
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            return JSONResponse({"error": 'body must be JSON like {"text": ...}'}, 400)
        outbox.add(
            "chats",
            {"text": message["text"], "idempotency_key": request.headers.get("idempotency-key")},
        )
        return JSONResponse({"ok": True})

    @router.post(
        "/sink/webhook", summary="A pretend CRM: accepts Standard Webhooks signed by OpsLoop"
    )
    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            payload = verifier.verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            return JSONResponse({"error": f"signature check failed: {exc}"}, 401)
        outbox.add("webhooks", {"id": request.headers.get("webhook-id"), "payload": payload})
        return JSONResponse({"ok": True})

    return router


class SinkServer:
    """The sink routes on their own free loopback port, in a background thread."""

    def __init__(self, router: APIRouter, *, host: str = "127.0.0.1") -> None:
        app = FastAPI(title="OpsLoop demo sinks", docs_url=None, redoc_url=None)
        app.include_router(router)
        self.host = host
        self.port = free_port(host)
        config = uvicorn.Config(
            app, host=host, port=self.port, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="demo-sinks", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the demo sinks could not start on {self.url}")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])

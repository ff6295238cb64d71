"""The demo's pretend chat, CRM and mail server keep what they receive for `GET /demo/outbox`."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage

import httpx
import pytest
from standardwebhooks import Webhook

from opsloop.demo.run import DEMO_WEBHOOK_SECRET
from opsloop.demo.sinks import Outbox, SinkServer, SmtpSink, sink_router


@pytest.fixture
def outbox() -> Outbox:
    return Outbox(keep=3)


@pytest.fixture
def client(outbox: Outbox) -> Iterator[httpx.Client]:
    """The sink routes served over real HTTP on a free loopback port."""
    server = SinkServer(sink_router(outbox, webhook_secret=DEMO_WEBHOOK_SECRET))
    server.start()
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield client
    server.stop()


def test_chat_messages_show_up_in_the_outbox_newest_first(client: httpx.Client) -> None:
    for text in ("first", "second"):
        assert client.post("/demo/sink/chat", json={"text": text}).status_code == 200

    outbox = client.get("/demo/outbox").json()
    assert [chat["text"] for chat in outbox["chats"]] == ["second", "first"]
    assert outbox["totals"] == {"emails": 0, "chats": 2, "webhooks": 0}


def test_a_chat_message_must_be_json_with_text(client: httpx.Client) -> None:
    answer = client.post("/demo/sink/chat", content=b"hello")
    assert answer.status_code == 400
    assert "text" in answer.json()["error"]
    assert client.post("/demo/sink/chat", json={"txt": "x"}).status_code == 400
    assert client.get("/demo/outbox").json()["chats"] == []


def test_the_crm_sink_accepts_only_correctly_signed_webhooks(client: httpx.Client) -> None:
    body = json.dumps({"type": "opsloop.action", "data": {"lead": "lead:1"}})
    headers = signed(body, "msg_1")

    assert client.post("/demo/sink/webhook", content=body, headers=headers).status_code == 200
    tampered = body.replace("lead:1", "lead:2")
    refused = client.post("/demo/sink/webhook", content=tampered, headers=signed(body, "msg_2"))
    assert refused.status_code == 401
    assert "signature" in refused.json()["error"]

    [webhook] = client.get("/demo/outbox").json()["webhooks"]
    assert webhook["id"] == "msg_1"
    assert webhook["payload"]["data"] == {"lead": "lead:1"}


def test_the_outbox_keeps_the_newest_items_and_counts_them_all(
    client: httpx.Client, outbox: Outbox
) -> None:
    for n in range(5):
        client.post("/demo/sink/chat", json={"text": f"m{n}"})
    answer = client.get("/demo/outbox", params={"limit": 2}).json()
    assert [c["text"] for c in answer["chats"]] == ["m4", "m3"]
    assert answer["totals"]["chats"] == 5
    assert len(outbox.latest("chats")) == 3


def test_the_mail_sink_keeps_each_message(outbox: Outbox) -> None:
    sink = SmtpSink(outbox)
    sink.start()
    try:
        message = EmailMessage()
        message["From"] = "shop@example.com"
        message["To"] = "ana@example.com"
        message["Subject"] = "Hello"
        message.set_content("Hi Ana,\nthanks.")
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as smtp:
            smtp.send_message(message)
    finally:
        sink.stop()

    [mail] = outbox.latest("emails")
    assert mail["to"] == ["ana@example.com"]
    assert mail["subject"] == "Hello"
    assert "Hi Ana," in mail["body"]


def signed(body: str, message_id: str) -> dict[str, str]:
    now = datetime.now(UTC)
    signature = Webhook(DEMO_WEBHOOK_SECRET).sign(message_id, now, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }

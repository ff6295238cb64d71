"""The mailbox connector against a real Dovecot: new messages once, threads by References and
In-Reply-To, attachments noted but not kept, nothing marked as read, UIDVALIDITY changes."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from opsloop.core.errors import Unavailable
from opsloop.core.sources import SourceSpec, parse_source
from opsloop.perception.connectors import fetch
from opsloop.perception.records import Batch
from tests.conftest import OpsFactory
from tests.dovecot import Dovecot, dovecot_server


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    yield from dovecot_server()


def mail(
    sender: str,
    subject: str,
    body: str,
    *,
    message_id: str | None,
    reply_to: str | None = None,
    html: str | None = None,
    attachment: tuple[str, bytes] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "Support <support@shop.test>"
    message["Subject"] = subject
    message["Date"] = "Mon, 02 Mar 2026 09:15:00 +0000"
    if message_id:
        message["Message-ID"] = message_id
    if reply_to:
        message["In-Reply-To"] = reply_to
        message["References"] = reply_to
    if html is not None:
        message.set_content(html, subtype="html")
    else:
        message.set_content(body)
    if attachment:
        name, data = attachment
        message.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return message.as_bytes()


QUESTION = mail(
    "Ana Silva <Ana.Silva@Example.PT>",
    "Where is my order?",
    "Hi, I ordered beans last week and nothing arrived.\n",
    message_id="<q1@example.pt>",
)
REPLY = mail(
    "Support <support@shop.test>",
    "Re: Where is my order?",
    "It left yesterday; here is the tracking number.\n",
    message_id="<r1@shop.test>",
    reply_to="<q1@example.pt>",
)
WITH_INVOICE = mail(
    "bo@example.com",
    "Wrong invoice",
    "",
    message_id="<a1@example.com>",
    html="<html><head><style>p {}</style></head><body><p>The VAT number is <b>wrong</b>.</p>"
    "<p>See attached &amp; fix it.</p></body></html>",
    attachment=("invoice.pdf", b"%PDF-1.4 " + b"x" * 2000),
)


def imap_source(server: Dovecot, *, extra: str = "") -> SourceSpec:
    text = (
        f"name: support\nkind: imap\nimap:\n  host: {server.host}\n  port: {server.port}\n"
        f"  security: none\n  username: {server.user}\n  batch_size: 2\n{extra}"
    )
    return parse_source(text, "support.yaml")[0]


def read(spec: SourceSpec, password: str, checkpoint: dict | None = None) -> list[Batch]:  # type: ignore[type-arg]
    return list(fetch(spec, password, checkpoint))


def test_new_mail_is_read_once_with_its_thread_sender_text_and_attachments(
    dovecot: Dovecot,
) -> None:
    dovecot.append(QUESTION, REPLY, WITH_INVOICE)
    spec = imap_source(dovecot)
    batches = read(spec, dovecot.password)
    assert [len(b.records) for b in batches] == [2, 1], "batch_size: 2"
    question, reply, invoice = [r for b in batches for r in b.records]

    assert question.key == "q1@example.pt"
    assert question.where == "INBOX UID 1"
    assert question.data["from"] == "ana.silva@example.pt"
    assert question.data["from_name"] == "Ana Silva"
    assert question.data["to"] == ["support@shop.test"]
    assert question.data["subject"] == "Where is my order?"
    assert question.data["text"] == "Hi, I ordered beans last week and nothing arrived."
    assert question.data["date"] == "2026-03-02T09:15:00+00:00"
    assert question.data["thread"] == "q1@example.pt"

    assert reply.data["in_reply_to"] == "q1@example.pt"
    assert reply.data["references"] == ["q1@example.pt"]
    assert reply.data["thread"] == "q1@example.pt", "a reply joins the question's thread"

    assert invoice.data["text"] == "The VAT number is wrong.\nSee attached & fix it."
    assert invoice.data["attachments"] == [
        {"filename": "invoice.pdf", "content_type": "application/pdf", "size": 2009}
    ]
    assert b"%PDF" not in repr(invoice.data).encode(), "attachments are noted, not kept"

    checkpoint = batches[-1].checkpoint
    assert checkpoint is not None
    assert checkpoint["uid"] == 3
    assert read(spec, dovecot.password, checkpoint)[0].records == []

    dovecot.append(mail("cy@example.com", "Hello", "Are you open on Sunday?", message_id=None))
    [late] = [r for b in read(spec, dovecot.password, checkpoint) for r in b.records]
    assert late.key == f"{checkpoint['uidvalidity']}:4", "no Message-ID: UIDVALIDITY:UID"
    assert late.data["thread"] == late.key


def test_reading_the_mailbox_marks_nothing_as_read(dovecot: Dovecot) -> None:
    dovecot.append(QUESTION)
    read(imap_source(dovecot), dovecot.password)
    conn = dovecot.client()
    try:
        conn.select("INBOX", readonly=True)
        _, unseen = conn.search(None, "UNSEEN")
    finally:
        conn.logout()
    assert unseen[0].split() == [b"1"]


def test_a_new_uidvalidity_means_the_mailbox_is_read_again(dovecot: Dovecot) -> None:
    dovecot.append(QUESTION, REPLY)
    spec = imap_source(dovecot)
    checkpoint = read(spec, dovecot.password)[-1].checkpoint
    assert checkpoint is not None
    rebuilt = {"uidvalidity": checkpoint["uidvalidity"] + 1, "uid": 2}
    again = [r.key for b in read(spec, dovecot.password, rebuilt) for r in b.records]
    assert again == ["q1@example.pt", "r1@shop.test"], "keys keep them from being stored twice"


def test_a_wrong_password_fails_with_the_servers_reason(dovecot: Dovecot) -> None:
    with pytest.raises(Unavailable, match=r"login as support failed.*AUTHENTICATIONFAILED"):
        read(imap_source(dovecot), "not-the-password")


def test_a_synced_mailbox_becomes_one_ticket_per_thread_with_the_text_as_message(
    make_ops: OpsFactory, database_url: str, dovecot: Dovecot
) -> None:
    ops = make_ops(database_url)
    dovecot.append(QUESTION, REPLY, WITH_INVOICE)
    text = (
        f"name: support\nkind: imap\nimap:\n  host: {dovecot.host}\n  port: {dovecot.port}\n"
        f"  security: none\n  username: {dovecot.user}\n"
    )
    ops.ingest.add_source(text, "support.yaml", secret=dovecot.password, actor="test")
    run = ops.ingest.sync_source("support", actor="test")
    assert (run.status, run.rows_in, run.events_stored) == ("ok", 3, 3), run.error

    events = sorted(
        (e for e in ops.ingest.list_events(limit=100) if e["source"] == "support"),
        key=lambda e: e["id"],
    )
    assert [(e["type"], e["subject"]) for e in events] == [
        ("message.received", "ticket:q1@example.pt"),
        ("message.received", "ticket:q1@example.pt"),
        ("message.received", "ticket:a1@example.com"),
    ]
    question = events[0]
    assert question["payload"]["message"].startswith("Hi, I ordered beans")
    assert question["payload"]["email"] == "ana.silva@example.pt"
    assert question["idempotency_key"] == "q1@example.pt"
    assert events[2]["payload"]["attachments"][0]["filename"] == "invoice.pdf"
    traits = ops.ingest.get_entity("ticket:q1@example.pt")["traits"]
    assert traits["requester_email"] == "ana.silva@example.pt", "the reply did not take it over"

    again = ops.ingest.sync_source("support", actor="test")
    assert (again.rows_in, again.events_stored) == (0, 0)

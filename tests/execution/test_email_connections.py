"""Emails share SMTP connections: a busy outbox does not pay a handshake, a greeting, EHLO
(TLS and a login, with a real provider) and QUIT per message, and a connection the server
closed meanwhile never costs an email."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opsloop.core.errors import DeliveryError
from opsloop.execution.channels import email as email_channel
from opsloop.execution.channels.email import EmailChannel
from opsloop.settings import Settings
from tests.sinks import SmtpSink


@pytest.fixture
def channel_to(tmp_path: Path) -> Iterator[Callable[[int], EmailChannel]]:
    made: list[EmailChannel] = []

    def make(port: int) -> EmailChannel:
        made.append(
            EmailChannel(Settings(data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=port))
        )
        return made[-1]

    yield make
    for channel in made:
        channel.close()


def send(channel: EmailChannel, n: int) -> dict[str, object]:
    request = {"to": f"lead{n}@example.com", "subject": f"Hello {n}", "body": "Welcome."}
    return channel.send(request, idempotency_key=f"action-{n}")


def subjects(server: SmtpSink) -> list[str]:
    return [str(mail.message["Subject"]) for mail in server.messages]


def test_one_connection_carries_a_run_of_emails(
    smtp_sink: SmtpSink, channel_to: Callable[[int], EmailChannel]
) -> None:
    channel = channel_to(smtp_sink.port)
    for n in range(5):
        send(channel, n)
    assert subjects(smtp_sink) == [f"Hello {n}" for n in range(5)]
    assert smtp_sink.greetings == 1

    channel.close()  # what the service does when it stops or the SMTP settings change
    send(channel, 5)
    assert subjects(smtp_sink)[-1] == "Hello 5"
    assert smtp_sink.greetings == 2


def test_a_mail_server_restarted_between_emails_still_gets_the_next(
    channel_to: Callable[[int], EmailChannel],
) -> None:
    first = SmtpSink()
    first.start()
    channel = channel_to(first.port)
    send(channel, 1)
    first.stop()  # the kept connection dies with it
    restarted = SmtpSink(port=first.port)
    restarted.start()
    try:
        receipt = send(channel, 2)
    finally:
        restarted.stop()
    assert subjects(first) == ["Hello 1"]
    assert subjects(restarted) == ["Hello 2"]
    assert receipt["message_id"] == "<action-2@opsloop>"


def test_a_server_closing_a_kept_connection_with_421_gets_the_email_on_a_new_one(
    smtp_sink: SmtpSink, channel_to: Callable[[int], EmailChannel]
) -> None:
    channel = channel_to(smtp_sink.port)
    send(channel, 1)
    smtp_sink.close_next = 1  # "421": e.g. its limit of messages per connection
    send(channel, 2)
    assert subjects(smtp_sink) == ["Hello 1", "Hello 2"]  # once each
    assert smtp_sink.greetings == 2


def test_421_on_a_new_connection_is_a_failure_to_retry_later(
    smtp_sink: SmtpSink, channel_to: Callable[[int], EmailChannel]
) -> None:
    channel = channel_to(smtp_sink.port)
    smtp_sink.close_next = 1
    with pytest.raises(DeliveryError) as failed:
        send(channel, 1)
    assert failed.value.retryable
    assert "421" in str(failed.value)
    send(channel, 2)  # the next one goes on a new connection
    assert subjects(smtp_sink) == ["Hello 2"]


def test_a_refused_recipient_fails_that_email_and_the_next_goes_out(
    smtp_sink: SmtpSink, channel_to: Callable[[int], EmailChannel]
) -> None:
    channel = channel_to(smtp_sink.port)
    smtp_sink.unknown.add("gone@example.com")
    send(channel, 1)
    with pytest.raises(DeliveryError) as failed:
        channel.send({"to": "gone@example.com", "subject": "x"}, idempotency_key="bad")
    assert not failed.value.retryable
    assert "recipient refused: gone@example.com (550" in str(failed.value)
    send(channel, 2)
    assert subjects(smtp_sink) == ["Hello 1", "Hello 2"]


def test_connections_are_renewed_when_idle_too_long_or_after_their_quota(
    smtp_sink: SmtpSink, channel_to: Callable[[int], EmailChannel], monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = channel_to(smtp_sink.port)
    monkeypatch.setattr(email_channel, "MESSAGES_PER_CONNECTION", 2)
    for n in range(5):
        send(channel, n)
    assert smtp_sink.greetings == 3  # 2 + 2 + 1
    monkeypatch.setattr(email_channel, "IDLE_SECONDS", 0.0)  # every kept one is now too old
    for n in range(5, 8):
        send(channel, n)
    assert smtp_sink.greetings == 6
    assert len(smtp_sink.messages) == 8


def test_a_recipient_with_a_line_break_is_refused_for_good_and_nothing_is_sent(
    smtp_sink: SmtpSink, channel_to: Callable[[int], EmailChannel]
) -> None:
    channel = channel_to(smtp_sink.port)
    hostile = {"to": "a@example.com\r\nBcc: victim@example.com", "subject": "Hi", "body": "x"}
    with pytest.raises(DeliveryError) as failed:
        channel.send(hostile, idempotency_key="hostile")
    assert not failed.value.retryable  # dead-lettered at once, not tried again and again
    assert "the email cannot be built" in str(failed.value)
    assert "linefeed" in str(failed.value)
    send(channel, 1)
    assert subjects(smtp_sink) == ["Hello 1"]
    assert all("victim@example.com" not in mail.rcpt_tos for mail in smtp_sink.messages)

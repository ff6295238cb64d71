"""Email over SMTP (plain, STARTTLS or TLS, with optional login).

Connections are kept open between messages, as mail libraries do for a batch: a busy outbox
would otherwise pay a TCP handshake, the server's greeting, EHLO (and TLS and a login, with a
real provider) and QUIT for every email. An idle connection is kept for `IDLE_SECONDS` and
carries at most `MESSAGES_PER_CONNECTION` messages, below what providers allow; one the server
closed meanwhile is noticed when the next message is sent on it, and that message goes again
on a new connection.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from opsloop.core.errors import DeliveryError
from opsloop.settings import Settings

IDLE_SECONDS = 30.0
"""An idle connection older than this is closed rather than used (servers drop idle ones
after a minute or more)."""
MESSAGES_PER_CONNECTION = 100
"""Then a new connection: providers limit messages per connection (often to a few hundred)."""
_GONE = (smtplib.SMTPServerDisconnected, ConnectionError)
"""How a connection the server closed while it was idle fails when used again."""


@dataclass
class _Kept:
    smtp: smtplib.SMTP
    sent: int = 0
    idle_since: float = 0.0


class EmailChannel:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._idle: list[_Kept] = []  # open connections nobody is using, the newest last
        self._closed = False

    def send(self, request: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        to = (request.get("to") or "").strip()
        if not to:
            raise DeliveryError("email has no recipient: `to` rendered empty", retryable=False)
        try:
            message = self._message(request, to, idempotency_key)
        except ValueError as exc:
            # A header with a line break (a trait like "a@b.c\r\nBcc: …") or an address that
            # does not parse: the same on every attempt, so not retried.
            raise DeliveryError(f"the email cannot be built: {exc}", retryable=False) from None
        try:
            refused = self._deliver(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                f"recipient refused: {_first(exc.recipients)}", retryable=False
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP login failed ({exc.smtp_code})", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else exc.smtp_error
            )
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {text}", retryable=exc.smtp_code < 500
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            where = f"{self.settings.smtp_host}:{self.settings.smtp_port}"
            raise DeliveryError(
                f"cannot reach the SMTP server {where}: {exc}", retryable=True
            ) from None
        return {"to": to, "message_id": message["Message-ID"], "refused": sorted(refused)}

    def _message(self, request: dict[str, Any], to: str, idempotency_key: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = to
        if request.get("cc"):
            message["Cc"] = request["cc"]
        if request.get("reply_to"):
            message["Reply-To"] = request["reply_to"]
        message["Subject"] = request.get("subject") or ""
        message["Date"] = formatdate(localtime=False)
        # The same Message-ID on every attempt lets mail systems drop a repeat delivery.
        message["Message-ID"] = f"<{idempotency_key}@opsloop>"
        message["X-OpsLoop-Idempotency-Key"] = idempotency_key
        message.set_content(request.get("body") or "")
        if request.get("html"):
            message.add_alternative(request["html"], subtype="html")
            # Images the HTML names by `cid:<name>` (the weekly report's charts) travel inline
            # beside it, in a multipart/related part.
            images: dict[str, bytes] = request.get("images") or {}
            if images:
                html = message.get_body(preferencelist=("html",))
                assert isinstance(html, EmailMessage)
                for name, data in images.items():
                    html.add_related(data, "image", "png", cid=f"<{name}>", filename=f"{name}.png")
        return message

    def _deliver(self, message: EmailMessage) -> dict[str, Any]:
        kept = self._take()
        if kept is not None:
            try:
                return self._send_on(kept, message)
            except _GONE:
                pass  # closed by the server while idle: the message was not taken, send it anew
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code != 421:
                    raise
                # The server is closing this connection (421): the message was not taken on
                # it (or the receiver sees its Message-ID twice). Send it anew.
        return self._send_on(_Kept(self.connect()), message)

    def _send_on(self, kept: _Kept, message: EmailMessage) -> dict[str, Any]:
        """Send on this connection and keep it for the next message; a failed exchange closes
        it (stopped midway, it is not fit to carry another)."""
        try:
            refused = kept.smtp.send_message(message)
        except BaseException:
            kept.smtp.close()
            raise
        self._give_back(kept)
        return refused

    def _take(self) -> _Kept | None:
        """The connection used last, if one is idle and young enough."""
        now = time.monotonic()
        stale: list[_Kept] = []
        found = None
        with self._lock:
            while self._idle:
                kept = self._idle.pop()
                if now - kept.idle_since < IDLE_SECONDS:
                    found = kept
                    break
                stale.append(kept)
        for kept in stale:
            _quit(kept.smtp)
        return found

    def _give_back(self, kept: _Kept) -> None:
        kept.sent += 1
        kept.idle_since = time.monotonic()
        with self._lock:
            keep = not self._closed and kept.sent < MESSAGES_PER_CONNECTION
            if keep:
                self._idle.append(kept)
        if not keep:
            _quit(kept.smtp)

    def close(self) -> None:
        """Say goodbye on every idle connection; later messages are not kept open."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for kept in idle:
            _quit(kept.smtp)

    def connect(self) -> smtplib.SMTP:
        """A connection to the configured server, secured and logged in as the settings say;
        use it in a `with` block. Raises what smtplib raises (OSError, SMTPException)."""
        s = self.settings
        # Building a TLS context loads the system's CA bundle (tens of ms): only when used.
        context = ssl.create_default_context() if s.smtp_security != "none" else None
        smtp: smtplib.SMTP
        if s.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds, context=context
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
        try:
            if s.smtp_security == "starttls":
                smtp.starttls(context=context)
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_username, password)
        except BaseException:
            smtp.close()
            raise
        return smtp


def _first(recipients: dict[str, Any]) -> str:
    for address, (code, text) in recipients.items():
        reason = text.decode(errors="replace") if isinstance(text, bytes) else text
        return f"{address} ({code} {reason})"
    return "unknown"


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()

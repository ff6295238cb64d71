"""Checking the mail server OpsLoop sends through, for the settings page: connect, secure and
log in as configured, say EHLO and NOOP, and optionally send one test email. The language
model's check is `opsloop.service.decide.llm_setup.test_connection`."""

from __future__ import annotations

import logging
import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from opsloop.core.errors import InvalidInput
from opsloop.execution.channels.email import EmailChannel
from opsloop.service.context import Context

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpCheck:
    ok: bool
    server: str
    """`host:port`, as configured."""
    security: str
    latency_ms: float
    greeting: str | None = None
    """The first line of the server's EHLO answer (its name)."""
    sent_to: str | None = None
    """The address a test email was handed to, when one was asked for."""
    error: str | None = None


def check_smtp(ctx: Context, *, send_to: str | None = None) -> SmtpCheck:
    """Talk to the configured SMTP server without sending anything, or, with `send_to`, send
    it one short test email. Never raises for a server problem: `error` says what is wrong
    and which setting to look at."""
    s = ctx.settings
    send_to = (send_to or "").strip() or None
    if send_to is not None and ("@" not in send_to or any(c.isspace() for c in send_to)):
        raise InvalidInput.single("to", f"{send_to!r} is not an email address")
    server = f"{s.smtp_host}:{s.smtp_port}"
    started = time.perf_counter()
    greeting: str | None = None

    def result(**fields: object) -> SmtpCheck:
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        return SmtpCheck(
            server=server,
            security=s.smtp_security,
            latency_ms=elapsed,
            greeting=greeting,
            **fields,  # type: ignore[arg-type]
        )

    try:
        with EmailChannel(s).connect() as smtp:
            code, answer = smtp.ehlo()
            greeting = answer.decode(errors="replace").splitlines()[0] if answer else None
            if code != 250:
                return result(ok=False, error=f"the server answered EHLO with {code}")
            code, _ = smtp.noop()
            if code != 250:
                return result(ok=False, error=f"the server answered NOOP with {code}")
            if send_to is not None:
                smtp.send_message(_test_message(s.smtp_from, send_to))
                log.info("sent a test email to %s", send_to)
    except smtplib.SMTPAuthenticationError as exc:
        return result(
            ok=False,
            error=f"the server refused the login ({exc.smtp_code}): check the user name and "
            "password under Settings → Email (OPSLOOP_SMTP_USERNAME, OPSLOOP_SMTP_PASSWORD)",
        )
    except smtplib.SMTPRecipientsRefused:
        return result(ok=False, error=f"the server refused the recipient {send_to}")
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return result(ok=False, error=f"the server answered {exc.smtp_code}: {text}")
    except (OSError, smtplib.SMTPException) as exc:
        return result(
            ok=False,
            error=f"cannot reach the SMTP server {server} ({exc or type(exc).__name__}): check "
            "the server, port and security under Settings → Email (OPSLOOP_SMTP_HOST, "
            "OPSLOOP_SMTP_PORT and OPSLOOP_SMTP_SECURITY)",
        )
    return result(ok=True, sent_to=send_to)


def _test_message(sender: str, to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "OpsLoop test email"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="opsloop")
    message.set_content(
        "This is a test email from OpsLoop's settings page: the mail server settings work.\n"
    )
    return message

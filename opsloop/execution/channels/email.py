"""Email over SMTP (plain, STARTTLS or TLS, with optional login)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from opsloop.core.errors import DeliveryError
from opsloop.settings import Settings


class EmailChannel:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, request: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        to = (request.get("to") or "").strip()
        if not to:
            raise DeliveryError("email has no recipient: `to` rendered empty", retryable=False)
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

    def _deliver(self, message: EmailMessage) -> dict[str, Any]:
        with self.connect() as smtp:
            return smtp.send_message(message)

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

"""Real network peers for tests: an SMTP server (aiosmtpd) and an HTTP server that record
what they receive. Also used by the demo's tests and the crash test's child processes."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part else ""


class SmtpSink:
    """An SMTP server on a free loopback port keeping every message it accepts. `greetings`
    counts the EHLOs it answered (one per connection); `close_next` makes it answer the next
    N MAIL commands with 421 (closing the connection), as a server does that restarts or
    limits messages per connection; `unknown` holds the recipients it refuses."""

    def __init__(self, port: int | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[ReceivedMail] = []
        self.port = port or free_port()
        self.greetings = 0
        self.close_next = 0
        self.unknown: set[str] = set()  # recipients it refuses (550)
        self._lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_EHLO(
                self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
            ) -> list[str]:
                session.host_name = hostname
                with sink._lock:
                    sink.greetings += 1
                return responses

            async def handle_MAIL(
                self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
            ) -> str:
                with sink._lock:
                    closing = sink.close_next > 0
                    sink.close_next -= closing
                if closing:
                    return "421 closing this connection"
                envelope.mail_from = address
                envelope.mail_options.extend(options)
                return "250 OK"

            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
            ) -> str:
                if address in sink.unknown:
                    return "550 no such mailbox here"
                envelope.rcpt_tos.append(address)
                envelope.rcpt_options.extend(options)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with sink._lock:
                    sink.messages.append(
                        ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message)
                    )  # type: ignore[arg-type]
                return "250 Message accepted for delivery"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpSink:
    """An HTTP server on a free loopback port recording each POST. `fail_next` makes the next N
    requests answer `fail_status` (to exercise retries)."""

    port: int = field(default_factory=free_port)
    requests: list[ReceivedRequest] = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = 500

    def __post_init__(self) -> None:
        sink = self
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with sink._lock:
                    failing = sink.fail_next > 0
                    if failing:
                        sink.fail_next -= 1
                    else:
                        sink.requests.append(
                            ReceivedRequest(
                                self.path, {k.lower(): v for k, v in self.headers.items()}, body
                            )
                        )
                status = sink.fail_status if failing else 200
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"failing on purpose" if failing else b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def to(self, path: str) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

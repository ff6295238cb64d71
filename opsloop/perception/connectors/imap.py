"""A support mailbox over IMAP (stdlib imaplib): new messages, threaded by Message-ID.

The mailbox is opened read-only (nothing is marked as read). The checkpoint is the mailbox's
UIDVALIDITY and the last UID read; when the server says UIDVALIDITY changed (the mailbox was
rebuilt, its UIDs mean something else now) the next sync reads it all again, and the
Message-IDs keep the messages already stored from being stored twice.

Each message becomes one record (see `message_data`): who wrote it, its subject and text, the
thread it belongs to (the first Message-ID of `References`, else `In-Reply-To`, else its own),
and its attachments' names, types and sizes — the attachments themselves are not kept.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import imaplib
import re
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from opsloop.core.errors import InvalidInput, Unavailable
from opsloop.core.sources import ImapConfig
from opsloop.perception.records import Batch, Record, Rejected

TIMEOUT_SECONDS = 30
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_UID = re.compile(rb"UID (\d+)")


def fetch(
    config: ImapConfig,
    secret: str | None,
    checkpoint: dict[str, Any] | None,
    *,
    backfill: bool = False,
) -> Iterator[Batch]:
    if not secret:
        raise InvalidInput.single(
            "secret", "an imap source needs the mailbox's password: --secret-file or secret_env"
        )
    conn = _connect(config)
    step = f"login as {config.username}"  # what the error message says failed
    try:
        _ok(conn.login(config.username, secret))
        step = f"opening {config.mailbox}"
        _ok(conn.select(_quoted(config.mailbox), readonly=True))
        step = "search"
        validity = int(conn.response("UIDVALIDITY")[1][0])
        after = 0
        if not backfill and checkpoint and checkpoint.get("uidvalidity") == validity:
            after = int(checkpoint.get("uid", 0))
        found = _ok(conn.uid("SEARCH", f"UID {after + 1}:*"))
        # `n:*` always matches the newest message, even when its UID is below n.
        uids = sorted(u for u in (int(x) for x in found[0].split()) if u > after)
        if not uids:
            yield Batch([], {"uidvalidity": validity, "uid": after})
            return
        for start in range(0, len(uids), config.batch_size):
            chunk = uids[start : start + config.batch_size]
            step = f"fetching UIDs {chunk[0]}-{chunk[-1]}"
            fetched = _ok(conn.uid("FETCH", ",".join(map(str, chunk)), "(UID BODY.PEEK[])"))
            records: list[Record] = []
            rejected: list[Rejected] = []
            for uid, raw in _messages(fetched):
                where = f"{config.mailbox} UID {uid}"
                try:
                    data = message_data(raw, uid=uid, validity=validity)
                except Exception as exc:  # a mail no parser can read must not stop the mailbox
                    rejected.append(Rejected(where, f"cannot be read as a mail: {exc}", raw))
                    continue
                data["mailbox"] = config.mailbox
                key = data["message_id"] or f"{validity}:{uid}"
                records.append(Record(data, where=where, key=key))
            yield Batch(records, {"uidvalidity": validity, "uid": chunk[-1]}, rejected)
    except (imaplib.IMAP4.error, OSError) as exc:
        # A refused login will be refused again: only network trouble is worth retrying.
        raise Unavailable(
            f"IMAP {config.host}: {step} failed: {_reason(exc)}",
            retryable=not (step.startswith("login") and isinstance(exc, imaplib.IMAP4.error)),
        ) from exc
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()


def message_data(raw: bytes, *, uid: int, validity: int) -> dict[str, Any]:
    """A mail as a record: ids without their angle brackets, addresses lowercased."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    message_id = next(iter(_ids(message.get("Message-ID"))), None)
    in_reply_to = next(iter(_ids(message.get("In-Reply-To"))), None)
    references = _ids(message.get("References"))
    senders = _addresses(message.get("From"))
    sender_name, sender = senders[0] if senders else ("", None)
    return {
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "references": references,
        "thread": (references[0] if references else None)
        or in_reply_to
        or message_id
        or f"{validity}:{uid}",
        "from": sender,
        "from_name": sender_name or None,
        "to": [address for _, address in _addresses(message.get("To"))],
        "cc": [address for _, address in _addresses(message.get("Cc"))],
        "subject": str(message.get("Subject", "")).strip() or None,
        "text": _text(message),
        "date": _date(message.get("Date")),
        "attachments": [
            {
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "size": len(part.get_payload(decode=True) or b""),
            }
            for part in message.iter_attachments()
        ],
        "uid": uid,
    }


def _connect(config: ImapConfig) -> imaplib.IMAP4:
    try:
        if config.security == "ssl":
            return imaplib.IMAP4_SSL(
                config.host,
                config.port or 993,
                ssl_context=ssl.create_default_context(),
                timeout=TIMEOUT_SECONDS,
            )
        conn = imaplib.IMAP4(config.host, config.port or 143, timeout=TIMEOUT_SECONDS)
        if config.security == "starttls":
            conn.starttls(ssl.create_default_context())
        return conn
    except (imaplib.IMAP4.error, OSError) as exc:
        raise Unavailable(
            f"IMAP {config.host}:{config.port or ''} unreachable: {_reason(exc)}", retryable=True
        ) from exc


def _ok(answer: tuple[str, list[Any]]) -> list[Any]:
    status, data = answer
    if status != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        raise imaplib.IMAP4.error(detail or status)
    return data


def _messages(fetched: list[Any]) -> Iterator[tuple[int, bytes]]:
    """(UID, raw message) from a FETCH answer: tuples of (b'1 (UID 5 BODY[] {42}', body)."""
    for item in fetched:
        if isinstance(item, tuple) and len(item) == 2:
            uid = _UID.search(item[0])
            if uid:
                yield int(uid.group(1)), item[1]


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith(("b'", 'b"')):  # imaplib puts the server's bytes in its messages
        text = text[2:-1]
    return text or type(exc).__name__


def _ids(value: Any) -> list[str]:
    return _MESSAGE_ID.findall(str(value)) if value else []


def _addresses(value: Any) -> list[tuple[str, str]]:
    if not value:
        return []
    return [
        (name.strip(), address.strip().lower())
        for name, address in getaddresses([str(value)])
        if "@" in address
    ]


def _date(value: Any) -> str | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(str(value)).isoformat()
    except (TypeError, ValueError):
        return None


def _text(message: EmailMessage) -> str:
    plain = message.get_body(preferencelist=("plain",))
    if plain is not None:
        return _content(plain).strip()
    html = message.get_body(preferencelist=("html",))
    return html_text(_content(html)) if html is not None else ""


def _content(part: Any) -> str:
    try:
        return str(part.get_content())
    except (LookupError, UnicodeDecodeError, KeyError):  # an unknown or lying charset
        payload = part.get_payload(decode=True) or b""
        return bytes(payload).decode("utf-8", errors="replace")


class _TextOf(HTMLParser):
    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})
    SKIP = frozenset({"script", "style", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The words of an HTML mail, a line per paragraph (no scripts, styles or tags)."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def default_mapping(config: ImapConfig) -> list[dict[str, Any]]:
    """The mapping of a mailbox source that declares none: each mail is a `message.received`
    about its thread, `<subject_kind>:<thread>`, with the text as `message` (where text triage
    playbooks read it). The thread's first mail also sets who asked, as the subject's traits;
    replies (from the customer or from the team) leave them alone."""
    payload = {
        "message": "text",
        "subject": "subject",
        "email": "from",
        "name": "from_name",
        "to": "to",
        "message_id": "message_id",
        "in_reply_to": "in_reply_to",
        "thread": "thread",
        "attachments": "attachments",
        "mailbox": "mailbox",
    }
    rule = {
        "type": "message.received",
        # subject_kind is a plain word (checked in ImapConfig), safe inside quotes.
        "subject": f"'{config.subject_kind}:' + thread",
        "occurred_at": "date",
        "payload": payload,
    }
    traits = {"requester_email": "from", "requester_name": "from_name", "subject": "subject"}
    return [
        {"when": "thread == message_id", **rule, "traits": traits},
        {"when": "thread != message_id", **rule},
    ]

"""Test deliveries: a sample body for a webhook source, signed the way the source verifies, sent
through the same path as `POST /hooks/{source}` (opsloop/service/ingest/webhooks.py), so the
signature check, the mapping, the contracts, the quarantine and the playbooks all apply; and
the same delivery as a shell command (bash, openssl, curl) a person can paste.

The body is one the source's mapping makes an event of: a sample of the sender's own shape for
a built-in mapping (a Stripe checkout, a Shopify order, a HubSpot contact, a Calendly booking, a
helpdesk ticket), an OpsLoop event (`test.delivery`) otherwise. Each has ids of its own, so a
second test is not taken for a repeat of the first. The signing is the sender's side of each
check in opsloop/perception/signatures.py (Standard Webhooks' through its own library).
"""

from __future__ import annotations

import binascii
import json
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from opsloop.core.errors import InvalidInput, NotFound, Unauthorized
from opsloop.core.sources import SourceSpec
from opsloop.perception.signatures import (
    HUBSPOT_HEADER,
    HUBSPOT_TIMESTAMP,
    STRIPE_HEADER,
    sign_hmac_sha256,
    sign_hmac_timestamped,
    sign_hubspot,
    sign_standard,
    sign_stripe,
)
from opsloop.service import reading
from opsloop.service.context import Context
from opsloop.service.ingest import webhooks
from opsloop.service.ingest.sources import StoredSource, get
from opsloop.store import audit

Outcome = Literal["accepted", "duplicate", "ignored", "refused"]
SHOPIFY_HEADER = "X-Shopify-Hmac-Sha256"
CALENDLY_HEADER = "Calendly-Webhook-Signature"
TEST_EMAIL = "test@example.com"


@dataclass(frozen=True, slots=True)
class DeliveredEvent:
    id: int
    status: Literal["created", "duplicate"]
    type: str
    subject: str


@dataclass(frozen=True, slots=True)
class TestDelivery:
    """What a test delivery became, as `POST /hooks/{source}` would have answered it."""

    __test__ = False  # not a pytest test class, whatever its name

    source: str
    outcome: Outcome
    status_code: int
    """The HTTP status the sender would have got: 201, 200 or the refusal's 401/404/422."""
    reason: str | None
    """Why it was refused or ignored (the exact message the sender would get)."""
    events: list[DeliveredEvent] = field(default_factory=list)
    quarantine_id: int | None = None
    """The refused delivery, kept in the quarantine like any other."""
    headers: dict[str, str] = field(default_factory=dict)
    """The headers sent, signature included (never the secret)."""
    body: str = ""


def sample_body(ctx: Context, name: str) -> str:
    """A fresh sample delivery body (JSON) for the webhook source `name`."""
    source = _webhook(ctx, name)
    return _sample(source.spec, ctx.clock())[0]


def send(
    ctx: Context,
    name: str,
    *,
    base_url: str,
    actor: str,
    body: str | None = None,
    secret: str | None = None,
) -> TestDelivery:
    """Sign `body` (default: a fresh sample) with `secret` (default: the source's own) and
    deliver it through the webhook path. What a sender could be told (refused, ignored, a
    duplicate) is the outcome, not an exception; NotFound for no such source, InvalidInput for
    one that is not a webhook or a secret that cannot sign. `base_url` is OpsLoop's address
    (HubSpot signs the URL it calls)."""
    source = _webhook(ctx, name)
    spec = source.spec
    text, extra = _sample(spec, ctx.clock())
    if body is not None and body.strip():
        text = body
    raw = text.encode("utf-8")
    url = hook_url(spec, base_url)
    headers = {"Content-Type": "application/json", **extra}
    key = secret or source.secret
    if key:
        try:
            headers.update(_signed(spec, raw, key, ctx.clock(), url))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidInput.single(
                "secret",
                "cannot sign with this secret: a Standard Webhooks secret is `whsec_` "
                "followed by base64, and the body must be UTF-8 text",
            ) from None

    def outcome(kind: Outcome, status: int, **more: Any) -> TestDelivery:
        return TestDelivery(name, kind, status, headers=headers, body=text, **more)

    try:
        received = webhooks.receive(
            ctx, name, raw, headers, content_type="application/json", url=url
        )
    except (InvalidInput, Unauthorized, NotFound) as exc:
        status = 404 if isinstance(exc, NotFound) else 401 if isinstance(exc, Unauthorized) else 422
        done = outcome("refused", status, reason=str(exc), quarantine_id=exc.quarantine_id)
    else:
        events = [_event(ctx, a.id, a.status) for a in received.ingested.accepted]
        if received.ignored is not None:
            done = outcome("ignored", 200, reason=received.ignored)
        elif any(e.status == "created" for e in events):
            done = outcome("accepted", 201, reason=None, events=events)
        else:
            done = outcome("duplicate", 200, reason=None, events=events)
    _audit(ctx, done, actor, own_secret=secret is None)
    return done


def command(ctx: Context, name: str, base_url: str, *, secret: str | None = None) -> str | None:
    """A bash script (openssl, curl) that sends a sample delivery as the sender would: for a
    webhook source, signed in the shell; for a segment source, a tracking call with the write
    key. The secret is `$SECRET` (`$WRITE_KEY`) unless given. None for a source that takes no
    deliveries (pulled, or a webhook that refuses every one)."""
    source = get(ctx, name)
    spec = source.spec
    if spec.kind == "segment":
        return _segment_command(base_url, secret)
    if spec.kind != "webhook" or (spec.verify == "none" and not spec.allow_unsigned):
        return None
    body, extra = _sample(spec, ctx.clock(), fixed=True)
    return _webhook_command(spec, hook_url(spec, base_url), body, extra, secret)


def hook_url(spec: SourceSpec, base_url: str) -> str:
    """Where the sender posts: `public_url` when a HubSpot source names one."""
    if spec.verify == "hubspot" and spec.public_url:
        return spec.public_url
    return f"{base_url.rstrip('/')}/hooks/{spec.name}"


# --- signing -------------------------------------------------------------------------------


def _signed(spec: SourceSpec, body: bytes, secret: str, now: datetime, url: str) -> dict[str, str]:
    stamp = int(now.timestamp())
    match spec.verify:
        case "stripe":
            return {STRIPE_HEADER: sign_stripe(body, secret, stamp)}
        case "calendly":
            return {CALENDLY_HEADER: sign_stripe(body, secret, stamp)}
        case "shopify":
            return {SHOPIFY_HEADER: sign_hmac_sha256(body, secret, encoding="base64")}
        case "hubspot":
            millis = stamp * 1000
            signature = sign_hubspot(body, secret, method="POST", url=url, millis=millis)
            return {HUBSPOT_HEADER: signature, HUBSPOT_TIMESTAMP: str(millis)}
        case "standard":
            return sign_standard(body, secret, f"msg_test_{secrets.token_hex(8)}", stamp)
        case "hmac":
            encoding = spec.signature_encoding
            prefix = "sha256=" if encoding == "hex" else ""
            if spec.signed == "timestamp":
                signature = sign_hmac_timestamped(body, secret, stamp, encoding=encoding)
                return {
                    spec.timestamp_header: str(stamp),
                    spec.signature_header: prefix + signature,
                }
            return {
                spec.signature_header: prefix + sign_hmac_sha256(body, secret, encoding=encoding)
            }
    return {}


# --- the shell command ---------------------------------------------------------------------

_HMAC_HEX = "openssl dgst -sha256 -hmac \"$SECRET\" | sed 's/^.*= //'"
_HMAC_BASE64 = 'openssl dgst -sha256 -hmac "$SECRET" -binary | base64'


def _webhook_command(
    spec: SourceSpec, url: str, body: str, extra: dict[str, str], secret: str | None
) -> str:
    lines: list[str] = []
    headers = ["Content-Type: application/json", *(f"{k}: {v}" for k, v in extra.items())]
    quoted = [shlex.quote(h) for h in headers]
    if spec.verify != "none":
        if secret is None:
            lines.append(f"# Set SECRET to the signing secret of {spec.name} first.")
        else:
            lines.append(f"SECRET={shlex.quote(secret)}")
    lines.append(f"BODY={shlex.quote(body)}")
    match spec.verify:
        case "stripe" | "calendly":
            header = STRIPE_HEADER if spec.verify == "stripe" else CALENDLY_HEADER
            lines += [
                "TS=$(date +%s)",
                f'SIG=$(printf \'%s.%s\' "$TS" "$BODY" | {_HMAC_HEX})',
            ]
            quoted.append(f'"{header}: t=$TS,v1=$SIG"')
        case "shopify":
            lines.append(f"SIG=$(printf '%s' \"$BODY\" | {_HMAC_BASE64})")
            quoted.append(f'"{SHOPIFY_HEADER}: $SIG"')
        case "hubspot":
            lines += [
                f"URL={shlex.quote(url)}",
                "TS=$(( $(date +%s) * 1000 ))",
                f'SIG=$(printf \'POST%s%s%s\' "$URL" "$BODY" "$TS" | {_HMAC_BASE64})',
            ]
            quoted += [f'"{HUBSPOT_TIMESTAMP}: $TS"', f'"{HUBSPOT_HEADER}: $SIG"']
        case "standard":
            # The secret is base64 after `whsec_`: its bytes are the HMAC key, given in hex.
            lines += [
                'ID="msg_$(date +%s)_$RANDOM"',
                "TS=$(date +%s)",
                "KEY=$(printf '%s' \"${SECRET#whsec_}\" | base64 -d | od -An -v -tx1 | tr -d ' \\n')",
                'SIG=$(printf \'%s.%s.%s\' "$ID" "$TS" "$BODY" '
                '| openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEY" -binary | base64)',
            ]
            quoted += [
                '"webhook-id: $ID"',
                '"webhook-timestamp: $TS"',
                '"webhook-signature: v1,$SIG"',
            ]
        case "hmac":
            hashed = _HMAC_HEX if spec.signature_encoding == "hex" else _HMAC_BASE64
            prefix = "sha256=" if spec.signature_encoding == "hex" else ""
            if spec.signed == "timestamp":
                lines += ["TS=$(date +%s)", f'SIG=$(printf \'%s.%s\' "$TS" "$BODY" | {hashed})']
                quoted.append(f'"{spec.timestamp_header}: $TS"')
            else:
                lines.append(f"SIG=$(printf '%s' \"$BODY\" | {hashed})")
            quoted.append(f'"{spec.signature_header}: {prefix}$SIG"')
    target = '"$URL"' if spec.verify == "hubspot" else shlex.quote(url)
    lines.append(f"curl -sS {target} \\")
    lines += [f"  -H {header} \\" for header in quoted]
    lines.append('  --data-binary "$BODY"')
    return "\n".join(lines)


def _segment_command(base_url: str, write_key: str | None) -> str:
    call = {
        "userId": "test-42",
        "event": "Test Event Sent",
        "properties": {"sent_by": "OpsLoop set-up"},
        "context": {"traits": {"email": TEST_EMAIL}},
    }
    first = (
        "# Set WRITE_KEY to the source's write key first."
        if write_key is None
        else f"WRITE_KEY={shlex.quote(write_key)}"
    )
    return "\n".join(
        [
            first,
            f"curl -sS {shlex.quote(base_url.rstrip('/') + '/v1/track')} \\",
            '  -u "$WRITE_KEY:" \\',
            "  -H 'Content-Type: application/json' \\",
            f"  --data-binary {shlex.quote(_json(call))}",
        ]
    )


# --- sample bodies -------------------------------------------------------------------------


def _sample(spec: SourceSpec, now: datetime, *, fixed: bool = False) -> tuple[str, dict[str, str]]:
    """(body, unsigned headers the mapping reads) for the source's mapping. `fixed`: the same
    ids each time (a command people read), else fresh ones."""
    token = "1" * 12 if fixed else secrets.token_hex(6)
    number = int(token, 16)
    mapping = spec.mapping if isinstance(spec.mapping, str) else None
    make = _SAMPLES.get(mapping or "", _opsloop_event)
    body, headers = make(token, number, now)
    return _json(body), headers


Sample = Callable[[str, int, datetime], tuple[Any, dict[str, str]]]


def _opsloop_event(token: str, number: int, now: datetime) -> tuple[Any, dict[str, str]]:
    return {
        "type": "test.delivery",
        "subject": f"test:{token}",
        "payload": {"sent_by": "OpsLoop set-up", "sent_at": _iso(now)},
        "idempotency_key": f"test-{token}",
    }, {}


def _stripe(token: str, number: int, now: datetime) -> tuple[Any, dict[str, str]]:
    return {
        "id": f"evt_test_{token}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(now.timestamp()),
        "livemode": False,
        "data": {
            "object": {
                "id": f"cs_test_{token}",
                "object": "checkout.session",
                "amount_total": 1500,
                "currency": "eur",
                "customer_details": {"email": TEST_EMAIL, "name": "Test Customer"},
                "payment_intent": f"pi_test_{token}",
                "payment_status": "paid",
            }
        },
    }, {}


def _shopify(token: str, number: int, now: datetime) -> tuple[Any, dict[str, str]]:
    body = {
        "id": number,
        "name": f"#T{number % 100000}",
        "email": TEST_EMAIL,
        "created_at": _iso(now),
        "total_price": "15.00",
        "currency": "EUR",
        "financial_status": "pending",
        "line_items": [{"title": "Test item", "quantity": 1, "price": "15.00"}],
        "customer": {"first_name": "Test", "last_name": "Customer"},
    }
    return body, {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": f"test-{token}"}


def _hubspot(token: str, number: int, now: datetime) -> tuple[Any, dict[str, str]]:
    return [
        {
            "eventId": number,
            "subscriptionId": 1,
            "portalId": 1,
            "appId": 1,
            "occurredAt": int(now.timestamp()) * 1000,
            "subscriptionType": "contact.creation",
            "attemptNumber": 0,
            "objectId": number,
            "changeSource": "CRM",
            "changeFlag": "NEW",
        }
    ], {}


def _calendly(token: str, number: int, now: datetime) -> tuple[Any, dict[str, str]]:
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    meeting = f"https://api.calendly.com/scheduled_events/TEST{token}"
    return {
        "event": "invitee.created",
        "created_at": _iso(now),
        "payload": {
            "email": TEST_EMAIL,
            "name": "Test Person",
            "uri": f"{meeting}/invitees/{token}",
            "timezone": "UTC",
            "old_invitee": None,
            "text_reminder_number": None,
            "scheduled_event": {
                "name": "Test meeting",
                "start_time": _iso(start),
                "end_time": _iso(start + timedelta(minutes=30)),
                "uri": meeting,
                "location": {"type": "zoom"},
            },
        },
    }, {}


def _helpdesk(token: str, number: int, now: datetime) -> tuple[Any, dict[str, str]]:
    return {
        "event": "ticket.created",
        "ticket": {
            "id": f"T-{token}",
            "subject": "Test ticket",
            "description": "A test delivery from OpsLoop's set-up.",
            "status": "open",
            "priority": "normal",
            "requester": {"email": TEST_EMAIL, "name": "Test Customer"},
            "created_at": _iso(now),
        },
    }, {}


_SAMPLES: dict[str, Sample] = {
    "stripe": _stripe,
    "shopify": _shopify,
    "hubspot": _hubspot,
    "calendly": _calendly,
    "helpdesk": _helpdesk,
}
"""A sample of each built-in mapping's sender (opsloop/perception/mappings/)."""


# --- helpers -------------------------------------------------------------------------------


def _webhook(ctx: Context, name: str) -> StoredSource:
    source = get(ctx, name)
    if source.spec.kind != "webhook":
        raise InvalidInput.single(
            "source", f"{name!r} is a {source.spec.kind} source; test deliveries are for webhooks"
        )
    return source


def _event(ctx: Context, event_id: int, status: Literal["created", "duplicate"]) -> DeliveredEvent:
    event = reading.get_event(ctx, event_id)
    return DeliveredEvent(event_id, status, event["type"], event["subject"])


def _audit(ctx: Context, done: TestDelivery, actor: str, *, own_secret: bool) -> None:
    detail: dict[str, Any] = {
        "outcome": done.outcome,
        "events": [e.id for e in done.events],
        "signed_with": "the source's secret" if own_secret else "a secret given for the test",
    }
    if done.reason:
        detail["reason"] = done.reason
    with ctx.db.transaction() as tx:
        audit.record(tx.conn, ctx.clock(), actor, "source.test_delivery", done.source, detail)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")

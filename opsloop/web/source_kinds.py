"""The ways signals can reach OpsLoop, described for people: the Sources page shows one card per
kind with its endpoints' full URLs, how they authenticate, and copy-paste examples.

To describe a new kind of source (a Segment-compatible API, Stripe …), write a function that
returns its endpoints for the settings and the server's base URL, and add a `SourceKind` to
`SOURCE_KINDS`. Examples must run as written once the placeholders (`$OPSLOOP_TOKEN`, a
secret) are filled in: tests/web/test_source_pages.py runs them against a live server.
Secrets are never put in an example: they are named by the variable that holds them.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from opsloop.settings import Settings, SourceSettings


@dataclass(frozen=True, slots=True)
class Example:
    title: str
    code: str
    """Shell commands (bash)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    method: str
    url: str
    auth: str
    """How a sender proves itself, in words."""
    source: str | None = None
    """The `source` its events are stored under, when it is one name."""
    notes: list[str] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    warning: str | None = None
    """Something to fix: e.g. a hook anyone can post to."""


@dataclass(frozen=True, slots=True)
class SourceKind:
    key: str
    title: str
    summary: str
    endpoints: Callable[[Settings, str], list[Endpoint]]
    """The endpoints for these settings, given the server's base URL (no trailing slash)."""


def events_api(settings: Settings, base: str) -> list[Endpoint]:
    url = f"{base}/api/events"
    one = {
        "type": "lead.created",
        "subject": "lead:42",
        "traits": {"email": "ana@example.com", "company_size": 40},
        "idempotency_key": "crm-lead-42",
    }
    batch = {
        "events": [
            {"type": "order.paid", "subject": "customer:ana@example.com", "payload": {"total": 38}},
            {"type": "ticket.opened", "subject": "customer:ana@example.com"},
        ]
    }
    return [
        Endpoint(
            name="Events",
            method="POST",
            url=url,
            source="api",
            auth="an API token of scope review or admin, as Authorization: Bearer <token>",
            notes=[
                'One event, a list, or {"events": [...]} (up to '
                f"{settings.max_batch_events:,}); each needs a type and a subject (kind:key).",
                "Events are stored under the source api, unless an event names another source.",
                "The same idempotency_key from the same source is stored once.",
                "Owners make tokens under Settings → API tokens, or with "
                "opsloop token create NAME --scope review.",
            ],
            examples=[
                Example("Send one event", _curl_token(url, one)),
                Example("Send a batch", _curl_token(url, batch)),
            ],
        )
    ]


def webhooks(settings: Settings, base: str) -> list[Endpoint]:
    found = [_hook(name, config, base) for name, config in sorted(settings.sources.items())]
    example = "my-tool"
    body = {"type": "order.paid", "subject": "customer:bo@example.com", "payload": {"id": "B-7"}}
    found.append(
        Endpoint(
            name="Any other name",
            method="POST",
            url=f"{base}/hooks/<name>",
            auth="none: a name with no settings accepts OpsLoop events without a signature",
            notes=[
                "The name in the URL becomes the events' source (letters, digits, _, - and .).",
                "Send an Idempotency-Key or webhook-id header so a repeated delivery is stored "
                "once.",
            ],
            examples=[
                Example(f"Send an event as {example}", _curl_plain(f"{base}/hooks/{example}", body))
            ],
            warning="Give every source that others can reach a secret: "
            "OPSLOOP_SOURCES__<NAME>__SECRET (docs/configuration.md).",
        )
    )
    return found


def _hook(name: str, config: SourceSettings, base: str) -> Endpoint:
    url = f"{base}/hooks/{name}"
    variable = f"OPSLOOP_SOURCES__{name.upper()}__SECRET"
    notes: list[str] = []
    if config.maps_body:
        notes.append(
            "Takes your tool's own JSON: the whole body becomes the payload of an event of type "
            f"{config.type or '(the body’s type field)'} about the subject "
            f"{config.subject or '(the body’s subject field)'}."
        )
        notes.append(
            f"Delivery id: {config.idempotency_key}"
            if config.idempotency_key
            else "Delivery id: the Idempotency-Key or webhook-id header."
        )
    else:
        notes.append('Takes OpsLoop events: one, a list, or {"events": [...]}.')
    body = {"type": "order.paid", "subject": "customer:bo@example.com", "payload": {"id": "B-7"}}
    if config.secret is None:
        return Endpoint(
            name=name,
            method="POST",
            url=url,
            source=name,
            auth="none: this source has no secret",
            notes=notes,
            examples=[Example("Send", _curl_plain(url, body, mapped=config.maps_body))],
            warning=f"Anyone who can reach this URL can send events as {name}: set {variable}.",
        )
    header = config.signature_header
    notes.append(
        f"Sign each delivery: the HMAC-SHA256 of the exact raw body with the source's secret "
        f"({variable}), hex-encoded, in the {header} header, optionally prefixed sha256=. "
        "A missing or wrong signature gets 401 and the body is quarantined."
    )
    return Endpoint(
        name=name,
        method="POST",
        url=url,
        source=name,
        auth=f"an HMAC-SHA256 signature of the body in {header}",
        notes=notes,
        examples=[
            Example(
                "Sign and send (bash, openssl, curl)",
                _curl_signed(url, header, variable, body, mapped=config.maps_body),
            )
        ],
    )


def _json(body: object) -> str:
    return json.dumps(body, ensure_ascii=False)


def _curl_token(url: str, body: object) -> str:
    return (
        f"curl -s {shlex.quote(url)} \\\n"
        '  -H "Authorization: Bearer $OPSLOOP_TOKEN" \\\n'
        "  -H 'Content-Type: application/json' \\\n"
        f"  --data-binary {shlex.quote(_json(body))}"
    )


def _curl_plain(url: str, body: object, *, mapped: bool = False) -> str:
    data = "@payload.json" if mapped else shlex.quote(_json(body))
    lines = ["# payload.json: the JSON your tool sends"] if mapped else []
    lines.append(
        f"curl -s {shlex.quote(url)} -H 'Content-Type: application/json' --data-binary {data}"
    )
    return "\n".join(lines)


def _curl_signed(url: str, header: str, variable: str, body: object, *, mapped: bool) -> str:
    secret = f"SECRET='the secret'   # the value of {variable}"
    if mapped:
        return "\n".join(
            [
                secret,
                "# payload.json: the JSON your tool sends; sign exactly the bytes you send",
                "SIG=$(openssl dgst -sha256 -hmac \"$SECRET\" < payload.json | sed 's/^.*= //')",
                f"curl -s {shlex.quote(url)} \\",
                f'  -H "{header}: sha256=$SIG" \\',
                "  -H 'Content-Type: application/json' \\",
                "  --data-binary @payload.json",
            ]
        )
    return "\n".join(
        [
            secret,
            f"BODY={shlex.quote(_json(body))}",
            "SIG=$(printf '%s' \"$BODY\" | openssl dgst -sha256 -hmac \"$SECRET\" | sed 's/^.*= //')",
            f"curl -s {shlex.quote(url)} \\",
            f'  -H "{header}: sha256=$SIG" \\',
            "  -H 'Content-Type: application/json' \\",
            '  --data-binary "$BODY"',
        ]
    )


SOURCE_KINDS: list[SourceKind] = [
    SourceKind(
        key="events-api",
        title="Events API",
        summary="Your own code, scripts and automation tools (Zapier, n8n, Make) send OpsLoop "
        "events with an API token.",
        endpoints=events_api,
    ),
    SourceKind(
        key="webhooks",
        title="Webhooks",
        summary="Other systems post to /hooks/<name>. Declare each as a source "
        "(opsloop source add, docs/sources.md): Stripe, Standard Webhooks or HMAC signatures "
        "and built-in mappings for Stripe, Shopify, HubSpot, Calendly and helpdesks; it is "
        "listed under Your sources. Names configured the older way, in settings "
        "(OPSLOOP_SOURCES), are listed here.",
        endpoints=webhooks,
    ),
]
"""Every kind of source the Sources page describes, in order."""

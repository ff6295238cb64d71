"""The ways signals can reach OpsLoop, described for people: the Sources page shows one card per
kind with its endpoints' full URLs, how they authenticate, and copy-paste examples.

To describe a new kind of source (a Segment-compatible API, Stripe …), write a function that
returns its endpoints for the settings and the server's base URL, and add a `SourceKind` to
`SOURCE_KINDS`. Examples must run as written once the placeholders (`$OPSLOOP_TOKEN`, a
secret) are filled in: the Sources page's tests run them against a live server
(test_source_pages.py in tests/web/).
Secrets are never put in an example: they are named by the variable that holds them.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from opsloop.core.durations import format_duration
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
                "Events are stored under the source api. To send into another source, post "
                "to /hooks/<name> with that source's signature: an event naming another "
                "source here is refused.",
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
    found.append(
        Endpoint(
            name="Your webhook sources",
            method="POST",
            url=f"{base}/hooks/<name>",
            auth="the signature the source's verify names (Stripe, Standard Webhooks, Shopify, "
            "Calendly, HubSpot, or an HMAC-SHA256 of the timestamp and body)",
            notes=[
                "Each sender is a source you declare (Add a source, or opsloop source add; "
                "docs/sources.md): its page here shows its address, how it is checked, and a "
                "command that sends it a signed sample.",
                "A name nobody declared answers 404 and nothing is kept.",
                "A source with verify: none refuses every delivery unless its definition says "
                "allow_unsigned: true.",
            ],
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
    if config.secret is None and config.allow_unsigned:
        return Endpoint(
            name=name,
            method="POST",
            url=url,
            source=name,
            auth="none: allow_unsigned",
            notes=notes,
            examples=[Example("Send", _curl_plain(url, body, mapped=config.maps_body))],
            warning="Accepts unsigned deliveries: anyone who knows the URL can send events as "
            f"{name}. Set {variable} to make senders sign.",
        )
    if config.secret is None:
        return Endpoint(
            name=name,
            method="POST",
            url=url,
            source=name,
            auth="none set: every delivery is refused (401)",
            notes=notes,
            warning=f"Refuses every delivery: set {variable}, or allow_unsigned to accept "
            "anyone's.",
        )
    header = config.signature_header
    if config.signed == "timestamp":
        stamp = config.timestamp_header
        notes.append(
            f"Sign each delivery: the HMAC-SHA256, with the source's secret ({variable}), of "
            f"the Unix time, a dot and the exact raw body, hex-encoded in the {header} header, "
            f"the Unix time in {stamp}. A missing, wrong or stale signature (more than "
            f"{format_duration(config.tolerance)} off) gets 401 and the body is quarantined."
        )
        auth = f"an HMAC-SHA256 signature of {stamp} and the body in {header}"
    else:
        notes.append(
            f"Sign each delivery: the HMAC-SHA256 of the exact raw body with the source's "
            f"secret ({variable}), hex-encoded, in the {header} header, optionally prefixed "
            "sha256=. A missing or wrong signature gets 401 and the body is quarantined."
        )
        auth = f"an HMAC-SHA256 signature of the body in {header}"
    return Endpoint(
        name=name,
        method="POST",
        url=url,
        source=name,
        auth=auth,
        notes=notes,
        examples=[
            Example(
                "Sign and send (bash, openssl, curl)",
                _curl_signed(
                    url,
                    header,
                    variable,
                    body,
                    mapped=config.maps_body,
                    timestamp_header=stamp if config.signed == "timestamp" else None,
                ),
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


def _curl_signed(
    url: str,
    header: str,
    variable: str,
    body: object,
    *,
    mapped: bool,
    timestamp_header: str | None = None,
) -> str:
    lines = [f"SECRET='the secret'   # the value of {variable}"]
    if mapped:
        lines.append("# payload.json: the JSON your tool sends; sign exactly the bytes you send")
        source, data = "cat payload.json", "@payload.json"
    else:
        lines.append(f"BODY={shlex.quote(_json(body))}")
        source, data = "printf '%s' \"$BODY\"", '"$BODY"'
    signed = source
    if timestamp_header:
        # The timestamp, a dot, then the body: a captured delivery cannot be replayed later.
        lines.append("TS=$(date +%s)")
        signed = f"{{ printf '%s.' \"$TS\"; {source}; }}"
    lines.append(f"SIG=$({signed} | openssl dgst -sha256 -hmac \"$SECRET\" | sed 's/^.*= //')")
    lines.append(f"curl -s {shlex.quote(url)} \\")
    if timestamp_header:
        lines.append(f'  -H "{timestamp_header}: $TS" \\')
    lines += [
        f'  -H "{header}: sha256=$SIG" \\',
        "  -H 'Content-Type: application/json' \\",
        f"  --data-binary {data}",
    ]
    return "\n".join(lines)


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
        "(Add a source, or opsloop source add; docs/sources.md): Stripe, Standard Webhooks or "
        "HMAC signatures and built-in mappings for Stripe, Shopify, HubSpot, Calendly and "
        "helpdesks; it is "
        "listed under Your sources. Names configured the older way, in settings "
        "(OPSLOOP_SOURCES), are listed here.",
        endpoints=webhooks,
    ),
]
"""Every kind of source the Sources page describes, in order."""

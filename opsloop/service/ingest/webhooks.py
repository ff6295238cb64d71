"""`POST /hooks/{source}` for a declared webhook source: verify, read, map, check, store once.

The source's `verify` says how a delivery proves its sender (Stripe-Signature, Standard
Webhooks, Shopify's, Calendly's and HubSpot's headers, a generic HMAC header, timestamped by
default). `verify: none` refuses everything unless the source says `allow_unsigned: true`.

A delivery's id makes a redelivery a duplicate when the signature covers it: Standard Webhooks'
`webhook-id`, or what the mapping reads from the body (Stripe's `evt_…`). Any other delivery
header can be changed by whoever replays a captured delivery, so for the other schemes the
content window (`SourceSpec.content_window`, 24h unless set) keeps repeats out instead, and a
signed timestamp refuses a replay once it is older than the tolerance.

Sources only configured in settings (`OPSLOOP_SOURCES`) take the path in
opsloop/service/storing.py; any other name answers 404 and nothing is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opsloop.core.errors import InvalidInput, NotFound, Unauthorized
from opsloop.perception.ingest_bodies import delivery_id, parse_json
from opsloop.perception.records import Record
from opsloop.perception.signatures import (
    STRIPE_HEADER,
    verify_hmac_sha256,
    verify_hmac_timestamped,
    verify_hubspot,
    verify_standard,
    verify_stripe,
)
from opsloop.service.context import Context
from opsloop.service.ingest import signals, storing
from opsloop.service.ingest.sources import StoredSource, find
from opsloop.service.ingest.storing import Ingested


@dataclass(frozen=True, slots=True)
class Received:
    ingested: Ingested
    ignored: str | None
    """Why the delivery made no event (no mapping rule matched), or None."""


def receive(
    ctx: Context,
    name: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    content_type: str | None = None,
    method: str = "POST",
    url: str | None = None,
) -> Received:
    """`url`: the address as received, which HubSpot's signature covers. Raises NotFound for a
    name no webhook source has (nothing is kept) or a disabled source."""
    name = name.lower()
    source = _declared(ctx, name)
    if source is None:
        return Received(
            storing.ingest_hook(ctx, name, body, headers, content_type=content_type), None
        )
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        signed_id = _verify(ctx, source, body, lowered, method=method, url=url)
        data = parse_json(body)
    except (InvalidInput, Unauthorized) as exc:
        storing.quarantine(ctx, source=name, body=body, error=exc, content_type=content_type)
        raise
    header_id = delivery_id(lowered)
    # A delivery header the signature does not cover is only trusted as the key when the
    # source has turned its content window off (`dedupe_window: 0s`).
    key = signed_id or (header_id if source.spec.content_window is None else None)
    shown = signed_id or header_id
    record = Record(
        data=data,
        where=f"delivery {shown}" if shown else "the delivery",
        key=key,
        headers=lowered,
        raw=body,
    )
    taken = signals.take_records(ctx, source.spec, [record], whole=True)
    ignored = taken.ignored_why[0] if taken.ignored and not taken.accepted else None
    batch = len(taken.accepted) != 1
    return Received(Ingested(taken.accepted, batch), ignored)


def receives(ctx: Context, name: str) -> bool:
    """Whether `/hooks/{name}` belongs to a source: an enabled declared webhook source, or one
    configured in settings. Raises NotFound for a disabled one."""
    name = name.lower()
    return _declared(ctx, name) is not None or name in ctx.settings.sources


def _declared(ctx: Context, name: str) -> StoredSource | None:
    """The enabled declared webhook source of this name; None when there is none (the name may
    be configured in settings); NotFound when it is disabled."""
    source = find(ctx, name)
    if source is None or source.spec.kind != "webhook":
        return None
    if not source.enabled:
        raise NotFound(f"source {name!r} is disabled")
    return source


def _verify(
    ctx: Context,
    source: StoredSource,
    body: bytes,
    headers: dict[str, str],
    *,
    method: str,
    url: str | None,
) -> str | None:
    """Check the signature the source's `verify` asks for; return the delivery id when the
    signature covers one (Standard Webhooks' `webhook-id`)."""
    spec = source.spec
    if spec.verify == "none":
        if spec.allow_unsigned:
            return None
        raise storing.unsigned_refused(spec.name, "set `verify` and the sender's signing secret")
    if not source.secret:
        # A source that must verify but has lost its secret (an unset secret_env) refuses
        # everything rather than accepting anyone.
        raise Unauthorized(
            f"source {spec.name!r} has no secret to check signatures with"
            + (f" (set {spec.secret_env})" if spec.secret_env else "")
        )
    now = ctx.clock()
    delivery: str | None = None
    if spec.verify in ("stripe", "calendly"):
        # Calendly signs as Stripe does (t=…,v1=… over `t.body`), in a header of its own.
        header = "Calendly-Webhook-Signature" if spec.verify == "calendly" else STRIPE_HEADER
        verify_stripe(
            body,
            headers.get(header.lower()),
            source.secret,
            tolerance=spec.tolerance,
            now=now,
            header=header,
        )
    elif spec.verify == "shopify":
        header = "X-Shopify-Hmac-Sha256"
        verify_hmac_sha256(
            body, headers.get(header.lower()), source.secret, header, encoding="base64"
        )
    elif spec.verify == "hubspot":
        verify_hubspot(
            body,
            headers,
            source.secret,
            method=method,
            url=spec.public_url or url or "",
            tolerance=spec.tolerance,
            now=now,
        )
    elif spec.verify == "standard":
        delivery = verify_standard(body, headers, source.secret, tolerance=spec.tolerance, now=now)
    elif spec.signed == "timestamp":
        verify_hmac_timestamped(
            body,
            headers,
            source.secret,
            signature_header=spec.signature_header,
            timestamp_header=spec.timestamp_header,
            tolerance=spec.tolerance,
            now=now,
            encoding=spec.signature_encoding,
        )
    else:
        header = spec.signature_header
        verify_hmac_sha256(
            body,
            headers.get(header.lower()),
            source.secret,
            header,
            encoding=spec.signature_encoding,
        )
    return delivery

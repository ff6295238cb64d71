"""`POST /hooks/{source}` for a declared webhook source: verify, read, map, check, store once.

The source's `verify` says how a delivery proves its sender (Stripe-Signature, Standard
Webhooks, Shopify's and Calendly's headers, a generic HMAC header). A delivery's id — Standard Webhooks' `webhook-id`, the
provider's delivery header, or what the mapping reads from the body (Stripe's `evt_…`) — makes
a redelivery a duplicate. Sources only configured in settings (`OPSLOOP_SOURCES`) keep the
older path in opsloop/service/ingesting.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opsloop.core.errors import InvalidInput, NotFound, Unauthorized
from opsloop.perception.bodies import delivery_id, parse_json
from opsloop.perception.records import Record
from opsloop.perception.signatures import (
    STRIPE_HEADER,
    verify_hmac_sha256,
    verify_hubspot,
    verify_standard,
    verify_stripe,
)
from opsloop.service import ingesting, signals
from opsloop.service.context import Context
from opsloop.service.ingesting import Ingested
from opsloop.service.source_registry import StoredSource, find


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
    """`url`: the address as received, which HubSpot's signature covers."""
    name = name.lower()
    source = find(ctx, name)
    if source is None or source.spec.kind != "webhook":
        return Received(
            ingesting.ingest_hook(ctx, name, body, headers, content_type=content_type), None
        )
    if not source.enabled:
        raise NotFound(f"source {name!r} is disabled")
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        delivery = _verify(ctx, source, body, lowered, method=method, url=url)
        data = parse_json(body)
    except (InvalidInput, Unauthorized) as exc:
        ingesting.quarantine(ctx, source=name, body=body, error=exc, content_type=content_type)
        raise
    record = Record(
        data=data,
        where=f"delivery {delivery}" if delivery else "the delivery",
        key=delivery,
        headers=lowered,
        raw=body,
    )
    taken = signals.take_records(ctx, source.spec, [record], whole=True)
    ignored = taken.ignored_why[0] if taken.ignored and not taken.accepted else None
    batch = len(taken.accepted) != 1
    return Received(Ingested(taken.accepted, batch), ignored)


def _verify(
    ctx: Context,
    source: StoredSource,
    body: bytes,
    headers: dict[str, str],
    *,
    method: str,
    url: str | None,
) -> str | None:
    """Check the signature the source's `verify` asks for; return the delivery id, if any."""
    spec = source.spec
    delivery = delivery_id(headers)
    if spec.verify == "none":
        return delivery
    if not source.secret:
        # A source that must verify but has lost its secret (an unset secret_env) refuses
        # everything rather than accepting anyone.
        raise Unauthorized(
            f"source {spec.name!r} has no secret to check signatures with"
            + (f" (set {spec.secret_env})" if spec.secret_env else "")
        )
    now = ctx.clock()
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

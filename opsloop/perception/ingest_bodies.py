"""Reading ingest bodies: one event, a list, or `{"events": [...]}`; and mapping arbitrary
webhook JSON to an event when a source is configured to."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from opsloop.core.errors import FieldError, InvalidInput
from opsloop.core.events import NewEvent, validate_events
from opsloop.core.expressions import ExpressionError, compile_expression
from opsloop.perception.big_integers import keep_beyond_range, refuse_beyond_range
from opsloop.settings import SourceSettings

NUL_ESCAPE = b"\\u0000"
NUL_REFUSED = "contains \\u0000 (a NUL character), which cannot be stored; remove it"

# Headers senders put their delivery id in, first found wins: a redelivery is stored once.
DELIVERY_HEADERS = (
    "webhook-id",  # Standard Webhooks (Svix, Resend, ...)
    "idempotency-key",
    "x-shopify-webhook-id",
    "x-github-delivery",
    "x-request-id",
)


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """The sender's id for this delivery, from `headers` with lowercased names."""
    return next((headers[name] for name in DELIVERY_HEADERS if headers.get(name)), None)


def parse_json(body: bytes, *, exact: bool = True) -> Any:
    """The JSON value of an ingest body, or InvalidInput saying what is wrong with it: malformed,
    empty, a NUL character, or an integer beyond 64 bits (named by its path, see
    opsloop/perception/big_integers.py). `exact=False` lets such an integer through as an
    `orjson.Fragment` (dumped back unchanged): only for a caller that reads one field (a write
    key) and checks the body with `refuse_beyond_range` before it uses the rest."""
    if NUL_ESCAPE in body:
        # PostgreSQL cannot store a NUL character in text or JSON; refuse it clearly here.
        raise InvalidInput([FieldError("body", NUL_REFUSED)])
    if not body.strip():
        raise InvalidInput([FieldError("body", 'is empty; send a JSON event or {"events": [...]}')])
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            [
                FieldError(
                    "body", f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                )
            ]
        ) from None
    if not exact:
        return keep_beyond_range(body, data)
    refuse_beyond_range(body, data=data)
    return data


def refuse_nul(data: Any, path: str = "") -> None:
    """InvalidInput naming the first place in a pulled record (a key or a string value) that
    holds a NUL character: PostgreSQL stores none in text or JSON, and a row from a database,
    a mailbox or an API can carry one where no JSON escape gave it away."""
    if isinstance(data, str):
        if "\x00" in data:
            raise InvalidInput([FieldError(path or "value", NUL_REFUSED)])
    elif isinstance(data, Mapping):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                raise InvalidInput([FieldError(where.replace("\x00", ""), NUL_REFUSED)])
            refuse_nul(value, where)
    elif isinstance(data, list | tuple):
        for index, value in enumerate(data):
            refuse_nul(value, f"{path}[{index}]")


def events_from_body(
    body: bytes, *, source: str, received_at: datetime, max_batch: int
) -> tuple[list[NewEvent], bool]:
    """Validate an ingest body; return (events, whether it was a batch). Raise InvalidInput
    naming each bad field (`events[3].subject`)."""
    return events_from_data(
        parse_json(body), source=source, received_at=received_at, max_batch=max_batch
    )


def events_from_data(
    data: Any, *, source: str, received_at: datetime, max_batch: int
) -> tuple[list[NewEvent], bool]:
    """`events_from_body` for a body already parsed: one event, a list, or
    `{"events": [...]}`."""
    if isinstance(data, dict) and "events" in data:
        extra = sorted(set(data) - {"events"})
        if extra:
            raise InvalidInput([FieldError(extra[0], "unknown field next to `events`")])
        items, prefix = data["events"], "events"
        if not isinstance(items, list):
            raise InvalidInput([FieldError("events", "must be a list of events")])
    elif isinstance(data, list):
        items, prefix = data, "events"
    else:
        items, prefix = [data], ""
    if not items:
        raise InvalidInput([FieldError(prefix or "body", "holds no events")])
    if len(items) > max_batch:
        raise InvalidInput(
            [
                FieldError(
                    prefix, f"a batch holds at most {max_batch} events; this one has {len(items)}"
                )
            ]
        )
    # What a sender posts is stored in the source its credential names, never one it claims.
    events = validate_events(
        items, source=source, received_at=received_at, prefix=prefix, own_source_only=True
    )
    return events, bool(prefix)


def map_hook_body(
    body: bytes,
    *,
    source: str,
    config: SourceSettings,
    received_at: datetime,
    delivery_id: str | None,
) -> list[NewEvent]:
    """Turn a provider's JSON into one event using the source's `type` and `subject` settings.

    The whole body becomes the payload; `subject` and `idempotency_key` are expressions over it.
    """
    data = parse_json(body)
    if not isinstance(data, dict):
        raise InvalidInput([FieldError("body", "must be a JSON object for this source")])
    item: dict[str, Any] = {"type": config.type or data.get("type"), "payload": data}
    item["subject"] = (
        _evaluate(config.subject, data, "subject") if config.subject else data.get("subject")
    )
    key = (
        _evaluate(config.idempotency_key, data, "idempotency_key")
        if config.idempotency_key
        else None
    )
    item["idempotency_key"] = str(key) if key not in (None, "") else delivery_id
    missing = [name for name in ("type", "subject") if not item.get(name)]
    if missing:
        raise InvalidInput(
            [
                FieldError(
                    name, f"is missing: the body has no `{name}` and source {source!r} maps none"
                )
                for name in missing
            ]
        )
    if not isinstance(item["subject"], str):
        item["subject"] = str(item["subject"])
    return validate_events([item], source=source, received_at=received_at)


def _evaluate(expression: str, data: dict[str, Any], field: str) -> Any:
    try:
        value = compile_expression(expression).evaluate(data)
    except ExpressionError as exc:
        raise InvalidInput(
            [FieldError(field, f"the source's expression {expression!r} failed: {exc}")]
        ) from None
    if value is None or value == "":
        raise InvalidInput(
            [
                FieldError(
                    field, f"the source's expression {expression!r} gave nothing for this body"
                )
            ]
        )
    return value

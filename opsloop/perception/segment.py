"""Segment's tracking spec: calls (track, identify, page, screen, group, alias) and batches,
checked against Segment's limits and turned into OpsLoop events. Pure: no I/O.

What each call becomes (the reference is docs/sources.md#tracking-segment-compatible):

| call | event type | subject | payload / traits |
| --- | --- | --- | --- |
| track `Order Completed` | `track.order_completed` | the user | properties |
| page | `page.viewed` | the user | properties, with `url path title referrer search` |
| screen | `screen.viewed` | the user | properties, `name`, `category` |
| identify | `identify` | the user | traits merged into the profile |
| group | `group.joined` | the user | `group_id`, `group` (`account:<id>`), `traits` |
| group, with traits | + `group.updated` | `account:<id>` | traits merged into its profile |
| alias | `alias` | the user | `previous_id` |

The user is `<subject_kind>:<userId>`, or `<visitor_kind>:<anonymousId>` before they are known.
Every payload also holds `call`: the call's `type`, `event`, ids and `context` (ip, userAgent,
page, campaign...), so nothing the sender said is lost.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from opsloop.core.errors import FieldError, InvalidInput, TooLarge
from opsloop.core.events import NewEvent, Subject
from opsloop.core.sources import SegmentConfig
from opsloop.core.times import RANGE, TimeOutOfRange, event_time

CallType = Literal["track", "identify", "page", "screen", "group", "alias"]
CALL_TYPES: tuple[CallType, ...] = ("track", "identify", "page", "screen", "group", "alias")
ENDPOINTS: dict[str, str] = {
    **{name: name for name in (*CALL_TYPES, "batch")},
    "import": "batch",  # Segment's older name for /v1/batch
    # analytics.js posts to the first letter of the call: /v1/t, /v1/p, /v1/i ...
    **{name[0]: name for name in (*CALL_TYPES, "batch")},
}
"""Path after `/v1/` → the call it receives (`batch` for a batch)."""

# Segment's HTTP Tracking API limits: 32 KB per call, 500 KB per batch request, and at most
# 2,500 calls in a batch.
MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_CALLS = 2500
MAX_ID_CHARS = 200
"""userId, anonymousId, groupId, previousId, messageId: longer ones are refused."""
MAX_TYPE_CHARS = 100
MAX_KEY_CHARS = 200
"""An event's idempotency key is at most this long (the ledger's column)."""

PAGE_FIELDS = ("url", "path", "title", "referrer", "search")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9.]+")


@dataclass(frozen=True, slots=True)
class Call:
    """One call, checked: ids as text, times resolved to UTC."""

    type: CallType
    where: str
    """`the call`, or `batch[3]` within a batch: for messages."""
    data: dict[str, Any]
    """The call as sent, with the batch's shared `context` and `sentAt` folded in: what is kept
    in quarantine if its events are refused later."""
    occurred_at: datetime
    user_id: str | None = None
    anonymous_id: str | None = None
    message_id: str | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    group_id: str | None = None
    previous_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


def endpoint(path: str) -> str:
    """The call a `/v1/<path>` receives, or InvalidInput."""
    try:
        return ENDPOINTS[path]
    except KeyError:
        raise InvalidInput.single(
            "path", f"/v1/{path} is not a tracking endpoint; use one of {', '.join(CALL_TYPES)}"
        ) from None


def request_items(data: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    """The calls in a request body as (where, call), each call with the batch's shared `context`,
    `integrations` and `sentAt` folded in. Raises InvalidInput for a body that is not a call or
    a batch at all (each call is checked on its own by `read_call`)."""
    call = endpoint(path)
    if not isinstance(data, dict):
        raise InvalidInput.single("body", "must be a JSON object")
    # The write key proves the sender; it is not part of the call (and is not kept with it).
    data = {key: value for key, value in data.items() if key != "writeKey"}
    if call != "batch":
        sent = data.get("type")
        if sent is not None and sent != call:
            raise InvalidInput.single("type", f"is {sent!r}, but this is /v1/{path} ({call})")
        return [("the call", {**data, "type": call})]
    items = data.get("batch")
    if not isinstance(items, list):
        raise InvalidInput.single("batch", "is required: a list of calls, each with its `type`")
    if not items:
        raise InvalidInput.single("batch", "is empty")
    if len(items) > MAX_BATCH_CALLS:
        raise TooLarge.single(
            "batch", f"holds {len(items)} calls; the limit is {MAX_BATCH_CALLS} per request"
        )
    shared = {key: data[key] for key in ("sentAt", "context", "integrations") if key in data}
    out = []
    for index, item in enumerate(items):
        where = f"batch[{index}]"
        if isinstance(item, dict) and shared:
            merged = dict(item)
            for key, value in shared.items():
                if key == "context" and isinstance(value, dict):
                    inner = item.get("context")
                    merged[key] = {**value, **(inner if isinstance(inner, dict) else {})}
                else:
                    merged.setdefault(key, value)
            item = merged
        out.append((where, item))
    return out


def read_call(item: Any, *, received_at: datetime, prefix: str = "") -> Call:
    """Check one call against Segment's spec; raise InvalidInput naming every bad field
    (`prefix` is put before each field: `batch[3].userId`)."""
    errors: list[FieldError] = []

    def bad(name: str, message: str) -> None:
        errors.append(FieldError(f"{prefix}.{name}" if prefix else name, message))

    if not isinstance(item, dict):
        raise InvalidInput.single(prefix or "body", "must be a JSON object (one call)")
    size = len(orjson.dumps(item))
    if size > MAX_CALL_BYTES:
        raise TooLarge.single(
            prefix or "body", f"is {size} bytes; a call may be at most 32 KB ({MAX_CALL_BYTES})"
        )
    kind = item.get("type")
    if kind not in CALL_TYPES:
        bad("type", f"must be one of {', '.join(CALL_TYPES)}" if kind else "is required")
        raise InvalidInput(errors)

    user_id = _id(item, "userId", bad)
    anonymous_id = _id(item, "anonymousId", bad)
    message_id = _id(item, "messageId", bad)
    if kind == "alias":
        previous_id = _id(item, "previousId", bad)
        if previous_id is None and "previousId" not in item:
            bad("previousId", "is required in an alias call")
        if user_id is None and "userId" not in item:
            bad("userId", "is required in an alias call")
    else:
        previous_id = None
        if user_id is None and anonymous_id is None:
            bad("userId", "is required, or anonymousId when the user is not known yet")
    group_id = _id(item, "groupId", bad) if kind == "group" else None
    if kind == "group" and group_id is None and "groupId" not in item:
        bad("groupId", "is required in a group call")

    event = item.get("event")
    if kind == "track" and (not isinstance(event, str) or not event.strip()):
        bad("event", "is required in a track call: the name of what happened")
    properties = _object(item, "properties", bad)
    traits = _object(item, "traits", bad)
    context = _object(item, "context", bad)
    name = _text(item, "name", bad)
    category = _text(item, "category", bad)
    occurred_at = _occurred_at(item, received_at, bad)
    if errors:
        raise InvalidInput(errors)
    return Call(
        type=kind,
        where=prefix or "the call",
        data=item,
        occurred_at=occurred_at,
        user_id=user_id,
        anonymous_id=anonymous_id,
        message_id=message_id,
        event=event.strip() if kind == "track" and isinstance(event, str) else None,
        name=name,
        category=category,
        group_id=group_id,
        previous_id=previous_id,
        properties=properties,
        traits=traits,
        context=context,
    )


def event_type(name: str) -> str:
    """A track call's event name as an OpsLoop event type: `track.` then the name in lower
    snake case — `Order Completed` and `orderCompleted` → `track.order_completed`; dots are
    kept (`checkout.step 2` → `track.checkout.step_2`). A name with no latin letter or digit
    (`注文完了`) gets a stable `track.event_<hash>`; the name itself is in the payload."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = _NOT_WORD.sub("_", _CAMEL.sub("_", ascii_name).lower())
    parts = [part.strip("_") for part in words.split(".")]
    snake = ".".join(part for part in parts if part)
    if not snake:
        snake = "event_" + hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"track.{snake}"[:MAX_TYPE_CHARS].rstrip("._")


def subject_of(call: Call, config: SegmentConfig) -> str:
    """Whom the call is about: the user, or the anonymous visitor before they are known."""
    if call.user_id is not None:
        return f"{config.subject_kind}:{call.user_id}"
    return f"{config.visitor_kind}:{call.anonymous_id}"


def links_of(call: Call, config: SegmentConfig) -> list[tuple[str, str]]:
    """(alias, subject) pairs a call says are one person: the visitor's anonymousId and the
    userId it carries with it (identify, and any call sent after the user signed in), and an
    alias call's previousId, as a visitor or as an earlier user, and its userId."""
    if call.user_id is None:
        return []
    subject = f"{config.subject_kind}:{call.user_id}"
    links = []
    if call.anonymous_id is not None:
        links.append((f"{config.visitor_kind}:{call.anonymous_id}", subject))
    if call.type == "alias" and call.previous_id is not None:
        links.append((f"{config.visitor_kind}:{call.previous_id}", subject))
        if call.previous_id != call.user_id:
            links.append((f"{config.subject_kind}:{call.previous_id}", subject))
    return [(alias, target) for alias, target in links if alias != target]


def events_of(
    call: Call,
    *,
    source: str,
    config: SegmentConfig,
    received_at: datetime,
    resolve: Callable[[str], str] | None = None,
) -> list[NewEvent]:
    """The OpsLoop events a call becomes: one, and for a group call with traits a second,
    `group.updated` about the group, whose traits merge into the group's profile as identify's
    do into the user's. `resolve` maps a visitor's subject to the user it is known to be
    (identity stitching); a call carrying its userId is filed under that user."""
    subject = subject_of(call, config)
    if call.user_id is None and resolve is not None:
        subject = resolve(subject)
    try:
        Subject.parse(subject)
    except ValueError as exc:
        # Only a misconfigured kind gets here: ids are checked by `read_call`.
        raise InvalidInput.single("segment", str(exc)) from None
    envelope: dict[str, Any] = {"type": call.type}
    if call.event is not None:
        envelope["event"] = call.event
    for key, value in (("user_id", call.user_id), ("anonymous_id", call.anonymous_id)):
        if value is not None:
            envelope[key] = value
    if call.context:
        envelope["context"] = call.context
    payload: dict[str, Any] = dict(call.properties)
    traits: dict[str, Any] = {}
    group = f"{config.group_kind}:{call.group_id}"
    if call.type == "track":
        assert call.event is not None
        kind = event_type(call.event)
    elif call.type in ("page", "screen"):
        kind = f"{call.type}.viewed"
        page = call.context.get("page")
        for key in PAGE_FIELDS if call.type == "page" else ():
            if payload.get(key) is None and isinstance(page, Mapping) and key in page:
                payload[key] = page[key]
        for key, value in (("name", call.name), ("category", call.category)):
            if value is not None:
                payload.setdefault(key, value)
    elif call.type == "identify":
        kind, traits = "identify", call.traits
    elif call.type == "group":
        kind = "group.joined"
        payload.update(
            group_id=call.group_id,
            group=group,
            traits=call.traits,
        )
    else:
        kind = "alias"
        payload["previous_id"] = call.previous_id
    payload["call"] = envelope
    message_key = call.message_id or _content_key(call)
    events = [
        NewEvent(
            source=source,
            type=kind,
            subject=subject,
            occurred_at=call.occurred_at,
            received_at=received_at,
            payload=payload,
            traits=traits,
            idempotency_key=message_key,
        )
    ]
    if call.type == "group" and call.traits:
        # The account's profile, as identify keeps the user's. A group call without traits
        # says nothing about the account, so it makes no event about it.
        events.append(
            NewEvent(
                source=source,
                type="group.updated",
                subject=group,
                occurred_at=call.occurred_at,
                received_at=received_at,
                payload={"group_id": call.group_id, "member": subject, "call": envelope},
                traits=dict(call.traits),
                idempotency_key=_derived_key(message_key, "group"),
            )
        )
    return events


def _content_key(call: Call) -> str:
    """A call without a messageId (a hand-written curl) is keyed by its content, so sending it
    twice stores it once. Segment's libraries always send a messageId."""
    digest = hashlib.sha256(orjson.dumps(call.data, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"content:{digest[:32]}"


def _derived_key(key: str, suffix: str) -> str:
    """The key of a second event from one call: `<key>:<suffix>`, so a retried call stores it
    once too; hashed when that would not fit, since a messageId may itself take 200 chars."""
    derived = f"{key}:{suffix}"
    if len(derived) <= MAX_KEY_CHARS:
        return derived
    return f"{suffix}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def _id(item: Mapping[str, Any], key: str, bad: Callable[[str, str], None]) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        bad(key, "must be text (or a whole number)")
        return None
    text = str(value).strip()
    if not text:
        return None
    if len(text) > MAX_ID_CHARS:
        bad(key, f"is {len(text)} characters; the limit is {MAX_ID_CHARS}")
        return None
    return text


def _object(item: Mapping[str, Any], key: str, bad: Callable[[str, str], None]) -> dict[str, Any]:
    value = item.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        bad(key, "must be a JSON object")
        return {}
    return value


def _text(item: Mapping[str, Any], key: str, bad: Callable[[str, str], None]) -> str | None:
    value = item.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        bad(key, "must be text")
        return None
    return value


def _occurred_at(
    item: Mapping[str, Any], received_at: datetime, bad: Callable[[str, str], None]
) -> datetime:
    """When it happened, as Segment decides it: `timestamp` when the sender gives one; else the
    device's `originalTimestamp` corrected for its clock being off by `receivedAt - (sentAt -
    originalTimestamp)`; else when it arrived."""
    timestamp = _time(item, "timestamp", bad)
    if timestamp is not None:
        return timestamp
    original = _time(item, "originalTimestamp", bad)
    if original is None:
        return received_at
    sent = _time(item, "sentAt", bad)
    if sent is None:
        return original
    # Both are in range, so this cannot overflow; but a device clock centuries off can still
    # carry the corrected time out of the range.
    corrected = received_at - (sent - original)
    try:
        return event_time(corrected)
    except TimeOutOfRange:
        bad(
            "originalTimestamp",
            f"corrected for the device's clock (sentAt {sent.isoformat()}, received at "
            f"{received_at.isoformat()}) it would be {corrected.isoformat()}, outside the times "
            f"OpsLoop accepts, {RANGE}",
        )
        return received_at


def _time(item: Mapping[str, Any], key: str, bad: Callable[[str, str], None]) -> datetime | None:
    value = item.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00", 1))
        except ValueError:
            bad(key, f"{value!r} is not an ISO 8601 time such as 2026-03-02T09:00:00Z")
            return None
        try:
            # Without a zone it is UTC, as everywhere in OpsLoop.
            return event_time(moment, zone=UTC)
        except TimeOutOfRange as exc:
            bad(key, str(exc))
            return None
    bad(key, "must be an ISO 8601 time in text, such as 2026-03-02T09:00:00Z")
    return None

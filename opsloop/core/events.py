"""Events: the validated, normalized signals the ledger holds, and the subjects they are about."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opsloop.core.errors import FieldError, InvalidInput
from opsloop.core.times import event_time

EVENT_TYPE_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$"
SUBJECT_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Subject:
    """A business entity as `kind:key` — `lead:42`, `ticket:981`, `customer:ana@x.co`."""

    kind: str
    key: str

    @classmethod
    def parse(cls, text: str) -> Subject:
        kind, sep, key = text.partition(":")
        if not sep or not key:
            raise ValueError(f"{text!r} is not a subject; write kind:key, e.g. lead:42")
        if not SUBJECT_KIND_PATTERN.match(kind):
            raise ValueError(
                f"subject kind {kind!r} must start with a lowercase letter and use a-z, 0-9, _"
            )
        return cls(kind, key)

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


def subject_kind(subject: str) -> str:
    return subject.partition(":")[0]


class EventIn(BaseModel):
    """The wire shape of one event sent to `POST /api/events` or `/hooks/{source}`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: str = Field(max_length=100, pattern=EVENT_TYPE_PATTERN)
    subject: str = Field(max_length=300)
    occurred_at: datetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    source: str | None = Field(default=None, max_length=100, pattern=r"^[A-Za-z0-9_\-.]+$")

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return str(Subject.parse(value))

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        # A time without a zone is taken as UTC: it is what most exporters mean.
        return event_time(value, zone=UTC)


EVENT_FIELDS = tuple(EventIn.model_fields)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event ready to be stored: every field resolved, times in UTC."""

    source: str
    type: str
    subject: str
    occurred_at: datetime
    received_at: datetime
    payload: dict[str, Any]
    traits: dict[str, Any]
    idempotency_key: str | None


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    source: str
    type: str
    subject: str
    occurred_at: datetime
    received_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """The part of a past event that features read."""

    type: str
    occurred_at: datetime
    payload: dict[str, Any]
    source: str = ""
    id: int = 0


def validate_events(
    items: list[Any],
    *,
    source: str,
    received_at: datetime,
    prefix: str = "",
    own_source_only: bool = False,
) -> list[NewEvent]:
    """Validate raw JSON values as events; raise InvalidInput listing every bad field.

    `prefix` names the position in the request (`events[3]`) so the message points at it.
    An event may name its `source`; with `own_source_only` (what a sender posts: the
    credential that delivered it decides the source) only `source` itself is accepted.
    """
    errors: list[FieldError] = []
    events: list[NewEvent] = []
    for index, item in enumerate(items):
        where = f"{prefix}[{index}]" if prefix else ""
        if not isinstance(item, dict):
            errors.append(FieldError(where or "body", "must be a JSON object"))
            continue
        claimed = item.get("source") if own_source_only else None
        foreign = isinstance(claimed, str) and claimed.strip().lower() != source
        if foreign:
            named = f"{where}.source" if where else "source"
            errors.append(FieldError(named, _foreign_source(str(claimed), source)))
        try:
            parsed = EventIn.model_validate(item)
        except ValidationError as exc:
            errors.extend(field_errors(exc, where))
            continue
        if foreign:
            continue
        events.append(
            NewEvent(
                source=source if own_source_only else parsed.source or source,
                type=parsed.type,
                subject=parsed.subject,
                occurred_at=parsed.occurred_at or received_at,
                received_at=received_at,
                payload=parsed.payload,
                traits=parsed.traits,
                idempotency_key=parsed.idempotency_key,
            )
        )
    if errors:
        raise InvalidInput(errors)
    return events


def _foreign_source(claimed: str, source: str) -> str:
    name = claimed.strip()[:100]
    return (
        f"is {name!r}, but events sent here are stored in the source {source!r}; to send "
        f"events into {name!r}, post them to /hooks/{name} signed with that source's secret "
        "(docs/sources.md#webhooks)"
    )


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Turn pydantic's errors into `field: message` pairs a person can act on."""
    out: list[FieldError] = []
    for error in exc.errors(include_url=False):
        path = join_path(prefix, error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            name = str(error["loc"][-1])
            message = "unknown field" + did_you_mean(name, EVENT_FIELDS)
        elif error["type"] == "string_pattern_mismatch" and error["loc"][-1] == "type":
            message = "must look like `lead.created`: letters, digits, _ or -, dot-separated"
        elif error["type"] == "missing":
            message = "is required"
        elif error["type"] == "dict_type":
            message = "must be a JSON object"
        elif error["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        out.append(FieldError(path, message))
    return out


def did_you_mean(name: str, candidates: Any) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def join_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path

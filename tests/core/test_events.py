"""Validating incoming events: what a sender is told when an event is wrong, and how times are
normalized. Also the duration notation playbooks use for windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsloop.core.durations import format_duration, parse_duration
from opsloop.core.errors import InvalidInput
from opsloop.core.events import NewEvent, Subject, validate_events

RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def validate(*items: Any, prefix: str = "") -> list[NewEvent]:
    return validate_events(list(items), source="api", received_at=RECEIVED, prefix=prefix)


def errors_of(*items: Any, prefix: str = "") -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        validate(*items, prefix=prefix)
    return [(e.field, e.message) for e in caught.value.errors]


def test_a_valid_event_is_normalized_with_defaults_filled_in() -> None:
    [event] = validate({"type": "lead.created", "subject": " lead:42 ", "payload": {"a": 1}})
    assert event == NewEvent(
        source="api",
        type="lead.created",
        subject="lead:42",
        occurred_at=RECEIVED,
        received_at=RECEIVED,
        payload={"a": 1},
        traits={},
        idempotency_key=None,
    )


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("lead42", "'lead42' is not a subject; write kind:key, e.g. lead:42"),
        ("lead:", "'lead:' is not a subject; write kind:key, e.g. lead:42"),
        ("Lead:42", "subject kind 'Lead' must start with a lowercase letter and use a-z, 0-9, _"),
    ],
)
def test_subject_must_be_kind_colon_key(subject: str, message: str) -> None:
    assert errors_of({"type": "lead.created", "subject": subject}) == [("subject", message)]


def test_a_subject_key_may_contain_colons_and_at_signs() -> None:
    assert Subject.parse("customer:ana@x.co:eu") == Subject("customer", "ana@x.co:eu")
    assert str(Subject.parse("customer:ana@x.co:eu")) == "customer:ana@x.co:eu"


@pytest.mark.parametrize("event_type", ["lead created", ".created", "lead..created", "1lead"])
def test_event_type_must_look_like_a_dotted_name(event_type: str) -> None:
    assert errors_of({"type": event_type, "subject": "lead:1"}) == [
        ("type", "must look like `lead.created`: letters, digits, _ or -, dot-separated")
    ]


def test_an_unknown_field_suggests_the_field_meant() -> None:
    item = {"type": "lead.created", "subject": "lead:1", "occured_at": "2026-03-01T10:00:00Z"}
    assert errors_of(item) == [("occured_at", "unknown field; did you mean 'occurred_at'?")]


def test_a_time_without_a_zone_is_taken_as_utc() -> None:
    [event] = validate(
        {"type": "lead.created", "subject": "lead:1", "occurred_at": "2026-03-01T10:00:00"}
    )
    assert event.occurred_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_a_time_with_an_offset_is_converted_to_utc() -> None:
    [event] = validate(
        {"type": "lead.created", "subject": "lead:1", "occurred_at": "2026-03-01T10:00:00+02:00"}
    )
    assert event.occurred_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)


def test_a_time_that_is_not_a_time_is_refused_naming_the_field() -> None:
    [(field, _message)] = errors_of(
        {"type": "lead.created", "subject": "lead:1", "occurred_at": "yesterday"}
    )
    assert field == "occurred_at"


@pytest.mark.parametrize("payload", [[1, 2], "text", 3])
def test_payload_must_be_an_object(payload: Any) -> None:
    item = {"type": "lead.created", "subject": "lead:1", "payload": payload}
    assert errors_of(item) == [("payload", "must be a JSON object")]


def test_errors_in_a_batch_name_the_position_of_the_bad_event() -> None:
    good = {"type": "lead.created", "subject": "lead:1"}
    bad = {"type": "lead.created", "subject": "x"}
    assert errors_of(good, good, bad, prefix="events") == [
        ("events[2].subject", "'x' is not a subject; write kind:key, e.g. lead:42")
    ]


def test_every_error_of_a_batch_is_reported_together() -> None:
    good = {"type": "lead.created", "subject": "lead:1"}
    found = errors_of(
        good,
        {"type": "lead created", "subject": "lead:2"},
        "not an object",
        {"subject": "lead:4", "payload": []},
        prefix="events",
    )
    assert found == [
        ("events[1].type", "must look like `lead.created`: letters, digits, _ or -, dot-separated"),
        ("events[2]", "must be a JSON object"),
        ("events[3].type", "is required"),
        ("events[3].payload", "must be a JSON object"),
    ]


def test_the_error_message_joins_every_problem_for_the_http_answer() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate({"subject": "lead:1", "typ": "x"})
    assert str(caught.value) == "type: is required; typ: unknown field; did you mean 'type'?"


def test_an_event_may_name_its_own_source_and_idempotency_key() -> None:
    [event] = validate(
        {
            "type": "deal.won",
            "subject": "lead:1",
            "source": "hubspot",
            "idempotency_key": "deal-9",
        }
    )
    assert (event.source, event.idempotency_key) == ("hubspot", "deal-9")


# --- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("3d", timedelta(days=3)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_durations_round_trip_through_their_written_form(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta
    assert format_duration(delta) == text


@pytest.mark.parametrize("text", ["7d", "14d", "1.5h", "120m", "3600s", "45s", "0s", " 30 m "])
def test_a_formatted_duration_parses_back_to_the_same_length(text: str) -> None:
    delta = parse_duration(text)
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize("text", ["99999999999w", "6000w", "9" * 400 + "s"])
def test_a_duration_past_a_hundred_years_is_refused_not_overflowed(text: str) -> None:
    with pytest.raises(ValueError, match="longer than 100 years"):
        parse_duration(text)
    assert parse_duration("5200w") == timedelta(weeks=5200)


def test_a_duration_is_written_in_the_largest_whole_unit() -> None:
    assert format_duration(parse_duration("7d")) == "1w"
    assert format_duration(parse_duration("1.5h")) == "90m"
    assert format_duration(parse_duration("120m")) == "2h"
    assert format_duration(timedelta(0)) == "0s"


@pytest.mark.parametrize("text", ["1 hour", "7", "d", "-1d", "7days", ""])
def test_a_duration_in_another_notation_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="write a number and a unit: 90s, 15m, 12h, 7d or 2w"):
        parse_duration(text)

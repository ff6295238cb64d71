"""Values at the edges, read where signals become events: times near year 1 or 9999 and
integers beyond 64 bits are refused with a message naming the field (never an overflow), and
a number too long to keep is kept as text where the reader chose its type (CSV, SQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from opsloop.core.contracts import parse_contracts
from opsloop.core.errors import FieldError, InvalidInput
from opsloop.core.events import NewEvent, validate_events
from opsloop.perception import segment
from opsloop.perception.big_integers import beyond_range, keep_beyond_range
from opsloop.perception.connectors.sql import _plain
from opsloop.perception.files import read_rows
from opsloop.perception.history import TimeReader, cell_value
from opsloop.perception.ingest_bodies import events_from_body, parse_json
from opsloop.perception.mapping import Mapping
from opsloop.perception.normalize import conform
from opsloop.perception.records import Record

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RANGE = "outside the times OpsLoop accepts, from 1900-01-01 to 2999-12-31 UTC"
HUGE = 12345678901234567890123
TOO_BIG = f"{HUGE} is beyond the 64-bit integer range; send it as a string"
EXTREMES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]


# --- event times -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", EXTREMES)
def test_an_event_at_the_ends_of_the_calendar_is_refused_naming_the_field(text: str) -> None:
    good = {"type": "lead.created", "subject": "lead:1"}
    with pytest.raises(InvalidInput) as refused:
        validate_events(
            [good, {**good, "occurred_at": text}], source="api", received_at=NOW, prefix="events"
        )
    assert refused.value.errors == [FieldError("events[1].occurred_at", f"{text} is {RANGE}")]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9999-12-31T23:59:59-23:59", f"9999-12-31T23:59:59-23:59 is {RANGE}"),
        ("0001-01-01T00:00:00", f"0001-01-01T00:00:00 is {RANGE}"),
        (-1e10, f"unix time -10000000000 is {RANGE}"),
        ("nan", f"unix time nan is {RANGE}"),
    ],
)
def test_a_mapped_time_out_of_range_is_refused_naming_the_rule(value: Any, message: str) -> None:
    mapping = Mapping.load(
        {"type": "order.paid", "subject": "'order:' + id", "occurred_at": "paid_at"},
        origin="mapping",
    )
    record = Record({"id": "7", "paid_at": value}, where="delivery d1")
    with pytest.raises(InvalidInput) as refused:
        mapping.apply(record, source="shop", received_at=NOW, zone=ZoneInfo("Asia/Tokyo"))
    [error] = refused.value.errors
    assert error.field == "mapping.occurred_at"
    assert error.message.endswith(message)


def one_call(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "42", "event": "Clicked", **fields}


@pytest.mark.parametrize("name", ["timestamp", "originalTimestamp", "sentAt"])
@pytest.mark.parametrize("text", EXTREMES)
def test_a_tracking_time_out_of_range_is_refused_naming_it(name: str, text: str) -> None:
    call = one_call(**{"originalTimestamp": "2026-03-02T08:00:00Z", name: text})
    with pytest.raises(InvalidInput) as refused:
        segment.read_call(call, received_at=NOW, prefix="batch[3]")
    assert refused.value.errors == [FieldError(f"batch[3].{name}", f"{text} is {RANGE}")]


def test_a_device_clock_centuries_off_cannot_carry_a_call_out_of_the_range() -> None:
    # Each time is in range, but corrected for the device's clock (receivedAt - (sentAt -
    # originalTimestamp)) the call would have happened in the year 3125.
    call = one_call(originalTimestamp="2999-06-01T00:00:00Z", sentAt="1900-01-01T00:00:00Z")
    with pytest.raises(InvalidInput) as refused:
        segment.read_call(call, received_at=NOW)
    [error] = refused.value.errors
    assert error.field == "originalTimestamp"
    assert "corrected for the device's clock" in error.message
    assert error.message.endswith(RANGE)


def test_a_device_clock_a_little_off_is_corrected_as_segment_does() -> None:
    call = one_call(originalTimestamp="2026-03-02T08:00:00Z", sentAt="2026-03-02T08:30:00Z")
    assert segment.read_call(call, received_at=NOW).occurred_at == datetime(
        2026, 3, 2, 8, 30, tzinfo=UTC
    )


CONTRACT = """\
contracts:
  order.completed:
    fields:
      placed_at: timestamp
      items: integer
      weight: number
"""


def contract_errors(payload: dict[str, Any]) -> list[FieldError]:
    [contract] = parse_contracts(CONTRACT, "test.yaml")
    event = NewEvent("shop", "order.completed", "order:1", NOW, NOW, payload, {}, None)
    with pytest.raises(InvalidInput) as refused:
        conform(event, contract, zone=ZoneInfo("UTC"), region=None)
    return refused.value.errors


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59-23:59"),
        ("0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00+23:59"),
        (99999999999999999, "unix time 100000000000000"),  # read as milliseconds
    ],
)
def test_a_contract_timestamp_out_of_range_is_refused(value: Any, shown: str) -> None:
    [error] = contract_errors({"placed_at": value})
    assert error == FieldError("payload.placed_at", f"{shown} is {RANGE}")
    [huge] = contract_errors({"placed_at": 10**400})  # too large for a float even
    assert huge == FieldError("payload.placed_at", "1" + "0" * 56 + "… is not a date and time")


def test_contract_numbers_beyond_what_is_stored_are_refused_not_rounded_or_overflowed() -> None:
    errors = contract_errors({"items": str(HUGE), "weight": "1e999999999"})
    assert errors == [
        FieldError("payload.items", f"'{HUGE}' is beyond the 64-bit integer range"),
        FieldError("payload.weight", "1E+999999999 is beyond the range of a number"),
    ]


# --- integers beyond 64 bits -----------------------------------------------------------------


def test_an_integer_beyond_64_bits_is_named_by_its_path_in_the_body() -> None:
    body = json.dumps(
        {"events": [{"type": "a.b", "subject": "x:1", "payload": {"order_id": HUGE}}]} | {}
    ).encode()
    with pytest.raises(InvalidInput) as refused:
        events_from_body(body, source="api", received_at=NOW, max_batch=10)
    assert refused.value.errors == [FieldError("events[0].payload.order_id", TOO_BIG)]


def test_integers_within_64_bits_and_long_digit_strings_pass_untouched() -> None:
    body = json.dumps(
        {
            "unsigned": 2**64 - 1,
            "signed": -(2**63),
            "text": str(HUGE),
            "float": 1.2345678901234568e22,
            "written": "12345678901234567890123.5",
        }
    ).encode()
    assert beyond_range(body) == []
    assert parse_json(body)["unsigned"] == 2**64 - 1


def test_every_integer_beyond_64_bits_is_named_even_a_thousand_digits_long() -> None:
    body = b'{"a": [-9223372036854775809, 18446744073709551616], "b": ' + b"7" * 1000 + b"}"
    assert [(e.field, e.message.split(" is ")[0]) for e in beyond_range(body)] == [
        ("a[0]", "-9223372036854775809"),
        ("a[1]", "18446744073709551616"),
        ("b", "7" * 40 + "… (1000 digits)"),
    ]


def test_a_body_kept_for_quarantine_keeps_its_big_integer_exactly() -> None:
    body = b'{"writeKey": "k", "properties": {"order_id": 12345678901234567890123}}'
    data = parse_json(body, exact=False)
    assert orjson.dumps({"properties": data["properties"]}) == (
        b'{"properties":{"order_id":12345678901234567890123}}'
    )
    assert keep_beyond_range(b'{"a": 1}', {"a": 1}) == {"a": 1}


def test_a_jsonl_row_with_a_big_integer_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = '{"type": "a.b", "subject": "x:1"}'
    path.write_text(f'{good}\n{{"type": "a.b", "subject": "x:2", "payload": {{"n": {HUGE}}}}}\n')
    rows = list(read_rows(path))
    assert [(row.line, row.error) for row in rows] == [(1, None), (2, f"payload.n: {TOO_BIG}")]


def test_a_csv_cell_or_sql_value_too_long_for_a_number_stays_exact_as_text(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(f"type,subject,account,small,far\na.b,x:1,{HUGE},42,1e999\n")
    [row] = read_rows(path)
    assert row.item["payload"] == {"account": str(HUGE), "small": 42, "far": "1e999"}
    assert cell_value(str(HUGE)) == str(HUGE)
    assert _plain(Decimal(HUGE)) == str(HUGE)
    assert _plain(Decimal("1E+30")) == "1" + "0" * 30
    assert _plain(2**64) == str(2**64)
    assert (_plain(Decimal("42")), _plain(Decimal("4.5"))) == (42, 4.5)


def test_an_imported_time_out_of_range_is_refused_not_overflowed() -> None:
    with pytest.raises(ValueError, match=RANGE):
        TimeReader(None, year=2026).read("9999-12-31T23:59:59-23:59")

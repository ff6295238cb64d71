"""Events checked against their contract: what each type normalizes to, and the message a
shop owner reads when a value does not fit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from opsloop.core.contracts import Contract, parse_contracts
from opsloop.core.errors import FieldError, InvalidInput
from opsloop.core.events import NewEvent
from opsloop.perception.mapping import Mapping
from opsloop.perception.normalize import conform
from opsloop.perception.records import Record
from opsloop.service.ingest.contracts import builtin_contracts

LISBON = ZoneInfo("Europe/Lisbon")
NOW = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)

ORDERS = """\
contracts:
  order.completed:
    fields:
      order_id: {type: string, required: true}
      amount: {type: money, currency: currency, required: true, min: 0}
      currency: {type: currency, required: true}
      email: {type: email, required: true}
      phone: phone
      status: {type: string, allowed: [paid, refunded]}
      placed_at: timestamp
      customer_name: name
      items: {type: integer, min: 1}
    traits:
      vip: boolean
"""


def event(payload: dict[str, Any], traits: dict[str, Any] | None = None) -> NewEvent:
    return NewEvent(
        source="shop",
        type="order.completed",
        subject="customer:ana@example.com",
        occurred_at=NOW,
        received_at=NOW,
        payload=payload,
        traits=traits or {},
        idempotency_key="o-1",
    )


def contract(text: str = ORDERS) -> Contract:
    return parse_contracts(text, "test.yaml")[0]


def one_field(kind: str, **options: Any) -> Contract:
    extra = "".join(f", {key}: {value}" for key, value in options.items())
    return contract(
        f"contracts:\n  order.completed:\n    fields:\n      x: {{type: {kind}{extra}}}\n"
    )


def normalized(kind: str, value: Any, *, region: str | None = "PT", **options: Any) -> Any:
    out = conform(event({"x": value}), one_field(kind, **options), zone=LISBON, region=region)
    return out.payload["x"]


def refused(
    kind: str, value: Any, *, region: str | None = "PT", **options: Any
) -> list[FieldError]:
    with pytest.raises(InvalidInput) as caught:
        conform(event({"x": value}), one_field(kind, **options), zone=LISBON, region=region)
    return caught.value.errors


def test_a_good_order_comes_out_clean() -> None:
    raw = event(
        {
            "order_id": 1042,
            "amount": "59.90",
            "currency": "eur",
            "email": " Ana@Example.COM ",
            "phone": "912 345 678",
            "status": "paid",
            "placed_at": "2024-07-01 09:30",
            "customer_name": "  Ana   Silva ",
            "items": "2",
            "note": "kept as sent",
        },
        {"vip": "yes"},
    )
    clean = conform(raw, contract(), zone=LISBON, region="PT")
    assert clean.payload == {
        "order_id": "1042",
        "amount": 59.9,
        "currency": "EUR",
        "email": "ana@example.com",
        "phone": "+351912345678",
        "status": "paid",
        "placed_at": "2024-07-01T08:30:00+00:00",  # Lisbon is UTC+1 in summer
        "customer_name": "Ana Silva",
        "items": 2,
        "note": "kept as sent",
    }
    assert clean.traits == {"vip": True}
    assert (clean.subject, clean.idempotency_key, clean.occurred_at) == (
        raw.subject,
        raw.idempotency_key,
        raw.occurred_at,
    )


def test_every_violation_is_reported_with_its_field() -> None:
    raw = event(
        {
            "amount": "12,50",
            "currency": "EURO",
            "email": "ana@",
            "status": "lost",
            "items": 0,
        }
    )
    with pytest.raises(InvalidInput) as caught:
        conform(raw, contract(), zone=LISBON, region="PT")
    assert [str(error) for error in caught.value.errors] == [
        "payload.order_id: is required",
        "payload.amount: '12,50' is not an amount: write it with a dot for decimals, e.g. 12.50",
        "payload.currency: 'EURO' is not an ISO 4217 currency code, such as EUR or USD",
        "payload.email: 'ana@' is not an email address: There must be something after the @-sign.",
        "payload.status: 'lost' is not one of the allowed values: paid, refunded",
        "payload.items: 0 is less than the minimum 1",
    ]


def test_without_a_contract_the_event_is_unchanged() -> None:
    raw = event({"email": " Ana@Example.COM "})
    assert conform(raw, None, zone=LISBON, region="PT") is raw


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("+351 912 345 678", None, "+351912345678"),
        ("912345678", "PT", "+351912345678"),
        ("00351 912 345 678", None, "+351912345678"),
        (912345678, "PT", "+351912345678"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("+44 20 7946 0958", "PT", "+442079460958"),  # a + number ignores the region
    ],
)
def test_phone_numbers_become_e164(value: Any, region: str | None, expected: str) -> None:
    assert normalized("phone", value, region=region) == expected


def test_a_phone_number_without_country_needs_the_source_region() -> None:
    (error,) = refused("phone", "912345678", region=None)
    assert error.field == "payload.x"
    assert error.message.startswith("'912345678' has no country code: write it with +")
    assert (
        refused("phone", "12", region="PT")[0].message == "'12' is not a valid phone number in PT"
    )
    assert refused("phone", "call me", region="PT")[0].message == "'call me' is not a phone number"


def test_emails_are_trimmed_lowercased_and_checked_without_dns() -> None:
    assert normalized("email", " Ana@Example.COM ") == "ana@example.com"
    assert normalized("email", "ZOE.Lee+shop@Mail.Example.org") == "zoe.lee+shop@mail.example.org"
    assert refused("email", "ana.example.com")[0].message.startswith(
        "'ana.example.com' is not an email address: An email address must have an @-sign."
    )
    assert refused("email", ["a@example.com"])[0].message == "must be an email address, not a list"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-07-01T09:30:00", "2024-07-01T08:30:00+00:00"),  # naive: Lisbon summer time
        ("2024-01-15 09:30", "2024-01-15T09:30:00+00:00"),  # naive: Lisbon winter time (UTC)
        ("2024-07-01T09:30:00Z", "2024-07-01T09:30:00+00:00"),
        ("2024-07-01T09:30:00-04:00", "2024-07-01T13:30:00+00:00"),
        ("2024-07-01", "2024-06-30T23:00:00+00:00"),  # midnight in Lisbon
        (1719826200, "2024-07-01T09:30:00+00:00"),  # unix seconds
        ("1719826200", "2024-07-01T09:30:00+00:00"),
        (1719826200500, "2024-07-01T09:30:00.500000+00:00"),  # milliseconds
    ],
)
def test_timestamps_become_utc_with_the_source_zone_for_local_times(
    value: Any, expected: str
) -> None:
    assert normalized("timestamp", value) == expected


def test_a_timestamp_that_is_not_one_says_how_to_write_it() -> None:
    assert refused("timestamp", "next Tuesday")[0].message == (
        "'next Tuesday' is not a date and time: write ISO 8601 such as 2024-05-01T09:30:00 "
        "(with or without a zone) or unix seconds"
    )
    assert refused("timestamp", True)[0].message == "must be a date and time, not true/false"


def test_money_is_a_number_with_a_valid_currency() -> None:
    orders = contract(
        "contracts:\n  order.completed:\n    fields:\n"
        "      amount: {type: money, currency: currency}\n      currency: currency\n"
    )

    def check(payload: dict[str, Any]) -> dict[str, Any]:
        return conform(event(payload), orders, zone=LISBON, region=None).payload

    assert check({"amount": "1250", "currency": " usd "}) == {"amount": 1250, "currency": "USD"}
    assert check({"amount": 12.5, "currency": "EUR"}) == {"amount": 12.5, "currency": "EUR"}
    assert check({"currency": "EUR"}) == {"currency": "EUR"}  # no amount: nothing to check
    with pytest.raises(InvalidInput) as caught:
        check({"amount": 42})
    assert [str(e) for e in caught.value.errors] == [
        "payload.amount: the amount 42 has no currency: payload.currency must hold a code such "
        "as EUR"
    ]
    with pytest.raises(InvalidInput) as caught:
        check({"amount": 42, "currency": "XYZ"})
    assert [e.field for e in caught.value.errors] == ["payload.currency"]  # said once
    with pytest.raises(InvalidInput) as caught:
        check({"amount": "lots", "currency": "EUR"})
    assert str(caught.value) == "payload.amount: 'lots' is not an amount"


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("name", "  Ana \t Maria   Silva\n", "Ana Maria Silva"),
        ("string", "  paid ", "paid"),
        ("string", 1042, "1042"),
        ("integer", "3", 3),
        ("integer", 3.0, 3),
        ("number", "2.5", 2.5),
        ("number", 7, 7),
        ("boolean", "Yes", True),
        ("boolean", "false", False),
        ("boolean", 0, False),
        ("url", " https://shop.example.com/o/1 ", "https://shop.example.com/o/1"),
        ("object", {"a": 1}, {"a": 1}),
        ("list", [1, 2], [1, 2]),
        ("currency", "gbp", "GBP"),
    ],
)
def test_each_type_normalizes_its_values(kind: str, value: Any, expected: Any) -> None:
    assert normalized(kind, value) == expected


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("integer", "3.5", "'3.5' is not a whole number"),
        ("integer", True, "must be a whole number, not true/false"),
        ("number", "abc", "'abc' is not a number"),
        ("number", "NaN", "'NaN' is not a number"),
        ("boolean", "maybe", "'maybe' is not true or false"),
        (
            "url",
            "shop.example.com",
            "'shop.example.com' is not a web address starting with http:// or https://",
        ),
        ("object", "text", "must be an object ({...}), not text"),
        ("list", {"a": 1}, "must be a list ([...]), not an object"),
        ("name", ["Ana"], "must be text, not a list"),
    ],
)
def test_each_type_refuses_what_it_cannot_read(kind: str, value: Any, message: str) -> None:
    (error,) = refused(kind, value)
    assert (error.field, error.message) == ("payload.x", message)


def test_min_max_and_pattern_bound_values_and_lengths() -> None:
    assert refused("number", 11, max=10)[0].message == "11 is more than the maximum 10"
    assert refused("string", "ab", min=3)[0].message == "'ab' is less than the minimum 3 characters"
    assert refused("list", [1, 2, 3], max=2)[0].message == (
        "[1, 2, 3] is more than the maximum 2 items"
    )
    assert normalized("string", "SKU-12", pattern="'SKU-[0-9]+'") == "SKU-12"
    assert refused("string", "xSKU-12", pattern="'SKU-[0-9]+'")[0].message == (
        "'xSKU-12' does not match the pattern SKU-[0-9]+"
    )


def test_null_and_blank_count_as_missing_unless_nullable() -> None:
    assert normalized("phone", None) is None  # optional: null is fine and kept
    assert normalized("email", "  ") is None  # a blank form field is no value
    assert refused("email", None, required="true")[0].message == "is required but is empty"
    assert normalized("email", None, required="true", nullable="true") is None
    assert normalized("string", "  ") == ""  # text may be empty


def test_forbid_refuses_fields_the_contract_does_not_list() -> None:
    strict = contract(
        "contracts:\n  order.completed:\n    fields:\n      email: email\n    additional: forbid\n"
    )
    with pytest.raises(InvalidInput) as caught:
        conform(
            event({"email": "a@example.com", "emial": "x"}, {"vip": True}),
            strict,
            zone=LISBON,
            region=None,
        )
    assert [str(e) for e in caught.value.errors] == [
        "payload.emial: is not in the order.completed contract; did you mean 'email'? (it "
        "lists: email)",
        "traits.vip: is not in the order.completed contract (it lists: none)",
    ]


# --- the built-in contracts on what the built-in mappings make -----------------------------

PAYLOADS = Path(__file__).parent / "payloads"


@pytest.mark.parametrize("sample", sorted(path.stem for path in PAYLOADS.glob("*.json")))
def test_built_in_contracts_accept_what_built_in_mappings_make_of_real_deliveries(
    sample: str,
) -> None:
    name = sample.split("_")[0]
    headers = {"X-Shopify-Topic": "orders/paid"} if name == "shopify" else {}
    record = Record(
        data=json.loads((PAYLOADS / f"{sample}.json").read_text()),
        where="delivery d1",
        key="d1",
        headers=headers,
    )
    mapped = Mapping.load(name).apply(record, source=name, received_at=NOW, zone=LISBON)
    for made in mapped.events:
        checked = builtin_contracts().get(made.type)
        clean = conform(made, checked, zone=LISBON, region=None)
        if checked is not None and "phone" in checked.fields and clean.payload.get("phone"):
            assert clean.payload["phone"].startswith("+")
            assert " " not in clean.payload["phone"]

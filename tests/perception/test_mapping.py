"""Mappings turn a source's records into events: the built-ins on the providers' own payload
shapes, and rules written by hand, including every way they can be wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from opsloop.core.errors import InvalidInput
from opsloop.perception.mapping import Mapped, Mapping, builtin_names
from opsloop.perception.records import Record

PAYLOADS = Path(__file__).parent / "payloads"
RECEIVED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def apply(
    mapping: str | list[Any] | dict[str, Any],
    data: Any,
    *,
    key: str | None = "d1",
    headers: dict[str, str] | None = None,
    source: str = "shop",
    zone: ZoneInfo = UTC_ZONE,
) -> Mapped:
    record = Record(data=data, where=f"delivery {key}", key=key, headers=headers or {})
    return Mapping.load(mapping).apply(record, source=source, received_at=RECEIVED, zone=zone)


def load_errors(spec: Any) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        Mapping.load(spec)
    return [str(error) for error in caught.value.errors]


# --- built-in mappings -----------------------------------------------------------------------


def test_the_built_in_mappings_ship_with_the_package() -> None:
    assert builtin_names() == ["calendly", "helpdesk", "hubspot", "shopify", "stripe"]


@pytest.mark.parametrize("name", builtin_names())
def test_each_built_in_mapping_loads_and_is_compiled_once(name: str) -> None:
    assert Mapping.load(name) is Mapping.load(name)
    assert Mapping.load(name).otherwise == "ignore"


def test_a_stripe_checkout_becomes_an_order_for_the_customer_in_major_units() -> None:
    mapped = apply("stripe", payload("stripe_checkout_session_completed"), source="stripe")
    [event] = mapped.events
    assert (event.source, event.type, event.subject) == (
        "stripe",
        "order.completed",
        "customer:ana.silva@example.pt",
    )
    assert event.occurred_at == datetime(2026, 3, 2, 8, 48, tzinfo=UTC)
    assert event.received_at == RECEIVED
    assert event.idempotency_key == "evt_1PqXyZLkdIwHu7ixQ2s3n4Ab", "Stripe's event id"
    assert event.payload == {
        "order_id": "pi_3PqXyWLkdIwHu7ix0cQ8sd1F",
        "session_id": "cs_test_a1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvWxYz",
        "amount": 42.5,
        "currency": "EUR",
        "email": "ana.silva@example.pt",
        "payment_status": "paid",
        "customer_id": "cus_QhVbW4mQ2cXnE1",
    }
    # The phone Stripe did not collect is left out rather than erasing a known one.
    assert event.traits == {"name": "Ana Silva", "stripe_customer_id": "cus_QhVbW4mQ2cXnE1"}
    assert mapped.ignored is None


def test_stripe_amounts_in_a_zero_decimal_currency_are_not_divided() -> None:
    [event] = apply("stripe", payload("stripe_checkout_session_completed_jpy")).events
    assert (event.payload["amount"], event.payload["currency"]) == (5000, "JPY")
    assert event.subject == "customer:kenji@example.jp", "customer_email when no details"


def test_a_stripe_refund_names_the_same_order_as_its_checkout() -> None:
    [order] = apply("stripe", payload("stripe_checkout_session_completed")).events
    [refund] = apply("stripe", payload("stripe_charge_refunded")).events
    assert (refund.type, refund.subject) == ("order.refunded", order.subject)
    assert refund.payload["order_id"] == order.payload["order_id"]
    assert refund.payload["amount"] == 15
    assert refund.payload["fully_refunded"] is False


def test_stripe_invoices_and_subscriptions() -> None:
    [invoice] = apply("stripe", payload("stripe_invoice_paid")).events
    assert (invoice.type, invoice.subject) == ("invoice.paid", "customer:ana.silva@example.pt")
    assert invoice.payload["amount"] == 19
    assert invoice.payload["subscription_id"] == "sub_1PrA1ZLkdIwHu7ixS7bQ2mLc"

    [started] = apply("stripe", payload("stripe_customer_subscription_created")).events
    assert (started.type, started.subject) == (
        "subscription.started",
        "stripe_customer:cus_QhVbW4mQ2cXnE1",
    )
    assert started.payload["interval"] == "month"
    assert started.payload["amount"] == 19

    [ended] = apply("stripe", payload("stripe_customer_subscription_deleted")).events
    assert ended.type == "subscription.cancelled"
    assert ended.payload["reason"] == "cancellation_requested"
    assert ended.payload["feedback"] == "too_expensive"


def test_a_stripe_event_type_no_rule_maps_is_ignored_with_the_reason() -> None:
    mapped = apply("stripe", payload("stripe_customer_updated"))
    assert mapped == Mapped([], ignored="no rule matches type customer.updated")


def test_a_shopify_order_takes_its_topic_and_delivery_id_from_the_headers() -> None:
    headers = {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    }
    [event] = apply("shopify", payload("shopify_order"), headers=headers).events
    assert (event.type, event.subject) == ("order.created", "customer:joao.pereira@example.pt")
    assert event.idempotency_key == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert event.occurred_at == datetime(2026, 3, 2, 10, 14, 5, tzinfo=UTC)
    assert event.payload == {
        "order_id": "5678901234567",
        "order_number": "#1042",
        "amount": 59.7,
        "currency": "EUR",
        "items": 2,
        "email": "joao.pereira@example.pt",
        "phone": "+351 912 345 678",
        "financial_status": "paid",
    }
    assert event.traits == {
        "first_name": "João",
        "last_name": "Pereira",
        "phone": "+351 912 345 678",
    }


def test_a_paid_shopify_order_without_a_delivery_id_is_keyed_by_topic_and_order() -> None:
    data = payload("shopify_order")
    [event] = apply("shopify", data, headers={"x-shopify-topic": "orders/paid"}).events
    assert event.type == "order.paid"
    assert event.idempotency_key == "orders/paid:5678901234567"
    other = apply("shopify", data, headers={"x-shopify-topic": "orders/updated"})
    assert other.ignored == "no rule matches x-shopify-topic orders/updated"


def test_a_hubspot_batch_makes_one_event_per_item_it_knows() -> None:
    events = apply("hubspot", payload("hubspot_batch")).events
    assert [(e.type, e.subject) for e in events] == [
        ("contact.created", "contact:95012345001"),
        ("contact.updated", "contact:95012345001"),
        ("deal.created", "deal:31577002211"),
        ("deal.stage_changed", "deal:31577002211"),
    ], "the company.creation item is not mapped"
    assert events[0].occurred_at == datetime(2026, 3, 2, 10, 0, 0, 123000, tzinfo=UTC)
    assert events[1].payload["property"] == "lifecyclestage"
    assert events[1].payload["value"] == "marketingqualifiedlead"
    assert events[3].payload["stage"] == "contractsent"
    assert [e.idempotency_key for e in events] == [
        "1820534219/2417793",
        "1820534220/2417801",
        "3904711822/2417812",
        "3904711830/2417815",
    ]


def test_a_hubspot_batch_of_unknown_items_is_ignored_naming_them() -> None:
    items = payload("hubspot_batch")[4:]
    assert apply("hubspot", items).ignored == "no rule matches subscriptionType company.creation"
    assert apply("hubspot", []).ignored == "delivery d1 is an empty list"


def test_a_calendly_booking_and_its_cancellation() -> None:
    [booked] = apply("calendly", payload("calendly_invitee_created")).events
    assert (booked.type, booked.subject) == ("meeting.booked", "lead:marta.costa@example.com")
    assert booked.payload["meeting"] == "30 Minute Demo"
    assert booked.payload["start_time"] == "2026-03-05T15:00:00.000000Z"
    assert booked.payload["rescheduled"] is False
    assert booked.traits == {"name": "Marta Costa", "timezone": "Europe/Lisbon"}

    [cancelled] = apply("calendly", payload("calendly_invitee_canceled")).events
    assert (cancelled.type, cancelled.subject) == ("meeting.cancelled", booked.subject)
    assert cancelled.payload["reason"] == "Something came up, sorry"
    assert cancelled.occurred_at == datetime(2026, 3, 4, 9, 41, 27, tzinfo=UTC)
    assert cancelled.idempotency_key != booked.idempotency_key


def test_a_helpdesk_ticket_carries_its_text_as_message_for_triage() -> None:
    [event] = apply("helpdesk", payload("helpdesk_ticket_created")).events
    assert (event.type, event.subject) == ("ticket.created", "ticket:981")
    assert event.payload["message"].startswith("Hi, I ordered two bags")
    assert event.payload["subject"] == "Where is my order #1042?"
    assert event.payload["email"] == "joao.pereira@example.pt"
    assert event.traits["requester_name"] == "João Pereira"


def test_a_helpdesk_update_to_solved_is_a_solved_ticket() -> None:
    [event] = apply("helpdesk", payload("helpdesk_ticket_updated")).events
    assert event.type == "ticket.solved"
    assert event.payload["message"].startswith("Hi, I ordered"), "`body` when no description"
    data = payload("helpdesk_ticket_updated")
    data["ticket"]["status"] = "open"
    assert apply("helpdesk", data).events[0].type == "ticket.updated"


def test_a_time_written_without_a_zone_is_in_the_sources_time_zone() -> None:
    data = payload("helpdesk_ticket_created")  # created_at "2026-03-09 14:02:33"
    [utc] = apply("helpdesk", data).events
    [new_york] = apply("helpdesk", data, zone=ZoneInfo("America/New_York")).events
    assert utc.occurred_at == datetime(2026, 3, 9, 14, 2, 33, tzinfo=UTC)
    assert new_york.occurred_at == datetime(2026, 3, 9, 18, 2, 33, tzinfo=UTC)


# --- rules written by hand -------------------------------------------------------------------

SIGNUP = {"type": "signup", "email": "Eva@X.co", "at": 1772445600, "plan": "pro", "n": 3}


def test_a_single_rule_may_be_a_dict_and_without_payload_keeps_the_whole_record() -> None:
    rule = {"type": "lead.created", "subject": "'lead:' + lower(email)"}
    [event] = apply(rule, SIGNUP).events
    assert (event.type, event.subject, event.payload) == ("lead.created", "lead:eva@x.co", SIGNUP)
    assert event.idempotency_key == "d1", "the record's key by default"
    assert event.occurred_at == RECEIVED, "no occurred_at: the time it was received"


def test_unix_seconds_and_iso_text_both_give_the_time() -> None:
    rule = {"type": "lead.created", "subject": "'lead:' + email", "occurred_at": "at"}
    [event] = apply(rule, SIGNUP).events
    assert event.occurred_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    [text] = apply(rule, SIGNUP | {"at": "2026-03-02T10:00:00+01:00"}).events
    assert text.occurred_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    [digits] = apply(rule, SIGNUP | {"at": "1772445600"}).events
    assert digits.occurred_at == event.occurred_at


def test_milliseconds_are_refused_with_the_fix() -> None:
    rule = {"type": "lead.created", "subject": "'lead:' + email", "occurred_at": "at"}
    with pytest.raises(InvalidInput) as caught:
        apply(rule, SIGNUP | {"at": 1772445600000})
    assert str(caught.value) == (
        "mapping.occurred_at: `at` gave 1772445600000 on delivery d1: "
        "looks like milliseconds; divide by 1000 to give unix seconds"
    )


def test_type_expr_payload_and_traits_are_computed() -> None:
    rule = {
        "type_expr": "'plan.' + plan",
        "subject": "'lead:' + lower(email)",
        "id": "'signup-' + lower(email)",
        "payload": {"seats": "n * 2", "plan": {"name": "upper(plan)", "tier": 1}},
        "traits": {"plan": "plan", "company": "company"},
    }
    [event] = apply(rule, SIGNUP).events
    assert event.type == "plan.pro"
    assert event.idempotency_key == "signup-eva@x.co"
    assert event.payload == {"seats": 6, "plan": {"name": "PRO", "tier": 1}}
    assert event.traits == {"plan": "pro"}, "a trait that came out null is left out"


def test_several_matching_rules_make_several_events_with_their_own_keys() -> None:
    rules = [
        {"type": "lead.created", "subject": "'lead:' + lower(email)"},
        {"when": "plan == 'pro'", "type": "trial.started", "subject": "'lead:' + lower(email)"},
    ]
    events = apply(rules, SIGNUP).events
    assert [e.type for e in events] == ["lead.created", "trial.started"]
    assert [e.idempotency_key for e in events] == ["d1#0", "d1#1"]
    assert [e.idempotency_key for e in apply(rules, SIGNUP | {"plan": "free"}).events] == ["d1"]


def test_headers_are_read_as_headers_and_the_body_stays_reachable() -> None:
    rule = {
        "type": "lead.created",
        "subject": "'lead:' + _headers['x-user']",
        "payload": {"body_headers": "_body._headers", "agent": "_headers['user-agent']"},
    }
    data = {"_headers": "the body's own field"}
    [event] = apply(rule, data, headers={"X-User": "42", "User-Agent": "curl/8"}).events
    assert event.subject == "lead:42"
    assert event.payload == {"body_headers": "the body's own field", "agent": "curl/8"}


def test_otherwise_keep_stores_an_unmatched_record_as_received() -> None:
    rules = [
        {"when": "type == 'order'", "type": "order.created", "subject": "'customer:' + email"},
        {"otherwise": "keep"},
    ]
    [kept] = apply(rules, SIGNUP, source="my-shop").events
    assert (kept.type, kept.subject) == ("my_shop.received", "my_shop:d1")
    assert (kept.payload, kept.idempotency_key) == (SIGNUP, "d1")
    first = apply(rules, SIGNUP, key=None).events[0]
    again = apply(rules, dict(reversed(SIGNUP.items())), key=None).events[0]
    assert first.subject == again.subject != "my_shop:d1", "no key: a hash of the content"


def test_a_payload_missing_a_field_names_the_delivery_rule_and_field() -> None:
    data = payload("stripe_checkout_session_completed")
    data["data"]["object"]["customer_details"]["email"] = None
    with pytest.raises(InvalidInput) as caught:
        apply("stripe", data, key="evt_1")
    [error] = caught.value.errors
    assert error.field == "stripe[0].subject"
    assert error.message == (
        "`'customer:' + lower(data.object.customer_details.email ?? data.object.customer_email)`"
        " failed on delivery evt_1: lower() failed: argument 1 is not a string (a missing field is"
        " null)"
    )


def test_an_item_of_a_list_body_is_named_in_the_error() -> None:
    items = payload("hubspot_batch")[:2]
    del items[1]["objectId"]
    with pytest.raises(InvalidInput) as caught:
        apply("hubspot", items)
    assert str(caught.value) == (
        "hubspot[1].subject: `objectId != null ? 'contact:' + string(objectId) : null` "
        "gave nothing on delivery d1 item 1"
    )


def test_a_value_that_is_not_a_subject_or_type_is_refused_naming_the_rule() -> None:
    rules = [{"type": "lead.created", "subject": "email"}]
    with pytest.raises(InvalidInput, match=r"^mapping\[0\]\.subject: on delivery d1: 'Eva@X.co'"):
        apply(rules, SIGNUP)
    with pytest.raises(InvalidInput, match=r"^mapping\.type_expr: on delivery d1: must look like"):
        apply({"type_expr": "'bad type!'", "subject": "'lead:1'"}, SIGNUP)
    with pytest.raises(InvalidInput) as caught:
        apply({"type_expr": "plan == 1 ? 'x' : null", "subject": "'lead:1'"}, SIGNUP)
    assert (
        str(caught.value)
        == "mapping.type_expr: `plan == 1 ? 'x' : null` gave nothing on delivery d1"
    )


def test_a_when_that_fails_is_an_error_not_a_silent_miss() -> None:
    rule = {"when": "lower(missing) == 'x'", "type": "a.b", "subject": "'lead:1'"}
    with pytest.raises(InvalidInput, match=r"^mapping\.when: `lower\(missing\) == 'x'` failed on"):
        apply(rule, SIGNUP)


# --- load errors -----------------------------------------------------------------------------


def test_unknown_fields_get_a_did_you_mean() -> None:
    assert load_errors([{"type": "a.b", "subject": "'lead:1'", "ocurred_at": "at"}]) == [
        "mapping[0].ocurred_at: unknown field; did you mean 'occurred_at'?"
    ]


def test_an_unknown_built_in_name_gets_a_did_you_mean() -> None:
    assert load_errors("strpie") == [
        "mapping: no built-in mapping 'strpie'; did you mean 'stripe'? "
        "(built-in: calendly, helpdesk, hubspot, shopify, stripe)"
    ]


def test_every_problem_in_the_rules_is_reported_at_once() -> None:
    errors = load_errors(
        [
            {"type": "ok.type", "subject": "'lead:' + "},
            {"type": "Not a type", "subject": "'lead:1'"},
            {"type": "a.b", "type_expr": "'a.b'", "subject": "'lead:1'"},
            {"type": "a.b"},
            {"type": "a.b", "subject": "'lead:1'", "payload": {"x": ["a"]}},
            "lead.created",
            {"otherwise": "drop"},
        ]
    )
    assert errors[0].startswith("mapping[0].subject: `'lead:' + `: ")
    assert errors[1:] == [
        "mapping[1].type: 'Not a type' is not an event type like `order.completed`; "
        "use `type_expr` to compute one",
        "mapping[2].type: give either `type` (an event type) or `type_expr`",
        "mapping[3].subject: is required: an expression such as \"'customer:' + lower(email)\"",
        "mapping[4].payload.x: must be an expression, a number, true/false or a mapping",
        "mapping[5]: must be a rule with `type` and `subject`",
        "mapping[6].otherwise: write `otherwise: ignore` or `keep`",
    ]


def test_otherwise_goes_last_and_rules_are_needed() -> None:
    assert load_errors([{"otherwise": "keep"}, {"type": "a.b", "subject": "'lead:1'"}]) == [
        "mapping[0]: `otherwise` must be the last entry"
    ]
    assert load_errors([{"otherwise": "keep"}]) == [
        "mapping: has no rules: give at least one `type` and `subject`"
    ]
    assert load_errors([]) == ["mapping: must be a built-in mapping's name or a list of rules"]


def test_the_origin_names_the_mapping_in_messages() -> None:
    with pytest.raises(InvalidInput, match=r"^sources/shop\.yaml mapping\[0\]\.subject"):
        Mapping.load([{"type": "a.b", "subject": 3}], origin="sources/shop.yaml mapping")


def test_the_rules_documented_in_sources_md_work_as_described() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "sources.md").read_text()
    block = docs.split("### Writing rules\n\n```yaml\n", 1)[1].split("```", 1)[0]
    rules = yaml.safe_load(block)["mapping"]
    mapped = apply(rules, payload("stripe_checkout_session_completed"))
    [event] = mapped.events
    assert (event.type, event.subject) == ("order.completed", "customer:ana.silva@example.pt")
    assert event.payload == {"amount": 42.5, "currency": "EUR", "channel": "web", "tier": 1}
    assert (
        apply(rules, payload("stripe_invoice_paid")).ignored == "no rule matches type invoice.paid"
    )

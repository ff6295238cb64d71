"""Segment's tracking spec as OpsLoop reads it: each call becomes one event with a readable
type and the right subject, Segment's limits hold, and every refusal names the field."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from opsloop.core.errors import InvalidInput, TooLarge
from opsloop.core.events import EVENT_TYPE_PATTERN
from opsloop.core.sources import SegmentConfig
from opsloop.perception import segment

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONFIG = SegmentConfig()


def one(call: dict, path: str | None = None) -> segment.Call:
    [(_, item)] = segment.request_items(call, path or call["type"])
    return segment.read_call(item, received_at=NOW)


def event_of(call: dict, **kwargs: object):  # type: ignore[no-untyped-def]
    [event] = segment.events_of(one(call), source="site", config=CONFIG, received_at=NOW, **kwargs)
    return event


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Order Completed", "track.order_completed"),
        ("orderCompleted", "track.order_completed"),
        ("Signed Up!", "track.signed_up"),
        ("checkout.step 2", "track.checkout.step_2"),
        ("Café Visited", "track.cafe_visited"),
        ("  Viewed   Pricing -- Page ", "track.viewed_pricing_page"),
        ("3D Secure Failed", "track.3d_secure_failed"),
    ],
)
def test_track_names_become_readable_event_types(name: str, expected: str) -> None:
    assert segment.event_type(name) == expected
    assert re.fullmatch(EVENT_TYPE_PATTERN, expected)


def test_a_name_without_latin_letters_gets_a_stable_type_and_keeps_the_name() -> None:
    kind = segment.event_type("注文完了")
    assert kind == segment.event_type("注文完了")
    assert re.fullmatch(EVENT_TYPE_PATTERN, kind)
    assert kind.startswith("track.event_")
    event = event_of({"type": "track", "event": "注文完了", "userId": "7"})
    assert event.payload["call"]["event"] == "注文完了"


def test_a_track_call_is_an_event_about_the_user_with_its_properties() -> None:
    event = event_of(
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "42",
            "anonymousId": "a-1",
            "messageId": "m-1",
            "timestamp": "2026-03-01T10:00:00.000Z",
            "properties": {"revenue": 49.9, "currency": "EUR"},
            "context": {"ip": "203.0.113.9", "campaign": {"source": "newsletter"}},
        }
    )
    assert (event.type, event.subject, event.source) == ("track.order_completed", "lead:42", "site")
    assert event.occurred_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert event.idempotency_key == "m-1"
    assert event.payload["revenue"] == 49.9
    assert event.payload["call"] == {
        "type": "track",
        "event": "Order Completed",
        "user_id": "42",
        "anonymous_id": "a-1",
        "context": {"ip": "203.0.113.9", "campaign": {"source": "newsletter"}},
    }


def test_an_anonymous_page_view_is_about_the_visitor_and_reads_the_page_from_context() -> None:
    event = event_of(
        {
            "type": "page",
            "anonymousId": "a-1",
            "name": "Pricing",
            "properties": {"title": "Pricing — Acme"},
            "context": {"page": {"path": "/pricing", "url": "https://acme.example/pricing"}},
        }
    )
    assert (event.type, event.subject) == ("page.viewed", "visitor:a-1")
    assert event.payload["path"] == "/pricing"
    assert event.payload["url"] == "https://acme.example/pricing"
    assert event.payload["title"] == "Pricing — Acme"  # properties win over context.page
    assert event.payload["name"] == "Pricing"


def test_identify_merges_traits_into_the_users_profile() -> None:
    identify = event_of({"type": "identify", "userId": "42", "traits": {"email": "ana@x.co"}})
    assert (identify.type, identify.subject, identify.traits) == (
        "identify",
        "lead:42",
        {"email": "ana@x.co"},
    )
    screen = event_of({"type": "screen", "userId": "42", "name": "Home"})
    assert (screen.type, screen.payload["name"]) == ("screen.viewed", "Home")


def test_a_group_call_with_traits_also_updates_the_accounts_profile() -> None:
    call = one(
        {
            "type": "group",
            "userId": "42",
            "groupId": 7,
            "messageId": "m-7",
            "traits": {"plan": "pro", "employees": 40},
        }
    )
    joined, updated = segment.events_of(call, source="site", config=CONFIG, received_at=NOW)
    assert (joined.type, joined.subject, joined.traits) == ("group.joined", "lead:42", {})
    assert joined.payload["group"] == "account:7"
    assert joined.payload["traits"] == {"plan": "pro", "employees": 40}
    assert (updated.type, updated.subject) == ("group.updated", "account:7")
    assert updated.traits == {"plan": "pro", "employees": 40}
    assert (updated.payload["group_id"], updated.payload["member"]) == ("7", "lead:42")
    # Each event is stored once per messageId, and the two keys differ.
    assert (joined.idempotency_key, updated.idempotency_key) == ("m-7", "m-7:group")


def test_a_group_call_without_traits_says_nothing_about_the_account() -> None:
    [joined] = segment.events_of(
        one({"type": "group", "userId": "42", "groupId": "acme", "traits": {}}),
        source="site",
        config=CONFIG,
        received_at=NOW,
    )
    assert (joined.type, joined.payload["group"]) == ("group.joined", "account:acme")


def test_the_account_events_key_fits_the_ledger_for_the_longest_message_id() -> None:
    call = {"type": "group", "userId": "1", "groupId": "g", "traits": {"plan": "pro"}}
    keys = set()
    for message_id in ("m" * 200, "n" * 200):
        _, updated = segment.events_of(
            one({**call, "messageId": message_id}), source="s", config=CONFIG, received_at=NOW
        )
        assert updated.idempotency_key is not None
        assert len(updated.idempotency_key) <= 200
        keys.add(updated.idempotency_key)
    assert len(keys) == 2


def test_configured_kinds_name_the_subjects() -> None:
    config = SegmentConfig(subject_kind="customer", visitor_kind="browser", group_kind="company")
    joined, updated = segment.events_of(
        one({"type": "group", "anonymousId": "a-9", "groupId": "g", "traits": {"plan": "pro"}}),
        source="site",
        config=config,
        received_at=NOW,
    )
    assert (joined.subject, joined.payload["group"]) == ("browser:a-9", "company:g")
    assert (updated.subject, updated.payload["member"]) == ("company:g", "browser:a-9")


def test_a_known_visitor_is_filed_under_the_user_it_became() -> None:
    event = event_of(
        {"type": "page", "anonymousId": "a-1"},
        resolve=lambda subject: {"visitor:a-1": "lead:42"}.get(subject, subject),
    )
    assert event.subject == "lead:42"


def test_calls_that_carry_both_ids_link_the_visitor_to_the_user() -> None:
    identify = one({"type": "identify", "userId": "42", "anonymousId": "a-1"})
    assert segment.links_of(identify, CONFIG) == [("visitor:a-1", "lead:42")]
    alias = one({"type": "alias", "previousId": "old-7", "userId": "42"})
    assert segment.links_of(alias, CONFIG) == [
        ("visitor:old-7", "lead:42"),
        ("lead:old-7", "lead:42"),
    ]
    assert segment.links_of(one({"type": "page", "anonymousId": "a-1"}), CONFIG) == []


def test_the_time_is_corrected_for_a_device_clock_that_is_off() -> None:
    # The device's clock is 1 hour fast: it says it sent the call at 10:00:05 for something
    # that happened at 10:00:00, and the call arrived at 09:00 server time.
    call = one(
        {
            "type": "track",
            "event": "Clicked",
            "anonymousId": "a",
            "originalTimestamp": "2026-03-02T10:00:00Z",
            "sentAt": "2026-03-02T10:00:05Z",
        }
    )
    assert call.occurred_at == NOW - timedelta(seconds=5)
    # Without any time, it happened when it arrived.
    assert one({"type": "track", "event": "Clicked", "anonymousId": "a"}).occurred_at == NOW


def test_a_batch_shares_its_context_and_sent_at_with_each_call() -> None:
    items = segment.request_items(
        {
            "batch": [
                {"type": "page", "anonymousId": "a", "context": {"ip": "203.0.113.1"}},
                {"type": "track", "event": "X", "anonymousId": "a"},
            ],
            "context": {"library": {"name": "analytics-python"}, "ip": "198.51.100.1"},
            "sentAt": "2026-03-02T09:00:00Z",
            "writeKey": "secret",
        },
        "batch",
    )
    assert [where for where, _ in items] == ["batch[0]", "batch[1]"]
    first, second = (item for _, item in items)
    assert first["context"] == {"library": {"name": "analytics-python"}, "ip": "203.0.113.1"}
    assert second["sentAt"] == "2026-03-02T09:00:00Z"
    assert all("writeKey" not in item for _, item in items)


def test_the_endpoint_names_the_call_and_a_mismatched_type_is_refused() -> None:
    assert segment.endpoint("t") == "track"
    assert segment.endpoint("b") == "batch"
    with pytest.raises(InvalidInput, match=r"/v1/nope is not a tracking endpoint"):
        segment.endpoint("nope")
    with pytest.raises(InvalidInput, match=r"type: is 'page', but this is /v1/track"):
        segment.request_items({"type": "page", "anonymousId": "a"}, "track")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"type": "track", "event": "X"}, "batch[3].userId: is required, or anonymousId"),
        ({"type": "track", "userId": "1"}, "batch[3].event: is required in a track call"),
        ({"type": "track", "userId": True, "event": "X"}, "batch[3].userId: must be text"),
        ({"type": "group", "userId": "1"}, "batch[3].groupId: is required"),
        ({"type": "alias", "userId": "1"}, "batch[3].previousId: is required"),
        ({"type": "identify", "userId": "1", "traits": [1]}, "batch[3].traits: must be a JSON"),
        ({"type": "page", "userId": "1", "timestamp": "yesterday"}, "batch[3].timestamp: 'yes"),
        ({"type": "jump", "userId": "1"}, "batch[3].type: must be one of track, identify"),
        ({"type": "track", "event": "X", "userId": "u" * 201}, "batch[3].userId: is 201 char"),
    ],
)
def test_a_bad_call_is_refused_naming_its_field(call: dict, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        segment.read_call(call, received_at=NOW, prefix="batch[3]")
    assert message in str(refused.value)


def test_every_problem_of_a_call_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as refused:
        segment.read_call({"type": "track", "properties": "x"}, received_at=NOW)
    fields = [error.field for error in refused.value.errors]
    assert fields == ["userId", "event", "properties"]


def test_a_call_over_32_kb_is_too_large() -> None:
    call = {"type": "track", "event": "X", "userId": "1", "properties": {"blob": "x" * 33_000}}
    with pytest.raises(TooLarge, match=r"batch\[0\]: is \d+ bytes; a call may be at most 32 KB"):
        segment.read_call(call, received_at=NOW, prefix="batch[0]")


def test_a_batch_must_hold_calls_and_at_most_2500() -> None:
    with pytest.raises(InvalidInput, match="batch: is required"):
        segment.request_items({"type": "track"}, "batch")
    with pytest.raises(InvalidInput, match="batch: is empty"):
        segment.request_items({"batch": []}, "batch")
    many = [{"type": "page", "anonymousId": "a"}] * 2501
    with pytest.raises(TooLarge, match="holds 2501 calls; the limit is 2500"):
        segment.request_items({"batch": many}, "batch")


def test_a_call_without_message_id_is_keyed_by_its_content() -> None:
    call = {"type": "track", "event": "X", "userId": "1", "timestamp": "2026-03-01T10:00:00Z"}
    assert event_of(call).idempotency_key == event_of(dict(call)).idempotency_key
    other = {**call, "event": "Y"}
    assert event_of(call).idempotency_key != event_of(other).idempotency_key

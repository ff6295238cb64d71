"""Key paths with dots, spaces and quotes: `trait: visits.last.7d` reads the flat key a CSV
column was stored under before the nested path, and a live decision, a backtest replay and a
text model's training read every path the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsloop.core.errors import PlaybookInvalid
from opsloop.core.events import Event
from opsloop.core.key_paths import key_path, read_path
from opsloop.core.playbooks import TextSpec
from opsloop.learning.backtest import Version, history_query
from opsloop.learning.replay import replay
from opsloop.learning.replay_features import prepare
from opsloop.learning.text_dataset import build_text_dataset
from opsloop.reasoning.text_triage import message_text
from opsloop.service import load_playbook
from opsloop.store.backtests import read_history
from tests.conftest import Clock, OpsFactory
from tests.learning.test_backtest import store

DOTTED = """\
name: dotted
subject: lead
trigger:
  events: [demo.requested]
features:
  visits: {trait: visits.last.7d, default: 0}
  nested: {trait: profile.visits, default: 0}
  plan: {trait: 'entity["plan name"]'}
  plan_pro: {formula: 'plan == "pro" ? 1 : 0'}
  spent: {sum: order.paid, field: amount.total}
  items: {last: order.paid, field: 'payload["line items"]', default: 0}
score: "visits + nested * 10 + spent * 100 + items * 10000 + plan_pro * 1000000"
otherwise: wait
options:
  wait: {}
"""


def test_a_dotted_name_is_one_key_first_then_a_nested_path() -> None:
    flat_and_nested = {"visits.last.7d": 3, "visits": {"last": {"7d": 5}}}
    assert read_path(flat_and_nested, "visits.last.7d") == 3, "the CSV column wins"
    assert read_path({"visits": {"last": {"7d": 5}}}, "visits.last.7d") == 5
    assert read_path({"visits.last.7d": None}, "visits.last.7d") is None
    assert read_path({"Customer message text": "Hi"}, "Customer message text") == "Hi"
    assert read_path({"a.b": {"c": 1}}, '["a.b"].c') == 1, "quoted: exactly as written"
    assert read_path({"a.b": 1}, '["a"].b') is None
    assert key_path('payload["Customer message text"]').parts == ("Customer message text",)
    assert key_path('entity["plan name"]', "entity").parts == ("plan name",)
    assert key_path("score [0-10]").parts == ("score [0-10]",), "brackets without quotes"
    with pytest.raises(ValueError, match="is not a quoted path"):
        key_path('payload["unclosed')


def test_live_features_and_the_backtest_replay_read_the_same_values(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[DOTTED])
    t0 = clock.now - timedelta(days=2)

    def at(minutes: int) -> str:
        return (t0 + timedelta(minutes=minutes)).isoformat()

    events: list[dict[str, Any]] = [
        # As `opsloop import` stores a CSV row: flat keys with dots and spaces.
        {
            "type": "lead.imported",
            "subject": "lead:1",
            "occurred_at": at(0),
            "traits": {"visits.last.7d": 3, "profile": {"visits": 2}, "plan name": "pro"},
        },
        {
            "type": "order.paid",
            "subject": "lead:1",
            "occurred_at": at(1),
            "payload": {"amount.total": 7, "line items": 2},
        },
        {
            "type": "order.paid",
            "subject": "lead:1",
            "occurred_at": at(2),
            "payload": {"amount": {"total": 4}, "amount.total": 1},
        },
        {"type": "demo.requested", "subject": "lead:1", "occurred_at": at(3)},
        # As a JSON body nests them.
        {
            "type": "profile.updated",
            "subject": "lead:2",
            "occurred_at": at(4),
            "traits": {"visits": {"last": {"7d": 5}}},
        },
        {
            "type": "order.paid",
            "subject": "lead:2",
            "occurred_at": at(5),
            "payload": {"amount": {"total": 4}},
        },
        {"type": "demo.requested", "subject": "lead:2", "occurred_at": at(6)},
    ]
    store(ops, events)

    decisions = {d["subject"]: d for d in ops.decide.list_decisions()}
    features = {
        subject: ops.decide.decision_detail(d["id"])["inputs"]["features"]
        for subject, d in decisions.items()
    }
    assert features["lead:1"] == {
        "visits": 3,
        "nested": 2,
        "plan": "pro",
        "plan_pro": 1,
        "spent": 8,
        "items": 0,
    }, "flat keys first; the last order has no line items"
    assert features["lead:2"] == {
        "visits": 5,
        "nested": 0,
        "plan": None,
        "plan_pro": 0,
        "spent": 4,
        "items": 0,
    }

    compiled = ops.ctx.catalog.active()["dotted"].compiled
    since = t0 - timedelta(days=1)
    query = history_query([Version(compiled, "active", 1, "")], since=since, until=clock.now)
    with ops.db.read() as conn:
        replayed = replay(
            prepare(read_history(conn, query)), compiled, since=since, until=clock.now
        )
    live_scores = {d["subject"]: d["score"] for d in decisions.values()}
    assert dict(zip(replayed.subjects, replayed.scores, strict=True)) == live_scores
    assert live_scores == {"lead:1": 1000823, "lead:2": 405}


def test_a_text_field_may_be_any_column_name_or_a_quoted_path() -> None:
    for field in ("Customer message text", 'payload["Customer message text"]'):
        spec = TextSpec(field=field)
        assert message_text(spec, {"Customer message text": "Where is my card?"}) == (
            "Where is my card?"
        )
    assert message_text(TextSpec(field="body.text"), {"body.text": "flat"}) == "flat"
    assert message_text(TextSpec(field="body.text"), {"body": {"text": "nested"}}) == "nested"

    playbook, _ = load_playbook(
        """\
name: intents
subject: ticket
trigger: {events: ticket.opened}
text:
  field: Customer message text
  classify: {using: model, labels: [card, other], min_rows: 4}
otherwise: route
options:
  route: {}
""",
        "intents.yaml",
    )
    assert playbook.text is not None


def test_a_path_that_does_not_parse_is_refused_with_its_field() -> None:
    with pytest.raises(PlaybookInvalid) as caught:
        load_playbook(DOTTED.replace('payload["line items"]\'', "payload[\"line items'"), "d.yaml")
    assert "is not a quoted path" in str(caught.value)
    assert "features.items.field" in str(caught.value)


def test_text_training_reads_a_column_with_spaces() -> None:
    playbook, _ = load_playbook(
        """\
name: intents
subject: ticket
trigger: {events: ticket.opened}
text:
  field: 'payload["Customer message text"]'
  classify: {using: model, min_rows: 4}
otherwise: route
options:
  route: {}
""",
        "intents.yaml",
    )
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def event(id_: int, type_: str, payload: dict[str, Any]) -> Event:
        return Event(
            id=id_,
            source="import",
            type=type_,
            subject=f"ticket:{id_ % 10}",
            occurred_at=at + timedelta(minutes=id_),
            received_at=at,
            payload=payload,
            idempotency_key=f"k{id_}",
        )

    messages = [event(1, "ticket.opened", {"Customer message text": "Card lost"})]
    labels = [event(11, "ticket.labelled", {"label": "card", "event_id": 1})]
    dataset = build_text_dataset(playbook, messages, labels)
    assert [(row.text, row.label) for row in dataset.rows] == [("Card lost", "card")]

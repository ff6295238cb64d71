"""Sources and the quarantine on SQLite and PostgreSQL: what each source sent, replaying a
refused body once its source is fixed (never deleting it), and refusing to replay what cannot be
checked again."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from opsloop.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from opsloop.service import OpsLoop
from opsloop.store import quarantine as quarantine_store
from opsloop.store.schema import audit, quarantine
from tests.conftest import Clock, OpsFactory, lead_playbook

UNSIGNED = {"allow_unsigned": True}
MAPPING = {"typeform": {"type": "form.submitted", "subject": "'lead:' + lower(email)", **UNSIGNED}}
FORM = b'{"email": "Ana@Example.com", "answers": [1, 2]}'


def test_activity_counts_events_by_source_and_type(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, sources={"shop": UNSIGNED})
    assert ops.ingest.source_activity() == []
    for n in range(3):
        ops.ingest.body(json.dumps({"type": "page.viewed", "subject": f"lead:{n}"}).encode())
    start = clock.now
    clock.advance(minutes=5)
    ops.ingest.body(json.dumps({"type": "lead.created", "subject": "lead:9"}).encode())
    clock.advance(minutes=1)
    ops.ingest.hook("Shop", b'{"type": "order.paid", "subject": "customer:bo"}', {})

    shop, api = ops.ingest.source_activity()  # the most recently active first
    assert (shop.source, shop.events, shop.last_received_at) == ("shop", 1, clock.now)
    assert (api.source, api.events) == ("api", 4)
    assert [(t.type, t.events) for t in api.types] == [("page.viewed", 3), ("lead.created", 1)]
    assert api.last_received_at == start.replace(minute=5)
    assert api.types[0].last_received_at == start


def test_a_body_refused_by_its_mapping_is_replayed_once_the_source_is_fixed(
    make_ops: OpsFactory, database_url: str
) -> None:
    before = make_ops(database_url, playbooks=[lead_playbook()], sources={"typeform": UNSIGNED})
    with pytest.raises(InvalidInput, match="subject"):
        before.ingest.hook("typeform", FORM, {})
    [item] = before.ingest.quarantine_items()
    assert (item["status"], item["refused_as"], item["cannot_replay"]) == ("held", "invalid", None)
    before.close()

    # The owner adds the mapping and restarts OpsLoop; then replays the item.
    fixed = make_ops(database_url, sources=MAPPING)
    done = fixed.ingest.replay_quarantined(item["id"], actor="olga@example.com")

    assert (done.ok, done.created) == (True, 1)
    event = fixed.ingest.get_event(done.event_ids[0])
    assert (event["source"], event["type"], event["subject"]) == (
        "typeform",
        "form.submitted",
        "lead:ana@example.com",
    )
    assert event["payload"] == json.loads(FORM)
    assert event["received_at"] == item["received_at"]  # when it arrived, not when replayed
    assert event["idempotency_key"] == f"quarantine:{item['id']}:0"
    [again] = fixed.ingest.quarantine_items()
    assert again["status"] == "replayed"
    assert again["body"] == FORM.decode()  # kept, not deleted
    [replay] = again["replays"]
    assert (replay["ok"], replay["actor"], replay["event_ids"]) == (
        True,
        "olga@example.com",
        done.event_ids,
    )
    with pytest.raises(Conflict, match="already replayed"):
        fixed.ingest.replay_quarantined(item["id"], actor="olga@example.com")
    assert fixed.ingest.quarantine_counts() == {"replayed": 1}


def test_a_body_still_wrong_is_refused_again_and_stays_held(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    body = b'{"type": "lead.created", "subject": "lead 7", "traits": {"email": "a@b.co"}}'
    with pytest.raises(InvalidInput):
        ops.ingest.body(body)
    [item] = ops.ingest.quarantine_items()
    # Still wrong: refused again, with the reason kept and nothing new quarantined.
    failed = ops.ingest.replay_quarantined(item["id"], actor="olga@example.com")
    assert not failed.ok
    assert failed.reason == item["reason"]
    [still] = ops.ingest.quarantine_items()
    assert (still["status"], len(still["replays"])) == ("held", 1)
    assert still["replays"][0]["reason"] == item["reason"]
    assert not still["replays"][0]["ok"]
    with ops.db.read() as conn:
        verbs = conn.execute(sa.select(audit.c.verb).where(audit.c.object_type == "quarantine"))
        assert sorted(verbs.scalars()) == ["input.quarantined.invalid", "input.replay_failed"]
        assert conn.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar() == 1


def test_a_replayed_event_is_decided_on_like_any_other(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook()])
    with ops.db.transaction() as tx:
        # As if an older version had refused a body this one accepts (the API path: `api`).
        item_id = quarantine_store.hold(
            tx.conn,
            source="api",
            received_at=ops.ctx.clock(),
            reason="an older rule",
            errors=[],
            body=b'{"type": "lead.created", "subject": "lead:8", "traits": {"email": "c@d.co"}}',
        )
    done = ops.ingest.replay_quarantined(item_id, actor="olga@example.com")
    assert done.ok
    [decision] = ops.decide.list_decisions(subject="lead:8")
    assert decision["event_id"] == done.event_ids[0]


def test_what_cannot_be_checked_again_is_not_replayed(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, sources={"shop": {"secret": "s3cret"}}, max_body_bytes=1024)
    with pytest.raises(Unauthorized):
        ops.ingest.hook("shop", b'{"type": "order.paid", "subject": "customer:1"}', {})
    ops.ingest.refuse_oversized("api", b'{"type": "x"' + b" " * 1000, 5000, "application/json")
    ops.ingest.quarantine(
        source="import", body=b"x,y", error=InvalidInput.single("", "bad"), file="a.csv", line=3
    )

    reasons = {item["source"]: item["cannot_replay"] for item in ops.ingest.quarantine_items()}
    assert "signature" in reasons["shop"]
    assert "deliver it again" in reasons["shop"]
    assert "5,000-byte body" in reasons["api"]
    assert "line 3 of the file a.csv" in reasons["import"]
    for item in ops.ingest.quarantine_items():
        with pytest.raises(Conflict, match="cannot be replayed"):
            ops.ingest.replay_quarantined(item["id"], actor="olga@example.com")
    with pytest.raises(NotFound):
        ops.ingest.replay_quarantined(999, actor="olga@example.com")
    assert ops.ingest.quarantine_counts() == {"held": 3}


def hold(ops: OpsLoop, source: str, body: bytes) -> int:
    """Put a body in quarantine as an older version would have kept it."""
    with ops.db.transaction() as tx:
        return quarantine_store.hold(
            tx.conn,
            source=source,
            received_at=ops.ctx.clock(),
            reason="an older rule",
            errors=[],
            body=body,
        )


def test_a_held_body_cannot_name_another_source_when_replayed(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    body = b'{"type": "order.completed", "subject": "customer:1", "source": "stripe", "idempotency_key": "evt_1"}'
    with pytest.raises(InvalidInput) as refused:
        ops.ingest.body(body)
    [error] = refused.value.errors
    assert error.field == "source"
    held = hold(ops, "api", body)  # as an older version, which took the body's word, kept it

    for item_id in (refused.value.quarantine_id, held):
        assert item_id is not None
        done = ops.ingest.replay_quarantined(item_id, actor="olga@example.com")
        assert not done.ok
        assert done.reason is not None
        assert "post them to /hooks/stripe" in done.reason
    assert ops.ingest.list_events() == []


def test_a_body_no_signature_ever_checked_is_not_replayed_into_a_source_that_wants_one(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, sources={"shop": {}})
    ops.ingest.add_source("name: forms\nkind: webhook\n", "forms.yaml", actor="test")
    event = b'{"type": "order.paid", "subject": "customer:1"}'
    # Kept by an older version, which took unsigned deliveries to any name.
    items = {name: hold(ops, name, event) for name in ("shop", "forms", "nobody")}

    reasons = {}
    for name, item_id in items.items():
        done = ops.ingest.replay_quarantined(item_id, actor="olga@example.com")
        assert not done.ok, name
        reasons[name] = done.reason
    assert "OPSLOOP_SOURCES__SHOP__SECRET" not in reasons["shop"]
    assert "its body was never checked" in reasons["shop"]
    assert "its body was never checked" in reasons["forms"]
    assert reasons["nobody"] == (
        "no webhook source 'nobody': declare it with `opsloop source add` "
        "(docs/sources.md#webhooks)"
    )
    assert ops.ingest.list_events() == []
    assert ops.ingest.quarantine_counts() == {"held": 3}

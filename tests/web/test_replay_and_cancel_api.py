"""Replaying a quarantined item and cancelling an action over the JSON API, on SQLite and
PostgreSQL: what happened comes back as JSON, what cannot be done is a 409 saying why, only an
admin token replays, a review token cancels, and a cancelled action is never delivered."""

from __future__ import annotations

import httpx
import pytest

from opsloop.core.errors import InvalidInput, Unauthorized
from opsloop.service import OpsLoop
from tests.conftest import OpsFactory, Serve, lead_playbook
from tests.leads import settle
from tests.sinks import SmtpSink

UNMAPPED = {"typeform": {"allow_unsigned": True}}
MAPPING = {
    "typeform": {"type": "form.submitted", "subject": "'lead:' + lower(email)"}
    | UNMAPPED["typeform"]
}
FORM = b'{"email": "Ana@Example.com", "answers": [1, 2]}'


def bearer(ops: OpsLoop, scope: str) -> dict[str, str]:
    token = ops.accounts.create_token(f"{scope} token", scope, actor="tests").token
    return {"Authorization": f"Bearer {token}"}


def refused_form(ops: OpsLoop) -> int:
    """A typeform body refused because the source has no mapping yet; its quarantine id."""
    with pytest.raises(InvalidInput):
        ops.ingest.hook("typeform", FORM, {})
    [item] = ops.ingest.quarantine_items()
    return int(item["id"])


def test_an_admin_token_replays_an_item_once_its_source_is_fixed(
    make_ops: OpsFactory, database_url: str, serve: Serve
) -> None:
    before = make_ops(database_url, use_clock=False, sources=UNMAPPED)
    item_id = refused_form(before)
    before.close()
    # The owner maps the source and restarts OpsLoop.
    site = serve(make_ops(database_url, use_clock=False, sources=MAPPING))

    with site.client() as api:
        done = api.post(f"/api/quarantine/{item_id}/replay")
        assert done.status_code == 200, done.text
        answer = done.json()
        assert (answer["item_id"], answer["ok"], answer["status"]) == (item_id, True, "replayed")
        assert (answer["created"], answer["reason"]) == (1, None)
        [event_id] = answer["event_ids"]
        event = api.get(f"/api/events/{event_id}").json()
        assert (event["type"], event["subject"]) == ("form.submitted", "lead:ana@example.com")
        assert api.get(f"/api/quarantine/{item_id}").json()["status"] == "replayed"
        [replay] = site.ops.ingest.quarantine_item(item_id)["replays"]
        assert (replay["ok"], replay["actor"]) == (True, "token:tests")  # the caller by default

        again = api.post(f"/api/quarantine/{item_id}/replay")
        assert (again.status_code, again.json()["error"]) == (409, "conflict")
        assert again.json()["message"] == f"quarantined item {item_id} is already replayed"
        missing = api.post("/api/quarantine/999999/replay")
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found")


def test_a_replay_refused_again_answers_with_the_new_reason_and_the_item_stays_held(
    make_ops: OpsFactory, database_url: str, serve: Serve
) -> None:
    ops = make_ops(database_url, use_clock=False, sources=UNMAPPED)
    item_id = refused_form(ops)
    site = serve(ops)

    with site.client() as api:
        done = api.post(f"/api/quarantine/{item_id}/replay", json={"actor": "olga"})

    assert done.status_code == 200, done.text
    assert done.json() == {
        "item_id": item_id,
        "ok": False,
        "status": "held",
        "event_ids": [],
        "created": 0,
        "reason": "type: is required; subject: is required; email: unknown field; "
        "answers: unknown field",
    }
    item = ops.ingest.quarantine_item(item_id)
    assert item["status"] == "held"
    assert [(r["ok"], r["actor"]) for r in item["replays"]] == [(False, "olga")]
    assert ops.ingest.quarantine_counts() == {"held": 1}


def test_an_item_that_cannot_be_replayed_is_refused_with_the_reason(
    make_ops: OpsFactory, database_url: str, serve: Serve
) -> None:
    ops = make_ops(database_url, use_clock=False, sources={"shop": {"secret": "a shop secret"}})
    with pytest.raises(Unauthorized):
        ops.ingest.hook("shop", b'{"type": "a.b", "subject": "c:d"}', {})
    [item] = ops.ingest.quarantine_items()
    site = serve(ops)

    with site.client() as api:
        refused = api.post(f"/api/quarantine/{item['id']}/replay")

    assert (refused.status_code, refused.json()["error"]) == (409, "conflict")
    assert "cannot be replayed: it was refused for its signature" in refused.json()["message"]
    assert ops.ingest.quarantine_item(item["id"])["replays"] == []


def test_a_review_token_cancels_a_pending_action_and_it_is_never_delivered(
    make_ops: OpsFactory, database_url: str, serve: Serve, smtp_sink: SmtpSink
) -> None:
    ops = make_ops(
        database_url,
        playbooks=[lead_playbook()],
        use_clock=False,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
    )
    [email] = settle(ops, 1)
    site = serve(ops)

    with httpx.Client(base_url=site.url, headers=bearer(ops, "review"), timeout=10) as api:
        done = api.post(f"/api/actions/{email['id']}/cancel")
        assert done.status_code == 200, done.text
        action = done.json()
        assert (action["id"], action["status"], action["last_error"]) == (
            email["id"],
            "cancelled",
            "cancelled by token:review token",
        )
        again = api.post(f"/api/actions/{email['id']}/cancel")
        assert again.status_code == 409
        assert again.json()["message"] == (
            f"action {email['id']} is cancelled; only pending or retrying actions can be cancelled"
        )
        missing = api.post("/api/actions/999999/cancel")
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found")

    ops.run_jobs()  # its delivery job runs, and does nothing
    assert ops.deliver.send(email["id"]) == "cancelled"
    assert ops.deliver.get_action(email["id"])["attempts"] == 0
    assert smtp_sink.messages == []


def test_a_delivered_action_cannot_be_cancelled(
    make_ops: OpsFactory, database_url: str, serve: Serve, smtp_sink: SmtpSink
) -> None:
    ops = make_ops(
        database_url,
        playbooks=[lead_playbook()],
        use_clock=False,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
    )
    [email] = settle(ops, 1)
    ops.run_jobs()
    assert ops.deliver.get_action(email["id"])["status"] == "delivered"
    site = serve(ops)

    with site.client() as api:
        refused = api.post(f"/api/actions/{email['id']}/cancel", json={"actor": "rui"})

    assert (refused.status_code, refused.json()["error"]) == (409, "conflict")
    assert refused.json()["message"] == (
        f"action {email['id']} is delivered; only pending or retrying actions can be cancelled"
    )
    assert ops.deliver.get_action(email["id"])["status"] == "delivered"


def test_a_read_token_and_an_anonymous_caller_may_neither_replay_nor_cancel(
    make_ops: OpsFactory, database_url: str, serve: Serve
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook()], use_clock=False, sources=UNMAPPED)
    item_id = refused_form(ops)
    [email] = settle(ops, 1)
    site = serve(ops)
    replay, cancel = f"/api/quarantine/{item_id}/replay", f"/api/actions/{email['id']}/cancel"

    with httpx.Client(base_url=site.url, headers=bearer(ops, "read"), timeout=10) as reader:
        for url in (replay, cancel):
            answer = reader.post(url)
            assert (answer.status_code, answer.json()["error"]) == (403, "forbidden"), url
        assert "needs the owner role or a token of scope admin" in reader.post(replay).text
    with httpx.Client(base_url=site.url, headers=bearer(ops, "review"), timeout=10) as reviewer:
        assert reviewer.post(replay).status_code == 403  # replay is for owners
    with httpx.Client(base_url=site.url, timeout=10) as anonymous:
        for url in (replay, cancel):
            answer = anonymous.post(url)
            assert (answer.status_code, answer.json()["error"]) == (401, "unauthorized"), url

    assert ops.ingest.quarantine_item(item_id)["replays"] == []
    assert ops.deliver.get_action(email["id"])["status"] == "pending"

"""Cancelling an action on SQLite and PostgreSQL: a cancelled action never runs, whatever
delivery job or retry comes after; only actions not yet delivered can be cancelled."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from opsloop.core.errors import Conflict, NotFound
from opsloop.store.schema import audit
from tests.conftest import Clock, OpsFactory, lead_playbook
from tests.leads import settle
from tests.sinks import SmtpSink, free_port


def test_a_cancelled_action_is_never_delivered_even_when_its_job_runs(
    make_ops: OpsFactory, database_url: str, smtp_sink: SmtpSink
) -> None:
    ops = make_ops(
        database_url, playbooks=[lead_playbook()], smtp_host="127.0.0.1", smtp_port=smtp_sink.port
    )
    [email] = settle(ops, 1)
    assert email["status"] == "pending"

    cancelled = ops.deliver.cancel_action(email["id"], actor="rui@example.com")

    assert (cancelled["status"], cancelled["last_error"]) == (
        "cancelled",
        "cancelled by rui@example.com",
    )
    assert ops.run_jobs() >= 1  # the delivery job queued with the action runs, and does nothing
    assert ops.deliver.send(email["id"]) == "cancelled"
    assert smtp_sink.messages == []
    assert ops.deliver.get_action(email["id"])["attempts"] == 0
    with pytest.raises(Conflict, match="only dead-lettered actions can be retried"):
        ops.deliver.retry_action(email["id"], actor="rui@example.com")
    with pytest.raises(Conflict, match="is cancelled; only pending or retrying"):
        ops.deliver.cancel_action(email["id"], actor="rui@example.com")
    with ops.db.read() as conn:
        row = conn.execute(sa.select(audit).where(audit.c.verb == "action.cancelled")).one()
    assert (row.actor, row.object_id, row.detail) == (
        "rui@example.com",
        str(email["id"]),
        {"was": "pending"},
    )
    # The other lead's email still goes: cancelling one action touches nothing else.
    [other] = settle(ops, 2)
    ops.run_jobs()
    assert ops.deliver.get_action(other["id"])["status"] == "delivered"
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["lead2@example.com"]]


def test_a_retrying_action_can_be_cancelled_and_is_not_tried_again(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    sink = SmtpSink(free_port())  # not started yet: the first attempt fails
    ops = make_ops(
        database_url, playbooks=[lead_playbook()], smtp_host="127.0.0.1", smtp_port=sink.port
    )
    [email] = settle(ops, 1)
    ops.run_jobs()
    assert ops.deliver.get_action(email["id"])["status"] == "retrying"

    ops.deliver.cancel_action(email["id"], actor="rui@example.com")
    sink.start()
    try:
        clock.advance(hours=2)
        ops.run_jobs()
        action = ops.deliver.get_action(email["id"])
        assert (action["status"], action["attempts"], action["next_attempt_at"]) == (
            "cancelled",
            1,
            None,
        )
        assert sink.messages == []
    finally:
        sink.stop()


def test_delivered_and_dead_actions_cannot_be_cancelled(
    make_ops: OpsFactory, database_url: str, smtp_sink: SmtpSink
) -> None:
    ops = make_ops(
        database_url,
        playbooks=[lead_playbook()],
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        outbox_max_attempts=1,
    )
    [sent] = settle(ops, 1)
    [dead] = settle(ops, 2, email=None)  # no address: the email cannot be sent
    ops.run_jobs()
    assert ops.deliver.count_actions() == {"delivered": 1, "dead": 1}
    with pytest.raises(Conflict, match="is delivered"):
        ops.deliver.cancel_action(sent["id"], actor="rui@example.com")
    with pytest.raises(Conflict, match="is dead"):
        ops.deliver.cancel_action(dead["id"], actor="rui@example.com")
    with pytest.raises(NotFound):
        ops.deliver.cancel_action(999, actor="rui@example.com")

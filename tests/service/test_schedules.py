"""Scheduled playbooks: a cron expression in a time zone (daylight saving included) or an
interval, deciding about the subjects `select` picks — on SQLite with the in-process runtime
and on PostgreSQL with Procrastinate, the clock moved by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from opsloop.core.errors import PlaybookInvalid
from opsloop.core.playbooks import parse_playbook
from opsloop.store.schema import playbook_runs
from tests.conftest import Clock, OpsFactory

WIN_BACK = """\
name: win-back
subject: customer
mode: recommend
trigger:
  schedule: 0 8 * * *
  timezone: Europe/Berlin
  select: days_since_login == null or days_since_login > 14
features:
  days_since_login:
    days_since: login
otherwise: remind
options:
  remind:
    actions:
      - kind: email
        to: "{{ entity.email }}"
        subject: We miss you
        body: Come back.
"""


def send(ops: Any, *events: tuple[str, str, datetime]) -> None:
    body = [
        {
            "type": kind,
            "subject": subject,
            "occurred_at": at.isoformat(),
            "traits": {"email": f"{subject.split(':')[1]}@example.com"},
        }
        for kind, subject, at in events
    ]
    ops.ingest.body(json.dumps({"events": body}).encode())


def decided(ops: Any) -> list[tuple[str, str]]:
    """(subject, the decision's anchor time) of each decision, oldest first."""
    found = []
    for summary in ops.decide.list_decisions(playbook="win-back"):
        detail = ops.decide.decision_detail(summary["id"])
        found.append((detail["subject"], detail["explanation"]["trigger"]["occurred_at"]))
    return sorted(found, key=lambda pair: (pair[1], pair[0]))


def runs(ops: Any) -> list[tuple[str, str, int, int]]:
    with ops.ctx.db.read() as conn:
        rows = conn.execute(
            select(
                playbook_runs.c.due_at,
                playbook_runs.c.status,
                playbook_runs.c.subjects,
                playbook_runs.c.selected,
            ).order_by(playbook_runs.c.due_at)
        )
        return [(at.isoformat(), status, n, picked) for at, status, n, picked in rows]


def test_a_daily_run_at_8_in_berlin_keeps_its_hour_across_daylight_saving(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    clock.now = datetime(2026, 3, 26, 12, 0, tzinfo=UTC)
    ops = make_ops(database_url, playbooks=[WIN_BACK])
    send(
        ops,
        ("login", "customer:old", clock.now - timedelta(days=20)),
        ("login", "customer:fresh", clock.now - timedelta(days=2)),
        ("signup.completed", "customer:never", clock.now - timedelta(days=30)),
        ("lead.created", "lead:other", clock.now),
    )
    ops.run_jobs()
    assert runs(ops) == [("2026-03-26T07:00:00+00:00", "skipped", 0, 0)], (
        "a new schedule starts with its next due time, not the one already past"
    )

    clock.now = datetime(2026, 3, 27, 7, 0, 30, tzinfo=UTC)  # 08:00:30 in Berlin (CET)
    ops.run_jobs()
    assert decided(ops) == [
        ("customer:never", "2026-03-27T07:00:00+00:00"),
        ("customer:old", "2026-03-27T07:00:00+00:00"),
    ]

    # The server is down over the 28th; it comes back on the 29th after the clocks went
    # forward: 08:00 in Berlin is now 06:00 UTC, and the missed day is not run on top of it.
    clock.now = datetime(2026, 3, 29, 6, 5, tzinfo=UTC)
    restarted = make_ops(database_url)
    restarted.run_jobs()
    ops.run_jobs()  # the first process, still up too, finds the run claimed
    assert runs(ops) == [
        ("2026-03-26T07:00:00+00:00", "skipped", 0, 0),
        ("2026-03-27T07:00:00+00:00", "done", 3, 2),
        ("2026-03-29T06:00:00+00:00", "done", 3, 2),
    ]
    assert [at for _, at in decided(ops)].count("2026-03-29T06:00:00+00:00") == 2
    detail = ops.decide.decision_detail(ops.decide.list_decisions(playbook="win-back")[0]["id"])
    assert detail["inputs"]["features"]["days_since_login"] == pytest.approx(22.75)


def test_a_run_killed_halfway_and_run_again_decides_each_subject_once(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    from opsloop.service.decide import schedules
    from opsloop.store import playbook_runs as runs_store

    ops = make_ops(database_url, playbooks=[WIN_BACK.replace("0 8 * * *", "6h")])
    send(ops, *[("signup.completed", f"customer:c{n}", clock.now) for n in range(5)])
    active = ops.ctx.catalog.active()["win-back"]
    due = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    with ops.ctx.db.transaction() as tx:
        run_id = runs_store.claim(tx.conn, active.id, due, clock.now)
    assert run_id is not None
    schedules._page(ops.ctx, active, run_id, due, ["customer:c1", "customer:c3"])  # then killed
    counts = schedules.run(ops.ctx, "win-back", run_id)
    assert counts == {"subjects": 5, "selected": 5, "decided": 5}
    assert sorted(subject for subject, _ in decided(ops)) == [f"customer:c{n}" for n in range(5)]
    assert schedules.run(ops.ctx, "win-back", run_id) == {
        "subjects": 0,
        "selected": 0,
        "decided": 0,
    }, "a finished run is not run again"


def test_an_interval_runs_every_period_and_the_page_shows_the_next_ones(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock
) -> None:
    ops = make_ops(sqlite_url, playbooks=[WIN_BACK.replace("0 8 * * *", "6h")])
    send(ops, ("signup.completed", "customer:ida", clock.now - timedelta(days=1)))
    ops.run_jobs()  # 09:00: the 06:00 run is the baseline
    for _ in range(4):
        clock.advance(hours=6)
        ops.run_jobs()
    assert [status for _, status, _, _ in runs(ops)] == ["skipped", "done", "done", "done", "done"]
    assert len(decided(ops)) == 4
    detail = ops.decide.get_playbook("win-back")
    assert detail["schedule"]["description"] == "Every 6 hours"
    assert detail["schedule"]["next_runs"][:2] == [
        "2026-03-03T12:00:00+00:00",
        "2026-03-03T18:00:00+00:00",
    ]
    assert detail["schedule"]["last_runs"][0]["selected"] == 1


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        (("0 8 * * *", "0 25 * * *"), "trigger.schedule", "not a valid cron expression"),
        (("0 8 * * *", "every monday"), "trigger.schedule", "neither a cron expression"),
        (("Europe/Berlin", "Europe/Berlinn"), "trigger.timezone", "not a time zone"),
        (("  schedule: 0 8 * * *\n", "  events: [login]\n"), "trigger.timezone", "belongs to"),
        (("  schedule: 0 8 * * *\n", "  schedule: 30s\n"), "trigger.schedule", "once a minute"),
        (("  timezone:", "  events: [login]\n  timezone:"), "trigger.events", "cannot be"),
    ],
)
def test_a_bad_schedule_is_refused_with_its_line(
    change: tuple[str, str], where: str, says: str
) -> None:
    with pytest.raises(PlaybookInvalid) as raised:
        parse_playbook(WIN_BACK.replace(*change), "win-back.yaml")
    found = [p for p in raised.value.problems if p.field == where]
    assert found, raised.value.problems
    assert says in found[0].message
    assert found[0].line is not None
    assert 4 <= found[0].line <= 7


def test_a_cooldown_keeps_a_daily_schedule_from_deciding_every_day(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock
) -> None:
    daily = WIN_BACK.replace("0 8 * * *", "1d").replace(
        "  timezone: Europe/Berlin\n", "  cooldown: 2d\n"
    )
    ops = make_ops(sqlite_url, playbooks=[daily])
    send(ops, ("signup.completed", "customer:jo", clock.now - timedelta(days=1)))
    ops.run_jobs()
    for _ in range(4):
        clock.advance(days=1)
        ops.run_jobs()
    assert [at[:10] for _, at in decided(ops)] == ["2026-03-03", "2026-03-05"]
    assert [r[3] for r in runs(ops)] == [0, 1, 1, 1, 1], "picked every day, decided every other"

"""Backtests, on SQLite and on PostgreSQL: a replay of the active version gives exactly the
decisions the live loop stored; a backtest changes nothing; changed decisions, agreement with
reviewers and outcome rates are counted right on hand-built histories; a bad draft is refused
with its lines; the command line and the HTTP API run one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import InvalidInput, PlaybookInvalid
from opsloop.core.events import validate_events
from opsloop.demo.simulator import Simulator
from opsloop.learning.backtest import Version, history_query
from opsloop.learning.readiness import wilson_lower_bound
from opsloop.learning.replay import replay
from opsloop.learning.replay_features import prepare
from opsloop.service import OpsLoop
from opsloop.store import decisions as decision_store
from opsloop.store import schema
from opsloop.store.backtests import read_history
from tests.conftest import Clock, LiveServer, OpsFactory, lead_playbook
from tests.service.test_models import decide_on, trained
from tests.sinks import SmtpSink

# Every feature kind; `where` read by value and event by event (it reads `occurred_at`);
# formulas; `event` and `entity` (nested) in conditions; a points expression; a points table
# and a choosing table; conditions, table cells, rules and guardrails that fail on nulls; a
# guarded option; a cooldown that skips triggers.
DEEP = """\
name: lead-deep
subject: lead
mode: recommend
trigger:
  events: [demo.requested, page.viewed, deal.won]
  cooldown: 2d
features:
  size: {trait: company_size, default: 0}
  industry: {trait: industry}
  country: {trait: address.country}
  views_3d: {count: page.viewed, within: 3d}
  pricing_or_docs_14d:
    count: page.viewed
    within: 14d
    where: 'payload.path in ["/pricing", "/docs"]'
  blog_views: {count: page.viewed, where: 'startsWith(payload.path, "/blog")'}
  morning_views: {count: page.viewed, where: 'contains(occurred_at, "T0")'}
  won_total: {sum: deal.won, field: amount}
  won_avg: {avg: deal.won, field: amount, default: 0}
  won_max: {max: deal.won, field: amount}
  won_min: {min: deal.won, field: amount, within: 30d}
  last_path: {last: page.viewed, field: path}
  team_size: {last: demo.requested, field: team_size}
  days_since_demo: {days_since: demo.requested}
  intensity: {formula: "views_3d * 2 + (team_size ?? 0) / 100 + morning_views"}
  quiet: {formula: "days_since_demo > 3 ? 1 : 0", default: -1}
scorecard:
  - {when: 'event.type == "demo.requested"', points: 10}
  - {when: 'entity.role == "founder"', points: 5}
  - {when: won_total > 0, points: 3}
  - {when: pricing_or_docs_14d >= 2, points: "pricing_or_docs_14d * 4"}
  - {when: intensity > 5, points: 7.5}
  - {when: 'last_path == "/pricing"', points: 6}
  - {when: 'size > 100 and industry == "software"', points: 8}
  - {when: days_since_demo < 2, points: 5}
  - {when: won_avg / won_max > 0.5, points: 1}
  - {when: 'country == "DE"', points: 2}
  - {when: blog_views >= 3, points: -4.25}
tables:
  fit:
    hit: collect_sum
    rows:
      - {when: {size: "[10..500]", industry: software}, points: 12}
      - {when: {entity.budget: ">= 5000"}, points: 4.5}
      - {when: {days_since_demo: "< 3"}, points: 3}
  route:
    hit: priority
    rows:
      - {when: {score: ">= 8"}, choose: call, priority: 2}
      - {when: {fit: ">= 12", views_3d: ">= 2"}, choose: upsell, priority: 1}
      - {when: {last_path: '"/pricing"'}, choose: wait, priority: 0}
score: "points / 2"
rules:
  - {when: 'score >= 10 and entity.budget >= 5000', choose: call}
  - {when: won_min < 3000, choose: upsell}
otherwise: wait
options:
  call:
    actions: [{kind: task, title: "Call {{ subject }}"}]
  upsell:
    actions: [{kind: webhook, url: "http://127.0.0.1:9/upsell", sensitive: true}]
  wait: {}
guardrails:
  - {when: 'entity.source == "cold_outbound"', reason: cold leads wait for a person}
  - {when: 'choice == "call" and team_size > 100', reason: big teams wait for a person}
outcome:
  success: deal.won
  failure: deal.lost
  within: 14d
"""

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def store(ops: OpsLoop, events: list[dict[str, Any]], batch: int = 400) -> None:
    """Through the ingest path, as a client would: events stored, traits merged, decided.

    An event that carries traits starts a new batch: live, a batch's trait patches are all
    merged before any of its events is decided, so a trigger would see a patch that occurred
    after it in the same batch, where a replay (and a live stream) sees the profile as of the
    trigger. docs/backtests.md lists this difference."""
    pending: list[dict[str, Any]] = []
    for event in [*events, None]:
        if pending and (event is None or event.get("traits") or len(pending) >= batch):
            ops.ingest.store_events(validate_events(pending, source="test", received_at=ops.now()))
            pending = []
        if event is not None:
            pending.append(event)


def simulated_history(clock: Clock, days: int) -> list[dict[str, Any]]:
    """The demo business, plus profile updates (nested traits, a trait removed by null) for
    every fifth lead, so the replay has to merge several trait patches per subject."""
    events = Simulator(seed=11).history(days, clock.now)
    for event in [e for e in events if e["type"] == "lead.created"][::5]:
        at = datetime.fromisoformat(event["occurred_at"]) + timedelta(hours=1)
        if at < clock.now:
            events.append(
                {
                    "type": "profile.updated",
                    "subject": event["subject"],
                    "occurred_at": at.isoformat(),
                    "traits": {"budget": 50000, "role": None, "address": {"country": "DE"}},
                }
            )
    return sorted(events, key=lambda e: e["occurred_at"])


def stored_decisions(ops: OpsLoop, playbook: str) -> dict[int, dict[str, Any]]:
    # Through the store: the explanation is kept compactly (opsloop/store/explanations.py).
    with ops.db.read() as conn:
        found = decision_store.list_decisions(conn, playbook=playbook, limit=1_000_000)
    return {
        d.event_id: {
            "choice": d.choice,
            "score": d.score,
            "needs_approval": d.needs_approval,
            "explanation": d.explanation,
        }
        for d in found
    }


def live_errors(explanation: dict[str, Any]) -> list[str]:
    """The messages of every expression that failed in a live decision's explanation."""
    messages = list(explanation.get("feature_errors", {}).values())
    for part in ("scorecard", "rules", "guardrails"):
        messages += [entry["error"] for entry in explanation.get(part, []) if "error" in entry]
    for table in explanation.get("tables", []):
        messages += [row["error"] for row in table["rows"] if "error" in row]
    if "error" in explanation.get("score", {}):
        messages.append(explanation["score"]["error"])
    return sorted(messages)


def test_replaying_the_active_versions_reproduces_every_live_decision(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("recommend"), DEEP])
    history = simulated_history(clock, days=25)
    store(ops, history)
    since = datetime.fromisoformat(history[0]["occurred_at"]) - timedelta(days=1)

    for name in ("lead-qualification", "lead-deep"):
        live = stored_decisions(ops, name)
        assert len(live) > 200, "the history triggers a realistic number of decisions"
        compiled = ops.ctx.catalog.active()[name].compiled
        query = history_query([Version(compiled, "active", 1, "")], since=since, until=clock.now)
        with ops.db.read() as conn:
            prepared = prepare(read_history(conn, query))
        replayed = replay(prepared, compiled, since=since, until=clock.now)

        assert sorted(replayed.event_ids) == sorted(live), f"{name}: the same triggers decided"
        for i, event_id in enumerate(replayed.event_ids):
            stored = live[event_id]
            got = {
                "choice": replayed.choices[i],
                "score": replayed.scores[i],
                "points": replayed.points[i],
                "held": replayed.held[i],
                "errors": sorted(message for _, message in replayed.errors[i] or []),
            }
            expected = {
                "choice": stored["choice"],
                "score": stored["score"],
                "points": stored["explanation"]["points"],
                "held": stored["needs_approval"],
                "errors": live_errors(stored["explanation"]),
            }
            assert got == expected, f"{name}, event {event_id}"

        report = ops.learn.backtest(playbook=name, since=since, save=False)
        assert report["live_record"]["stored"] == len(live)
        assert report["live_record"]["reproduced"] == len(live)
        assert report["counts"]["decisions"] == len(live)

    deep = ops.learn.backtest(playbook="lead-deep", since=since, save=False)
    assert deep["counts"]["skipped_by_cooldown"] > 0
    assert deep["counts"]["held_for_review"] > 0
    assert {e["where"] for e in deep["errors"]["by_message"]} >= {
        "scorecard[7].when",
        "scorecard[8].when",
    }
    assert deep["errors"]["by_message"][0]["message"] == "a value was null or of the wrong type"
    assert "tables.fit.rows[2]" in {e["where"] for e in deep["errors"]["by_message"]}
    routed = {c["choice"]: c["decisions"] for c in deep["choices"]}
    assert all(routed.values()), f"every option is chosen at least once: {routed}"


def test_a_playbook_with_a_model_replays_with_its_champion_read_only(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock
) -> None:
    ops = trained(make_ops, sqlite_url, clock)  # imported (undecided) history, then trained
    keen = decide_on(ops, "lead:keen", visits=6, budget=10000)
    assert keen["choice"] == "call"
    with ops.ctx.db.read() as conn:
        versions_before = conn.execute(select(schema.model_versions.c.status)).scalars().all()

    report = ops.learn.backtest(playbook="scoring", since="60d")

    routed = {c["choice"]: c["decisions"] for c in report["choices"]}
    # With the fallback (0) no score reaches 35: every `call` comes from the trained model.
    assert routed.get("call", 0) > 10
    # The live decision, made with the same champion, is reproduced score for score.
    live = report["live_record"]
    assert (live["stored"], live["reproduced"], live["different"]) == (1, 1, 0)
    with ops.ctx.db.read() as conn:
        versions_after = conn.execute(select(schema.model_versions.c.status)).scalars().all()
    assert versions_after == versions_before, "a backtest never trains, promotes or retires"


# --- hand-built histories --------------------------------------------------------------------


def lead(key: str, at: datetime, *, size: int, budget: int, views: int = 0) -> list[dict[str, Any]]:
    """A lead created at `at` after `views` page views (the first one the pricing page)."""
    subject = f"lead:{key}"
    events = [
        {
            "type": "page.viewed",
            "subject": subject,
            "occurred_at": (at - timedelta(hours=1, minutes=n)).isoformat(),
            "payload": {"path": "/pricing" if n == 0 else "/blog"},
        }
        for n in range(views)
    ]
    traits = {"email": f"{key}@example.com", "company_size": size, "budget": budget}
    events.append(
        {
            "type": "lead.created",
            "subject": subject,
            "occurred_at": at.isoformat(),
            "traits": traits,
        }
    )
    return events


def four_leads() -> list[dict[str, Any]]:
    """Scores 40 (a), 55 (b), 80 (c) and 0 (d): with `score >= 60`, only c is hot."""
    return [
        *lead("a", T0, size=40, budget=8000),
        *lead("b", T0 + timedelta(hours=1), size=40, budget=8000, views=1),
        *lead("c", T0 + timedelta(hours=2), size=40, budget=8000, views=6),
        *lead("d", T0 + timedelta(hours=3), size=3, budget=0),
    ]


def created_id(ops: OpsLoop, key: str) -> int:
    [row] = ops.ingest.list_events(subject=f"lead:{key}", type="lead.created")
    return int(row["id"])


def test_a_draft_with_a_lower_threshold_changes_the_decisions_between_the_thresholds(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("recommend")])
    store(ops, four_leads())
    draft = lead_playbook("recommend", **{"when: score >= 60": "when: score >= 50"})

    report = ops.learn.backtest(source=draft, since=T0 - timedelta(days=1), save=False)

    assert report["version"]["label"] == "draft"
    assert report["compared_with"] == {
        "label": "active version 1",
        "number": 1,
        "same_as_version": False,
    }
    assert report["counts"]["decisions"] == 4
    assert {c["choice"]: c["decisions"] for c in report["choices"]} == {"hot": 2, "nurture": 2}
    changes = report["changes"]
    assert changes["compared"] == 4
    assert changes["changed"] == 1
    assert changes["transitions"] == [{"from": "nurture", "to": "hot", "count": 1}]
    [example] = changes["examples"]
    assert example["subject"] == "lead:b"
    assert example["event_id"] == created_id(ops, "b")
    assert (example["old_choice"], example["new_choice"]) == ("nurture", "hot")
    assert (example["old_score"], example["new_score"], example["score_difference"]) == (55, 55, 0)

    # A saved older version, against the active one: the same change, the other way round.
    ops.decide.apply_playbook(draft, "draft.yaml", actor="test")
    older = ops.learn.backtest(
        playbook="lead-qualification", version=1, since=T0 - timedelta(days=1)
    )
    assert older["version"] == {
        "label": "version 1",
        "number": 1,
        "content_hash": older["version"]["content_hash"],
    }
    assert older["changes"]["transitions"] == [{"from": "hot", "to": "nurture", "count": 1}]


def test_agreement_counts_what_reviewers_chose_on_the_same_events(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("recommend")])
    store(ops, four_leads())
    decision = {row["subject"]: row["id"] for row in ops.decide.list_decisions()}
    ops.review.verdict(
        decision["lead:a"], ReviewRequest("approve", reviewer="ana")
    )  # nurture is right
    ops.review.verdict(
        decision["lead:b"],
        ReviewRequest("override", reviewer="ana", option="hot", reason="asked for a quote"),
    )
    ops.review.verdict(
        decision["lead:c"], ReviewRequest("reject", reviewer="bo", reason="a competitor")
    )
    # lead:d stays pending: no verdict, no evidence.
    draft = lead_playbook("recommend", **{"when: score >= 60": "when: score >= 50"})

    report = ops.learn.backtest(source=draft, since=T0 - timedelta(days=1), save=False)

    agreement = report["agreement"]
    assert agreement["reviewed"] == 3
    assert agreement["rejected"] == 1
    # The draft chooses nurture for a (approved) and hot for b (overridden to hot): both right.
    assert (agreement["compared"], agreement["agreed"], agreement["rate"]) == (2, 2, 1.0)
    assert agreement["lower_bound"] == round(wilson_lower_bound(2, 2), 4)
    # The active version chose nurture for b, which the reviewer overrode.
    active = agreement["active"]
    assert (active["compared"], active["agreed"], active["rate"]) == (2, 1, 0.5)


def test_outcome_rates_per_choice_count_open_windows_apart(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("recommend")])
    day = timedelta(days=1)
    events = [
        *lead("h1", T0, size=40, budget=8000, views=6),  # hot, won within 45 days
        *lead("h2", T0, size=40, budget=8000, views=6),  # hot, lost
        *lead("n1", T0, size=3, budget=0),  # nurture, nothing: closed, a failure
        *lead("n3", T0 + day, size=3, budget=0),  # nurture, won after 50 days: too late
        *lead("n2", T0 + 50 * day, size=3, budget=0),  # nurture, window still open at the end
        {"type": "deal.won", "subject": "lead:h1", "occurred_at": (T0 + 10 * day).isoformat()},
        {"type": "deal.lost", "subject": "lead:h2", "occurred_at": (T0 + 20 * day).isoformat()},
        {"type": "deal.won", "subject": "lead:n3", "occurred_at": (T0 + 51 * day).isoformat()},
    ]
    store(ops, sorted(events, key=lambda e: e["occurred_at"]))

    report = ops.learn.backtest(playbook="lead-qualification", since="2026-01-01", save=False)

    outcomes = report["outcomes"]
    assert (outcomes["success"], outcomes["failure"], outcomes["within"]) == (
        ["deal.won"],
        ["deal.lost"],
        "45d",
    )
    assert report["period"]["data_end"] == (T0 + 51 * day).isoformat()
    by_choice = {row["choice"]: row for row in outcomes["by_choice"]}
    assert by_choice["hot"] == {
        "choice": "hot",
        "decisions": 2,
        "success": 1,
        "failure": 1,
        "open": 0,
        "success_rate": 0.5,
    }
    assert by_choice["nurture"] == {
        "choice": "nurture",
        "decisions": 3,
        "success": 0,
        "failure": 2,
        "open": 1,
        "success_rate": 0.0,
    }


# --- no side effects -------------------------------------------------------------------------

COUNTED = ("events", "decisions", "reviews", "actions", "tasks", "outcomes", "jobs", "audit")


def row_counts(ops: OpsLoop) -> dict[str, Any]:
    with ops.db.read() as conn:
        counts: dict[str, Any] = {
            name: conn.execute(select(func.count()).select_from(getattr(schema, name))).scalar()
            for name in (*COUNTED, "backtests")
        }
        counts["entities"] = sorted(
            (row.subject, json.dumps(row.traits, sort_keys=True))
            for row in conn.execute(select(schema.entities))
        )
    return counts


def test_a_backtest_decides_nothing_sends_nothing_and_keeps_only_its_report(
    make_ops: OpsFactory, database_url: str, smtp_sink: SmtpSink
) -> None:
    ops = make_ops(
        database_url,
        playbooks=[lead_playbook("recommend")],
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
    )
    store(ops, four_leads())
    ops.run_jobs()
    before = row_counts(ops)
    assert before["decisions"] == 4

    # The draft is in `auto` mode: run live, it would email the nurtured leads at once.
    auto = lead_playbook("auto", **{"when: score >= 60": "when: score >= 50"})
    ops.learn.backtest(source=auto, since=T0 - timedelta(days=1), save=False)
    ops.run_jobs()
    assert row_counts(ops) == before

    report = ops.learn.backtest(source=auto, since=T0 - timedelta(days=1), actor="ana")
    ops.run_jobs()
    after = row_counts(ops)
    assert after == {**before, "audit": before["audit"] + 1, "backtests": before["backtests"] + 1}
    assert smtp_sink.messages == []
    with ops.db.read() as conn:
        [entry] = conn.execute(
            select(schema.audit).where(schema.audit.c.verb == "backtest.run")
        ).all()
    assert (entry.actor, entry.object_type, entry.object_id) == (
        "ana",
        "backtest",
        str(report["id"]),
    )
    kept = ops.learn.get_backtest(report["id"])
    assert kept["counts"] == report["counts"]
    assert kept["created_by"] == "ana"


def test_a_bad_draft_is_refused_with_the_line_of_each_problem(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url, playbooks=[lead_playbook("recommend")])
    text = lead_playbook(
        "recommend",
        **{"choose: hot": "choose: hott", "when: visits_7d >= 5": "when: visit_7d >= 5"},
    )
    with pytest.raises(PlaybookInvalid) as refused:
        ops.learn.backtest(source=text, file="draft.yaml")
    lines = text.splitlines()
    assert [str(problem) for problem in refused.value.problems] == [
        f"draft.yaml:{lines.index('    when: visit_7d >= 5') + 1}: scorecard[0].when: "
        "unknown name 'visit_7d'; did you mean 'visits_7d'?",
        f"draft.yaml:{lines.index('    choose: hott') + 1}: rules[0].choose: "
        "no option named 'hott'; did you mean 'hot'? (options: hot, nurture)",
    ]
    with pytest.raises(InvalidInput, match="since: 'last year' is neither a duration"):
        ops.learn.backtest(playbook="lead-qualification", since="last year")
    assert row_counts(ops)["backtests"] == 0


# --- the edges -------------------------------------------------------------------------------


def test_the_backtest_command_prints_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPSLOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    active = tmp_path / "lead.yaml"
    active.write_text(lead_playbook("recommend"))
    draft = tmp_path / "draft.yaml"
    draft.write_text(lead_playbook("recommend", **{"when: score >= 60": "when: score >= 50"}))
    now = datetime.now(UTC).replace(microsecond=0)
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in four_leads_at(now - timedelta(days=2))))
    assert runner.invoke(app, ["playbook", "apply", str(active)]).exit_code == 0
    assert runner.invoke(app, ["ingest", str(events)]).exit_code == 0

    result = runner.invoke(app, ["backtest", str(draft), "--since", "30d"])
    assert result.exit_code == 0, result.output
    output = result.output
    assert "Backtest of lead-qualification, draft against active version 1" in output
    assert "Changed decisions: 1 of 4" in output
    assert "lead:b" in output

    result = runner.invoke(app, ["backtest", "lead-qualification", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["counts"]["decisions"] == 4
    assert report["compared_with"]["same_as_version"] is True

    bad = tmp_path / "bad.yaml"
    bad.write_text(lead_playbook("recommend", **{"choose: hot": "choose: hott"}))
    result = runner.invoke(app, ["backtest", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:" in result.output
    assert "rules[0].choose" in result.output


def four_leads_at(start: datetime) -> list[dict[str, Any]]:
    shift = start - T0
    return [
        {**e, "occurred_at": (datetime.fromisoformat(e["occurred_at"]) + shift).isoformat()}
        for e in four_leads()
    ]


def test_the_backtest_routes_run_and_read_a_report(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock, serve: Any
) -> None:
    ops = make_ops(sqlite_url, playbooks=[lead_playbook("recommend")])
    store(ops, four_leads_at(clock.now - timedelta(days=3)))
    server: LiveServer = serve(ops)
    with server.client(timeout=30) as api:
        created = api.post(
            "/api/playbooks/backtest", json={"playbook": "lead-qualification", "since": "90d"}
        )
        assert created.status_code == 201, created.text
        report = created.json()
        assert report["counts"]["decisions"] == 4

        kept = api.get(f"/api/backtests/{report['id']}")
        assert kept.status_code == 200
        assert kept.json()["counts"] == report["counts"]
        assert api.get("/api/backtests/999").status_code == 404

        text = lead_playbook("recommend", **{"choose: hot": "choose: hott"})
        refused = api.post("/api/playbooks/backtest", json={"source": text, "file": "d.yaml"})
        assert refused.status_code == 422
        [problem] = refused.json()["problems"]
        assert problem == {
            "file": "d.yaml",
            "line": text.splitlines().index("    choose: hott") + 1,
            "field": "rules[0].choose",
            "message": "no option named 'hott'; did you mean 'hot'? (options: hot, nurture)",
        }
        both = api.post("/api/playbooks/backtest", json={"playbook": "x", "source": text})
        assert both.status_code == 422
        assert both.json()["errors"][0]["field"] == "playbook"

"""Training a playbook's model from the ledger, on SQLite and PostgreSQL: which rows become
labels (reviews only; outcomes only once their window closed), features as of the trigger,
retraining skipped when nothing changed, and champion/challenger keeping the better model."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import Conflict
from opsloop.learning.datasets import Dataset, build_dataset
from opsloop.service import OpsLoop
from opsloop.store import audit as audit_store
from tests.conftest import Clock, OpsFactory
from tests.learning.synthetic import SCORING, plan, store_history

REVIEWED = SCORING.replace("name: scoring", "name: reviewed").replace(
    "  predicts: deal.won\n", "  predicts: review:call\n"
)


def dataset(ops: OpsLoop, playbook: str = "scoring") -> Dataset:
    active = ops.ctx.catalog.active()[playbook]
    with ops.db.read() as conn:
        return build_dataset(conn, active.compiled, active.id, now=ops.now())


def ingest_leads(ops: OpsLoop, first: int, count: int, *, visits: int = 0) -> list[int]:
    """Leads arriving live (decided as they come); return their decision ids."""
    events = []
    for n in range(first, first + count):
        events += [{"type": "page.viewed", "subject": f"lead:{n}"} for _ in range(visits)]
        events.append({"type": "lead.created", "subject": f"lead:{n}", "traits": {"budget": n}})
    ops.ingest.body(json.dumps({"events": events}).encode())
    subjects = {f"lead:{n}" for n in range(first, first + count)}
    found = ops.decide.list_decisions(limit=1000)
    return sorted(d["id"] for d in found if d["subject"] in subjects)


# --- labels ------------------------------------------------------------------------------------


def test_labels_come_only_from_reviewed_decisions(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[REVIEWED])
    ids = ingest_leads(ops, 0, 8)
    decisions = {i: ops.decide.decision_detail(i) for i in ids}
    assert {d["status"] for d in decisions.values()} == {"pending"}
    assert {d["choice"] for d in decisions.values()} == {"wait"}
    first, second, third, fourth, *unreviewed = ids

    def review(decision_id: int, verdict: str, option: str | None = None) -> None:
        clock.advance(minutes=1)
        reason = None if verdict == "approve" else "a person knows better"
        request = ReviewRequest(verdict=verdict, reviewer="ana", option=option, reason=reason)  # type: ignore[arg-type]
        ops.review.verdict(decision_id, request)

    review(first, "approve")  # confirms `wait`: not `call`
    review(second, "override", "call")  # the right choice was `call`
    review(third, "reject")  # nothing was right: not `call` either
    review(fourth, "override", "call")
    # Decisions logged in shadow mode can never be reviewed: they are never labels.
    ops.review.change_mode("reviewed", "shadow", actor="ana")
    logged = ingest_leads(ops, 100, 3)
    assert {ops.decide.decision_detail(i)["status"] for i in logged} == {"logged"}

    data = dataset(ops, "reviewed")
    assert data.source == "reviews"
    labels = {row.key: row.label for row in data.rows}
    assert labels == {
        f"decision:{first}": 0,
        f"decision:{second}": 1,
        f"decision:{third}": 0,
        f"decision:{fourth}": 1,
    }
    for decision_id in [*unreviewed, *logged]:
        assert f"decision:{decision_id}" not in labels
    # The features are the ones the reviewer saw, stored with the decision.
    row = next(r for r in data.rows if r.key == f"decision:{second}")
    assert row.features == decisions[second]["explanation"]["features"]
    assert [r.key for r in data.rows] == [f"decision:{i}" for i in (first, second, third, fourth)]


def test_outcome_labels_wait_for_the_window_to_close_and_features_are_as_of_the_trigger(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[SCORING])
    now = clock.now
    old = plan(now - timedelta(days=20), 4, "informative", seed=1)
    recent = plan(now - timedelta(days=3), 4, "informative", seed=2, first=100)
    store_history(ops, old + recent)
    # Later facts must not leak into a row: a view after the trigger, a budget changed since.
    later = [
        {"type": "page.viewed", "subject": old[0].subject, "occurred_at": old[0].at + timedelta(hours=1)},
        {"type": "lead.updated", "subject": old[0].subject, "occurred_at": old[0].at + timedelta(hours=3), "traits": {"budget": 999_999}},
    ]  # fmt: skip
    body = [{**e, "occurred_at": e["occurred_at"].isoformat()} for e in later]
    ops.ingest.body(json.dumps({"events": body}).encode())

    data = dataset(ops)
    assert data.source == "events"
    by_subject = {row.subject: row for row in data.rows}
    assert set(by_subject) == {lead.subject for lead in old}, "open windows are left out"
    assert data.left_out == {"window_open": len(recent)}
    for lead in old:
        row = by_subject[lead.subject]
        assert row.label == int(lead.won)
        assert row.features == {"budget": lead.budget, "visits": lead.visits}
    assert [row.at for row in data.rows] == sorted(row.at for row in data.rows)

    # Once the window closes, the recent leads become rows too (won or not).
    clock.advance(days=8)
    assert len(dataset(ops).rows) == len(old) + len(recent)


def test_training_is_refused_with_too_few_rows_one_class_or_no_model(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    never = SCORING.replace("name: scoring", "name: never").replace(
        "  predicts: deal.won\n", "  predicts: deal.lost\n"
    )
    plain = (
        SCORING.replace("name: scoring", "name: plain")
        .split("model:")[0]
        .replace("40 * p_convert", "0")
    )
    ops = make_ops(database_url, playbooks=[SCORING, never, plain])
    store_history(ops, plan(clock.now - timedelta(days=30), 25, "informative", seed=3))
    with pytest.raises(Conflict, match=r"25 labelled triggers.*min_rows: 40"):
        ops.learn.train("scoring", actor="test")
    store_history(ops, plan(clock.now - timedelta(days=60), 50, "informative", seed=4, first=100))
    with pytest.raises(Conflict, match="all 75 labels are 'no'; a model needs examples of both"):
        ops.learn.train("never", actor="test")
    with pytest.raises(Conflict, match="declares no model; add a `model:` block"):
        ops.learn.train("plain", actor="test")
    assert ops.learn.list_models("scoring")["versions"] == []


# --- training and champion/challenger -------------------------------------------------------


def model_verbs(ops: OpsLoop, name: str = "scoring:deal.won") -> list[str]:
    with ops.db.read() as conn:
        return [row["verb"] for row in audit_store.trail(conn, "model", name)]


def test_retraining_is_skipped_while_the_labels_have_not_changed(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[SCORING])
    store_history(ops, plan(clock.now - timedelta(days=30), 120, "informative", seed=5))
    first = ops.learn.train("scoring", actor="ana")
    assert first["status"] == "promoted"
    assert first["version"] == 1
    report = first["report"]
    assert 0.5 < report["roc_auc"] <= 1
    assert report["train"]["end"] < report["test"]["start"], "the test rows are the latest"
    assert report["test"]["rows"] == 24
    assert {"pr_auc", "brier", "lift_top_10", "lift_top_20", "calibration", "top_features"} <= set(
        report
    )

    again = ops.learn.train("scoring", actor="ana")
    assert again["status"] == "unchanged"
    assert "have not changed since version 1" in again["message"]
    assert [v["version"] for v in ops.learn.list_models("scoring")["versions"]] == [1]

    # The passing of time alone changes nothing; a new closed window does.
    clock.advance(hours=1)
    assert ops.learn.train("scoring", actor="ana")["status"] == "unchanged"
    store_history(ops, plan(clock.now - timedelta(days=9), 1, "informative", seed=6, first=500))
    assert ops.learn.train("scoring", actor="ana")["version"] == 2
    assert ops.learn.train("scoring", actor="ana", force=True)["version"] == 3
    versions = ops.learn.list_models("scoring")["versions"]
    stored = versions[-1]
    assert stored["features"] == ["budget", "visits"]
    assert stored["training"]["rows"] == 120
    assert stored["training"]["window"]["from"] is not None
    assert "scikit-learn" in stored["library_versions"]
    assert model_verbs(ops)[:2] == ["model.trained", "model.promoted"]


@pytest.mark.parametrize(
    ("first", "second", "promoted"),
    [
        pytest.param("informative", "inverted", False, id="worse-data-stays-challenger"),
        pytest.param("noise", "informative", True, id="better-data-is-promoted"),
    ],
)
def test_champion_challenger_keeps_the_better_model(
    make_ops: OpsFactory, database_url: str, clock: Clock, first: str, second: str, promoted: bool
) -> None:
    ops = make_ops(database_url, playbooks=[SCORING])
    start = clock.now - timedelta(days=80)
    store_history(ops, plan(start, 200, first, seed=7))  # type: ignore[arg-type]
    v1 = ops.learn.train("scoring", actor="ana")
    assert v1["status"] == "promoted"

    # Then 600 leads of the other kind, and 200 more informative ones: the latest rows, held
    # out, on which both versions are judged.
    later = start + timedelta(hours=200)
    store_history(ops, plan(later, 600, second, seed=8, first=1000))  # type: ignore[arg-type]
    store_history(ops, plan(later + timedelta(hours=600), 200, "informative", seed=9, first=5000))
    v2 = ops.learn.train("scoring", actor="ana")
    verdict = v2["verdict"]
    assert verdict["champion_version"] == 1
    assert verdict["compared_on"] == 200
    new, old = verdict["challenger"]["roc_auc"], verdict["champion"]["roc_auc"]
    assert (new > old) is promoted
    statuses = {v["version"]: v["status"] for v in ops.learn.list_models("scoring")["versions"]}
    if promoted:
        assert v2["status"] == "promoted"
        assert statuses == {1: "retired", 2: "champion"}
        assert model_verbs(ops)[-1] == "model.promoted"
    else:
        assert v2["status"] == "challenger"
        assert "does not beat champion version 1" in v2["message"]
        assert statuses == {1: "champion", 2: "challenger"}
        assert model_verbs(ops)[-1] == "model.kept_as_challenger"

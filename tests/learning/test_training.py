"""Training a playbook's model from the ledger, on SQLite and PostgreSQL: which rows become
labels (reviews only; outcomes only once their window closed), features as of the trigger,
retraining skipped when nothing changed, and champion/challenger keeping the better model."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

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
    store_history(ops, plan(clock.now - timedelta(days=30), 250, "informative", seed=5))
    first = ops.learn.train("scoring", actor="ana")
    assert first["status"] == "promoted"
    assert first["version"] == 1
    report = first["report"]
    assert 0.5 < report["roc_auc"] <= 1
    assert report["train"]["end"] < report["test"]["start"], "the test rows are the latest"
    assert report["test"]["rows"] == 50
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
    assert stored["training"]["rows"] == 250
    assert stored["training"]["window"]["from"] is not None
    assert "scikit-learn" in stored["library_versions"]
    assert model_verbs(ops)[:2] == ["model.trained", "model.promoted"]


def test_a_worse_challenger_stays_in_shadow_and_a_better_one_replaces_the_champion(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[SCORING])
    start = clock.now - timedelta(days=120)
    # At first only the budget mattered: version 1 learns that, and shows skill on its test rows.
    store_history(ops, plan(start, 300, "budget", seed=7))
    v1 = ops.learn.train("scoring", actor="ana")
    assert v1["status"] == "promoted"
    assert v1["verdict"]["skill"]["shown"] is True

    # Then 600 leads for whom visits mattered the other way round: version 2 learns the wrong
    # lesson, shows no skill on the latest 200 (informative) rows and stays in shadow.
    later = start + timedelta(hours=300)
    store_history(ops, plan(later, 600, "inverted", seed=8, first=1000))
    store_history(ops, plan(later + timedelta(hours=600), 200, "informative", seed=9, first=5000))
    v2 = ops.learn.train("scoring", actor="ana")
    assert v2["status"] == "challenger"
    assert "no skill shown yet" in v2["message"]
    assert v2["verdict"]["champion_version"] == 1
    assert v2["verdict"]["compared_on"] == 220, "the latest fifth of 1,100 rows"
    statuses = {v["version"]: v["status"] for v in ops.learn.list_models("scoring")["versions"]}
    assert statuses == {1: "champion", 2: "challenger"}
    assert model_verbs(ops)[-1] == "model.kept_as_challenger"

    # 1,500 more leads where visits matter: version 3 learns it and beats version 1, which
    # only knows budgets, on the same latest rows.
    more = plan(later + timedelta(hours=800), 1500, "informative", seed=10, first=7000)
    store_history(ops, more)
    v3 = ops.learn.train("scoring", actor="ana")
    verdict = v3["verdict"]
    assert v3["status"] == "promoted", v3["message"]
    assert verdict["champion_version"] == 1
    assert verdict["challenger"]["roc_auc"] > verdict["champion"]["roc_auc"]
    statuses = {v["version"]: v["status"] for v in ops.learn.list_models("scoring")["versions"]}
    assert statuses == {1: "retired", 2: "retired", 3: "champion"}
    assert model_verbs(ops)[-1] == "model.promoted"


def test_a_model_without_skill_is_never_champion_even_the_first(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[SCORING])
    store_history(ops, plan(clock.now - timedelta(days=60), 400, "noise", seed=21))
    first = ops.learn.train("scoring", actor="ana")
    assert first["status"] == "challenger"
    assert first["verdict"]["champion_version"] is None
    assert first["verdict"]["skill"]["shown"] is False
    assert "is kept as challenger (shadow): no skill shown yet: ROC AUC" in first["message"]
    [version] = ops.learn.list_models("scoring")["versions"]
    assert version["status"] == "challenger"
    assert version["why"] is not None
    assert version["why"].startswith("no skill shown yet")

    # Decisions run without a model meanwhile, and say why.
    body = {"type": "lead.created", "subject": "lead:live", "traits": {"budget": 5000}}
    ops.ingest.body(json.dumps(body).encode())
    [decision] = ops.decide.list_decisions(subject="lead:live")
    model = ops.decide.decision_detail(decision["id"])["explanation"]["model"]
    assert model["used"] is False
    assert model["fallback"] is True
    assert "no champion" in model["note"]

    # Data that carries the signal later makes the first champion.
    store_history(ops, plan(clock.now - timedelta(days=40), 400, "informative", seed=22, first=900))
    second = ops.learn.train("scoring", actor="ana")
    assert second["status"] == "promoted"
    assert second["verdict"]["champion_version"] is None
    assert "there was no champion, and it shows skill: ROC AUC" in second["message"]


@pytest.mark.parametrize(
    ("seed", "count"),
    [
        pytest.param(31, 150, id="small-1"),
        pytest.param(32, 150, id="small-2"),
        pytest.param(33, 150, id="small-3"),
        pytest.param(34, 1500, id="large-1"),
        pytest.param(35, 1500, id="large-2"),
    ],
)
def test_random_labels_never_produce_a_champion(
    make_ops: OpsFactory, database_url: str, clock: Clock, seed: int, count: int
) -> None:
    auto = SCORING.replace("algorithm: logistic_regression", "algorithm: auto")
    ops = make_ops(database_url, playbooks=[auto])
    store_history(ops, plan(clock.now - timedelta(days=90), count, "noise", seed=seed))
    result = ops.learn.train("scoring", actor="ana")
    assert result["status"] == "challenger", result["message"]
    assert "no skill shown yet" in result["message"]
    assert [v["status"] for v in ops.learn.list_models("scoring")["versions"]] == ["challenger"]


# --- what retraining is skipped on -------------------------------------------------------------


def test_a_changed_feature_definition_or_algorithm_trains_again(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[SCORING])
    store_history(ops, plan(clock.now - timedelta(days=30), 250, "informative", seed=41))
    assert ops.learn.train("scoring", actor="ana")["version"] == 1
    assert ops.learn.train("scoring", actor="ana")["status"] == "unchanged"

    # The same names, another definition: views within 3 days instead of 7.
    shorter = SCORING.replace(
        "    count: page.viewed\n    within: 7d", "    count: page.viewed\n    within: 3d"
    )
    assert shorter != SCORING
    ops.decide.apply_playbook(shorter, "test.yaml", actor="ana")
    again = ops.learn.train("scoring", actor="ana")
    assert again["status"] != "unchanged"
    assert again["version"] == 2
    assert ops.learn.train("scoring", actor="ana")["status"] == "unchanged"

    boosting = shorter.replace("algorithm: logistic_regression", "algorithm: gradient_boosting")
    ops.decide.apply_playbook(boosting, "test.yaml", actor="ana")
    third = ops.learn.train("scoring", actor="ana")
    assert third["version"] == 3
    assert third["report"]["algorithm"] == "gradient_boosting"

    # A label or the model's `as` name changes nothing the model learns.
    renamed = boosting.replace(
        "    default: 0\n  visits:", "    default: 0\n    label: Budget\n  visits:"
    )
    ops.decide.apply_playbook(renamed, "test.yaml", actor="ana")
    assert ops.learn.train("scoring", actor="ana")["status"] == "unchanged"


def test_nothing_to_learn_is_answered_without_reading_the_history(
    make_ops: OpsFactory, database_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsloop.service.learn import training

    ops = make_ops(database_url, playbooks=[SCORING])
    store_history(ops, plan(clock.now - timedelta(days=30), 250, "informative", seed=42))
    assert ops.learn.train("scoring", actor="ana")["status"] == "promoted"

    def read_everything(*args: object, **kwargs: object) -> None:
        raise AssertionError("the labelled rows were read")

    monkeypatch.setattr(training, "build_dataset", read_everything)
    unchanged = ops.learn.train("scoring", actor="ana")
    assert unchanged["status"] == "unchanged"
    assert "the 250 labelled rows have not changed since version 1" in unchanged["message"]
    clock.advance(hours=5)
    assert ops.learn.train("scoring", actor="ana")["status"] == "unchanged"

    # A new event makes it read the rows; when it changed no label, there is still nothing to
    # learn, and the next run knows it without reading them again.
    monkeypatch.undo()
    view = {"type": "page.viewed", "subject": "lead:0", "occurred_at": clock.now.isoformat()}
    ops.ingest.body(json.dumps(view).encode())
    assert ops.learn.train("scoring", actor="ana")["status"] == "unchanged"
    monkeypatch.setattr(training, "build_dataset", read_everything)
    assert ops.learn.train("scoring", actor="ana")["status"] == "unchanged"
    monkeypatch.undo()
    store_history(ops, plan(clock.now - timedelta(days=9), 1, "informative", seed=43, first=900))
    assert ops.learn.train("scoring", actor="ana")["version"] == 2


# --- what the report says ---------------------------------------------------------------------


def test_a_feature_that_reads_nothing_is_named_in_the_report(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    dotted = SCORING.replace(
        "  visits:\n", "  region:\n    trait: visits.last.7d\n  visits:\n"
    ).replace("features: [budget, visits]", "features: [budget, region, visits]")
    ops = make_ops(database_url, playbooks=[dotted])
    store_history(ops, plan(clock.now - timedelta(days=30), 250, "informative", seed=44))
    result = ops.learn.train("scoring", actor="ana")
    assert (
        "feature 'region' is missing or empty on 100% of training rows (200 of 200)"
        in "\n".join(result["report"]["warnings"])
    )
    [version] = ops.learn.list_models("scoring")["versions"]
    assert any("'region'" in w for w in version["warnings"])


def test_walk_forward_runs_beside_the_hold_out_on_a_long_history(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[SCORING])
    # 2,400 leads an hour apart: a hundred days, four calendar months.
    store_history(ops, plan(clock.now - timedelta(days=110), 2400, "informative", seed=45))
    short = ops.learn.train("scoring", actor="ana", evaluate="holdout")
    assert "walk_forward" not in short["report"]

    result = ops.learn.train("scoring", actor="ana", evaluate="walk-forward")
    assert result["status"] != "unchanged", "asked for walk-forward figures the version lacks"
    walk = result["report"]["walk_forward"]
    assert walk["period"] == "month"
    assert len(walk["periods"]) >= 3
    for period in walk["periods"]:
        assert period["train_rows"] >= 20
        assert datetime.fromisoformat(period["start"]).day == 1
        assert 0.6 < period["score"] <= 1
    assert walk["rows"] == sum(p["rows"] for p in walk["periods"])
    assert walk["summary"].startswith("trained on everything before each month and scored it")
    assert ops.learn.train("scoring", actor="ana", evaluate="walk-forward")["status"] == "unchanged"

    # The default adds it unasked on a history this long.
    store_history(ops, plan(clock.now - timedelta(days=9), 1, "informative", seed=46, first=9000))
    assert "walk_forward" in ops.learn.train("scoring", actor="ana")["report"]


def test_walk_forward_on_a_short_history_goes_by_week(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[SCORING])
    store_history(ops, plan(clock.now - timedelta(days=40), 600, "informative", seed=47))
    assert "walk_forward" not in ops.learn.train("scoring", actor="ana")["report"]
    walk = ops.learn.train("scoring", actor="ana", force=True, evaluate="walk-forward")["report"][
        "walk_forward"
    ]
    assert walk["period"] == "week"
    assert [datetime.fromisoformat(p["start"]).weekday() for p in walk["periods"]] == [0] * len(
        walk["periods"]
    )

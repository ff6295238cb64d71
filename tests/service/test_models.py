"""Models in the decision loop, on SQLite and PostgreSQL: a decision shows the champion's
probability, the features that moved it and its part of the score, with the challenger in
shadow; a stored model that is corrupt or from another library version is rejected, retired
and retrained — never loaded; the `retrain:` schedule; `opsloop train` and the HTTP API."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.learning import artifacts
from opsloop.service import OpsLoop
from opsloop.service.jobs import TRAIN_MODEL
from opsloop.store import audit as audit_store
from opsloop.store.schema import model_versions
from tests.conftest import Clock, OpsFactory
from tests.learning.synthetic import SCORING, plan, store_history


def decide_on(ops: OpsLoop, subject: str, *, visits: int, budget: int) -> dict[str, Any]:
    events = [{"type": "page.viewed", "subject": subject} for _ in range(visits)]
    events.append({"type": "lead.created", "subject": subject, "traits": {"budget": budget}})
    ops.ingest.body(json.dumps({"events": events}).encode())
    [decision] = ops.decide.list_decisions(subject=subject)
    return ops.decide.decision_detail(decision["id"])


def trained(make_ops: OpsFactory, url: str, clock: Clock, text: str = SCORING) -> OpsLoop:
    ops = make_ops(url, playbooks=[text])
    store_history(ops, plan(clock.now - timedelta(days=40), 300, "informative", seed=11))
    assert ops.learn.train("scoring", actor="ana")["status"] == "promoted"
    return ops


def test_a_decision_shows_the_models_part(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = trained(make_ops, database_url, clock)
    keen = decide_on(ops, "lead:keen", visits=6, budget=10000)
    cold = decide_on(ops, "lead:cold", visits=0, budget=0)

    model = keen["explanation"]["model"]
    assert model["name"] == "scoring:deal.won"
    assert model["version"] == 1
    assert model["used"] is True
    assert model["as"] == "p_convert"
    assert 0.5 < model["p"] < 1
    assert cold["explanation"]["model"]["p"] < 0.2
    assert model["top_features"][0]["feature"] == "visits"
    assert model["top_features"][0]["value"] == 6
    assert model["top_features"][0]["effect"] > 0
    # Blended as the playbook says: score = points + 40 * p_convert.
    assert keen["score"] == pytest.approx(10 + 40 * model["p"], abs=1e-3)
    assert model["score_part"] == pytest.approx(40 * model["p"], abs=1e-3)
    assert keen["choice"] == "call"
    assert cold["choice"] == "wait"
    assert f"model p_convert {model['p']:g} (+" in keen["why"]


def test_the_challenger_runs_in_shadow(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = trained(make_ops, database_url, clock)
    later = clock.now - timedelta(days=25)
    store_history(ops, plan(later, 300, "inverted", seed=12, first=1000))
    store_history(ops, plan(later + timedelta(hours=300), 100, "informative", seed=13, first=5000))
    assert ops.learn.train("scoring", actor="ana")["status"] == "challenger"

    decision = decide_on(ops, "lead:keen", visits=6, budget=10000)
    model = decision["explanation"]["model"]
    assert model["version"] == 1
    assert model["used"] is True
    shadow = model["challenger"]
    assert shadow["version"] == 2
    assert shadow["used"] is False
    assert 0 <= shadow["p"] <= 1
    assert decision["score"] == pytest.approx(10 + 40 * model["p"], abs=1e-3)


def test_a_batch_is_scored_as_its_events_would_be_one_by_one(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    """A batch's decisions ask each model once for all their rows; each decision must still
    get its own row's probability, features that moved it, and the challenger's figure."""
    ops = trained(make_ops, database_url, clock)
    later = clock.now - timedelta(days=25)
    store_history(ops, plan(later, 300, "inverted", seed=12, first=1000))
    store_history(ops, plan(later + timedelta(hours=300), 100, "informative", seed=13, first=5000))
    assert ops.learn.train("scoring", actor="ana")["status"] == "challenger"
    leads = [(0, 0), (6, 10000), (2, 500), (6, 10000), (9, 3000), (1, 20000)]
    events: list[dict[str, Any]] = []
    for number, (visits, budget) in enumerate(leads):
        subject = f"lead:batch-{number}"
        events += [{"type": "page.viewed", "subject": subject} for _ in range(visits)]
        events.append({"type": "lead.created", "subject": subject, "traits": {"budget": budget}})
    ops.ingest.body(json.dumps({"events": events}).encode())
    for number, (visits, budget) in enumerate(leads):
        [batched] = ops.decide.list_decisions(subject=f"lead:batch-{number}")
        in_batch = ops.decide.decision_detail(batched["id"])
        alone = decide_on(ops, f"lead:alone-{number}", visits=visits, budget=budget)
        assert in_batch["explanation"]["model"] == alone["explanation"]["model"], (visits, budget)
        assert in_batch["score"] == alone["score"]
    probabilities = {
        ops.decide.decision_detail(d["id"])["explanation"]["model"]["p"]
        for d in ops.decide.list_decisions(limit=100)
        if d["subject"].startswith("lead:batch-")
    }
    assert len(probabilities) == 5, "five different leads, five different probabilities"


def test_a_row_that_fails_while_the_batch_is_scored_fails_only_its_own_decision(
    make_ops: OpsFactory, database_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug met while a batch's rows are prepared for the model must not refuse the batch:
    every event is stored, the other leads are decided, and the failing one's decision says
    what went wrong."""
    from opsloop.service.decide import deciding

    ops = trained(make_ops, database_url, clock)
    worked_out = deciding.computed_for

    def broken_for_one(playbook: Any, event: Any, *args: Any) -> Any:
        if event.subject == "lead:broken":
            raise RuntimeError("the forecast library fell over")
        return worked_out(playbook, event, *args)

    monkeypatch.setattr(deciding, "computed_for", broken_for_one)
    events = [
        {"type": "lead.created", "subject": subject, "traits": {"budget": 9000}}
        for subject in ("lead:fine-1", "lead:broken", "lead:fine-2")
    ]
    answer = ops.ingest.body(json.dumps({"events": events}).encode())
    assert [a.status for a in answer.accepted] == ["created"] * 3
    statuses = {d["subject"]: d["status"] for d in ops.decide.list_decisions(limit=100)}
    assert statuses["lead:broken"] == "error"
    assert statuses["lead:fine-1"] != "error"
    assert statuses["lead:fine-2"] != "error"
    [broken] = ops.decide.list_decisions(subject="lead:broken")
    why = ops.decide.decision_detail(broken["id"])["explanation"]["why"]
    assert "the forecast library fell over" in why


def test_without_a_model_decisions_use_the_fallback_and_say_so(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(
        database_url, playbooks=[SCORING.replace("algorithm:", "fallback: 0.5\n  algorithm:")]
    )
    decision = decide_on(ops, "lead:1", visits=6, budget=10000)
    model = decision["explanation"]["model"]
    assert model["used"] is False
    assert model["fallback"] is True
    assert model["p"] == 0.5
    assert model["note"] == "no trained model yet"
    assert decision["score"] == 30
    assert "model p_convert: no trained model yet, used 0.5 (+20 to the score)" in decision["why"]


def _other_version(data: bytes) -> bytes:
    """The same model, as if saved by another scikit-learn."""
    header = artifacts.read_header(data)
    offset = header.pop("_payload_offset")
    header["libraries"]["scikit-learn"] = "0.24.2"
    head = json.dumps(header, sort_keys=True).encode()
    return artifacts.MAGIC + struct.pack(">I", len(head)) + head + data[offset:]


def _flip(data: bytes) -> bytes:
    middle = len(data) - 100
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        pytest.param(_flip, "checksum mismatch", id="corrupt"),
        pytest.param(_other_version, "saved with scikit-learn 0.24.2", id="other-version"),
    ],
)
def test_a_bad_model_file_is_rejected_retired_and_retrained_never_loaded(
    make_ops: OpsFactory,
    database_url: str,
    clock: Clock,
    damage: Any,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ops = trained(make_ops, database_url, clock)
    with ops.db.transaction() as tx:
        [(version_id, data)] = tx.conn.execute(
            select(model_versions.c.id, model_versions.c.artifact)
        ).all()
        bad = damage(bytes(data))
        tx.conn.execute(
            update(model_versions)
            .where(model_versions.c.id == version_id)
            .values(artifact=bad, artifact_sha256=hashlib.sha256(bad).hexdigest())
        )

    decision = decide_on(ops, "lead:keen", visits=6, budget=10000)
    model = decision["explanation"]["model"]
    assert model["used"] is False
    assert model["fallback"] is True
    assert model["p"] == 0
    assert "model v1 was rejected" in model["note"]
    assert reason in model["note"]
    assert decision["score"] == 10
    assert any(r.levelname == "ERROR" and "rejected" in r.getMessage() for r in caplog.records)

    [v1] = ops.learn.list_models("scoring")["versions"]
    assert v1["status"] == "retired"
    with ops.db.read() as conn:
        [rejected] = [
            row
            for row in audit_store.trail(conn, "model", "scoring:deal.won")
            if row["verb"] == "model.rejected"
        ]
    assert rejected["detail"]["version"] == 1
    assert reason in rejected["detail"]["reason"]
    queued = [job["payload"] for job in ops.runtime.jobs() if job["kind"] == TRAIN_MODEL]
    assert [payload["playbook"] for payload in queued] == ["scoring"]

    meanwhile = decide_on(ops, "lead:meanwhile", visits=6, budget=10000)
    assert "model v1 was rejected" in meanwhile["explanation"]["model"]["note"]
    assert meanwhile["explanation"]["model"]["fallback"] is True

    ops.run_jobs()  # the queued retrain
    statuses = {v["version"]: v["status"] for v in ops.learn.list_models("scoring")["versions"]}
    assert statuses == {1: "retired", 2: "champion"}
    again = decide_on(ops, "lead:keen-again", visits=6, budget=10000)
    assert again["explanation"]["model"]["version"] == 2
    assert again["explanation"]["model"]["used"] is True


def test_a_playbook_with_retrain_trains_on_its_schedule(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    text = SCORING.replace("  min_rows: 40\n", "  min_rows: 40\n  retrain: 1d\n")
    ops = make_ops(database_url, playbooks=[text])
    store_history(ops, plan(clock.now - timedelta(days=40), 100, "informative", seed=14))
    ops.run_jobs()
    assert [v["version"] for v in ops.learn.list_models("scoring")["versions"]] == [1]
    clock.advance(hours=2)
    store_history(ops, plan(clock.now - timedelta(days=20), 20, "informative", seed=15, first=900))
    ops.run_jobs()  # not a day yet
    assert len(ops.learn.list_models("scoring")["versions"]) == 1
    clock.advance(days=1)
    ops.run_jobs()
    assert [v["version"] for v in ops.learn.list_models("scoring")["versions"]] == [2, 1]
    clock.advance(days=1, minutes=11)
    ops.run_jobs()  # due again, but the labels did not change: skipped
    assert len(ops.learn.list_models("scoring")["versions"]) == 2


# --- the edges ---------------------------------------------------------------------------------


def test_opsloop_train_prints_the_report_and_models_lists_the_versions(
    make_ops: OpsFactory, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    ops = make_ops(sqlite_url, playbooks=[SCORING], use_clock=False)
    now = datetime.now(UTC)
    store_history(ops, plan(now - timedelta(days=40), 30, "informative", seed=16))
    runner = CliRunner()
    refused = runner.invoke(app, ["--database-url", sqlite_url, "train", "scoring"])
    assert refused.exit_code == 1
    assert "not enough data" in refused.output
    assert "min_rows: 40" in refused.output

    store_history(ops, plan(now - timedelta(days=30), 170, "informative", seed=17, first=100))
    result = runner.invoke(app, ["--database-url", sqlite_url, "train", "scoring"])
    assert result.exit_code == 0, result.output
    output = result.output
    assert "version 1 is the new champion" in output
    for needle in ("ROC AUC", "PR AUC", "Brier", "top 10%", "Calibration", "Strongest features"):
        assert needle in output
    assert "visits" in output
    # What docs/learning.md says the report shows: rates beside counts, the interval, notes.
    assert re.search(r"test rows +│ 40 \(\d+ positive, \d+\.\d%\)", output), output
    assert re.search(r"ROC AUC +│ 0\.\d{3} \(95% interval 0\.\d{3}-[01]\.\d{3}\)", output)
    assert "warning: small test set: 40 rows" in output
    unchanged = runner.invoke(app, ["--database-url", sqlite_url, "train", "scoring"])
    assert "have not changed" in unchanged.output
    forced = runner.invoke(
        app,
        ["--database-url", sqlite_url, "train", "scoring", "--force", "--evaluate", "walk-forward"],
    )
    assert "Champion/challenger on the same" in forced.output
    assert "walk-forward │ trained on everything before each week and scored it" in forced.output
    assert "Walk-forward by week" in forced.output

    listing = runner.invoke(app, ["--database-url", sqlite_url, "models", "scoring"])
    assert listing.exit_code == 0, listing.output
    assert "champion" in listing.output
    as_json = runner.invoke(app, ["--database-url", sqlite_url, "models", "scoring", "--json"])
    assert [v["version"] for v in json.loads(as_json.output)["versions"]] == [2, 1]


@pytest.mark.slow
def test_the_api_trains_and_lists_models(
    make_ops: OpsFactory, database_url: str, clock: Clock, serve: Any
) -> None:
    ops = make_ops(database_url, playbooks=[SCORING])
    store_history(ops, plan(clock.now - timedelta(days=40), 250, "informative", seed=18))
    server = serve(ops)
    trained = httpx.post(
        f"{server.url}/api/playbooks/scoring/train", params={"actor": "ana"}, headers=server.headers
    )
    assert trained.status_code == 201, trained.text
    assert trained.json()["status"] == "promoted"
    again = httpx.post(f"{server.url}/api/playbooks/scoring/train", headers=server.headers)
    assert again.status_code == 200
    assert again.json()["status"] == "unchanged"
    listing = httpx.get(f"{server.url}/api/playbooks/scoring/models", headers=server.headers).json()
    assert listing["as"] == "p_convert"
    assert [(v["version"], v["status"], v["created_by"]) for v in listing["versions"]] == [
        (1, "champion", "ana")
    ]
    [version] = listing["versions"]
    assert version["skill"]["shown"] is True
    assert version["why"].startswith("there was no champion, and it shows skill: ROC AUC")
    low, high = version["roc_auc_interval"]
    assert low < version["roc_auc"] < high
    walked = httpx.post(
        f"{server.url}/api/playbooks/scoring/train",
        params={"evaluate": "walk-forward"},
        headers=server.headers,
    )
    assert walked.status_code == 201, walked.text
    assert walked.json()["report"]["walk_forward"]["period"] == "week"
    assert "warnings" in walked.json()["report"]
    missing = httpx.post(f"{server.url}/api/playbooks/nope/train", headers=server.headers)
    assert missing.status_code == 404

"""Train a playbook's model from the ledger, and keep the better of the old and the new.

`train` builds the labelled set (`opsloop.learning.datasets`), refuses when it is too small or
holds one class only, skips when it has not changed since the latest version, trains and
evaluates on the latest rows (time order, never random), and stores the new version with its
report, features, training window and library versions. Then champion/challenger: the current
champion is scored on the new version's held-out rows — the same data — and the new version
is promoted only if it does better (ROC AUC; a tie goes to the lower Brier score). Otherwise it
is kept as the challenger: computed in shadow with every decision, never used.

Training runs outside any transaction (it takes seconds); storing the result is one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from opsloop.core.durations import format_duration
from opsloop.core.errors import Conflict, InvalidInput, NotFound
from opsloop.core.playbooks import ModelSpec
from opsloop.learning import predictors
from opsloop.learning.datasets import Dataset, Row, build_dataset, model_name
from opsloop.service.context import ActivePlaybook, Context
from opsloop.service.learn.model_versions import NewVersion, latest_serving, store_version
from opsloop.service.learn.text_training import (
    list_text_versions,
    text_classifier,
    train_text_model,
)
from opsloop.service.learn.views import (
    ModelListing,
    TabularTraining,
    TextModelListing,
    TrainResult,
    Verdict,
)
from opsloop.store import model_registry as model_store

log = logging.getLogger(__name__)

Step = Callable[[str], None]
"""Told what training is doing now, for a spinner."""


def train(
    ctx: Context,
    playbook: str,
    *,
    actor: str,
    force: bool = False,
    step: Step | None = None,
) -> TrainResult:
    """Train the playbook's model now; return what happened (`status`: promoted, challenger or
    unchanged) with the evaluation report and the champion/challenger verdict. A playbook
    with a trained text classifier (`text.classify.using: model`) trains it too; with no
    `model:` block, that is the result, else it is listed under `also`."""
    active = ctx.catalog.active().get(playbook)
    if active is not None and text_classifier(active) is not None:
        text = train_text_model(ctx, active, actor=actor, force=force, step=step)
        if active.compiled.playbook.model is None:
            return text
        return {
            **_train_tabular(ctx, playbook, actor=actor, force=force, step=step),
            "also": [text],
        }
    return _train_tabular(ctx, playbook, actor=actor, force=force, step=step)


def _train_tabular(
    ctx: Context,
    playbook: str,
    *,
    actor: str,
    force: bool = False,
    step: Step | None = None,
) -> TrainResult:
    say = step or (lambda _: None)
    active, spec = _with_model(ctx, playbook)
    name = model_name(playbook, spec)
    now = ctx.clock()
    say("Reading labelled rows from the ledger")
    with ctx.db.read() as conn:
        dataset = build_dataset(conn, active.compiled, active.id, now=now)
        latest = latest_serving(conn, name)
    _check_enough(dataset, spec)
    if latest is not None and latest["labels_hash"] == dataset.labels_hash and not force:
        return {
            "playbook": playbook,
            "model": name,
            "status": "unchanged",
            "version": latest["version"],
            "message": (
                f"{name}: the {len(dataset.rows)} labelled rows have not changed since version "
                f"{latest['version']}; nothing to learn (use force to train anyway)"
            ),
            "training": _training(dataset, None),
        }

    say(f"Training on {len(dataset.rows)} rows ({dataset.positives} positive)")
    started = time.monotonic()
    try:
        trained = predictors.train(dataset.rows, dataset.features, algorithm=spec.algorithm)
    except InvalidInput as exc:
        raise Conflict(f"cannot train {name}: {exc}") from None
    report = trained.report.to_dict()
    seconds = round(time.monotonic() - started, 2)
    artifact = predictors.dump_model(trained.model)

    say("Comparing with the current champion on the same held-out rows")
    with ctx.db.read() as conn:
        champion = model_store.get_champion(conn, name, with_artifact=True)
    verdict = _verdict(dataset, trained.model, champion)

    training = _training(dataset, report)
    training["seconds"] = seconds
    new = NewVersion(
        playbook_id=active.id,
        name=name,
        kind="tabular",
        algorithm=trained.model.algorithm,
        features=list(dataset.features),
        metrics=report,
        training=training,
        labels_hash=dataset.labels_hash,
        artifact=artifact,
        trained_detail={
            "rows": len(dataset.rows),
            "roc_auc": report["roc_auc"],
            "brier": report["brier"],
            "labels_hash": dataset.labels_hash,
        },
    )
    stored = store_version(ctx, new, verdict, compared_with=champion, actor=actor, now=now)
    return {
        "playbook": playbook,
        "model": name,
        "status": "promoted" if stored.promoted else "challenger",
        "version": stored.number,
        "message": stored.message,
        "features": list(dataset.features),
        "report": report,
        "verdict": verdict,
        "training": training,
    }


def list_models(ctx: Context, playbook: str) -> ModelListing | TextModelListing:
    """The playbook's model versions, newest first, with status and headline metrics; a text
    classifier's versions under `text`."""
    active = ctx.catalog.active().get(playbook)
    text = list_text_versions(ctx, active) if active is not None else None
    if text is not None and active is not None and active.compiled.playbook.model is None:
        return {"playbook": playbook, "kind": "text", **text}
    listing = _list_tabular(ctx, playbook)
    if text is not None:
        listing["text"] = text
    return listing


def _list_tabular(ctx: Context, playbook: str) -> ModelListing:
    _, spec = _with_model(ctx, playbook)
    name = model_name(playbook, spec)
    with ctx.db.read() as conn:
        versions = model_store.list_versions(conn, name)
    return {
        "playbook": playbook,
        "model": name,
        "as": spec.output,
        "predicts": spec.predicts,
        "features": list(spec.features),
        "retrain": format_duration(spec.retrain) if spec.retrain else None,
        "versions": [
            {
                "version": v["version"],
                "status": v["status"],
                "algorithm": v["algorithm"],
                "created_at": v["created_at"],
                "created_by": v["created_by"],
                "features": v["features"],
                "roc_auc": v["metrics"].get("roc_auc"),
                "pr_auc": v["metrics"].get("pr_auc"),
                "brier": v["metrics"].get("brier"),
                "lift_top_10": v["metrics"].get("lift_top_10"),
                "training": v["training"],
                "library_versions": v["library_versions"],
            }
            for v in versions
        ],
    }


def retrain_due(ctx: Context, last_checked: dict[str, datetime]) -> list[TrainResult]:
    """The scheduled retrain: every active playbook whose `model.retrain` interval has passed
    since its latest version (and since this process last looked) is trained; unchanged labels
    make that a cheap skip. `last_checked` is the caller's memory between runs."""
    now = ctx.clock()
    results: list[TrainResult] = []
    for name, active in ctx.catalog.active().items():
        spec = active.compiled.playbook.model
        if spec is None or spec.retrain is None:
            continue
        checked = last_checked.get(name)
        if checked is not None and now - checked < spec.retrain:
            continue
        with ctx.db.read() as conn:
            latest = model_store.latest_version(conn, model_name(name, spec))
        if latest is not None and now - latest["created_at"] < spec.retrain:
            continue
        last_checked[name] = now
        results.append(train_quietly(ctx, name, reason="scheduled retrain"))
    return results


def train_quietly(ctx: Context, playbook: str, *, reason: str) -> TrainResult:
    """Train from a job: not enough data, or a playbook that no longer has a model, is logged
    and reported rather than raised (a retry would not help)."""
    try:
        result = train(ctx, playbook, actor="opsloop")
    except (Conflict, NotFound) as exc:
        log.info("model of %s not trained (%s): %s", playbook, reason, exc)
        return {"playbook": playbook, "status": "not_trained", "message": str(exc)}
    log.info("%s (%s)", result["message"], reason)
    return result


# --- helpers ---------------------------------------------------------------------------------


def _with_model(ctx: Context, playbook: str) -> tuple[ActivePlaybook, ModelSpec]:
    active = ctx.catalog.active().get(playbook)
    if active is None:
        raise NotFound(f"no playbook named {playbook!r}")
    spec = active.compiled.playbook.model
    if spec is None:
        raise Conflict(
            f"playbook {playbook!r} declares no model; add a `model:` block (see "
            "docs/playbooks.md#models)"
        )
    return active, spec


def _check_enough(dataset: Dataset, spec: ModelSpec) -> None:
    rows, positives = len(dataset.rows), dataset.positives
    waiting = dataset.left_out.get("window_open", 0)
    pending = f" ({waiting} more wait for their window to close)" if waiting else ""
    source = "reviewed decisions" if dataset.source == "reviews" else "labelled triggers"
    if rows < spec.min_rows:
        raise Conflict(
            f"not enough data to train {dataset.name}: {rows} {source}{pending}, the playbook's "
            f"model needs min_rows: {spec.min_rows}"
        )
    if positives == 0 or positives == rows:
        only = "yes" if positives else "no"
        raise Conflict(
            f"cannot train {dataset.name}: all {rows} labels are {only!r}; a model needs "
            f"examples of both"
        )


def _training(dataset: Dataset, report: dict[str, Any] | None) -> TabularTraining:
    training: TabularTraining = {
        "source": dataset.source,
        "rows": len(dataset.rows),
        "positives": dataset.positives,
        "window": dataset.window,
        "left_out": dataset.left_out,
    }
    if report is not None:
        training["train"] = report["train"]
        training["test"] = report["test"]
    return training


def _verdict(dataset: Dataset, model: Any, champion: dict[str, Any] | None) -> Verdict:
    """Score the champion and the new model on the new version's held-out rows."""
    if champion is None:
        return {"promoted": True, "champion_version": None, "why": "there was no champion"}
    if tuple(champion["features"]) != dataset.features:
        return {
            "promoted": True,
            "champion_version": champion["version"],
            "why": "the champion reads other features than the playbook now lists",
        }
    from opsloop.learning.artifacts import ModelArtifactError

    try:
        old = predictors.load_model(bytes(champion["artifact"]), champion)
    except ModelArtifactError as exc:
        return {
            "promoted": True,
            "champion_version": champion["version"],
            "why": f"the champion's artifact was rejected ({exc})",
        }
    rows, note = _comparison_rows(dataset, champion)
    labels = [row.label for row in rows]
    new_scores = predictors.scores(labels, predictors.probabilities(model, rows))
    old_scores = predictors.scores(labels, predictors.probabilities(old, rows))
    better = _better(new_scores, old_scores)
    auc_new, auc_old = new_scores["roc_auc"], old_scores["roc_auc"]
    if better:
        why = (
            f"ROC AUC {auc_new:.3f} against the champion's {auc_old:.3f} on the same "
            f"{len(rows)} held-out rows"
            if auc_new != auc_old
            else f"same ROC AUC, lower Brier score ({new_scores['brier']:.4f} against "
            f"{old_scores['brier']:.4f})"
        )
    else:
        why = (
            f"it does not beat champion version {champion['version']} on the same {len(rows)} "
            f"held-out rows (ROC AUC {auc_new:.3f} against {auc_old:.3f}, Brier "
            f"{new_scores['brier']:.4f} against {old_scores['brier']:.4f})"
        )
    verdict: Verdict = {
        "promoted": better,
        "champion_version": champion["version"],
        "compared_on": len(rows),
        "champion": old_scores,
        "challenger": new_scores,
        "why": why,
    }
    if note:
        verdict["note"] = note
    return verdict


def _better(new: dict[str, float], old: dict[str, float]) -> bool:
    if new["roc_auc"] != old["roc_auc"]:
        return new["roc_auc"] > old["roc_auc"]
    return new["brier"] < old["brier"]


def _comparison_rows(dataset: Dataset, champion: dict[str, Any]) -> tuple[list[Row], str | None]:
    """The new version's held-out rows, less any the champion may have trained on (a model
    scored on its own training rows looks better than it is). If too few rows of either class
    are left, all held-out rows are used and the verdict says so."""
    held_out = [dataset.rows[i] for i in predictors.test_positions(dataset.rows)]
    trained_until = ((champion.get("training") or {}).get("train") or {}).get("end")
    if not trained_until:
        return held_out, None
    cutoff = datetime.fromisoformat(str(trained_until))
    unseen = [row for row in held_out if row.at > cutoff]
    positives = sum(row.label for row in unseen)
    if positives >= 2 and len(unseen) - positives >= 2:
        dropped = len(held_out) - len(unseen)
        return unseen, (
            f"{dropped} held-out rows from the champion's training period left out"
            if dropped
            else None
        )
    return held_out, "the champion's training period overlaps the held-out rows"

"""Train a playbook's model from the ledger, and keep the better of the old and the new.

`train` skips when the latest version was trained from the same rows and recipe — told by a
fingerprint before any row is read, else by the labelled set's hash (`promotion`) —, builds the
labelled set (`opsloop.learning.datasets`), refuses when it is too small or holds one class
only, trains and evaluates on the latest rows (time order, never random; walk-forward too when
asked or when the history is long), and stores the new version with its report, features,
training window and library versions. Then champion/challenger: the new version must show skill
on its held-out rows (`learning.evidence`), and the current champion is scored on the same
rows; the new version is promoted only with skill and when it does better (ROC AUC; a tie goes
to the lower Brier score). Otherwise it is kept as the challenger, with the reason: computed in
shadow with every decision, never used.

Training runs outside any transaction (it takes seconds); storing the result is one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from opsloop.core.durations import format_duration
from opsloop.core.errors import Conflict, InvalidInput, NotFound
from opsloop.core.playbooks import ModelSpec
from opsloop.learning import predictors
from opsloop.learning.datasets import Dataset, Row, build_dataset, model_name, recipe
from opsloop.learning.split_checks import SplitKind, chosen_split, label_order_warning
from opsloop.service.context import ActivePlaybook, Context
from opsloop.service.learn.model_versions import NewVersion, latest_serving, store_version
from opsloop.service.learn.promotion import (
    Evaluate,
    fingerprint,
    not_in_time_order,
    remember,
    runs_walk_forward,
    same_labels,
    unchanged_by_fingerprint,
    with_skill,
)
from opsloop.service.learn.text_training import (
    list_text_versions,
    text_classifier,
    train_text_model,
)
from opsloop.service.learn.time_notes import file_order_note
from opsloop.service.learn.views import (
    ModelListing,
    TabularTraining,
    TextModelListing,
    TrainResult,
    Verdict,
)
from opsloop.store import model_registry as model_store
from opsloop.store import training_data

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
    split: SplitKind | None = None,
    evaluate: Evaluate | None = None,
) -> TrainResult:
    """Train the playbook's model now; return what happened (`status`: promoted, challenger or
    unchanged) with the evaluation report and the champion/challenger verdict. A playbook
    with a trained text classifier (`text.classify.using: model`) trains it too; with no
    `model:` block, that is the result, else it is listed under `also`. `split` is how rows
    are held out (`time`, or `stratified` for rows whose order is not time); None keeps the
    latest version's (`split_checks.chosen_split`). `evaluate` adds a walk-forward evaluation
    (`walk-forward`), leaves it out (`holdout`), or adds it when the history spans more than a
    few months (`auto`, the default; `promotion.runs_walk_forward`)."""
    options: dict[str, Any] = {"force": force, "step": step, "split": split, "evaluate": evaluate}
    active = ctx.catalog.active().get(playbook)
    if active is not None and text_classifier(active) is not None:
        text = train_text_model(ctx, active, actor=actor, **options)
        if active.compiled.playbook.model is None:
            return text
        return {**_train_tabular(ctx, playbook, actor=actor, **options), "also": [text]}
    return _train_tabular(ctx, playbook, actor=actor, **options)


def _train_tabular(
    ctx: Context,
    playbook: str,
    *,
    actor: str,
    force: bool = False,
    step: Step | None = None,
    split: SplitKind | None = None,
    evaluate: Evaluate | None = None,
) -> TrainResult:
    say = step or (lambda _: None)
    active, spec = _with_model(ctx, playbook)
    name = model_name(playbook, spec)
    now = ctx.clock()
    with ctx.db.read() as conn:
        latest = latest_serving(conn, name)
        split_by = chosen_split(split, latest)
        current = _fingerprint(conn, active, spec, split_by, now)
    if unchanged_by_fingerprint(latest, current, force=force, evaluate=evaluate):
        assert latest is not None
        return _unchanged(playbook, name, latest, latest["training"])

    say("Reading labelled rows from the ledger")
    with ctx.db.read() as conn:
        dataset = build_dataset(conn, active.compiled, active.id, now=now)
    _check_enough(dataset, spec)
    if latest is not None and same_labels(
        latest, dataset.labels_hash, split_by, force=force, evaluate=evaluate
    ):
        remember(ctx, latest, current)
        return _unchanged(playbook, name, latest, _training(dataset, None))

    say(f"Training on {len(dataset.rows)} rows ({dataset.positives} positive)")
    grouped = label_order_warning([r.label for r in dataset.rows]) if split_by == "time" else None
    started = time.monotonic()
    try:
        trained = predictors.train(
            dataset.rows, dataset.features, algorithm=spec.algorithm, split=split_by
        )
    except InvalidInput as exc:
        why = f"; {grouped}" if grouped else ""
        raise Conflict(f"cannot train {name}: {exc}{why}") from None
    report = trained.report.to_dict()
    if runs_walk_forward(evaluate, [row.at for row in dataset.rows], split_by):
        say("Walk-forward: training on everything before each period, scoring the period")
        report["walk_forward"] = predictors.walk_forward(trained.model, dataset.rows)
    elif skipped := not_in_time_order(evaluate, split_by):
        report["notes"].append(skipped)
    if order_only := file_order_note(ctx, active.compiled.playbook):
        report["warnings"].append(order_only)
    seconds = round(time.monotonic() - started, 2)
    artifact = predictors.dump_model(trained.model)

    say("Comparing with the current champion on the same held-out rows")
    with ctx.db.read() as conn:
        champion = model_store.get_champion(conn, name, with_artifact=True)
    verdict = with_skill(_verdict(dataset, trained.model, champion, split_by), report["skill"])

    training = _training(dataset, report)
    training["seconds"] = seconds
    training["split"] = split_by
    training["fingerprint"] = current
    training["verdict"] = verdict  # the same dict: as stored, if another version won meanwhile
    if grouped:
        training["label_order"] = grouped
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


def _fingerprint(
    conn: Connection, active: ActivePlaybook, spec: ModelSpec, split: str, now: datetime
) -> str:
    """What the labelled set is built from, summarised without reading it (`promotion`)."""
    book = active.compiled.playbook
    state: list[int]
    if spec.review_option is not None:
        state = training_data.reviews_state(conn, active.id)
    else:
        window = spec.window(book.outcome)
        assert window is not None  # validation requires one
        state = training_data.events_state(
            conn,
            book.subject,
            until=now,
            closed_types=list(book.trigger.starts),
            closed_until=now - window,
        )
    return fingerprint(recipe(active.compiled), split, state)


def _unchanged(
    playbook: str, name: str, latest: dict[str, Any], training: TabularTraining
) -> TrainResult:
    return {
        "playbook": playbook,
        "model": name,
        "status": "unchanged",
        "version": latest["version"],
        "message": (
            f"{name}: the {training.get('rows', 0)} labelled rows have not changed since "
            f"version {latest['version']}; nothing to learn (use force to train anyway)"
        ),
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
                "roc_auc_interval": v["metrics"].get("roc_auc_interval") or None,
                "skill": v["metrics"].get("skill") or None,
                "warnings": v["metrics"].get("warnings") or [],
                "walk_forward": v["metrics"].get("walk_forward"),
                "why": ((v["training"] or {}).get("verdict") or {}).get("why"),
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


def _verdict(
    dataset: Dataset, model: Any, champion: dict[str, Any] | None, split: SplitKind = "time"
) -> Verdict:
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
    rows, note = _comparison_rows(dataset, champion, split)
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


def _comparison_rows(
    dataset: Dataset, champion: dict[str, Any], split: SplitKind = "time"
) -> tuple[list[Row], str | None]:
    """The new version's held-out rows, less any the champion may have trained on (a model
    scored on its own training rows looks better than it is). If too few rows of either class
    are left, all held-out rows are used and the verdict says so."""
    held_out = [dataset.rows[i] for i in predictors.test_positions(dataset.rows, split)]
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

"""Train a playbook's text classifier (`text.classify.using: model`) from labelled messages.

The same discipline as the tabular models in `opsloop.service.learn.training`: refused when there
are too few labelled messages or one category only, skipped when they and the recipe (method,
text field, labels) have not changed — answered before the messages are read —, evaluated on
the latest fifth it never saw (time order), and promoted only if its accuracy shows skill over
always answering the most common label and beats the champion's on those same messages;
otherwise kept as the challenger, computed in shadow with every decision.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from opsloop.core.errors import Conflict, InvalidInput, NotFound
from opsloop.core.playbooks import Classify, Playbook
from opsloop.learning.split_checks import SplitKind, chosen_split
from opsloop.learning.text_dataset import (
    TextDataset,
    build_text_dataset,
    label_type,
    text_model_name,
    text_recipe,
)
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
from opsloop.service.learn.time_notes import file_order_note
from opsloop.service.learn.views import TextModels, TextTraining, TrainResult, Verdict
from opsloop.store import model_registry as model_store
from opsloop.store import training_data

Step = Callable[[str], None] | None


def text_classifier(active: ActivePlaybook) -> Classify | None:
    """The playbook's `text.classify` when it is a trained model, else None."""
    text = active.compiled.playbook.text
    if text is None or text.classify is None or text.classify.using != "model":
        return None
    return text.classify


def read_dataset(ctx: Context, active: ActivePlaybook, now: datetime) -> TextDataset:
    playbook = active.compiled.playbook
    with ctx.db.read() as conn:
        messages = training_data.trigger_events(
            conn, list(playbook.trigger.starts), playbook.subject, until=now
        )
        labels = training_data.trigger_events(
            conn, [label_type(playbook)], playbook.subject, until=now
        )
    return build_text_dataset(playbook, messages, labels)


def train_text_model(
    ctx: Context,
    active: ActivePlaybook,
    *,
    actor: str,
    force: bool = False,
    step: Step = None,
    split: SplitKind | None = None,
    evaluate: Evaluate | None = None,
) -> TrainResult:
    say = step or (lambda _: None)
    spec = text_classifier(active)
    if spec is None:
        raise Conflict(f"playbook {active.name!r} has no text classifier to train")
    now = ctx.clock()
    playbook = active.compiled.playbook
    name = text_model_name(active.name, spec.output)
    with ctx.db.read() as conn:
        latest = latest_serving(conn, name)
        split_by = chosen_split(split, latest)
        state = training_data.events_state(
            conn,
            playbook.subject,
            until=now,
            types=[*playbook.trigger.starts, label_type(playbook)],
        )
    current = fingerprint(text_recipe(playbook), split_by, state)
    if unchanged_by_fingerprint(latest, current, force=force, evaluate=evaluate):
        assert latest is not None
        return _unchanged(active.name, name, latest, int(latest["training"].get("rows", 0)))

    say("Reading labelled messages from the ledger")
    dataset = read_dataset(ctx, active, now)
    _check_enough(dataset, spec, playbook)
    if latest is not None and same_labels(
        latest, dataset.labels_hash, split_by, force=force, evaluate=evaluate
    ):
        remember(ctx, latest, current)
        return _unchanged(active.name, name, latest, len(dataset.rows))

    from opsloop.learning import artifacts
    from opsloop.learning.text import evaluate_text, train_text

    train_rows, test_rows = dataset.parts(split_by)
    texts, truth = [r.text for r in test_rows], [r.label for r in test_rows]
    started = time.monotonic()
    which = "the latest" if split_by == "time" else "a stratified random"
    say(f"Training on {len(train_rows)} messages; testing on {which} {len(test_rows)}")
    try:
        model = train_text(
            [r.text for r in train_rows], [r.label for r in train_rows], method=spec.method
        )
    except InvalidInput as exc:
        raise Conflict(f"cannot train {name}: {exc}") from None
    counts = Counter(r.label for r in train_rows)
    report = evaluate_text(model, texts, truth, train_counts=counts).to_dict()
    artifact = artifacts.dump_model(model)
    del model  # stored: the walk-forward fits and the champion need the memory
    if runs_walk_forward(evaluate, [r.at for r in dataset.rows], split_by):
        from opsloop.learning import walk_forward

        say("Walk-forward: training on everything before each period, scoring the period")
        report["walk_forward"] = walk_forward.text(
            [r.at for r in dataset.rows],
            [r.text for r in dataset.rows],
            [r.label for r in dataset.rows],
            method=spec.method,
        ).to_dict()
    elif skipped := not_in_time_order(evaluate, split_by):
        report["warnings"].append(skipped)
    if order_only := file_order_note(ctx, active.compiled.playbook):
        report["warnings"].append(order_only)
    seconds = round(time.monotonic() - started, 2)

    with ctx.db.read() as conn:
        champion = model_store.get_champion(conn, name, with_artifact=True)
    if champion is not None:
        say(f"Scoring champion version {champion['version']} on the same held-out messages")
    old_accuracy = _champion_accuracy(champion, texts, truth)

    verdict = with_skill(
        _verdict(champion, old_accuracy, len(texts), report["accuracy"]), report["skill"]
    )
    training: TextTraining = {
        "source": "labelled messages",
        "rows": len(dataset.rows),
        "labels": dataset.counts,
        "window": dataset.window,
        "left_out": dataset.left_out,
        "train": len(train_rows),
        "test": len(test_rows),
        "seconds": seconds,
        "split": split_by,
        "fingerprint": current,
        "verdict": verdict,  # the same dict: as stored, if another version won meanwhile
    }
    if split_by == "time" and (grouped := dataset.label_order()):
        training["label_order"] = grouped
    new = NewVersion(
        playbook_id=active.id,
        name=name,
        kind="text",
        algorithm=spec.method,
        features=[f"payload.{playbook.text.field}" if playbook.text else "text"],
        metrics=report,
        training=training,
        labels_hash=dataset.labels_hash,
        artifact=artifact,
        trained_detail={"rows": len(dataset.rows), "accuracy": report["accuracy"]},
    )
    stored = store_version(ctx, new, verdict, compared_with=champion, actor=actor, now=now)
    return {
        "playbook": active.name,
        "model": name,
        "kind": "text",
        "status": "promoted" if stored.promoted else "challenger",
        "version": stored.number,
        "message": stored.message,
        "report": report,
        "verdict": verdict,
        "training": training,
    }


def _unchanged(playbook: str, name: str, latest: dict[str, Any], rows: int) -> TrainResult:
    return {
        "playbook": playbook,
        "model": name,
        "kind": "text",
        "status": "unchanged",
        "version": latest["version"],
        "message": (
            f"{name}: the {rows} labelled messages have not changed since version "
            f"{latest['version']}; nothing to learn (use force to train anyway)"
        ),
    }


def _champion_accuracy(
    champion: dict[str, Any] | None, texts: list[str], truth: list[str]
) -> float | str | None:
    """The champion's accuracy on the held-out messages; the reason its artifact was rejected;
    or None without a champion."""
    if champion is None:
        return None
    from opsloop.learning import artifacts
    from opsloop.learning.predictors import load_text_model
    from opsloop.learning.text import evaluate_text

    try:
        old = load_text_model(bytes(champion["artifact"]), champion)
    except artifacts.ModelArtifactError as exc:
        return str(exc)
    return evaluate_text(old, texts, truth).accuracy


def _verdict(
    champion: dict[str, Any] | None,
    old_accuracy: float | str | None,
    compared_on: int,
    new_accuracy: float,
) -> Verdict:
    """The new classifier against the champion, on the same held-out messages."""
    if champion is None or old_accuracy is None:
        return {"promoted": True, "champion_version": None, "why": "there was no champion"}
    if isinstance(old_accuracy, str):
        return {
            "promoted": True,
            "champion_version": champion["version"],
            "why": f"the champion's artifact was rejected ({old_accuracy})",
        }
    return {
        "promoted": new_accuracy > old_accuracy,
        "champion_version": champion["version"],
        "why": (
            f"accuracy {new_accuracy:.3f} against {old_accuracy:.3f} on the same "
            f"{compared_on} held-out messages"
        ),
        "champion_accuracy": round(old_accuracy, 4),
        "challenger_accuracy": round(new_accuracy, 4),
        "compared_on": compared_on,
    }


def list_text_versions(ctx: Context, active: ActivePlaybook) -> TextModels | None:
    spec = text_classifier(active)
    if spec is None:
        return None
    name = text_model_name(active.name, spec.output)
    with ctx.db.read() as conn:
        versions = model_store.list_versions(conn, name)
    return {
        "model": name,
        "as": spec.output,
        "versions": [
            {
                "version": v["version"],
                "status": v["status"],
                "algorithm": v["algorithm"],
                "created_at": v["created_at"],
                "created_by": v["created_by"],
                "accuracy": v["metrics"].get("accuracy"),
                "macro_f1": v["metrics"].get("macro_f1"),
                "training": v["training"],
                "accuracy_interval": v["metrics"].get("accuracy_interval") or None,
                "skill": v["metrics"].get("skill") or None,
                "warnings": v["metrics"].get("warnings") or [],
                "walk_forward": v["metrics"].get("walk_forward"),
                "why": ((v["training"] or {}).get("verdict") or {}).get("why"),
            }
            for v in versions
        ],
    }


def _check_enough(dataset: TextDataset, spec: Classify, playbook: Playbook) -> None:
    rows = len(dataset.rows)
    if rows < spec.min_rows:
        skipped = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in dataset.left_out.items())
        raise Conflict(
            f"not enough labelled messages to train {dataset.name}: {rows} (left out: "
            f"{skipped or 'none'}); the playbook needs min_rows: {spec.min_rows}. Labels are "
            f"{label_type(playbook)} events, e.g. from opsloop import --label-column"
        )
    if len(dataset.counts) < 2:
        raise Conflict(f"cannot train {dataset.name}: every labelled message has the same label")


def active_playbook(ctx: Context, name: str) -> ActivePlaybook:
    active = ctx.catalog.active().get(name)
    if active is None:
        raise NotFound(f"no playbook named {name!r}")
    return active

"""Labelled datasets from the ledger, for a playbook's `model:`.

Two sources of labels, chosen by `predicts`:

* `review:<option>` — what reviewers decided. Only decisions a person reviewed count: an
  approval confirms the playbook's choice, an override supplies the right one, a rejection says
  no option was right (label 0). Pending, logged and unreviewed `auto` decisions are
  suggestions nobody checked and are never training data. The features are the ones stored
  with the decision: what the reviewer saw.
* an event type — what happened. Every triggering event of the playbook (decided on or not:
  imported history has no decisions) is a row; its label is whether the event occurred for the
  same subject within `within` after the trigger. A row whose window is still open is left
  out, even when the event already came: only the successes would be known for the latest
  rows, and a model trained and tested on them would overrate everyone. Features are computed
  as of the trigger by the same code as live decisions.

Rows are in time order, so a time-ordered train/test split never trains on the future.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection

from opsloop.core.events import Event, HistoryEvent
from opsloop.core.playbooks import ModelSpec
from opsloop.reasoning.compiler import CompiledPlaybook
from opsloop.reasoning.features import base_context, compute_features
from opsloop.store import events as event_store
from opsloop.store import training_data
from opsloop.store.events import merge_patch

LabelSource = Literal["reviews", "events"]


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    """`decision:<id>` or `event:<id>`: which ledger row the example comes from."""
    at: datetime
    subject: str
    features: dict[str, Any]
    label: int


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    """The model's name: `<playbook>:<predicts>`."""
    predicts: str
    source: LabelSource
    features: tuple[str, ...]
    rows: list[Row]
    """Oldest first."""
    left_out: dict[str, int] = field(default_factory=dict)
    """Rows not used, by reason (`window_open`, `unreviewed` …), for the report."""
    recipe: str = ""
    """`recipe(...)`: what besides the rows decides the model (definitions, algorithm)."""

    @property
    def positives(self) -> int:
        return sum(row.label for row in self.rows)

    @property
    def labels_hash(self) -> str:
        """Changes exactly when the labelled set or its recipe changes: a row added or removed,
        a label flipped, the features asked for, a feature's definition, the algorithm.
        Training is skipped while it stays the same."""
        digest = hashlib.sha256()
        digest.update(f"{self.predicts}\n{','.join(self.features)}\n{self.recipe}\n".encode())
        for key, label in sorted((row.key, row.label) for row in self.rows):
            digest.update(f"{key}={label}\n".encode())
        return digest.hexdigest()

    @property
    def window(self) -> dict[str, str | None]:
        if not self.rows:
            return {"from": None, "to": None}
        return {"from": self.rows[0].at.isoformat(), "to": self.rows[-1].at.isoformat()}


def model_name(playbook: str, spec: ModelSpec) -> str:
    return f"{playbook}:{spec.predicts}"


def recipe(playbook: CompiledPlaybook) -> str:
    """A hash of everything in the playbook that decides its model besides the labelled rows:
    what it predicts and within which window, the trigger, every feature's definition (a
    formula may read the others; display labels aside) and the algorithm. Part of
    `labels_hash`, and of the fingerprint that skips retraining before any row is read."""
    book = playbook.playbook
    spec = book.model
    if spec is None:
        raise ValueError(f"playbook {playbook.name!r} declares no model")
    parts = {
        "model": spec.model_dump(
            mode="json", exclude={"output", "retrain", "fallback", "min_rows"}
        ),
        "within": str(spec.window(book.outcome)),
        "trigger": book.trigger.model_dump(mode="json", exclude={"schedule", "timezone"}),
        "features": {
            name: feature.model_dump(mode="json", exclude={"label"}, exclude_none=True)
            for name, feature in sorted(book.features.items())
        },
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def build_dataset(
    conn: Connection, playbook: CompiledPlaybook, playbook_id: int, *, now: datetime
) -> Dataset:
    """The labelled rows for the playbook's model, as the ledger stands at `now`."""
    spec = playbook.playbook.model
    if spec is None:
        raise ValueError(f"playbook {playbook.name!r} declares no model")
    if spec.review_option is not None:
        return _from_reviews(conn, playbook, playbook_id, spec, spec.review_option)
    window = spec.window(playbook.playbook.outcome)
    assert window is not None  # validation requires one
    return _from_events(conn, playbook, spec, window, now)


def _from_reviews(
    conn: Connection, playbook: CompiledPlaybook, playbook_id: int, spec: ModelSpec, option: str
) -> Dataset:
    rows = []
    for decision in training_data.reviewed_decisions(conn, playbook_id):
        verdict = decision["verdict"]
        if verdict == "approve":
            final = decision["choice"]
        elif verdict == "override":
            final = decision["option"]
        else:  # reject: no option was right, so not this one either
            final = None
        seen = (decision["inputs"] or {}).get("features") or {}
        rows.append(
            Row(
                key=f"decision:{decision['id']}",
                at=decision["created_at"],
                subject=decision["subject"],
                features={name: seen.get(name) for name in spec.features},
                label=int(final == option),
            )
        )
    return Dataset(
        name=model_name(playbook.name, spec),
        predicts=spec.predicts,
        source="reviews",
        features=spec.features,
        rows=rows,
        recipe=recipe(playbook),
    )


def _from_events(
    conn: Connection,
    playbook: CompiledPlaybook,
    spec: ModelSpec,
    within: timedelta,
    now: datetime,
) -> Dataset:
    book = playbook.playbook
    triggers = _cooled(
        training_data.trigger_events(conn, list(book.trigger.starts), book.subject, until=now),
        book.trigger.cooldown,
    )
    subjects = sorted({event.subject for event in triggers})
    types = set(playbook.history_types) | {spec.predicts}
    history = event_store.fetch_history(conn, subjects, types, since=None, until=now)
    patches = training_data.trait_patches(conn, subjects)
    rows: list[Row] = []
    window_open = 0
    for event in triggers:
        if event.occurred_at + within > now:
            # Still open. Keeping the ones that already succeeded would fill the latest rows
            # with successes only (the failures are not known yet), and skew the model.
            window_open += 1
            continue
        subject_history = history.get(event.subject, [])
        label = _happened(subject_history, spec.predicts, event.occurred_at, within)
        traits = _traits_as_of(patches.get(event.subject, []), event.id)
        values = _features(playbook, event, subject_history, traits)
        rows.append(
            Row(
                key=f"event:{event.id}",
                at=event.occurred_at,
                subject=event.subject,
                features={name: values.get(name) for name in spec.features},
                label=int(label),
            )
        )
    return Dataset(
        name=model_name(playbook.name, spec),
        predicts=spec.predicts,
        source="events",
        features=spec.features,
        rows=rows,
        left_out={"window_open": window_open} if window_open else {},
        recipe=recipe(playbook),
    )


def _cooled(triggers: list[Event], cooldown: timedelta | None) -> list[Event]:
    """Drop triggers a live playbook would have skipped for its cooldown, so the rows are the
    moments the playbook decides at."""
    if cooldown is None:
        return triggers
    last: dict[str, datetime] = {}
    kept = []
    for event in triggers:
        previous = last.get(event.subject)
        if previous is not None and previous <= event.occurred_at < previous + cooldown:
            continue
        last[event.subject] = event.occurred_at
        kept.append(event)
    return kept


def _happened(
    history: list[HistoryEvent], event_type: str, since: datetime, within: timedelta
) -> bool:
    # The same window as outcome linking: from the trigger to `within` after it, both ends in.
    until = since + within
    return any(e.type == event_type and since <= e.occurred_at <= until for e in history)


def _traits_as_of(patches: list[tuple[int, dict[str, Any]]], event_id: int) -> dict[str, Any]:
    """The profile as it stood when the trigger was stored (its own patch included), as in
    replays: today's traits could leak what happened later."""
    traits: dict[str, Any] = {}
    for patch_id, patch in patches:
        if patch_id > event_id:
            break
        traits = merge_patch(traits, patch)
    return traits


def _features(
    playbook: CompiledPlaybook,
    event: Event,
    history: list[HistoryEvent],
    traits: dict[str, Any],
) -> dict[str, Any]:
    base = base_context(event, traits)
    values, _ = compute_features(
        playbook, at=event.occurred_at, history=history, traits=traits, base=base
    )
    return values

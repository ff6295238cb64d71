"""Labelled messages from the ledger: the (text, category) pairs a playbook's text model learns.

A message is a trigger event of the playbook (its text at `payload.<text.field>`). Its label is
a `<subject kind>.labelled` event whose payload names the category (`label`) and the message:
by `event_id`, or by `event_type` and `event_key` (its idempotency key, as `opsloop import
--label-column` writes them), or else the subject's latest message before the label. A later
label replaces an earlier one (a corrected category). Messages without a label are left out:
they are never guessed.

The latest fifth of the labelled messages (by time, never at random) is held out for the
report and for champion/challenger.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opsloop.core.events import Event
from opsloop.core.playbooks import Playbook
from opsloop.learning.split_checks import SplitKind, label_order_warning, stratified_split
from opsloop.reasoning.text_triage import message_text

TEST_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class Message:
    event_id: int
    at: datetime
    text: str
    label: str


@dataclass
class TextDataset:
    name: str
    rows: list[Message]
    """Oldest first."""
    left_out: dict[str, int] = field(default_factory=dict)
    recipe: str = ""
    """`text_recipe(...)`: what besides the messages decides the model (method, text field)."""

    @property
    def labels_hash(self) -> str:
        """Changes exactly when a message, its text or its label changes, or the recipe."""
        digest = hashlib.sha256()
        digest.update(f"{self.recipe}\n".encode())
        for row in self.rows:
            digest.update(json.dumps([row.event_id, row.text, row.label]).encode())
        return digest.hexdigest()

    @property
    def split(self) -> int:
        """Rows before this index train; the rest are held out."""
        return len(self.rows) - max(1, round(len(self.rows) * TEST_SHARE))

    def parts(self, split: SplitKind = "time") -> tuple[list[Message], list[Message]]:
        """(training, held-out) messages: the latest fifth held out (`time`), or a random
        fifth of each label's messages (`stratified`, for rows whose order is not time)."""
        if split == "stratified":
            drawn = stratified_split([row.label for row in self.rows], test_share=TEST_SHARE)
            held = set(drawn.test)
            return (
                [row for i, row in enumerate(self.rows) if i not in held],
                [self.rows[i] for i in drawn.test],
            )
        return self.rows[: self.split], self.rows[self.split :]

    def label_order(self) -> str | None:
        """Why the time-ordered hold-out misleads on these labels (they come grouped in time
        order, a file sorted by label most likely), or None (`split_checks`)."""
        return label_order_warning([row.label for row in self.rows])

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(row.label for row in self.rows).most_common())

    @property
    def window(self) -> dict[str, str] | None:
        if not self.rows:
            return None
        return {"from": self.rows[0].at.isoformat(), "to": self.rows[-1].at.isoformat()}


def text_model_name(playbook: str, output: str) -> str:
    return f"{playbook}:text:{output}"


def label_type(playbook: Playbook) -> str:
    return f"{playbook.subject}.labelled"


def text_recipe(playbook: Playbook) -> str:
    """A hash of everything in the playbook that decides its text classifier besides the
    labelled messages: the method, the text field, the labels it keeps and the trigger. Part
    of `labels_hash`, and of the fingerprint that skips retraining before any row is read."""
    spec = playbook.text
    assert spec is not None
    assert spec.classify is not None
    parts = {
        "method": spec.classify.method,
        "field": spec.field,
        "labels": sorted(spec.classify.labels),
        "trigger": playbook.trigger.model_dump(mode="json", exclude={"schedule", "timezone"}),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def build_text_dataset(
    playbook: Playbook, messages: list[Event], labels: list[Event]
) -> TextDataset:
    """Join messages (oldest first) with the label events about them."""
    spec = playbook.text
    assert spec is not None
    assert spec.classify is not None
    by_id = {event.id: event for event in messages}
    by_key = {(e.type, e.idempotency_key): e for e in messages if e.idempotency_key}
    by_subject: dict[str, list[Event]] = defaultdict(list)
    for event in messages:
        by_subject[event.subject].append(event)
    left_out: Counter[str] = Counter()
    chosen: dict[int, tuple[datetime, int, str]] = {}
    for label_event in labels:
        payload = label_event.payload
        label = payload.get("label")
        if not isinstance(label, str | int) or isinstance(label, bool) or str(label) == "":
            left_out["label_without_category"] += 1
            continue
        target = _target(label_event, by_id, by_key, by_subject)
        if target is None:
            left_out["label_without_message"] += 1
            continue
        key = (label_event.occurred_at, label_event.id, str(label))
        if target.id not in chosen or chosen[target.id] < key:
            chosen[target.id] = key
    rows = []
    allowed = set(spec.classify.labels)
    for event in messages:
        if event.id not in chosen:
            continue
        text = message_text(spec, event.payload)
        if not text or not text.strip():
            left_out["no_text"] += 1
            continue
        label = chosen[event.id][2]
        if allowed and label not in allowed:
            left_out["label_not_listed"] += 1
            continue
        rows.append(Message(event.id, event.occurred_at, text, label))
    name = text_model_name(playbook.name, spec.classify.output)
    return TextDataset(name, rows, dict(left_out), recipe=text_recipe(playbook))


def _target(
    label: Event,
    by_id: dict[int, Event],
    by_key: dict[tuple[str, str], Event],
    by_subject: dict[str, list[Event]],
) -> Event | None:
    payload: dict[str, Any] = label.payload
    if isinstance(payload.get("event_id"), int):
        return by_id.get(payload["event_id"])
    if payload.get("event_type") and payload.get("event_key"):
        return by_key.get((str(payload["event_type"]), str(payload["event_key"])))
    earlier = by_subject.get(label.subject, [])
    index = bisect_right([event.occurred_at for event in earlier], label.occurred_at)
    return earlier[index - 1] if index else None

"""What tabular and text training share around the fit: the fingerprint that says "nothing to
learn" before any row is read, the skill a new version needs to become champion, and when a
walk-forward evaluation runs beside the hold-out.

**Nothing to learn.** A version keeps a fingerprint of what it was trained from: the playbook's
recipe for the model (feature definitions, algorithm, text method …: `datasets.recipe`,
`text_dataset.text_recipe`), the split, and a summary of the ledger rows the labelled set is
built from (counts and the largest id, `store.training_data.events_state` / `reviews_state`).
Events are never edited, so an equal fingerprint means an equal labelled set: a retrain answers
in milliseconds without reading the history. A different fingerprint reads the rows, and the
labelled set's own hash (`labels_hash`, which holds the recipe too) still says "nothing to
learn" when new events changed no label (an unrelated event about the same subjects), and the
version keeps the newer fingerprint (`remember`).

**Promotion needs skill.** A version becomes champion — the first one too — only when its
held-out score shows skill over a model that knows nothing (`learning.evidence`: the lower end
of the score's 95% interval clears the no-skill score by a margin, and luck is ruled out), and,
when there is a champion, it beats the champion on the same held-out rows. Otherwise it is kept
as the challenger, with the reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from opsloop.learning.split_checks import split_of
from opsloop.service.context import Context
from opsloop.service.learn.views import Verdict
from opsloop.store import model_registry as model_store

Evaluate = Literal["auto", "holdout", "walk-forward"]
EVALUATIONS: tuple[Evaluate, ...] = ("auto", "holdout", "walk-forward")


def fingerprint(recipe: str, split: str, state: Sequence[int]) -> str:
    return hashlib.sha256(json.dumps([recipe, split, list(state)]).encode()).hexdigest()


def unchanged_by_fingerprint(
    latest: Mapping[str, Any] | None, current: str, *, force: bool, evaluate: Evaluate | None
) -> bool:
    """Whether the latest version was trained from exactly this: same fingerprint, and no
    walk-forward asked for that it does not have."""
    if latest is None or force or not wants_nothing_new(latest, evaluate):
        return False
    return bool((latest.get("training") or {}).get("fingerprint") == current)


def remember(ctx: Context, latest: Mapping[str, Any], current: str) -> None:
    """The rows were read and found unchanged: keep `current` as the latest version's
    fingerprint, so the next run answers without reading them again."""
    training = dict(latest.get("training") or {})
    if training.get("fingerprint") == current:
        return
    training["fingerprint"] = current
    with ctx.db.transaction() as tx:
        model_store.set_training(tx.conn, int(latest["id"]), training)


def wants_nothing_new(latest: Mapping[str, Any], evaluate: Evaluate | None) -> bool:
    """False when `--evaluate walk-forward` asks for figures the latest version lacks: then it
    trains again even on the same rows."""
    if evaluate != "walk-forward":
        return True
    return bool((latest.get("metrics") or {}).get("walk_forward"))


def same_labels(
    latest: Mapping[str, Any],
    labels_hash: str,
    split: str,
    *,
    force: bool,
    evaluate: Evaluate | None,
) -> bool:
    """Training again would learn nothing: the latest version saw these very labels, split the
    same way, and nothing it lacks (walk-forward figures) is asked for."""
    return (
        latest["labels_hash"] == labels_hash
        and not force
        and split_of(latest) == split
        and wants_nothing_new(latest, evaluate)
    )


def runs_walk_forward(evaluate: Evaluate | None, times: Sequence[datetime], split: str) -> bool:
    """Walk-forward runs when asked (`walk-forward`), or unasked (`auto`, the default) when the
    history spans more than a few months (`learning.walk_forward.SHOWN_AFTER`); never on a
    stratified split, whose rows are not in time order."""
    if evaluate == "holdout" or split != "time":
        return False
    if evaluate == "walk-forward":
        return True
    from opsloop.learning.walk_forward import spans_long_enough

    return spans_long_enough(times)


def not_in_time_order(evaluate: Evaluate | None, split: str) -> str | None:
    """The note when walk-forward was asked for on rows whose order is not time."""
    if evaluate == "walk-forward" and split != "time":
        return "walk-forward was not run: with a stratified split the rows' order is not time"
    return None


def with_skill(verdict: Verdict, skill: Mapping[str, Any]) -> Verdict:
    """The champion/challenger verdict with the skill gate applied: a version without skill
    is never promoted, whatever the champion did; one with skill and no champion is."""
    judged: Verdict = {**verdict, "skill": dict(skill)}  # type: ignore[typeddict-item]
    if not skill.get("shown"):
        judged["promoted"] = False
        judged["why"] = f"no skill shown yet: {skill.get('why')}"
    elif verdict["champion_version"] is None:
        judged["why"] = f"there was no champion, and it shows skill: {skill.get('why')}"
    return judged

"""Backtests: what a playbook version would have decided over stored history, compared with what
the current version decides, what people chose and what happened.

A backtest replays a version (a draft, the active one, or an older one) over the period's
triggering events with `learning.replay` and reports:

* **counts**: events scanned, triggers in the period, how many the cooldown skipped, decisions;
* **choices**: how often each option would have been chosen;
* **agreement** with people: each decision of this playbook a person reviewed (on the same
  triggering event) says which option was right — the playbook's own choice when approved, the
  person's option when overridden; rejections are counted apart, as they name no option;
* **changes** against the active version: the active version is replayed over the same events
  too, rather than compared with the stored decisions, because stored decisions may come from
  several older versions, miss events imported without deciding or made before the playbook
  existed, and carry the live loop's own limits (see `live_record`); two replays differ only by
  the playbook change;
* **live_record**: how many of the active version's stored decisions in the period its replay
  reproduces (same choice and score) — a check on the replay itself;
* **outcomes** per choice: the share of decisions followed by the playbook's success event
  within its window (a window that had not closed by the end of the data is `open`);
* **errors**: decisions whose expressions failed, counted by place and message.

Nothing here writes anything: the service stores the report, if asked to.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from opsloop.core.backtest_reports import (
    Agreeing,
    Agreement,
    BacktestReport,
    ChangedDecision,
    Changes,
    ChoiceOutcome,
    ChoiceShare,
    Errors,
    LiveExample,
    LiveRecord,
    Outcomes,
)
from opsloop.core.durations import format_duration
from opsloop.learning.replay import Needs, Replayed, needs, replay
from opsloop.learning.replay_decisions import Scorer, TextScorer
from opsloop.learning.replay_features import History, moment
from opsloop.learning.replay_sequences import replay_sequences
from opsloop.reasoning.compiler import CompiledPlaybook
from opsloop.store.backtests import HistoryQuery

EXAMPLES = 10
"""Changed decisions shown as examples in a report."""

Progress = Callable[[str, int, int | None], None]
"""Called with a stage (`reading`, `replaying`, `comparing`), work done and the total."""


@dataclass(frozen=True, slots=True)
class Version:
    """A playbook version to replay."""

    compiled: CompiledPlaybook
    label: str
    """For people: `draft`, `version 3`."""
    number: int | None
    """The saved version's number; None for a draft."""
    content_hash: str
    scorer: Scorer | None = None
    """The `model:` block's probabilities for many rows at once (the trained champion, loaded
    read-only); None: the block's `fallback`."""
    text_scorer: TextScorer | None = None
    """The trained text classifier's categories for many messages (`text.classify.using:
    model`); None: no category, as live while no model is trained."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the ledger says happened in the period."""

    reviews: dict[int, tuple[str | None, str, str | None]]
    """By triggering event id: (the stored choice, the verdict, the override's option)."""
    stored: dict[int, tuple[str | None, float | None]]
    """By triggering event id: (choice, score) the active version stored."""


def history_query(versions: list[Version], *, since: datetime, until: datetime) -> HistoryQuery:
    """What to read so that every version can be replayed over [since, until]."""
    wanted: Needs = needs(v.compiled for v in versions)
    return HistoryQuery(
        kinds=tuple(sorted(wanted.kinds)),
        types=tuple(sorted(wanted.types)),
        since=None if wanted.lookback is None else since - wanted.lookback,
        until=None if wanted.unbounded_after else until,
        payload_keys=tuple(sorted(wanted.payload_keys)),
        payload_types=tuple(sorted(wanted.payload_types)),
        with_source=wanted.with_source,
    )


def run(
    history: History,
    version: Version,
    *,
    active: Version | None,
    evidence: Evidence,
    since: datetime,
    until: datetime,
    progress: Progress | None = None,
) -> BacktestReport:
    """Replay `version` (and `active`, when it differs) and build the report."""
    started = time.perf_counter()

    def step(done: int, total: int) -> None:
        if progress is not None:
            progress("replaying", done, total)

    live = frozenset(evidence.stored) | frozenset(evidence.reviews)
    ours = replay(
        history,
        version.compiled,
        since=since,
        until=until,
        progress=step,
        scorer=version.scorer,
        text_scorer=version.text_scorer,
        live=live,
    )
    same = active is not None and active.content_hash == version.content_hash
    theirs = (
        ours
        if same or active is None
        else replay(
            history,
            active.compiled,
            since=since,
            until=until,
            scorer=active.scorer,
            text_scorer=active.text_scorer,
            live=live,
        )
    )
    replayed = time.perf_counter()
    if progress is not None:
        progress("comparing", 0, None)

    spec = version.compiled.playbook
    choices = _choices(version.compiled, ours)
    agreement = _agreement(ours, evidence.reviews, theirs if active else None)
    changes = None if active is None else _changes(ours, theirs, same=same)
    live_record = None if active is None else _live_record(theirs, evidence.stored, active)
    outcomes = _outcomes(version.compiled, ours)
    errors = _errors(ours)
    compared = time.perf_counter()
    report: BacktestReport = {
        "playbook": spec.name,
        "version": {
            "label": version.label,
            "number": version.number,
            "content_hash": version.content_hash,
        },
        "compared_with": None
        if active is None
        else {"label": active.label, "number": active.number, "same_as_version": same},
        "period": {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "data_end": moment(history.end).isoformat() if history.end is not None else None,
        },
        "counts": {
            "events_scanned": history.height,
            "triggers": ours.triggers,
            "skipped_by_cooldown": ours.skipped,
            "decisions": len(ours.choices),
            "held_for_review": sum(ours.held),
            "failed": sum(1 for choice in ours.choices if choice is None),
        },
        "choices": choices,
        "agreement": agreement,
        "changes": changes,
        "live_record": live_record,
        "outcomes": outcomes,
        "errors": errors,
        "timings": {
            "replay_seconds": round(replayed - started, 3),
            "compare_seconds": round(compared - replayed, 3),
        },
    }
    sequences = replay_sequences(history, version.compiled, ours)
    if sequences:
        report["sequences"] = sequences
    text = spec.text
    if text is not None and text.classify is not None and text.classify.using == "llm":
        report["notes"] = [
            "a backtest never calls the language model: categories are unknown, so every "
            "decision waits for a person here and rules reading the category do not match"
        ]
    return report


def _choices(compiled: CompiledPlaybook, replayed: Replayed) -> list[ChoiceShare]:
    counts = Counter(replayed.choices)
    total = len(replayed.choices)
    return [
        {
            "choice": name,
            "label": option.label or name,
            "decisions": counts[name],
            "share": _rate(counts[name], total),
        }
        for name, option in compiled.playbook.options.items()
    ]


def _agreement(
    ours: Replayed,
    reviews: dict[int, tuple[str | None, str, str | None]],
    active: Replayed | None,
) -> Agreement:
    """Agreement with what people chose on the same triggering events."""
    right: dict[int, str | None] = {}
    rejected = 0
    for event_id, (choice, verdict, option) in reviews.items():
        if verdict == "approve":
            right[event_id] = choice
        elif verdict == "override":
            right[event_id] = option
        else:
            rejected += 1  # a rejection names no option: nothing to agree with
    agreeing = _agreeing(ours, right)
    report: Agreement = {
        "reviewed": len(reviews),
        "rejected": rejected,
        "compared": agreeing["compared"],
        "not_decided": agreeing["not_decided"],
        "agreed": agreeing["agreed"],
        "rate": agreeing["rate"],
        "lower_bound": agreeing["lower_bound"],
    }
    if active is not None:
        report["active"] = _agreeing(active, right)
    return report


def _agreeing(replayed: Replayed, right: dict[int, str | None]) -> Agreeing:
    decided = dict(zip(replayed.event_ids, replayed.choices, strict=True))
    compared = [event_id for event_id in right if event_id in decided]
    agreed = sum(1 for event_id in compared if decided[event_id] == right[event_id])
    return {
        "compared": len(compared),
        "not_decided": len(right) - len(compared),
        "agreed": agreed,
        "rate": _rate(agreed, len(compared)),
        "lower_bound": _lower_bound(agreed, len(compared)),
    }


def _lower_bound(agreed: int, compared: int) -> float | None:
    if not compared:
        return None
    from opsloop.learning.readiness import wilson_lower_bound  # scipy: only when needed

    return round(wilson_lower_bound(agreed, compared), 4)


def _changes(ours: Replayed, theirs: Replayed, *, same: bool) -> Changes:
    """Decision by decision against the active version, both replayed over the same events."""
    method = (
        "this is the active version" if same else "the active version replayed over the same events"
    )
    index = {event_id: i for i, event_id in enumerate(theirs.event_ids)}
    ours_ids = set(ours.event_ids)
    transitions: Counter[tuple[str | None, str | None]] = Counter()
    examples: dict[tuple[str | None, str | None], list[ChangedDecision]] = {}
    compared = score_changed = 0
    for i, event_id in enumerate(ours.event_ids):
        j = index.get(event_id)
        if j is None:
            continue
        compared += 1
        old, new = theirs.choices[j], ours.choices[i]
        if theirs.scores[j] != ours.scores[i]:
            score_changed += 1
        if old == new:
            continue
        transitions[(old, new)] += 1
        kept = examples.setdefault((old, new), [])
        if len(kept) < EXAMPLES:
            kept.append(
                {
                    "subject": ours.subjects[i],
                    "event_id": event_id,
                    "occurred_at": moment(ours.times[i]).isoformat(),
                    "old_choice": old,
                    "new_choice": new,
                    "old_score": theirs.scores[j],
                    "new_score": ours.scores[i],
                    "old_points": theirs.points[j],
                    "new_points": ours.points[i],
                    "score_difference": _difference(ours.scores[i], theirs.scores[j]),
                }
            )
    ordered = transitions.most_common()
    return {
        "method": method,
        "compared": compared,
        "changed": sum(transitions.values()),
        "score_changed": score_changed,
        "newly_decided": len(ours_ids - index.keys()),
        "no_longer_decided": len(index.keys() - ours_ids),
        "transitions": [{"from": old, "to": new, "count": n} for (old, new), n in ordered],
        "examples": _round_robin([examples[pair] for pair, _ in ordered], EXAMPLES),
    }


def _round_robin(groups: list[list[ChangedDecision]], limit: int) -> list[ChangedDecision]:
    """A few of each kind of change, the commonest first."""
    picked: list[ChangedDecision] = []
    for depth in range(limit):
        for group in groups:
            if depth < len(group) and len(picked) < limit:
                picked.append(group[depth])
    return picked


def _difference(new: float | None, old: float | None) -> float | None:
    if new is None or old is None:
        return None
    return round(new - old, 6)


def _live_record(
    theirs: Replayed, stored: dict[int, tuple[str | None, float | None]], active: Version
) -> LiveRecord:
    """Does the replay of the active version reproduce what it stored? Differences come from
    what a replay cannot see (see docs/backtests.md): traits changed by `update_traits`
    actions, events that arrived after the decision but occurred before it."""
    index = {event_id: i for i, event_id in enumerate(theirs.event_ids)}
    same = different = 0
    examples: list[LiveExample] = []
    for event_id, (choice, score) in stored.items():
        i = index.get(event_id)
        if i is None:
            continue
        if theirs.choices[i] == choice and theirs.scores[i] == score:
            same += 1
            continue
        different += 1
        if len(examples) < 5:
            examples.append(
                {
                    "event_id": event_id,
                    "subject": theirs.subjects[i],
                    "stored": {"choice": choice, "score": score},
                    "replayed": {"choice": theirs.choices[i], "score": theirs.scores[i]},
                }
            )
    return {
        "version": active.number,
        "stored": len(stored),
        "reproduced": same,
        "different": different,
        "not_replayed": len(stored) - same - different,
        "examples": examples,
    }


def _outcomes(compiled: CompiledPlaybook, replayed: Replayed) -> Outcomes | None:
    outcome = compiled.playbook.outcome
    if outcome is None:
        return None
    counts: Counter[tuple[str | None, str | None]] = Counter(
        zip(replayed.choices, replayed.outcomes, strict=True)
    )
    rows: list[ChoiceOutcome] = []
    for name in compiled.playbook.options:
        success, failure, open_ = (counts[(name, kind)] for kind in ("success", "failure", "open"))
        rows.append(
            {
                "choice": name,
                "decisions": success + failure + open_,
                "success": success,
                "failure": failure,
                "open": open_,
                "success_rate": _rate(success, success + failure),
            }
        )
    return {
        "success": list(outcome.success),
        "failure": list(outcome.failure),
        "within": format_duration(outcome.within),
        "by_choice": rows,
    }


def _errors(replayed: Replayed) -> Errors:
    by_message: Counter[tuple[str, str]] = Counter()
    decisions = 0
    for errors in replayed.errors:
        if errors:
            decisions += 1
            by_message.update(set(errors))
    return {
        "decisions": decisions,
        "failed": sum(1 for choice in replayed.choices if choice is None),
        "by_message": [
            {"where": where, "message": message, "count": count}
            for (where, message), count in by_message.most_common()
        ],
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None

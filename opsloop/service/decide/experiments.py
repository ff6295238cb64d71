"""Choose each experiment's variant as a decision is recorded (Thompson sampling on the
playbook's outcomes so far, opsloop/learning/experiments.py), and write the choice into the
decision's explanation; rendering the actions reads it from there (execution/render.py), so
the action's request, in the ledger, names the variant it sent.

A variant is chosen for every experiment of the playbook, not only the chosen option's: a
reviewer who picks another option gets that option's variant, chosen the same way. Each draw is
seeded by the playbook, the triggering event, the option and the action, so it can be
reproduced. Once a person ended an experiment (`ops.learn.end_experiment`), its winner is sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection

from opsloop.core.decisions import DecisionDraft
from opsloop.core.playbooks import EmailAction, NotifyAction, Playbook
from opsloop.learning.experiments import Tally, choose, seed_for
from opsloop.service.context import ActivePlaybook
from opsloop.store import experiments as experiment_store


def experiments_of(playbook: Playbook) -> Iterator[tuple[str, int, EmailAction | NotifyAction]]:
    """(option, action position, action) of every action with variants."""
    for option_name, option in playbook.options.items():
        for position, action in enumerate(option.actions):
            if isinstance(action, EmailAction | NotifyAction) and action.variants:
                yield option_name, position, action


def with_variants(
    conn: Connection, drafts: list[tuple[DecisionDraft, ActivePlaybook]]
) -> list[tuple[DecisionDraft, ActivePlaybook]]:
    """The drafts, those of playbooks with experiments carrying their variants."""
    tallies: dict[str, dict[tuple[str, int], dict[str, Tally]]] = {}
    kept: dict[str, dict[tuple[str, int], dict[str, Any]]] = {}
    result = []
    for draft, playbook in drafts:
        found = list(experiments_of(playbook.compiled.playbook))
        if not found or draft.status == "error":
            result.append((draft, playbook))
            continue
        if playbook.name not in tallies:
            tallies[playbook.name] = _tallies(conn, playbook.id)
            kept[playbook.name] = experiment_store.ended(conn, playbook.name)
        chosen = []
        for option, position, action in found:
            names = [variant.name for variant in action.variants]
            winner = kept[playbook.name].get((option, position), {}).get("winner")
            if winner in names:
                chosen.append(
                    {"option": option, "action": position, "variant": winner, "how": "kept"}
                )
                continue
            counts = tallies[playbook.name].get((option, position), {})
            arms = {name: counts.get(name, Tally(0, 0)) for name in names}
            seed = seed_for(playbook.name, draft.event_id, option, position)
            name, draws = choose(arms, seed)
            chosen.append(
                {
                    "option": option,
                    "action": position,
                    "variant": name,
                    "how": "thompson",
                    "draws": {key: round(value, 6) for key, value in draws.items()},
                }
            )
        explanation = {**draft.explanation, "variants": chosen}
        words = _in_words(chosen, draft.choice)
        if words:
            explanation["why"] = f"{explanation.get('why', '')} {words}".strip()
        result.append((dataclasses.replace(draft, explanation=explanation), playbook))
    return result


def _tallies(conn: Connection, playbook_id: int) -> dict[tuple[str, int], dict[str, Tally]]:
    found: dict[tuple[str, int], dict[str, Tally]] = {}
    for row in experiment_store.variant_counts(conn, playbook_id):
        found.setdefault((row.option, row.position), {})[row.variant] = Tally(
            row.successes, row.failures
        )
    return found


def _in_words(chosen: list[dict[str, Any]], choice: str | None) -> str:
    parts = []
    for one in chosen:
        if one["option"] != choice:
            continue
        if one["how"] == "kept":
            parts.append(f"Sends variant {one['variant']!r}, the winner a person kept.")
        else:
            parts.append(
                f"Sends variant {one['variant']!r}: its draw was the highest in Thompson "
                "sampling on the outcomes so far."
            )
    return " ".join(parts)

"""Message experiments in the ledger: which variant each action sent (its request's `variant`),
what came of the decision (its outcome), and experiments a person ended (audit entries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, select

from opsloop.store import audit as audit_store
from opsloop.store.schema import actions, audit, decisions, outcomes

OBJECT_TYPE = "experiment"
ENDED = "experiment.ended"


@dataclass(frozen=True, slots=True)
class VariantCount:
    option: str
    position: int
    variant: str
    sends: int
    """Actions that sent (or will send) this variant: all but dead-lettered ones."""
    successes: int
    failures: int
    """Outcomes recorded so far; a send whose window is still open has neither."""


def experiment_id(playbook: str, option: str, position: int) -> str:
    """The audit object id of one experiment: `playbook/option/position`."""
    return f"{playbook}/{option}/{position}"


def variant_counts(conn: Connection, playbook_id: int) -> list[VariantCount]:
    """Per (option, action position, variant): sends, and their decisions' outcomes."""
    variant = actions.c.request["variant"].as_string()
    query = (
        select(
            decisions.c.final_choice,
            actions.c.position,
            variant,
            func.count(),
            func.sum(case((outcomes.c.kind == "success", 1), else_=0)),
            func.sum(case((outcomes.c.kind == "failure", 1), else_=0)),
        )
        .select_from(actions)
        .join(decisions, decisions.c.id == actions.c.decision_id)
        .outerjoin(outcomes, outcomes.c.decision_id == decisions.c.id)
        .where(
            decisions.c.playbook_id == playbook_id,
            actions.c.kind.in_(("email", "notify")),
            actions.c.status != "dead",
            variant.is_not(None),
        )
        .group_by(decisions.c.final_choice, actions.c.position, variant)
    )
    return [
        VariantCount(str(option), int(position), str(name), int(sends), int(wins), int(losses))
        for option, position, name, sends, wins, losses in conn.execute(query)
    ]


def ended(conn: Connection, playbook: str) -> dict[tuple[str, int], dict[str, Any]]:
    """(option, position) → the detail of the entry that ended that experiment (`winner`,
    the standing when it was ended)."""
    query = (
        select(*audit_store.COLUMNS)
        .where(
            audit.c.object_type == OBJECT_TYPE,
            audit.c.verb == ENDED,
            audit.c.object_id.like(f"{playbook}/%"),
        )
        .order_by(audit.c.id)
    )
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for row in conn.execute(query):
        entry = audit_store.audit_entry(row)
        name, rest = entry["object_id"].split("/", 1)
        if name != playbook:  # `_` in a name is a LIKE wildcard
            continue
        option, position = rest.rsplit("/", 1)
        found[(option, int(position))] = {**entry["detail"], "by": entry["actor"]}
    return found

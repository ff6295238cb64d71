"""Earned autonomy: readiness, promotion to `auto` by a person, and the automatic drop back.

A playbook acts on its own only after reviewers agreed with it often enough (see
`opsloop.learning.readiness`). Promotion is an explicit act of a named person, refused when the
evidence is not there; in `auto`, a sample of decisions is still reviewed, and when agreement
falls below the target the playbook returns to `recommend` by itself. Every change of mode is
in the audit trail with the evidence at that moment.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection

from opsloop.core.errors import Conflict, FieldError, InvalidInput, NotFound
from opsloop.core.playbooks import MODES, Autonomy
from opsloop.learning.readiness import Readiness, assess
from opsloop.service.context import Context
from opsloop.service.review.views import ModeChange, ReadinessFigures, ReadinessReport
from opsloop.store import audit
from opsloop.store import decisions as decision_store
from opsloop.store import playbooks as playbook_store

log = logging.getLogger(__name__)


def readiness(ctx: Context, name: str) -> ReadinessReport:
    autonomy = _autonomy(ctx, name)
    with ctx.db.read() as conn:
        record = _record(conn, name)
        verdicts = decision_store.recent_verdicts(conn, record["id"], autonomy.window)
    judged = assess(verdicts, autonomy)
    return {"playbook": name, "mode": record["mode"], **_figures(judged)}


def change_mode(
    ctx: Context, name: str, mode: str, *, actor: str, reason: str | None
) -> ModeChange:
    """Set a playbook's mode. Moving to `auto` needs the readiness evidence; moving to
    `shadow` or `recommend` is always allowed (more caution never needs proof)."""
    if mode not in MODES:
        raise InvalidInput([FieldError("mode", f"must be one of {', '.join(MODES)}")])
    if not actor.strip():
        raise InvalidInput([FieldError("actor", "say who changes the mode; it is audited")])
    autonomy = _autonomy(ctx, name)
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        conn = tx.conn
        record = _record(conn, name)
        judged = assess(
            decision_store.recent_verdicts(conn, record["id"], autonomy.window), autonomy
        )
        current = record["mode"]
        if mode == current:
            return {"playbook": name, "mode": mode, "changed": False, "readiness": _figures(judged)}
        if mode == "auto" and not judged.ready:
            raise Conflict(f"playbook {name!r} has not earned auto: {judged.why}")
        playbook_store.set_mode(conn, record["id"], mode, now)
        audit.record(
            conn,
            now,
            actor,
            "playbook.promoted" if mode == "auto" else "playbook.mode_changed",
            name,
            {"from": current, "to": mode, "reason": reason, "readiness": judged.to_dict()},
        )
    ctx.catalog.invalidate()
    log.warning("playbook %s: mode %s -> %s by %s", name, current, mode, actor)
    return {"playbook": name, "mode": mode, "changed": True, "readiness": _figures(judged)}


def demote_if_unearned(conn: Connection, ctx: Context, record: dict[str, Any]) -> Readiness | None:
    """After a review of an `auto` playbook (its stored `record`): if agreement's lower bound
    has fallen below the target, drop back to `recommend` in the reviewer's transaction.
    Returns the evidence when it dropped."""
    if record["mode"] != "auto":
        return None
    name, playbook_id = record["name"], record["id"]
    autonomy = _autonomy(ctx, name)
    judged = assess(decision_store.recent_verdicts(conn, playbook_id, autonomy.window), autonomy)
    if judged.lower_bound >= autonomy.target:
        return None
    now = ctx.clock()
    playbook_store.set_mode(conn, playbook_id, "recommend", now)
    audit.record(
        conn,
        now,
        "opsloop",
        "playbook.demoted",
        name,
        {"from": "auto", "to": "recommend", "readiness": judged.to_dict()},
    )
    log.warning("playbook %s dropped back to recommend: %s", name, judged.why)
    return judged


def _figures(judged: Readiness) -> ReadinessFigures:
    return {
        "ready": judged.ready,
        "reviewed": judged.reviewed,
        "agreed": judged.agreed,
        "overridden": judged.overridden,
        "rejected": judged.rejected,
        "agreement": judged.agreement,
        "lower_bound": judged.lower_bound,
        "target": judged.target,
        "min_reviews": judged.min_reviews,
        "window": judged.window,
        "why": judged.why,
    }


def _record(conn: Connection, name: str) -> dict[str, Any]:
    """The stored playbook: its current mode is read here, never from the cached catalog."""
    record = playbook_store.get_playbook(conn, name)
    if record is None or record["active_version_id"] is None:
        raise NotFound(f"no playbook named {name!r}")
    return record


def _autonomy(ctx: Context, name: str) -> Autonomy:
    """The active version's `autonomy` settings, from the compiled catalog (no YAML parsing
    per review); a playbook applied by another process a moment ago is found on a re-read."""
    active = ctx.catalog.active().get(name)
    if active is None:
        ctx.catalog.invalidate()
        active = ctx.catalog.active().get(name)
    if active is None:
        raise NotFound(f"no playbook named {name!r}")
    return active.compiled.playbook.autonomy

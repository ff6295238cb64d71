"""Data contracts: apply a file (a new version per changed event type), remove one, list, show,
and the contracts the ingest pipeline checks events against.

Which contract checks an event (`contract_for`):
- a contract someone applied for the event's type checks every event of that type, from any
  source;
- otherwise, an event made by a built-in mapping (`mapping: stripe` in a source) is checked by
  the built-in contract for its type (opsloop/perception/contracts/*.yaml), which describes what
  those mappings produce. Events a sender shapes itself (`POST /api/events`, own mappings) are
  not held to rules nobody wrote for them.

`active_contracts(ctx)` is called for every ingested batch, so it is cached per database: the
cache is dropped at once by an apply or remove in this process, and otherwise re-read when the stamp
(largest active row id, number of active rows) has changed, checked at most once a second:
another process's apply (the CLI, a second server) is seen within a second.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from opsloop.core.contracts import Contract, parse_contracts
from opsloop.core.errors import NotFound
from opsloop.core.events import did_you_mean
from opsloop.service.context import Context
from opsloop.service.ingest.views import ContractDetail, ContractSummary, Origin
from opsloop.store import audit
from opsloop.store import contracts as contract_store
from opsloop.store.database import Database

log = logging.getLogger(__name__)

CACHE_TTL = 1.0
"""Seconds between checks of the stamp: how soon another process's apply is seen."""

Status = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class AppliedContract:
    event_type: str
    version: int
    status: Status
    """created: the type had no contract; updated: a new version; unchanged: same rules."""


def validate_contracts(text: str, file: str) -> list[Contract]:
    """Check a contracts file; raise PlaybookInvalid naming the file, line and field."""
    return parse_contracts(text, file)


def apply_contracts(ctx: Context, text: str, file: str, *, actor: str) -> list[AppliedContract]:
    """Store each contract of the file whose rules changed as its type's new active version.
    All of the file or none of it: one bad contract and nothing is applied."""
    parsed = parse_contracts(text, file)
    now = ctx.clock()
    applied: list[AppliedContract] = []
    with ctx.db.transaction() as tx:
        for contract in parsed:
            current = contract_store.active_contract(tx.conn, contract.event_type)
            if current is not None and Contract.from_spec(
                contract.event_type, current["spec"]
            ).same_as(contract):
                applied.append(
                    AppliedContract(contract.event_type, current["version"], "unchanged")
                )
                continue
            version = contract_store.add_version(
                tx.conn,
                event_type=contract.event_type,
                spec=contract.spec(),
                yaml=contract.source,
                applied_at=now,
                applied_by=actor,
            )
            # created also after a remove: the type had no contract in force.
            status: Status = "created" if current is None else "updated"
            audit.record(
                tx.conn,
                now,
                actor,
                f"contract.{status}",
                contract.event_type,
                {"version": version, "file": file},
            )
            applied.append(AppliedContract(contract.event_type, version, status))
    if any(item.status != "unchanged" for item in applied):
        _cache(ctx.db).invalidate()
    for item in applied:
        if item.status != "unchanged":
            log.info(
                "contract %s is now version %d",
                item.event_type,
                item.version,
                extra={"action": f"contract.{item.status}", "event_type": item.event_type},
            )
    return applied


def remove_contract(ctx: Context, event_type: str, *, actor: str) -> int:
    """Stop checking events against the type's applied contract; return the version taken out
    of force. Its versions stay in the history, and applying the type again makes the next
    version. A built-in contract for the type, if any, then applies again to the events
    built-in mappings make (see `contract_for`)."""
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        version = contract_store.deactivate(tx.conn, event_type)
        if version is None:
            applied = [row["event_type"] for row in contract_store.active_contracts(tx.conn)]
            # A built-in contract is part of OpsLoop, not something one can remove.
            builtin = (
                " (its built-in contract cannot be removed)"
                if event_type in builtin_contracts()
                else ""
            )
            raise NotFound(
                f"no applied contract for {event_type!r}{builtin}"
                f"{did_you_mean(event_type, applied)}"
            )
        audit.record(tx.conn, now, actor, "contract.removed", event_type, {"version": version})
    _cache(ctx.db).invalidate()
    log.info(
        "contract %s version %d removed",
        event_type,
        version,
        extra={"action": "contract.removed", "event_type": event_type},
    )
    return version


def active_contracts(ctx: Context) -> dict[str, Contract]:
    """The contracts people applied, by event type (built-ins not included)."""
    return _cache(ctx.db).active(ctx.db)


@cache
def builtin_contracts() -> dict[str, Contract]:
    """The contracts OpsLoop ships for the event types its built-in mappings make."""
    folder = resources.files("opsloop.perception") / "contracts"
    found: dict[str, Contract] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            for contract in parse_contracts(entry.read_text(), f"built-in {entry.name}"):
                found[contract.event_type] = contract
    return found


def contract_for(ctx: Context, event_type: str, *, builtin_mapping: bool) -> Contract | None:
    """The contract that checks an event of `event_type`: the applied one, else the built-in
    one when a built-in mapping made the event, else none."""
    applied = active_contracts(ctx).get(event_type)
    if applied is not None or not builtin_mapping:
        return applied
    return builtin_contracts().get(event_type)


def list_contracts(ctx: Context) -> list[ContractSummary]:
    """Every contract in force, applied and built-in, by event type."""
    with ctx.db.read() as conn:
        rows = {row["event_type"]: row for row in contract_store.active_contracts(conn)}
    builtins = builtin_contracts()
    listed: list[ContractSummary] = []
    for event_type in sorted({*rows, *builtins}):
        row = rows.get(event_type)
        contract = Contract.from_spec(event_type, row["spec"]) if row else builtins[event_type]
        listed.append(
            {
                "event_type": event_type,
                "origin": "applied" if row else "built-in",
                "version": row["version"] if row else None,
                "description": contract.description,
                "fields": len(contract.fields),
                "traits": len(contract.traits),
                "additional": contract.additional,
                "applied_at": row["applied_at"] if row else None,
                "applied_by": row["applied_by"] if row else None,
            }
        )
    return listed


def get_contract(ctx: Context, event_type: str) -> ContractDetail:
    """One event type's contract in force, its YAML and rules, and every applied version.
    A type whose applied contract was removed and has no built-in one is still shown, so its
    history stays in reach: origin `removed`, the newest version's rules, version None."""
    with ctx.db.read() as conn:
        versions = contract_store.list_versions(conn, event_type)
    active = next((row for row in versions if row["active"]), None)
    builtin = builtin_contracts().get(event_type)
    if active is None and builtin is None and not versions:
        known = sorted({*builtin_contracts(), *active_contracts(ctx)})
        raise NotFound(f"no contract for {event_type!r}{did_you_mean(event_type, known)}")
    origin: Origin | Literal["removed"]
    if active is not None:
        origin, version, spec, source = "applied", active["version"], active["spec"], active["yaml"]
    elif builtin is not None:
        origin, version, spec, source = "built-in", None, builtin.spec(), builtin.source
    else:
        newest = versions[0]
        origin, version, spec, source = "removed", None, newest["spec"], newest["yaml"]
    return {
        "event_type": event_type,
        "origin": origin,
        "version": version,
        "spec": spec,
        "yaml": source,
        "has_builtin": builtin is not None,
        "versions": [
            {
                "version": row["version"],
                "applied_at": row["applied_at"],
                "applied_by": row["applied_by"],
                "active": row["active"],
            }
            for row in versions
        ],
    }


class _Cache:
    # Holds no reference to its database: it is the value of a weak-keyed dict.
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamp: tuple[object, ...] | None = None
        self._checked = 0.0
        self._active: dict[str, Contract] = {}

    def active(self, db: Database) -> dict[str, Contract]:
        if self._stamp is not None and time.monotonic() - self._checked < CACHE_TTL:
            return self._active
        with self._lock:
            if self._stamp is not None and time.monotonic() - self._checked < CACHE_TTL:
                return self._active
            with db.read() as conn:
                stamp = contract_store.contracts_stamp(conn)
                if stamp != self._stamp:
                    self._active = {
                        row["event_type"]: Contract.from_spec(
                            row["event_type"], row["spec"], row["yaml"]
                        )
                        for row in contract_store.active_contracts(conn)
                    }
                    self._stamp = stamp
            self._checked = time.monotonic()
            return self._active

    def invalidate(self) -> None:
        with self._lock:
            self._stamp = None


# One cache per database, not per Context: every Context on the same database agrees.
_CACHES: weakref.WeakKeyDictionary[Database, _Cache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache(db: Database) -> _Cache:
    with _CACHES_LOCK:
        found = _CACHES.get(db)
        if found is None:
            found = _CACHES[db] = _Cache()
        return found

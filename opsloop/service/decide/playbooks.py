"""Playbooks: validate, apply (store a new version when the content changed), list."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsloop.core.durations import in_words
from opsloop.core.errors import Conflict, NotFound, PlaybookInvalid, PlaybookProblem
from opsloop.core.playbooks import Playbook, Trigger, check_playbook, content_hash
from opsloop.core.schedules import Schedule
from opsloop.execution.templates import template_problems
from opsloop.reasoning.compiler import CompiledPlaybook, compile_playbook
from opsloop.service.context import Context
from opsloop.service.decide import schedules
from opsloop.service.decide.views import (
    PlaybookDetail,
    PlaybookSummary,
    PlaybookVersion,
    ScheduleView,
)
from opsloop.service.deliver.channel_checks import playbook_warnings
from opsloop.store import audit, playbook_runs
from opsloop.store import playbooks as playbook_store

log = logging.getLogger(__name__)

LLM_MISSING = (
    "this playbook needs a language model and none is configured: set its address and model "
    "under Settings → Language model (or OPSLOOP_LLM__URL and OPSLOOP_LLM__MODEL, and "
    "OPSLOOP_LLM__API_KEY if the endpoint wants one); see docs/llm.md"
)


def load_playbook(
    text: str, file: str, *, llm_configured: bool | None = None
) -> tuple[Playbook, CompiledPlaybook]:
    """Full validation: structure, references, expressions and templates. Every problem is
    reported at once, each with file, line and field. With `llm_configured` False, a playbook
    that needs the language model is a problem too (None: not checked, e.g. a backtest)."""
    playbook, document, problems = check_playbook(text, file)
    if llm_configured is False and playbook.text is not None and playbook.text.needs_llm:
        uses = (
            ("text", "classify", "using")
            if playbook.text.classify is not None and playbook.text.classify.using == "llm"
            else ("text", "draft")
        )
        problems.append(document.problem(uses, LLM_MISSING))
    try:
        compiled = compile_playbook(playbook, document)
    except PlaybookInvalid as exc:
        problems.extend(exc.problems)
    except ValueError:
        # A feature without exactly one kind cannot be compiled; check_playbook reported it.
        assert problems
    for path, offset, message in template_problems(playbook.templates()):
        line = document.content_line_of(path)
        problem = document.problem(path, message)
        problems.append(
            PlaybookProblem(
                problem.file, (line or 0) + offset if line else None, problem.field, message
            )
        )
    if problems:
        raise PlaybookInvalid(sorted(problems, key=lambda p: p.line or 0))
    return playbook, compiled


@dataclass(frozen=True, slots=True)
class Applied:
    name: str
    version: int
    mode: str
    changed: bool
    notice: str | None = None
    """Why the stored mode differs from the file's, when it does."""
    warnings: tuple[str, ...] = ()
    """Channels its actions need that are not set up, each naming the setting."""


def _mode_to_store(asked: str, current: str | None) -> tuple[str, str | None]:
    """The file's `mode` may ask for more caution at any time, but `auto` is earned through
    `opsloop playbook promote`, never granted by writing it in YAML."""
    if asked != "auto" or current == "auto":
        return asked, None
    kept = current or "recommend"
    return kept, (
        f"mode: auto must be earned; the playbook runs in {kept} until reviewers' agreement "
        "clears its target and a person promotes it (opsloop playbook readiness / promote)"
    )


def apply_playbook(
    ctx: Context, text: str, file: str, *, actor: str, only_new: bool = False
) -> Applied:
    """Store `text` as the playbook's new active version (or reactivate the version that has
    it). `only_new`: refuse (Conflict) when a playbook of its name exists, in the same
    transaction, so two installs of a template cannot both create it."""
    configured = bool(ctx.settings.llm.url and ctx.settings.llm.model)
    playbook, _ = load_playbook(text, file, llm_configured=configured)
    digest = content_hash(text)
    now = ctx.clock()
    warnings = tuple(playbook_warnings(ctx.settings, dict(playbook.options)))
    with ctx.db.transaction() as tx:
        conn = tx.conn
        record = playbook_store.get_playbook(conn, playbook.name)
        if record is not None and only_new:
            raise Conflict(f"a playbook named {playbook.name!r} already exists")
        mode, notice = _mode_to_store(playbook.mode, record["mode"] if record else None)
        playbook_id = (
            record["id"]
            if record
            else playbook_store.create_playbook(conn, playbook.name, mode, now)
        )
        existing = playbook_store.find_version(conn, playbook_id, digest)
        if existing and record and record["active_version_id"] == existing["id"]:
            return Applied(
                playbook.name, existing["version"], record["mode"], False, notice, warnings
            )
        if existing:
            version_id, number = existing["id"], existing["version"]
            verb = "playbook.version_reactivated"
        else:
            version_id, number = playbook_store.add_version(
                conn,
                playbook_id=playbook_id,
                content_hash=digest,
                source=text,
                file=file,
                created_by=actor,
                now=now,
            )
            verb = "playbook.version_created"
        playbook_store.activate(conn, playbook_id, version_id, mode, now)
        audit.record(
            conn,
            now,
            actor,
            verb,
            playbook.name,
            {"version": number, "mode": mode, "file": file, "notice": notice},
            object_type="playbook",
        )
    ctx.catalog.invalidate()
    log.info("playbook %s is now version %d (%s)", playbook.name, number, mode)
    if notice:
        log.warning("playbook %s: %s", playbook.name, notice)
    for warning in warnings:
        log.warning("playbook %s: %s", playbook.name, warning)
    return Applied(playbook.name, number, mode, changed=True, notice=notice, warnings=warnings)


def apply_directory(ctx: Context, directory: Path, *, actor: str) -> list[Applied]:
    """Apply every `*.yaml`/`*.yml` file in `directory`; a bad file is reported, not fatal."""
    applied: list[Applied] = []
    if not directory.is_dir():
        return applied
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            applied.append(apply_playbook(ctx, path.read_text(), str(path), actor=actor))
        except PlaybookInvalid as exc:
            log.error("playbook %s was not applied:\n%s", path, exc)
    return applied


def channel_warnings(ctx: Context, name: str) -> list[str]:
    active = ctx.catalog.active().get(name)
    if active is None:
        return []
    return playbook_warnings(ctx.settings, dict(active.compiled.playbook.options))


def list_playbooks(ctx: Context) -> list[PlaybookSummary]:
    found: list[PlaybookSummary] = []
    for p in ctx.catalog.active().values():
        schedule = schedules.schedule_of(ctx, p)
        upcoming = schedule.upcoming(ctx.clock(), 1) if schedule is not None else []
        found.append(
            {
                "name": p.name,
                "mode": p.mode,
                "version": p.version,
                "description": p.compiled.playbook.description,
                "subject": p.compiled.playbook.subject,
                "trigger": list(p.compiled.playbook.trigger.starts),
                "trigger_words": describe_trigger(p.compiled.playbook.trigger, schedule),
                "next_run": upcoming[0].isoformat() if upcoming else None,
                "options": list(p.compiled.playbook.options),
            }
        )
    return found


def trigger_words(ctx: Context, playbook: Playbook) -> str:
    """What starts `playbook`, in words (a playbook not stored yet: a template, a draft)."""
    trigger = playbook.trigger
    return describe_trigger(trigger, schedules.trigger_schedule(ctx, trigger))


def describe_trigger(trigger: Trigger, schedule: Schedule | None) -> str:
    if schedule is not None:
        return schedule.describe()
    if trigger.is_absence and trigger.within is not None:
        return (
            f"{in_words(trigger.within)} after {' or '.join(trigger.after)} "
            f"unless {' or '.join(trigger.unless)}"
        )
    return ", ".join(trigger.events)


def get_playbook(ctx: Context, name: str) -> PlaybookDetail:
    with ctx.db.read() as conn:
        record = playbook_store.get_playbook(conn, name)
        if record is None:
            raise NotFound(f"no playbook named {name!r}")
        versions = playbook_store.list_versions(conn, record["id"])
        recent = playbook_runs.recent(conn, record["id"], limit=10)
    active = next((v for v in versions if v["id"] == record["active_version_id"]), None)
    return {
        "name": name,
        "mode": record["mode"],
        "version": active["version"] if active else None,
        "source": active["source"] if active else None,
        "versions": [
            {
                "version": v["version"],
                "created_at": v["created_at"],
                "created_by": v["created_by"],
                "file": v["file"],
            }
            for v in versions
        ],
        "schedule": _schedule(ctx, name, recent),
    }


def _schedule(ctx: Context, name: str, recent: list[dict[str, Any]]) -> ScheduleView | None:
    playbook = ctx.catalog.active().get(name)
    if playbook is None:
        return None
    found = schedules.schedule_of(ctx, playbook)
    if found is None:
        return None
    return {
        "description": found.describe(),
        "timezone": "UTC" if found.every is not None else found.zone.key,
        "next_runs": [due.isoformat() for due in found.upcoming(ctx.clock(), 5)],
        "last_runs": [
            {
                "due_at": run["due_at"].isoformat(),
                "status": run["status"],
                "subjects": run["subjects"],
                "selected": run["selected"],
                "decided": run["decided"],
            }
            for run in recent
        ],
    }


def get_playbook_version(ctx: Context, name: str, version: int) -> PlaybookVersion:
    """One stored version of a playbook, with its source (to show it or compare two)."""
    with ctx.db.read() as conn:
        record = playbook_store.get_playbook(conn, name)
        if record is None:
            raise NotFound(f"no playbook named {name!r}")
        versions = playbook_store.list_versions(conn, record["id"])
    for row in versions:
        if row["version"] == version:
            return {
                "name": name,
                "version": row["version"],
                "source": row["source"],
                "created_at": row["created_at"],
                "created_by": row["created_by"],
                "file": row["file"],
                "active": row["id"] == record["active_version_id"],
            }
    known = ", ".join(str(row["version"]) for row in reversed(versions))
    raise NotFound(f"playbook {name!r} has no version {version} (versions: {known})")

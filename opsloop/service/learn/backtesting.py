"""Backtest: replay a playbook version over stored history, with no side effects.

A backtest only reads: it makes no decision, queues no action, sends nothing and changes no
trait or outcome. When asked to keep the report it writes two rows, in one transaction: the
report (the `backtests` table) and one `backtest.run` audit entry saying who ran it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from opsloop.core.backtest_reports import BacktestRun, SavedBacktest
from opsloop.core.durations import parse_duration
from opsloop.core.errors import FieldError, InvalidInput, NotFound
from opsloop.core.playbooks import content_hash, parse_playbook
from opsloop.core.times import TimeOutOfRange, event_time
from opsloop.learning import backtest as backtests
from opsloop.learning.backtest import Evidence, Progress, Version
from opsloop.learning.datasets import model_name
from opsloop.learning.replay_features import prepare
from opsloop.learning.text_dataset import text_model_name
from opsloop.reasoning.compiler import compile_playbook
from opsloop.service.context import Context
from opsloop.service.decide.playbooks import load_playbook
from opsloop.store import audit
from opsloop.store import backtests as backtest_store
from opsloop.store import model_registry as model_store
from opsloop.store import playbooks as playbook_store

log = logging.getLogger(__name__)

Bound = str | datetime | timedelta


def backtest(
    ctx: Context,
    *,
    playbook: str | None = None,
    version: int | None = None,
    source: str | None = None,
    file: str = "draft.yaml",
    since: Bound = "90d",
    until: Bound | None = None,
    actor: str,
    save: bool = True,
    progress: Progress | None = None,
) -> BacktestRun:
    """Replay a saved playbook (`playbook`, its active version or `version`) or a draft
    (`source`, validated like `opsloop playbook validate`) over [since, until] and return the
    report; with `save`, store it and give it an `id`."""
    started = time.perf_counter()
    now = ctx.clock()
    start = _moment(since, now, "since")
    end = _moment(until, now, "until") if until is not None else now
    if start >= end:
        raise InvalidInput.single("since", f"must be before until ({end.isoformat()})")
    if (playbook is None) == (source is None):
        raise InvalidInput.single(
            "playbook", "give `playbook` (a saved playbook's name) or `source` (YAML), not both"
        )
    draft: Version | None = None
    if source is not None:
        spec, compiled = load_playbook(source, file)
        draft = Version(compiled, "draft", None, content_hash(source))
        playbook = spec.name
    assert playbook is not None

    with ctx.db.read() as conn:
        record = playbook_store.get_playbook(conn, playbook)
        versions = playbook_store.list_versions(conn, record["id"]) if record else []
        active_id = record["active_version_id"] if record else None
        active = next((v for v in versions if v["id"] == active_id), None)
        if draft is None:
            if record is None:
                raise NotFound(f"no playbook named {playbook!r}")
            chosen = _pick(versions, version, active, playbook)
            draft = _version(chosen, f"version {chosen['version']}")
        baseline = _version(active, f"active version {active['version']}") if active else None
        wanted = [draft] if baseline is None else [draft, baseline]
        wanted = [
            _with_text_scorer(conn, _with_scorer(conn, one, playbook), playbook) for one in wanted
        ]
        draft = wanted[0]
        baseline = wanted[1] if len(wanted) > 1 else None
        query = backtests.history_query(wanted, since=start, until=end)

        def read(rows: int) -> None:
            if progress is not None:
                progress("reading", rows, None)

        frame = backtest_store.read_history(conn, query, progress=read)
        evidence = Evidence(
            reviews=backtest_store.reviewed_decisions(conn, record["id"], since=start, until=end)
            if record
            else {},
            stored=backtest_store.stored_decisions(conn, active["id"], since=start, until=end)
            if active
            else {},
        )
    read_at = time.perf_counter()
    history = prepare(frame)
    history.timezone = ctx.settings.timezone  # a schedule without its own zone runs in it
    del frame  # `history` holds a sorted copy: the unsorted one can go
    prepared_at = time.perf_counter()
    replayed = backtests.run(
        history,
        draft,
        active=baseline,
        evidence=evidence,
        since=start,
        until=end,
        progress=progress,
    )
    report: BacktestRun = {**replayed, "id": None}
    report["timings"] = {
        "read_seconds": round(read_at - started, 3),
        "prepare_seconds": round(prepared_at - read_at, 3),
        **replayed["timings"],
        "total_seconds": round(time.perf_counter() - started, 3),
    }
    if save:
        report["id"] = _save(ctx, report, draft, start, end, actor)
    log.info(
        "backtest of %s (%s): %d decisions, %s changed",
        playbook,
        draft.label,
        report["counts"]["decisions"],
        report["changes"]["changed"] if report["changes"] else "none",
        extra={"playbook": playbook, "backtest": report["id"]},
    )
    return report


def get_backtest(ctx: Context, backtest_id: int) -> SavedBacktest:
    with ctx.db.read() as conn:
        row = backtest_store.get_backtest(conn, backtest_id)
    if row is None:
        raise NotFound(f"no backtest {backtest_id}")
    return {
        **row["report"],
        "id": row["id"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
    }


def _moment(value: Bound, now: datetime, field: str) -> datetime:
    """`90d` (that long before now), an ISO 8601 date or time, a datetime or a timedelta."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, timedelta):
        return now - value
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            [
                FieldError(
                    field,
                    f"{value!r} is neither a duration back from now (90d, 12h, 2w) nor an "
                    "ISO 8601 date or time (2026-01-31, 2026-01-31T12:00:00Z)",
                )
            ]
        ) from None
    try:
        # A time without a zone is taken as UTC, and the range is the one events are kept in.
        return event_time(parsed)
    except TimeOutOfRange as exc:
        raise InvalidInput([FieldError(field, str(exc))]) from None


def _pick(
    versions: list[dict[str, Any]],
    number: int | None,
    active: dict[str, Any] | None,
    name: str,
) -> dict[str, Any]:
    if number is None:
        if active is None:
            raise NotFound(f"playbook {name!r} has no active version")
        return active
    for row in versions:
        if row["version"] == number:
            return row
    known = ", ".join(str(row["version"]) for row in reversed(versions))
    raise InvalidInput.single("version", f"{name!r} has no version {number} (versions: {known})")


def _with_scorer(conn: Connection, version: Version, playbook: str) -> Version:
    """Give a version with a `model:` block the current champion's probabilities, loaded
    read-only: a file that fails its checks is left for the live loop to retire and retrain,
    and the replay uses the block's fallback, as live decisions do meanwhile."""
    spec = version.compiled.playbook.model
    if spec is None:
        return version
    stored = model_store.get_champion(conn, model_name(playbook, spec), with_artifact=True)
    if stored is None or tuple(stored["features"]) != spec.features:
        return version
    from opsloop.learning import predictors  # scikit-learn loads only when a model is used
    from opsloop.learning.artifacts import ModelArtifactError

    try:
        model = predictors.load_model(stored["artifact"], stored)
    except ModelArtifactError as exc:
        log.warning("backtest of %s: model v%d not used: %s", playbook, stored["version"], exc)
        return version
    return replace(version, scorer=lambda rows: predictors.probabilities_of(model, rows))


def _with_text_scorer(conn: Connection, version: Version, playbook: str) -> Version:
    """Give a version with a trained text classifier the current champion, read-only."""
    text = version.compiled.playbook.text
    if text is None or text.classify is None or text.classify.using != "model":
        return version
    name = text_model_name(playbook, text.classify.output)
    stored = model_store.get_champion(conn, name, with_artifact=True)
    if stored is None:
        return version
    from opsloop.learning import predictors
    from opsloop.learning.artifacts import ModelArtifactError
    from opsloop.learning.text import predict_top_k

    try:
        model = predictors.load_text_model(stored["artifact"], stored)
    except ModelArtifactError as exc:
        log.warning("backtest of %s: text model v%d not used: %s", playbook, stored["version"], exc)
        return version

    def classify(texts: list[str]) -> list[tuple[str, float]]:
        return [
            (top[0].label, round(top[0].probability, 4)) for top in predict_top_k(model, texts, k=1)
        ]

    return replace(version, text_scorer=classify)


def _version(row: dict[str, Any], label: str) -> Version:
    # Saved versions passed full validation when they were applied.
    playbook, document = parse_playbook(row["source"], row["file"])
    return Version(compile_playbook(playbook, document), label, row["version"], row["content_hash"])


def _save(
    ctx: Context,
    report: BacktestRun,
    version: Version,
    since: datetime,
    until: datetime,
    actor: str,
) -> int:
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        backtest_id = backtest_store.insert_backtest(
            tx.conn,
            playbook=report["playbook"],
            content_hash=version.content_hash,
            since=since,
            until=until,
            report=report,
            created_by=actor,
            now=now,
        )
        audit.record(
            tx.conn,
            now,
            actor,
            "backtest.run",
            backtest_id,
            {
                "playbook": report["playbook"],
                "version": version.label,
                "decisions": report["counts"]["decisions"],
                "changed": report["changes"]["changed"] if report["changes"] else None,
            },
        )
    return backtest_id

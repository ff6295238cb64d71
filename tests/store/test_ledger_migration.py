"""A ledger written before the hash chain existed, upgraded on SQLite and PostgreSQL: its
decisions read exactly as before in their compact form, and the migration seals what it found,
so `verify` passes and a later change to those old rows is named."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from opsloop.service import OpsLoop
from opsloop.store.database import Database, alembic_config
from opsloop.store.types import UtcDateTime
from tests.conftest import LEAD_PLAYBOOK, PG_URL, OpsFactory

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


@pytest.fixture(params=["sqlite", "postgres"])
def old_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, not migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    request.getfixturevalue("pg_template")  # skips (or fails in CI) without PostgreSQL
    name = f"opsloop_old_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def table(name: str, *columns: sa.ColumnClause) -> sa.TableClause:  # type: ignore[type-arg]
    return sa.table(name, *columns)


EXPLANATION = {
    "playbook": {"name": "lead-qualification", "version": 1},
    "features": {"company_size": 40, "visits_7d": 6},
    "scorecard": [{"label": "Engaged this week", "matched": True, "points": 25}],
    "points": 25,
    "choice": "nurture",
    "reasons": "Engaged this week +25",
    "why": "Nurture by email — score 25 (no rule matched, so the default): Engaged this week +25",
}
INPUTS = {"features": {"company_size": 40, "visits_7d": 6}, "entity": {"email": "a@x.co"}}


def write_old_ledger(db: Database) -> None:
    """Rows as the code before revision 0008 wrote them; audit ids with a gap, as a rolled
    back transaction leaves on PostgreSQL."""
    t = UtcDateTime()
    with db.engine.begin() as conn:
        conn.execute(
            sa.insert(
                table(
                    "playbooks",
                    sa.column("id"),
                    sa.column("name"),
                    sa.column("mode"),
                    sa.column("active_version_id"),
                    sa.column("created_at", t),
                    sa.column("updated_at", t),
                )
            ),
            {
                "id": 1,
                "name": "lead-qualification",
                "mode": "recommend",
                "active_version_id": 1,
                "created_at": AT,
                "updated_at": AT,
            },
        )
        conn.execute(
            sa.insert(
                table(
                    "playbook_versions",
                    sa.column("id"),
                    sa.column("playbook_id"),
                    sa.column("version"),
                    sa.column("content_hash"),
                    sa.column("source"),
                    sa.column("file"),
                    sa.column("created_at", t),
                    sa.column("created_by"),
                )
            ),
            {
                "id": 1,
                "playbook_id": 1,
                "version": 1,
                "content_hash": "0" * 64,
                "source": LEAD_PLAYBOOK.read_text(),
                "file": "lead-qualification.yaml",
                "created_at": AT,
                "created_by": "ana",
            },
        )
        conn.execute(
            sa.insert(
                table(
                    "events",
                    sa.column("id"),
                    sa.column("source"),
                    sa.column("type"),
                    sa.column("subject"),
                    sa.column("occurred_at", t),
                    sa.column("received_at", t),
                    sa.column("payload", JSON),
                )
            ),
            [
                {
                    "id": n,
                    "source": "api",
                    "type": "lead.created",
                    "subject": f"lead:{n}",
                    "occurred_at": AT,
                    "received_at": AT,
                    "payload": {},
                }
                for n in (1, 2)
            ],
        )
        conn.execute(
            sa.insert(
                table(
                    "decisions",
                    sa.column("id"),
                    sa.column("playbook_id"),
                    sa.column("playbook_version_id"),
                    sa.column("subject"),
                    sa.column("event_id"),
                    sa.column("mode"),
                    sa.column("status"),
                    sa.column("choice"),
                    sa.column("final_choice"),
                    sa.column("score"),
                    sa.column("needs_approval"),
                    sa.column("why"),
                    sa.column("inputs", JSON),
                    sa.column("explanation", JSON),
                    sa.column("created_at", t),
                    sa.column("decided_at", t),
                    sa.column("sampled"),
                )
            ),
            [
                {
                    "id": n,
                    "playbook_id": 1,
                    "playbook_version_id": 1,
                    "subject": f"lead:{n}",
                    "event_id": n,
                    "mode": "recommend",
                    "status": "approved" if n == 1 else "pending",
                    "choice": "nurture",
                    "final_choice": "nurture" if n == 1 else None,
                    "score": 25.0,
                    "needs_approval": False,
                    "why": EXPLANATION["why"],
                    "inputs": INPUTS,
                    "explanation": EXPLANATION,
                    "created_at": AT,
                    "decided_at": AT if n == 1 else None,
                    "sampled": False,
                }
                for n in (1, 2)
            ],
        )
        conn.execute(
            sa.text(
                "INSERT INTO reviews (id, decision_id, verdict, reviewer, created_at) "
                "VALUES (1, 1, 'approve', 'ana', :at)"
            ),
            {"at": t.process_bind_param(AT, conn.dialect)},
        )
        conn.execute(
            sa.insert(
                table(
                    "actions",
                    sa.column("id"),
                    sa.column("decision_id"),
                    sa.column("position"),
                    sa.column("kind"),
                    sa.column("request", JSON),
                    sa.column("guarded"),
                    sa.column("status"),
                    sa.column("attempts"),
                    sa.column("idempotency_key"),
                    sa.column("created_at", t),
                    sa.column("updated_at", t),
                )
            ),
            {
                "id": 1,
                "decision_id": 1,
                "position": 0,
                "kind": "email",
                "request": {"to": "a@x.co", "subject": "Ideas"},
                "guarded": False,
                "status": "pending",
                "attempts": 0,
                "idempotency_key": "key-1",
                "created_at": AT,
                "updated_at": AT,
            },
        )
        audit_rows = [
            (1, "decision.pending", "1", {"score": 25}),
            (2, "decision.pending", "2", {"score": 25}),
            (4, "decision.approved", "1", {"choice": "nurture"}),
        ]
        conn.execute(
            sa.insert(
                table(
                    "audit",
                    sa.column("id"),
                    sa.column("at", t),
                    sa.column("actor"),
                    sa.column("verb"),
                    sa.column("object_type"),
                    sa.column("object_id"),
                    sa.column("detail", JSON),
                )
            ),
            [
                {
                    "id": row_id,
                    "at": AT,
                    "actor": "ana",
                    "verb": verb,
                    "object_type": "decision",
                    "object_id": object_id,
                    "detail": detail,
                }
                for row_id, verb, object_id, detail in audit_rows
            ],
        )


def migrate_to(db: Database, revision: str) -> None:
    with db.engine.connect() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()


def test_an_old_ledger_reads_the_same_and_is_sealed_by_the_migration(
    old_url: str, make_ops: OpsFactory
) -> None:
    db = Database(old_url)
    migrate_to(db, "0007")
    write_old_ledger(db)

    db.migrate()
    db.dispose()
    ops: OpsLoop = make_ops(old_url)

    first = ops.decide.decision_detail(1)
    assert first["explanation"] == EXPLANATION
    assert first["inputs"] == INPUTS
    assert first["why"] == EXPLANATION["why"]
    assert [row["verb"] for row in first["audit"]] == ["decision.pending", "decision.approved"]
    assert ops.decide.list_decisions(status="pending")[0]["reasons"] == "Engaged this week +25"
    result = ops.verify_ledger()
    assert result.intact, result.problem
    assert (result.decisions, result.actions) == (2, 1)
    # Rows 1, 2, 4 as they were; the action had no audit row, so it got one; then the seal.
    with ops.db.read() as conn:
        rows = conn.execute(sa.text("SELECT id, verb FROM audit ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [
        (1, "decision.pending"),
        (2, "decision.pending"),
        (4, "decision.approved"),
        (5, "action.sealed"),
        (6, "ledger.sealed"),
    ]

    # From now on the old rows are protected like new ones.
    with ops.db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE decisions SET choice = 'hot' WHERE id = 2"))
    assert ops.verify_ledger().problem == "decision 2 was altered after audit row 2"

"""The tamper-evident, bounded ledger: the audit hash chain, and decisions stored compactly.

* `decisions.why`, `inputs` and `explanation` become one deflated blob, `decisions.detail`,
  against a dictionary per playbook version (`decision_dictionaries`): see
  opsloop/store/explanations.py. Existing decisions are converted.
* `audit` gets `digest`, `prev_hash` and `hash`, and `ledger_head` holds the chain's end: see
  opsloop/store/ledger.py.
* The migration seals what exists: each decision's and action's content as it stands now is
  the digest on its latest audit row (a decision or action that has none gets a `*.sealed`
  row), every audit row is hashed into the chain in id order, and a `ledger.sealed` row closes
  it. The chain proves nothing about changes made before this upgrade.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import opsloop.store.types
from opsloop.store import explanations, ledger

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_PAGE = 500

decisions = sa.table(
    "decisions",
    sa.column("id", _ID),
    sa.column("playbook_id", _ID),
    sa.column("playbook_version_id", _ID),
    sa.column("subject", sa.String),
    sa.column("event_id", _ID),
    sa.column("mode", sa.String),
    sa.column("status", sa.String),
    sa.column("choice", sa.String),
    sa.column("final_choice", sa.String),
    sa.column("score", sa.Float),
    sa.column("needs_approval", sa.Boolean),
    sa.column("sampled", sa.Boolean),
    sa.column("created_at", opsloop.store.types.UtcDateTime()),
    sa.column("decided_at", opsloop.store.types.UtcDateTime()),
    sa.column("why", sa.Text),
    sa.column("inputs", _JSON),
    sa.column("explanation", _JSON),
    sa.column("detail", sa.LargeBinary),
)
dictionaries = sa.table(
    "decision_dictionaries",
    sa.column("playbook_version_id", _ID),
    sa.column("sample", sa.LargeBinary),
    sa.column("created_at", opsloop.store.types.UtcDateTime()),
)
reviews = sa.table(
    "reviews",
    sa.column("id", _ID),
    sa.column("decision_id", _ID),
    sa.column("verdict", sa.String),
    sa.column("option", sa.String),
    sa.column("reason", sa.Text),
    sa.column("reviewer", sa.String),
    sa.column("created_at", opsloop.store.types.UtcDateTime()),
    sa.column("draft", sa.Text),
)
actions = sa.table(
    "actions",
    sa.column("id", _ID),
    sa.column("decision_id", _ID),
    sa.column("position", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("request", _JSON),
    sa.column("guarded", sa.Boolean),
    sa.column("idempotency_key", sa.String),
    sa.column("status", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("result", _JSON),
)
audit = sa.table(
    "audit",
    sa.column("id", _ID),
    sa.column("at", opsloop.store.types.UtcDateTime()),
    sa.column("actor", sa.String),
    sa.column("verb", sa.String),
    sa.column("object_type", sa.String),
    sa.column("object_id", sa.String),
    sa.column("detail", _JSON),
    sa.column("digest", sa.LargeBinary),
    sa.column("prev_hash", sa.LargeBinary),
    sa.column("hash", sa.LargeBinary),
)
head = sa.table(
    "ledger_head",
    sa.column("id", sa.Integer),
    sa.column("last_id", _ID),
    sa.column("last_hash", sa.LargeBinary),
)


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def upgrade() -> None:
    now = datetime.now(UTC)
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", _ID, nullable=False),
        sa.Column("last_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_head")),
    )
    op.create_table(
        "decision_dictionaries",
        sa.Column("playbook_version_id", _ID, autoincrement=False, nullable=False),
        sa.Column("sample", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", opsloop.store.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["playbook_version_id"],
            ["playbook_versions.id"],
            name=op.f("fk_decision_dictionaries_playbook_version_id_playbook_versions"),
        ),
        sa.PrimaryKeyConstraint("playbook_version_id", name=op.f("pk_decision_dictionaries")),
    )

    # decisions: why + inputs + explanation → detail. SQLite alters in place (a batch copy of
    # `decisions` would have to drop a table other tables' foreign keys point at).
    _add_column("decisions", "detail", "BLOB", sa.LargeBinary(), nullable=False)
    _compact_decisions(now)
    _not_null("decisions", "detail")
    for column in ("why", "inputs", "explanation"):
        _drop_column("decisions", column)

    # audit: the hash chain, with the append-only triggers off while existing rows are sealed.
    _triggers(on=False)
    _add_column("audit", "digest", "BLOB", sa.LargeBinary(length=32), nullable=True)
    _add_column("audit", "prev_hash", "BLOB", sa.LargeBinary(length=32), nullable=False)
    _add_column("audit", "hash", "BLOB", sa.LargeBinary(length=32), nullable=False)
    _seal(now)
    _not_null("audit", "prev_hash")
    _not_null("audit", "hash")
    _triggers(on=True)


def downgrade() -> None:
    _triggers(on=False)
    for column in ("hash", "prev_hash", "digest"):
        _drop_column("audit", column)
    _triggers(on=True)

    _add_column("decisions", "why", "TEXT", sa.Text(), nullable=False)
    _add_column("decisions", "inputs", "JSON", _JSON, nullable=False)
    _add_column("decisions", "explanation", "JSON", _JSON, nullable=False)
    _expand_decisions()
    for column in ("why", "inputs", "explanation"):
        _not_null("decisions", column)
    _drop_column("decisions", "detail")
    op.drop_table("decision_dictionaries")
    op.drop_table("ledger_head")


# --- schema steps that differ by backend ---------------------------------------------------------


def _add_column(table: str, name: str, sqlite_type: str, type_: Any, *, nullable: bool) -> None:
    if _sqlite():
        # SQLite adds a NOT NULL column only with a default; every row is filled just after.
        default = {"BLOB": "x''", "TEXT": "''", "JSON": "'{}'"}[sqlite_type]
        constraint = f" NOT NULL DEFAULT {default}" if not nullable else ""
        op.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sqlite_type}{constraint}")
    else:
        op.add_column(table, sa.Column(name, type_, nullable=True))


def _not_null(table: str, name: str) -> None:
    if not _sqlite():
        op.alter_column(table, name, nullable=False)


def _drop_column(table: str, name: str) -> None:
    if _sqlite():
        op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
    else:
        op.drop_column(table, name)


def _triggers(*, on: bool) -> None:
    """The append-only triggers made by 0001, off while this migration rewrites audit rows."""
    if not _sqlite():
        op.execute(f"ALTER TABLE audit {'ENABLE' if on else 'DISABLE'} TRIGGER audit_append_only")
        return
    for verb in ("UPDATE", "DELETE"):
        if on:
            op.execute(
                f"CREATE TRIGGER audit_no_{verb.lower()} BEFORE {verb} ON audit "
                "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
            )
        else:
            op.execute(f"DROP TRIGGER IF EXISTS audit_no_{verb.lower()}")


# --- data -------------------------------------------------------------------------------------------


def _compact_decisions(now: datetime) -> None:
    bind = op.get_bind()
    compressors: dict[int, explanations.Compressor] = {}
    query = sa.select(
        decisions.c.id,
        decisions.c.playbook_version_id,
        decisions.c.why,
        decisions.c.inputs,
        decisions.c.explanation,
    ).order_by(decisions.c.id)
    store = (
        sa.update(decisions)
        .where(decisions.c.id == sa.bindparam("b_id"))
        .values(detail=sa.bindparam("b_detail"))
    )
    after = 0
    while rows := bind.execute(query.where(decisions.c.id > after).limit(_PAGE)).all():
        changes = []
        for row in rows:
            explanation = dict(row.explanation or {})
            if row.why and explanation.get("why") != row.why:
                explanation["why"] = row.why
            plain = explanations.document(row.inputs or {}, explanation)
            version = int(row.playbook_version_id)
            if version not in compressors:
                bind.execute(
                    sa.insert(dictionaries),
                    {"playbook_version_id": version, "sample": plain, "created_at": now},
                )
                compressors[version] = explanations.Compressor(plain)
            changes.append({"b_id": row.id, "b_detail": compressors[version].compress(plain)})
        bind.execute(store, changes)
        after = rows[-1].id


def _expand_decisions() -> None:
    bind = op.get_bind()
    samples = {
        int(v): bytes(s)
        for v, s in bind.execute(
            sa.select(dictionaries.c.playbook_version_id, dictionaries.c.sample)
        )
    }
    query = sa.select(decisions.c.id, decisions.c.playbook_version_id, decisions.c.detail).order_by(
        decisions.c.id
    )
    store = (
        sa.update(decisions)
        .where(decisions.c.id == sa.bindparam("b_id"))
        .values(
            why=sa.bindparam("b_why"),
            inputs=sa.bindparam("b_inputs"),
            explanation=sa.bindparam("b_explanation"),
        )
    )
    after = 0
    while rows := bind.execute(query.where(decisions.c.id > after).limit(_PAGE)).all():
        changes = []
        for row in rows:
            plain = explanations.inflate(bytes(row.detail), samples[int(row.playbook_version_id)])
            inputs, explanation = explanations.parse(plain)
            changes.append(
                {
                    "b_id": row.id,
                    "b_why": explanation.get("why", ""),
                    "b_inputs": inputs,
                    "b_explanation": explanation,
                }
            )
        bind.execute(store, changes)
        after = rows[-1].id


def _seal(now: datetime) -> None:
    bind = op.get_bind()
    next_id = int(
        bind.execute(sa.select(sa.func.coalesce(sa.func.max(audit.c.id), 0))).scalar_one()
    )
    extra: list[dict[str, Any]] = []
    counts = {"decisions": 0, "actions": 0}
    samples = {
        int(v): bytes(s)
        for v, s in bind.execute(
            sa.select(dictionaries.c.playbook_version_id, dictionaries.c.sample)
        )
    }

    def attach(kind: str, digests: dict[int, bytes]) -> None:
        """Put each digest on the object's latest audit row, or on a new `<kind>.sealed` row."""
        nonlocal next_id
        if not digests:
            return
        latest = dict(
            bind.execute(
                sa.select(audit.c.object_id, sa.func.max(audit.c.id))
                .where(
                    audit.c.object_type == kind,
                    audit.c.object_id.in_([str(key) for key in digests]),
                )
                .group_by(audit.c.object_id)
            ).all()
        )
        updates = []
        for key, digest in digests.items():
            row_id = latest.get(str(key))
            if row_id is None:
                next_id += 1
                extra.append(
                    {
                        "id": next_id,
                        "at": now,
                        "actor": "opsloop migrate",
                        "verb": f"{kind}.sealed",
                        "object_type": kind,
                        "object_id": str(key),
                        "detail": {},
                        "digest": digest,
                    }
                )
            else:
                updates.append({"b_id": row_id, "b_digest": digest})
        if updates:
            bind.execute(
                sa.update(audit)
                .where(audit.c.id == sa.bindparam("b_id"))
                .values(digest=sa.bindparam("b_digest")),
                updates,
            )
        counts[f"{kind}s"] += len(digests)

    decision_query = sa.select(
        decisions.c.id,
        decisions.c.playbook_id,
        decisions.c.playbook_version_id,
        decisions.c.subject,
        decisions.c.event_id,
        decisions.c.mode,
        decisions.c.status,
        decisions.c.choice,
        decisions.c.final_choice,
        decisions.c.score,
        decisions.c.needs_approval,
        decisions.c.sampled,
        decisions.c.created_at,
        decisions.c.decided_at,
        decisions.c.detail,
    ).order_by(decisions.c.id)
    after = 0
    while rows := bind.execute(decision_query.where(decisions.c.id > after).limit(_PAGE)).all():
        ids = [row.id for row in rows]
        by_decision: dict[int, list[Any]] = {}
        for review in bind.execute(
            sa.select(reviews)
            .where(reviews.c.decision_id.in_(ids))
            .order_by(reviews.c.decision_id, reviews.c.id)
        ):
            by_decision.setdefault(review.decision_id, []).append(review._mapping)
        digests = {}
        for row in rows:
            plain = explanations.inflate(bytes(row.detail), samples[int(row.playbook_version_id)])
            digests[row.id] = ledger.decision_digest(
                row._mapping, plain, by_decision.get(row.id, [])
            )
        attach("decision", digests)
        after = rows[-1].id

    action_query = sa.select(actions).order_by(actions.c.id)
    after = 0
    while found := bind.execute(action_query.where(actions.c.id > after).limit(_PAGE)).all():
        attach("action", {row.id: ledger.action_digest(row._mapping) for row in found})
        after = found[-1].id

    if extra:
        bind.execute(sa.insert(audit), extra)
    sealed = int(bind.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one())
    if sealed:  # a fresh install has nothing to seal
        next_id += 1
        bind.execute(
            sa.insert(audit),
            {
                "id": next_id,
                "at": now,
                "actor": "opsloop migrate",
                "verb": "ledger.sealed",
                "object_type": "ledger",
                "object_id": revision,
                "detail": {**counts, "audit_rows": sealed},
                "digest": None,
            },
        )

    # Hash every row into the chain, in id order.
    prev = ledger.GENESIS
    query = sa.select(
        audit.c.id,
        audit.c.at,
        audit.c.actor,
        audit.c.verb,
        audit.c.object_type,
        audit.c.object_id,
        audit.c.detail,
        audit.c.digest,
    ).order_by(audit.c.id)
    store = (
        sa.update(audit)
        .where(audit.c.id == sa.bindparam("b_id"))
        .values(prev_hash=sa.bindparam("b_prev"), hash=sa.bindparam("b_hash"))
    )
    after, last = 0, 0
    while chained := bind.execute(query.where(audit.c.id > after).limit(5 * _PAGE)).all():
        changes = []
        for link in chained:
            entry = {**link._mapping, "prev_hash": prev}
            digest = entry["digest"]
            entry["digest"] = bytes(digest) if digest is not None else None
            current = ledger.row_hash(entry)
            changes.append({"b_id": link.id, "b_prev": prev, "b_hash": current})
            prev, last = current, link.id
        bind.execute(store, changes)
        after = chained[-1].id
    bind.execute(sa.insert(head), {"id": 1, "last_id": last, "last_hash": prev})

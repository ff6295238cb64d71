"""Trait provenance: which entity traits a trusted source set.

`entities.trusted_traits` maps a trait to the trusted source (an API token, a signed webhook,
a pulled source, an import) that set it. Public sources (a tracking write key, an
`allow_unsigned` webhook) may not change the protected ones (docs/sources.md). Who set the
traits of profiles merged before this revision is not known, so each of them counts as set
by a trusted source (`(earlier)`): the safe side, since a public sender could otherwise
change where an existing customer's messages go.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

EARLIER = "(earlier)"
_CHUNK = 1000


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    with op.batch_alter_table("entities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trusted_traits", json, nullable=True))

    entities = sa.table(
        "entities",
        sa.column("subject", sa.String()),
        sa.column("traits", json),
        sa.column("trusted_traits", json),
    )
    conn = op.get_bind()
    after = ""
    while True:
        # Keyset pages: a large ledger is not read into memory at once.
        rows = conn.execute(
            sa.select(entities.c.subject, entities.c.traits)
            .where(entities.c.subject > after)
            .order_by(entities.c.subject)
            .limit(_CHUNK)
        ).all()
        if not rows:
            break
        updates = [
            {"key": subject, "trusted": dict.fromkeys(traits, EARLIER)}
            for subject, traits in rows
            if traits
        ]
        if updates:
            conn.execute(
                entities.update()
                .where(entities.c.subject == sa.bindparam("key"))
                .values(trusted_traits=sa.bindparam("trusted")),
                updates,
            )
        after = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("entities", schema=None) as batch_op:
        batch_op.drop_column("trusted_traits")

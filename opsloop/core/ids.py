"""The ids the ledger gives out: 1 to 2**63-1, what a 64-bit id column holds.

A number outside that range names nothing stored; asking the database for it fails in the
driver (PostgreSQL's bigint overflows, SQLite cannot bind it), so the edges check it first:
the JSON API answers 422 naming the parameter (opsloop/web/ids.py), pages their 404 page,
the CLI a usage error naming the argument.
"""

from __future__ import annotations

FIRST_ID = 1
LAST_ID = 2**63 - 1


def is_id(value: int) -> bool:
    """Can `value` be the id of something stored?"""
    return FIRST_ID <= value <= LAST_ID

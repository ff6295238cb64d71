"""Ids in paths and queries, bounded to what the ledger's id columns hold (opsloop/core/ids.py).

`DbId` (an id in the path) and `BeforeId` (the `before_id` of a listing) make FastAPI answer
422 naming the parameter for `9223372036854775808`, 0 or -1 instead of a 500 from the database
driver, and put the bounds in the OpenAPI schema. Pages answer their own 404 page instead of
the API's 422: they take a plain `int` and pass it through `page_id`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from opsloop.core.errors import NotFound
from opsloop.core.ids import FIRST_ID, LAST_ID, is_id

DbId = Annotated[int, Path(ge=FIRST_ID, le=LAST_ID, description="An id OpsLoop gave out.")]
BeforeId = Annotated[
    int | None,
    Query(
        ge=FIRST_ID,
        le=LAST_ID,
        description="Page: only those older than this id (the previous page's `next_before_id`).",
    ),
]


def page_id(value: int, what: str) -> int:
    """`value`, or NotFound (`no action 9223372036854775808`) when it cannot be a stored id: a
    page shows its not-found answer, as for any id nothing has."""
    if not is_id(value):
        raise NotFound(f"no {what} {value}")
    return value

"""Route dependencies."""

from __future__ import annotations

from fastapi import Request

from opsloop.service import OpsLoop


async def ops(request: Request) -> OpsLoop:
    # async, so FastAPI does not hop to a worker thread to run it on every request
    return request.app.state.ops  # type: ignore[no-any-return]

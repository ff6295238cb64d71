"""JSON responses rendered with orjson: fast, and datetimes come out as ISO 8601."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")

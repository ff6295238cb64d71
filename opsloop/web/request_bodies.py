"""Reading request bodies with a size limit, without holding an oversized body in memory."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from opsloop.core.errors import FieldError, InvalidInput
from opsloop.core.events import join_path
from opsloop.core.quarantine import KEEP_BYTES

M = TypeVar("M", bound=BaseModel)


class Oversized(Exception):
    def __init__(self, head: bytes, size: int | None) -> None:
        self.head = head
        self.size = size


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or Oversized carrying its first bytes once it passes `limit`."""
    declared = request.headers.get("content-length")
    size = int(declared) if declared and declared.isdigit() else None
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit or (size is not None and size > limit):
            head = b"".join(chunks)[:KEEP_BYTES]
            if len(head) < KEEP_BYTES:
                head += chunk[: KEEP_BYTES - len(head)]
            raise Oversized(head, size)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, model: type[M], *, optional: bool = False) -> M:
    """Parse a JSON command body whatever content-type the client sent (`curl -d` sends a form
    type), naming each bad field in the error."""
    raw = await request.body()
    if not raw.strip():
        if optional:
            return model()
        raise InvalidInput.single("body", "is empty; send a JSON object")
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput.single("body", f"malformed JSON: {exc.msg}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(join_path("", tuple(e["loc"])) or "body", e["msg"])
            for e in exc.errors(include_url=False)
        ]
        raise InvalidInput(errors) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI description of a body read with `json_body`."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }

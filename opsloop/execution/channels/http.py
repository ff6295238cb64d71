"""Shared HTTP POST with the retry classification webhooks and chat notifications use."""

from __future__ import annotations

from typing import Any

import httpx

from opsloop.core.errors import DeliveryError

# Statuses where a later attempt can succeed; any other 4xx means the request itself is wrong.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})


def post(client: httpx.Client, url: str, content: bytes, headers: dict[str, str]) -> dict[str, Any]:
    try:
        response = client.post(url, content=content, headers=headers)
    except httpx.TimeoutException:
        raise DeliveryError(f"timed out posting to {_safe(url)}", retryable=True) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"cannot reach {_safe(url)}: {exc}", retryable=True) from None
    if response.is_success:
        return {"status": response.status_code, "response": response.text[:500]}
    retryable = response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES
    raise DeliveryError(
        f"{_safe(url)} answered {response.status_code}: {response.text[:200]}",
        retryable=retryable,
    )


def _safe(url: str) -> str:
    """The URL without its path: incoming-webhook URLs carry their secret in the path."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}{':' + str(parsed.port) if parsed.port else ''}"

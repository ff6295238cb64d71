"""Channels deliver one rendered action to the outside world. Each raises DeliveryError with
`retryable` set to say whether trying again can help, and returns a short receipt for the log.
"""

from __future__ import annotations

from typing import Any, Protocol


class Channel(Protocol):
    def send(self, request: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """Deliver `request`; return a receipt (status code, message id …) for the attempt log."""

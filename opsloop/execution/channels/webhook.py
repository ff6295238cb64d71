"""Outbound webhooks signed with the Standard Webhooks scheme (`webhook-id`,
`webhook-timestamp`, `webhook-signature`). The id is the action's idempotency key, the same on
every attempt, so the receiver can drop repeats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from standardwebhooks import Webhook

from opsloop.core.errors import DeliveryError
from opsloop.execution.channels.http import post
from opsloop.settings import Settings


class WebhookChannel:
    def __init__(self, settings: Settings, client: httpx.Client) -> None:
        self.settings = settings
        self.client = client

    def send(self, request: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        url, secret = self._target(request)
        now = datetime.now(UTC)
        body = orjson.dumps(
            {
                "type": request.get("type", "opsloop.action"),
                "timestamp": now.isoformat(),
                "data": request.get("data"),
            }
        ).decode()
        try:
            signature = Webhook(secret).sign(idempotency_key, now, body)
        except Exception as exc:  # a malformed secret: configuration, not the network
            raise DeliveryError(
                f"cannot sign the webhook: the secret is not valid base64 ({exc})", retryable=False
            ) from None
        headers = {
            "content-type": "application/json",
            "webhook-id": idempotency_key,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
            "idempotency-key": idempotency_key,
            "user-agent": "OpsLoop",
        }
        return post(self.client, url, body.encode(), headers)

    def _target(self, request: dict[str, Any]) -> tuple[str, str]:
        name = request.get("endpoint")
        secret = self.settings.webhook_secret
        if name:
            endpoint = self.settings.webhook_endpoints.get(name)
            if endpoint is None:
                known = ", ".join(self.settings.webhook_endpoints) or "none configured"
                raise DeliveryError(
                    f"no webhook endpoint named {name!r} (known: {known})", retryable=False
                )
            url = endpoint.url
            secret = endpoint.secret or secret
        else:
            url = request.get("url") or ""
        if not url:
            raise DeliveryError("webhook has no URL: give `url` or `endpoint`", retryable=False)
        if secret is None:
            raise DeliveryError(
                "no signing secret: set OPSLOOP_WEBHOOK_SECRET (whsec_...) or the endpoint's secret",
                retryable=False,
            )
        return url, secret.get_secret_value()

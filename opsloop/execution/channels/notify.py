"""Chat notifications as Slack-compatible incoming-webhook JSON (`{"text": ...}`), which Slack,
Mattermost, Rocket.Chat, Discord (`/slack` URLs) and Teams connectors accept."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from opsloop.core.errors import DeliveryError
from opsloop.execution.channels.http import post
from opsloop.settings import Settings


class NotifyChannel:
    def __init__(self, settings: Settings, client: httpx.Client) -> None:
        self.settings = settings
        self.client = client

    def send(self, request: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        url = request.get("url")
        channel = request.get("channel")
        if not url and channel:
            url = self.settings.notify_channels.get(channel)
            if not url:
                known = ", ".join(self.settings.notify_channels) or "none configured"
                raise DeliveryError(
                    f"no chat channel named {channel!r} (known: {known}); add it under Settings → "
                    "Webhooks and chat (or OPSLOOP_NOTIFY_CHANNELS)",
                    retryable=False,
                )
        url = url or self.settings.notify_url
        if not url:
            raise DeliveryError(
                "no chat webhook URL: set the default chat webhook under Settings → Webhooks "
                "and chat (or OPSLOOP_NOTIFY_URL)",
                retryable=False,
            )
        body = orjson.dumps({"text": request.get("text", "")})
        headers = {"content-type": "application/json", "idempotency-key": idempotency_key}
        return post(self.client, url, body, headers)

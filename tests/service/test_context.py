"""The context makes its channels and their HTTP client when the first delivery asks, so a
command that delivers nothing never pays for them; once made, every delivery shares them."""

from __future__ import annotations

import pytest

from opsloop.execution.channels.notify import NotifyChannel
from opsloop.execution.channels.webhook import WebhookChannel
from opsloop.service.context import SharedHttpClient
from tests.conftest import OpsFactory


def test_the_http_client_is_made_once_and_shared() -> None:
    shared = SharedHttpClient(timeout=5.0)
    client = shared.get()

    assert shared.get() is client
    assert client.timeout.read == 5.0
    shared.close()
    assert client.is_closed


def test_a_closed_http_client_is_not_made_again() -> None:
    shared = SharedHttpClient(timeout=5.0)
    shared.close()

    with pytest.raises(RuntimeError, match="closed"):
        shared.get()


def test_every_http_channel_uses_the_one_client(make_ops: OpsFactory, sqlite_url: str) -> None:
    ops = make_ops(sqlite_url)
    channels = ops.ctx.channels

    assert ops.ctx.channels is channels
    webhook, notify = channels["webhook"], channels["notify"]
    assert isinstance(webhook, WebhookChannel)
    assert isinstance(notify, NotifyChannel)
    assert webhook.client is notify.client is ops.ctx.http.get()
    assert all(channels[kind] is webhook for kind in ("refund", "payment", "discount", "delete"))

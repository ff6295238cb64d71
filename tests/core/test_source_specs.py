"""What a source definition says about who may send as it: `allow_unsigned` only where no
signature is checked, `verify: hmac` signing a timestamp by default, the content window that
keeps replayed webhook deliveries out, and which sources count as public."""

from __future__ import annotations

from datetime import timedelta

import pytest

from opsloop.core.errors import PlaybookInvalid
from opsloop.core.sources import SourceSpec, parse_source


def spec(text: str) -> SourceSpec:
    return parse_source(text, "source.yaml")[0]


def test_a_new_hmac_source_signs_a_timestamp_unless_it_says_body() -> None:
    stamped = spec("name: shop\nkind: webhook\nverify: hmac\n")
    assert (stamped.signed, stamped.timestamp_header) == ("timestamp", "X-OpsLoop-Timestamp")
    assert stamped.tolerance == timedelta(minutes=5)
    assert spec("name: gh\nkind: webhook\nverify: hmac\nsigned: body\n").signed == "body"
    assert "signed" not in stamped.written()  # the default is not written back


@pytest.mark.parametrize(
    "text",
    [
        "name: shop\nkind: webhook\nverify: hmac\nallow_unsigned: true\n",
        "name: site\nkind: segment\nallow_unsigned: true\n",
    ],
)
def test_allow_unsigned_is_refused_where_a_signature_or_key_is_checked(text: str) -> None:
    with pytest.raises(PlaybookInvalid, match="`allow_unsigned` is for webhook sources with"):
        spec(text)


def test_webhooks_keep_repeats_out_by_content_for_a_day_unless_told_otherwise() -> None:
    day = timedelta(hours=24)
    assert spec("name: a\nkind: webhook\n").content_window == day
    assert spec("name: b\nkind: webhook\nverify: stripe\n").content_window == day
    assert spec("name: c\nkind: webhook\nverify: standard\n").content_window is None
    assert spec("name: d\nkind: webhook\nverify: hmac\ndedupe_window: 10m\n").content_window == (
        timedelta(minutes=10)
    )
    off = spec("name: e\nkind: webhook\nverify: hmac\ndedupe_window: 0s\n")
    assert off.content_window is None
    assert off.written()["dedupe_window"] == "0s"
    assert spec("name: f\nkind: segment\n").content_window is None


def test_a_tracking_source_and_an_unsigned_webhook_are_public() -> None:
    assert spec("name: site\nkind: segment\n").public
    assert spec("name: form\nkind: webhook\nallow_unsigned: true\n").public
    assert not spec("name: closed\nkind: webhook\n").public
    assert not spec("name: shop\nkind: webhook\nverify: hmac\n").public

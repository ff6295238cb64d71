"""Webhook signatures, checked against what the senders' own libraries produce: Stripe's
`WebhookSignature.generate_signature_header` and `standardwebhooks.Webhook.sign`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook
from stripe import WebhookSignature

from opsloop.core.errors import Unauthorized
from opsloop.perception.signatures import (
    sign_hmac_timestamped,
    verify_hmac_sha256,
    verify_hmac_timestamped,
    verify_standard,
    verify_stripe,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOLERANCE = timedelta(minutes=5)
STRIPE_SECRET = "whsec_test_4eC39HqLyjWDarjtT1zdp7dc"
OTHER_STRIPE_SECRET = "whsec_test_rolled_over_9f8e7d6c5b4a"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"opsloop-test-secret-0123456789ab").decode()
BODY = json.dumps(
    {
        "id": "evt_1",
        "type": "checkout.session.completed",
        "data": {"object": {"amount_total": 4200}},
    }
).encode()


def stripe_header(body: bytes, secret: str, at: datetime = NOW) -> str:
    header: str = WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=int(at.timestamp())
    )
    return header


def check_stripe(header: str | None, body: bytes = BODY, secret: str = STRIPE_SECRET) -> None:
    verify_stripe(body, header, secret, tolerance=TOLERANCE, now=NOW)


def test_a_body_stripe_signed_is_accepted() -> None:
    check_stripe(stripe_header(BODY, STRIPE_SECRET))


def test_a_stripe_signature_made_a_little_earlier_is_accepted() -> None:
    check_stripe(stripe_header(BODY, STRIPE_SECRET, NOW - timedelta(minutes=4)))


def test_a_tampered_stripe_body_is_refused() -> None:
    header = stripe_header(BODY, STRIPE_SECRET)
    tampered = BODY.replace(b"4200", b"1")
    with pytest.raises(Unauthorized, match="no signature in Stripe-Signature matches"):
        check_stripe(header, tampered)


def test_a_stripe_signature_under_another_secret_is_refused() -> None:
    with pytest.raises(Unauthorized, match="no signature in Stripe-Signature matches"):
        check_stripe(stripe_header(BODY, OTHER_STRIPE_SECRET))


def test_an_old_stripe_delivery_is_refused_saying_by_how_much() -> None:
    header = stripe_header(BODY, STRIPE_SECRET, NOW - timedelta(minutes=12))
    with pytest.raises(Unauthorized) as caught:
        check_stripe(header)
    assert str(caught.value) == (
        "the timestamp in Stripe-Signature (2026-03-02T08:48:00Z) is 12m old, "
        "7m more than the 5m tolerance"
    )


def test_a_stripe_delivery_stamped_in_the_future_is_refused() -> None:
    header = stripe_header(BODY, STRIPE_SECRET, NOW + timedelta(hours=1))
    with pytest.raises(Unauthorized, match=r"1h ahead of this server's clock"):
        check_stripe(header)


def test_a_missing_stripe_header_is_named() -> None:
    with pytest.raises(Unauthorized, match="missing signature header Stripe-Signature"):
        check_stripe(None)
    with pytest.raises(Unauthorized, match="missing signature header Stripe-Signature"):
        check_stripe("  ")


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("v1=abc", "no t=<timestamp>"),
        ("t=soon,v1=abc", "t='soon' is not a unix time"),
        ("t=99999999999999999999,v1=abc", "is not a unix time"),
        ("t=1772441400", "no v1=<signature>"),
        ("t=1772441400,v0=abc", "no v1=<signature>"),
    ],
)
def test_a_malformed_stripe_header_says_what_is_wrong(header: str, problem: str) -> None:
    with pytest.raises(Unauthorized, match="malformed Stripe-Signature header") as caught:
        check_stripe(header)
    assert problem in str(caught.value)


def test_while_a_stripe_secret_is_rolled_any_v1_signature_may_match() -> None:
    old = stripe_header(BODY, OTHER_STRIPE_SECRET)
    new = stripe_header(BODY, STRIPE_SECRET)
    # Stripe sends one v1 per live secret, plus v0 in test mode.
    header = f"{old},v1={new.split('v1=')[1]},v0=deadbeef"
    check_stripe(header)
    check_stripe(header, secret=OTHER_STRIPE_SECRET)
    with pytest.raises(Unauthorized):
        check_stripe(header, secret="whsec_neither")


def standard_headers(
    body: bytes, secret: str, at: datetime = NOW, msg_id: str = "msg_1"
) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def check_standard(
    headers: dict[str, str], body: bytes = BODY, secret: str = STANDARD_SECRET
) -> str:
    return verify_standard(body, headers, secret, tolerance=TOLERANCE, now=NOW)


def test_a_standard_webhook_is_accepted_and_its_id_returned() -> None:
    assert check_standard(standard_headers(BODY, STANDARD_SECRET, msg_id="msg_2Yh")) == "msg_2Yh"


def test_standard_webhook_header_names_are_matched_in_any_case() -> None:
    headers = {k.title(): v for k, v in standard_headers(BODY, STANDARD_SECRET).items()}
    assert check_standard(headers) == "msg_1"


def test_a_tampered_standard_webhook_body_is_refused() -> None:
    headers = standard_headers(BODY, STANDARD_SECRET)
    with pytest.raises(Unauthorized, match="no signature in webhook-signature matches"):
        check_standard(headers, BODY + b" ")


def test_a_standard_webhook_id_cannot_be_swapped() -> None:
    headers = standard_headers(BODY, STANDARD_SECRET) | {"webhook-id": "msg_other"}
    with pytest.raises(Unauthorized, match="no signature in webhook-signature matches"):
        check_standard(headers)


def test_a_standard_webhook_under_another_secret_is_refused() -> None:
    other = base64.b64encode(b"someone-else-entirely-0123456789").decode()
    with pytest.raises(Unauthorized, match="no signature in webhook-signature matches"):
        check_standard(standard_headers(BODY, other))


def test_an_old_standard_webhook_is_refused_saying_by_how_much() -> None:
    headers = standard_headers(BODY, STANDARD_SECRET, NOW - timedelta(minutes=30))
    with pytest.raises(Unauthorized) as caught:
        check_standard(headers)
    assert str(caught.value) == (
        "the timestamp in webhook-timestamp (2026-03-02T08:30:00Z) is 30m old, "
        "25m more than the 5m tolerance"
    )


def test_the_tolerance_is_the_sources_not_the_librarys_five_minutes() -> None:
    headers = standard_headers(BODY, STANDARD_SECRET, NOW - timedelta(minutes=30))
    assert verify_standard(BODY, headers, STANDARD_SECRET, tolerance=timedelta(hours=1), now=NOW)


def test_missing_standard_webhook_headers_are_named() -> None:
    headers = standard_headers(BODY, STANDARD_SECRET)
    del headers["webhook-signature"]
    del headers["webhook-timestamp"]
    with pytest.raises(Unauthorized) as caught:
        check_standard(headers)
    assert str(caught.value) == "missing signature header webhook-timestamp, webhook-signature"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"webhook-timestamp": "yesterday"}, "malformed webhook-timestamp 'yesterday'"),
        ({"webhook-signature": "v2,abc"}, "no v1,<base64> signature"),
        ({"webhook-signature": "v1,not base64!"}, "no v1,<base64> signature"),
    ],
)
def test_malformed_standard_webhook_headers_say_what_is_wrong(
    change: dict[str, str], problem: str
) -> None:
    with pytest.raises(Unauthorized, match=problem):
        check_standard(standard_headers(BODY, STANDARD_SECRET) | change)


def test_while_a_standard_secret_is_rolled_any_v1_signature_may_match() -> None:
    old_secret = base64.b64encode(b"the-previous-secret-0123456789ab").decode()
    headers = standard_headers(BODY, STANDARD_SECRET)
    old = standard_headers(BODY, old_secret)["webhook-signature"]
    headers["webhook-signature"] = f"v1a,ignored {old} {headers['webhook-signature']}"
    assert check_standard(headers) == "msg_1"
    assert check_standard(headers, secret=old_secret) == "msg_1"


def test_a_secret_that_is_not_base64_is_reported_not_crashed_on() -> None:
    with pytest.raises(Unauthorized, match="not a Standard Webhooks secret"):
        check_standard(standard_headers(BODY, STANDARD_SECRET), secret="whsec_***")


# --- generic HMAC over the timestamp and body --------------------------------------------------


def stamped_headers(at: datetime = NOW, body: bytes = BODY, secret: str = "s3cret") -> dict:
    """`verify: hmac`'s default scheme is Stripe's construction, HMAC-SHA256 of `t.body`, in
    headers of its own: Stripe's library makes the signature."""
    header = WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=int(at.timestamp())
    )
    parts = dict(part.split("=", 1) for part in header.split(","))
    return {"x-opsloop-timestamp": parts["t"], "x-opsloop-signature": f"sha256={parts['v1']}"}


def check_stamped(headers: dict, body: bytes = BODY, secret: str = "s3cret") -> None:
    verify_hmac_timestamped(
        body,
        headers,
        secret,
        signature_header="X-OpsLoop-Signature",
        timestamp_header="X-OpsLoop-Timestamp",
        tolerance=TOLERANCE,
        now=NOW,
    )


def test_a_body_signed_with_its_timestamp_is_accepted_within_the_tolerance() -> None:
    check_stamped(stamped_headers())
    check_stamped(stamped_headers(NOW - timedelta(minutes=4, seconds=59)))
    assert sign_hmac_timestamped(BODY, "s3cret", int(NOW.timestamp())) == (
        stamped_headers()["x-opsloop-signature"].removeprefix("sha256=")
    )


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param(
            stamped_headers(NOW - timedelta(minutes=6)),
            "the timestamp in X-OpsLoop-Timestamp (2026-03-02T08:54:00Z) is 6m old, 1m more "
            "than the 5m tolerance",
            id="stale",
        ),
        pytest.param(
            stamped_headers(NOW + timedelta(minutes=6)),
            "the timestamp in X-OpsLoop-Timestamp (2026-03-02T09:06:00Z) is 6m ahead of this "
            "server's clock, more than the 5m tolerance",
            id="ahead",
        ),
        pytest.param(
            {**stamped_headers(), "x-opsloop-timestamp": str(int(NOW.timestamp()) + 1)},
            "signature in X-OpsLoop-Signature does not match X-OpsLoop-Timestamp and the body "
            "(sign the timestamp, a dot, then the exact body bytes)",
            id="timestamp-changed",
        ),
        pytest.param(
            {"x-opsloop-signature": stamped_headers()["x-opsloop-signature"]},
            "missing signature header X-OpsLoop-Timestamp",
            id="no-timestamp",
        ),
        pytest.param(
            {**stamped_headers(), "x-opsloop-timestamp": "2026-03-02T09:00:00Z"},
            "malformed X-OpsLoop-Timestamp '2026-03-02T09:00:00Z' is not a unix time in seconds",
            id="not-unix",
        ),
        pytest.param(
            {"x-opsloop-timestamp": "1", "x-opsloop-signature": "sha256=" + "0" * 64},
            "signature in X-OpsLoop-Signature does not match X-OpsLoop-Timestamp and the body "
            "(sign the timestamp, a dot, then the exact body bytes)",
            id="forged",
        ),
    ],
)
def test_a_stale_changed_or_incomplete_timestamped_signature_says_what_is_wrong(
    headers: dict, message: str
) -> None:
    with pytest.raises(Unauthorized) as refused:
        check_stamped(headers)
    assert str(refused.value) == message


def test_a_signature_over_the_body_alone_does_not_pass_as_a_timestamped_one() -> None:
    digest = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    verify_hmac_sha256(BODY, digest, "s3cret", "X-OpsLoop-Signature")  # the body-only scheme
    headers = {"x-opsloop-timestamp": str(int(NOW.timestamp())), "x-opsloop-signature": digest}
    with pytest.raises(Unauthorized, match="does not match X-OpsLoop-Timestamp and the body"):
        check_stamped(headers)

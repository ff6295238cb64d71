"""Webhook signature checks: generic HMAC-SHA256 of the raw body (hex or base64, optionally
`sha256=`; Shopify's is base64) or of `"{timestamp}.{body}"` with the timestamp in a header of
its own, Stripe's `Stripe-Signature` (Calendly signs the same way), Standard Webhooks
(`webhook-id`, `webhook-timestamp`, `webhook-signature`) and HubSpot's v3.

Each check raises Unauthorized with a message that says what was wrong, never the secret or
the expected signature. The `sign_*` functions are the sender's side of each check (OpsLoop's
own test deliveries use them, opsloop/service/ingest/test_deliveries.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from opsloop.core.durations import format_duration
from opsloop.core.errors import Unauthorized

STRIPE_HEADER = "Stripe-Signature"


def sign_hmac_sha256(
    body: bytes, secret: str, *, encoding: Literal["hex", "base64"] = "hex"
) -> str:
    """The HMAC-SHA256 of `body` under `secret`, hex (GitHub) or base64 (Shopify, Typeform)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()


def verify_hmac_sha256(
    body: bytes,
    header_value: str | None,
    secret: str,
    header: str,
    *,
    encoding: Literal["hex", "base64"] = "hex",
) -> None:
    """Raise Unauthorized unless `header_value` is the body's HMAC-SHA256 under `secret`, hex
    (GitHub) or base64 (Shopify, Typeform), optionally prefixed `sha256=`."""
    if not header_value:
        raise Unauthorized(f"missing signature header {header}")
    if not _hmac_matches(body, header_value, secret, encoding):
        raise Unauthorized(f"signature in {header} does not match the body")


def sign_hmac_timestamped(
    body: bytes, secret: str, timestamp: int, *, encoding: Literal["hex", "base64"] = "hex"
) -> str:
    """The signature a sender puts beside `timestamp` for `verify: hmac`, `signed:
    timestamp`: the HMAC-SHA256 of `"{timestamp}.{body}"`, hex unless `encoding` says base64."""
    return sign_hmac_sha256(f"{timestamp}.".encode() + body, secret, encoding=encoding)


def verify_hmac_timestamped(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    signature_header: str,
    timestamp_header: str,
    tolerance: timedelta,
    now: datetime,
    encoding: Literal["hex", "base64"] = "hex",
) -> None:
    """Raise Unauthorized unless the signature header holds the HMAC-SHA256 of
    `"{timestamp}.{body}"`, the timestamp being the Unix time (seconds) in `timestamp_header`
    within `tolerance` of `now`: a captured delivery replayed later is refused, as Stripe and
    Standard Webhooks do. `headers` have lowercased names."""
    given = headers.get(signature_header.lower(), "").strip()
    stamp = headers.get(timestamp_header.lower(), "").strip()
    pairs = ((signature_header, given), (timestamp_header, stamp))
    missing = [name for name, value in pairs if not value]
    if missing:
        raise Unauthorized(f"missing signature header {', '.join(missing)}")
    problem = f"malformed {timestamp_header} {stamp[:40]!r}"
    if not (stamp.isascii() and stamp.isdigit()):
        raise Unauthorized(f"{problem} is not a unix time in seconds")
    timestamp = _unix_time(stamp, problem)
    # Signed as sent: the digits in the header, not a number re-written from them.
    if not _hmac_matches(f"{stamp}.".encode() + body, given, secret, encoding):
        raise Unauthorized(
            f"signature in {signature_header} does not match {timestamp_header} and the body "
            "(sign the timestamp, a dot, then the exact body bytes)"
        )
    _check_age(timestamp, tolerance=tolerance, now=now, header=timestamp_header)


def _hmac_matches(
    message: bytes, header_value: str, secret: str, encoding: Literal["hex", "base64"]
) -> bool:
    given = header_value.strip()
    if given.lower().startswith("sha256="):
        given = given[len("sha256=") :]
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    if encoding == "base64":
        expected, given_bytes = base64.b64encode(digest), given.encode()
    else:
        expected, given_bytes = digest.hex().encode(), given.lower().encode()
    # compare_digest takes the same time wherever the strings differ.
    return hmac.compare_digest(expected, given_bytes)


def sign_stripe(body: bytes, secret: str, timestamp: int) -> str:
    """A `Stripe-Signature` (or `Calendly-Webhook-Signature`) value: `t=<unix seconds>,v1=<hex
    HMAC-SHA256 of "t.body">`, as Stripe's own library writes it."""
    return f"t={timestamp},v1={sign_hmac_sha256(f'{timestamp}.'.encode() + body, secret)}"


def verify_stripe(
    body: bytes,
    header_value: str | None,
    secret: str,
    *,
    tolerance: timedelta,
    now: datetime,
    header: str = STRIPE_HEADER,
) -> None:
    """Check a `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]` header.

    v1 is the HMAC-SHA256 of `<t>.<body>`; while a secret is being rolled Stripe sends one v1
    per secret, and any one may match. Other schemes (`v0`, test mode) are ignored. Calendly
    signs the same way in `Calendly-Webhook-Signature` (`header`).
    """
    if not secret:
        raise Unauthorized(f"this source has no signing secret to check {header} with")
    if not header_value or not header_value.strip():
        raise Unauthorized(f"missing signature header {header}")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header_value.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            timestamp = _unix_time(value, f"malformed {header} header: t={value!r}")
        elif name == "v1":
            signatures.append(value.strip().lower())
    if timestamp is None:
        raise Unauthorized(f"malformed {header} header: no t=<timestamp>")
    if not signatures:
        raise Unauthorized(f"malformed {header} header: no v1=<signature>")
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
    # Look at every signature so the time taken does not tell which one came close.
    matches = [hmac.compare_digest(expected, given.encode()) for given in signatures]
    if not any(matches):
        raise Unauthorized(f"no signature in {header} matches the body under this source's secret")
    _check_age(timestamp, tolerance=tolerance, now=now, header=header)


def sign_standard(body: bytes, secret: str, msg_id: str, timestamp: int) -> dict[str, str]:
    """The three Standard Webhooks headers of a delivery, signed by the scheme's own library
    (the one `verify_standard` checks with)."""
    at = datetime.fromtimestamp(timestamp, tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode("utf-8")),
    }


def verify_standard(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: timedelta,
    now: datetime,
) -> str:
    """Check a Standard Webhooks delivery and return its `webhook-id`.

    `webhook-signature` holds space-separated `v1,<base64>` entries (several while a secret is
    rolled); any may match. `secret` is `whsec_<base64>` or bare base64.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [
        name
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        if not lowered.get(name, "").strip()
    ]
    if missing:
        raise Unauthorized(f"missing signature header {', '.join(missing)}")
    msg_id = lowered["webhook-id"].strip()
    stamp = lowered["webhook-timestamp"].strip()
    timestamp = _unix_time(stamp, f"malformed webhook-timestamp {stamp!r}")
    given = _standard_signatures(lowered["webhook-signature"])
    if not given:
        raise Unauthorized("malformed webhook-signature header: no v1,<base64> signature")
    try:
        webhook = Webhook(secret)
    except (EmptyWebhookSecretError, binascii.Error, ValueError):
        raise Unauthorized(
            "this source's secret is not a Standard Webhooks secret (whsec_ then base64)"
        ) from None
    # The library's verify() reads the wall clock with a fixed 5 minutes; sign() lets us keep
    # our clock and the source's tolerance while the library owns the signing scheme.
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unauthorized("the body is not UTF-8 text, so its signature cannot match") from None
    signed = webhook.sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), text)
    expected = base64.b64decode(signed.split(",", 1)[1])
    matches = [hmac.compare_digest(expected, signature) for signature in given]
    if not any(matches):
        raise Unauthorized(
            "no signature in webhook-signature matches the body under this source's secret"
        )
    _check_age(timestamp, tolerance=tolerance, now=now, header="webhook-timestamp")
    return msg_id


HUBSPOT_HEADER = "X-HubSpot-Signature-v3"
HUBSPOT_TIMESTAMP = "X-HubSpot-Request-Timestamp"
# HubSpot signs the URI with these characters decoded (its "validating requests" guide).
_HUBSPOT_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip


def sign_hubspot(body: bytes, secret: str, *, method: str, url: str, millis: int) -> str:
    """An `X-HubSpot-Signature-v3` value for a request to `url` stamped `millis` (sent in
    `X-HubSpot-Request-Timestamp`)."""
    return sign_hmac_sha256(
        method.upper().encode() + _hubspot_uri(url).encode() + body + str(millis).encode(),
        secret,
        encoding="base64",
    )


def verify_hubspot(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    method: str,
    url: str,
    tolerance: timedelta,
    now: datetime,
) -> None:
    """Check HubSpot's v3 signature: base64 of the HMAC-SHA256, under the app's client secret,
    of method + URI + body + the `X-HubSpot-Request-Timestamp` (milliseconds)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    given = lowered.get(HUBSPOT_HEADER.lower(), "").strip()
    stamp = lowered.get(HUBSPOT_TIMESTAMP.lower(), "").strip()
    if not given or not stamp:
        missing = [h for h, v in ((HUBSPOT_HEADER, given), (HUBSPOT_TIMESTAMP, stamp)) if not v]
        raise Unauthorized(f"missing signature header {', '.join(missing)}")
    try:
        millis = int(stamp)
    except ValueError:
        raise Unauthorized(f"malformed {HUBSPOT_TIMESTAMP} {stamp!r}: not milliseconds") from None
    uri = _hubspot_uri(url)
    signed = method.upper().encode() + uri.encode() + body + stamp.encode()
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, given.encode()):
        raise Unauthorized(
            f"{HUBSPOT_HEADER} does not match this request under the source's secret "
            f"(signed for {method.upper()} {uri}; behind a proxy, set public_url to the "
            "address HubSpot calls)"
        )
    _check_age(millis // 1000, tolerance=tolerance, now=now, header=HUBSPOT_TIMESTAMP)


def _hubspot_uri(url: str) -> str:
    for encoded, plain in _HUBSPOT_DECODED.items():
        url = url.replace(encoded, plain).replace(encoded.lower(), plain)
    return url


def _standard_signatures(header_value: str) -> list[bytes]:
    signatures: list[bytes] = []
    for entry in header_value.split():
        version, sep, encoded = entry.partition(",")
        if not sep or version != "v1":
            continue
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except binascii.Error:
            continue
    return signatures


def _unix_time(text: str, problem: str) -> int:
    try:
        value = int(text.strip())
        datetime.fromtimestamp(value, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise Unauthorized(f"{problem} is not a unix time in seconds") from None
    return value


def _check_age(timestamp: int, *, tolerance: timedelta, now: datetime, header: str) -> None:
    """A replayed old delivery, or one stamped ahead of our clock, is refused."""
    signed_at = datetime.fromtimestamp(timestamp, tz=UTC)
    drift = now.astimezone(UTC) - signed_at
    stamp = signed_at.isoformat().replace("+00:00", "Z")
    if drift > tolerance:
        raise Unauthorized(
            f"the timestamp in {header} ({stamp}) is {format_duration(drift)} old, "
            f"{format_duration(drift - tolerance)} more than the {format_duration(tolerance)} "
            "tolerance"
        )
    if -drift > tolerance:
        raise Unauthorized(
            f"the timestamp in {header} ({stamp}) is {format_duration(-drift)} ahead of this "
            f"server's clock, more than the {format_duration(tolerance)} tolerance"
        )

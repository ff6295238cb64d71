"""Source definitions: where signals come from and what they mean, declared in YAML.

```yaml
name: stripe
kind: webhook            # webhook | segment | http | folder | sql | imap
verify: stripe           # webhooks: none | hmac | stripe | standard
mapping: stripe          # a built-in mapping, or rules (docs/sources.md#mappings)
timezone: Europe/Lisbon  # for timestamps written without a zone
```

Secrets (a webhook's signing secret, a write key, an API token, a mailbox password) are not
part of the definition: they are given apart (`opsloop source add --secret-file`, or
`secret_env: NAME` to read an environment variable) and never shown again.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from opsloop.core.durations import format_duration, parse_duration
from opsloop.core.errors import PlaybookInvalid
from opsloop.core.events import SUBJECT_KIND_PATTERN, did_you_mean
from opsloop.core.yaml_source import parse_yaml

SOURCE_NAME = r"^[a-z0-9][a-z0-9_\-.]{0,99}$"
NAME_RULE = (
    "must be lowercase letters, digits, `_`, `-` and `.`, starting with a letter or digit, "
    "at most 100 characters"
)
SourceKind = Literal["webhook", "segment", "http", "folder", "sql", "imap"]
PUSH_KINDS: tuple[str, ...] = ("webhook", "segment")
PULL_KINDS: tuple[str, ...] = ("http", "folder", "sql", "imap")
RESERVED_NAMES = frozenset({"api", "import"})
"""Names events already use: `api` for POST /api/events, `import` for `opsloop import`."""

DURATION_FIELDS = ("tolerance", "dedupe_window", "late_after", "interval")
DEFAULT_INTERVAL = timedelta(minutes=10)
DEFAULT_LATE = timedelta(minutes=5)
"""When an event of a pushed source (or one nobody declared) counts as late."""
DEFAULT_DEDUPE = timedelta(hours=24)
"""The content window of a webhook source whose deliveries carry no id their signature covers."""
MIN_INTERVAL = timedelta(minutes=1)


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpAuth(_Strict):
    type: Literal["none", "bearer", "basic", "header"] = "none"
    """bearer: `Authorization: Bearer <secret>`; basic: `username` and the secret as password;
    header: the secret in the header named by `header`."""
    username: str | None = None
    header: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> HttpAuth:
        if self.type == "basic" and not self.username:
            raise ValueError("basic auth needs `username` (the secret is the password)")
        if self.type == "header" and not self.header:
            raise ValueError("header auth needs `header`, the header's name, e.g. X-Api-Key")
        return self


class HttpPagination(_Strict):
    type: Literal["none", "page", "offset", "cursor", "link"] = "none"
    """page: `?page=1,2,...`; offset: `?offset=0,100,...`; cursor: the next cursor read from
    the response at `cursor_path` and sent as `cursor_param`; link: the `Link: <...>;
    rel="next"` header."""
    param: str | None = None
    """Query parameter of the page number, offset or cursor (default page/offset/cursor)."""
    size_param: str | None = None
    """Query parameter of the page size, e.g. `per_page` or `limit`."""
    size: int = Field(default=100, ge=1, le=10_000)
    start: int = 1
    """First page number (page pagination)."""
    cursor_path: str | None = None
    """Dotted path to the next cursor in the response, e.g. `meta.next_cursor`."""

    @model_validator(mode="after")
    def _cursor_path(self) -> HttpPagination:
        if self.type == "cursor" and not self.cursor_path:
            raise ValueError("cursor pagination needs `cursor_path`, e.g. meta.next_cursor")
        return self


class HttpIncremental(_Strict):
    field: str
    """Dotted path in each item to its updated-at value, e.g. `updated_at`."""
    param: str
    """Query parameter that asks for items updated since a value, e.g. `updated_since`."""


class HttpConfig(_Strict):
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    auth: HttpAuth = Field(default_factory=HttpAuth)
    items: str = ""
    """Dotted path to the list of items in a response; empty when the response is the list."""
    pagination: HttpPagination = Field(default_factory=HttpPagination)
    incremental: HttpIncremental | None = None
    key: str = "id"
    """Dotted path to each item's id: an item is stored once per source."""
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value


class FolderConfig(_Strict):
    path: str
    pattern: str = "*"
    """Files to pick up (glob); `.csv`, `.jsonl` and `.ndjson` files are read."""
    done: str | None = None
    """Where finished files are moved; default `<path>/processed`."""
    delimiter: str = ","
    encoding: str = "utf-8"
    key: str | None = None
    """Column or field holding each row's id; default: the file's content hash and line."""


class SqlConfig(_Strict):
    url: str
    """SQLAlchemy URL; a password can be left out and given as the source's secret."""
    query: str
    """A SELECT; with `cursor`, it must compare against `:cursor`, e.g.
    `SELECT * FROM orders WHERE updated_at > :cursor ORDER BY updated_at`."""
    cursor: str | None = None
    """The column whose largest value so far is the next run's `:cursor`."""
    cursor_start: Any = None
    """`:cursor` on the first run (and on a backfill), e.g. `1970-01-01`."""
    key: str = "id"
    """Column holding each row's id."""
    batch_size: int = Field(default=500, ge=1, le=100_000)

    @model_validator(mode="after")
    def _cursor_in_query(self) -> SqlConfig:
        if self.cursor is not None:
            if ":cursor" not in self.query:
                raise ValueError("with `cursor`, the query must compare it with :cursor")
            if self.cursor_start is None:
                raise ValueError("with `cursor`, give `cursor_start`, e.g. 1970-01-01 or 0")
        return self


class ImapConfig(_Strict):
    host: str
    port: int | None = None
    """Default 993 with `security: ssl`, else 143."""
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str
    mailbox: str = "INBOX"
    subject_kind: str = Field(default="ticket", pattern=r"^[a-z][a-z0-9_]*$")
    """Each thread becomes a subject `<kind>:<id of the thread's first message>`."""
    batch_size: int = Field(default=200, ge=1, le=10_000)


class SegmentConfig(_Strict):
    subject_kind: str = "lead"
    """`userId` X becomes the subject `<kind>:X`."""
    visitor_kind: str = "visitor"
    """An anonymous visitor `anonymousId` A is `<visitor_kind>:A` until identified."""
    group_kind: str = "account"

    @field_validator("subject_kind", "visitor_kind", "group_kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if not SUBJECT_KIND_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a subject kind: lowercase letters, digits and _")
        return value


class SourceSpec(_Strict):
    name: str = Field(pattern=SOURCE_NAME)
    kind: SourceKind
    description: str = ""
    enabled: bool = True

    verify: Literal["none", "hmac", "stripe", "standard", "shopify", "calendly", "hubspot"] = "none"
    """How a webhook proves its sender: generic HMAC-SHA256 (see `signed`), Stripe-Signature,
    Standard Webhooks, Shopify's X-Shopify-Hmac-Sha256, Calendly-Webhook-Signature or
    HubSpot's X-HubSpot-Signature-v3. `none` refuses every delivery unless `allow_unsigned`."""
    allow_unsigned: bool = False
    """verify none: accept deliveries nobody signed. Anyone who knows the URL can then send
    events as this source, so it is a *public* source: it may not change the protected traits
    (email, phone) a trusted source set."""
    public_url: str | None = None
    """hubspot: the address the sender calls, when a proxy in front of OpsLoop changes it
    (HubSpot signs the URL); default: the address as OpsLoop received it."""
    signature_header: str = "X-OpsLoop-Signature"
    """hmac: the header holding the HMAC-SHA256 (optionally `sha256=`)."""
    signature_encoding: Literal["hex", "base64"] = "hex"
    """hmac: how the signature is written: hex (GitHub) or base64 (Typeform)."""
    signed: Literal["timestamp", "body"] = "timestamp"
    """hmac: what the signature covers. `timestamp`: `"{timestamp}.{body}"`, the Unix time (in
    seconds) sent in `timestamp_header`, which must be within `tolerance`, so a captured
    delivery cannot be replayed later. `body`: the raw body alone (GitHub, Typeform)."""
    timestamp_header: str = "X-OpsLoop-Timestamp"
    """hmac with `signed: timestamp`: the header holding the signed Unix time."""
    tolerance: timedelta = Field(default=timedelta(minutes=5))
    """stripe, standard, calendly, hubspot, and hmac with `signed: timestamp`: how far a
    signed timestamp may be from this server's clock."""
    secret_env: str | None = None
    """Read the secret from this environment variable instead of the stored one."""

    mapping: str | list[dict[str, Any]] | dict[str, Any] | None = None
    """A built-in mapping's name, or mapping rules; none: records are OpsLoop events."""
    timezone: str = "UTC"
    region: str | None = None
    """Country (ISO 3166 alpha-2, e.g. `PT`) for phone numbers written without `+`."""
    dedupe_window: timedelta | None = None
    """Also store once the same type, subject, payload and traits seen again within this
    window (events without an id of their own). Default: 24h for a webhook source whose
    deliveries carry no id their signature covers (every `verify` but `standard`); `0s` turns
    it off."""
    late_after: timedelta | None = None
    """An event received this long after it occurred counts as late in the quality report
    (default 5 minutes for pushed sources, twice the interval for pulled ones)."""

    interval: timedelta = Field(default=DEFAULT_INTERVAL)
    """Pulled sources: how often to sync (minimum 1 minute)."""
    http: HttpConfig | None = None
    folder: FolderConfig | None = None
    sql: SqlConfig | None = None
    imap: ImapConfig | None = None
    segment: SegmentConfig | None = None

    _parse_durations = field_validator(*DURATION_FIELDS, mode="before")(_duration)

    @field_serializer(*DURATION_FIELDS)
    def _written(self, value: timedelta | None) -> str | None:
        # Stored and shown as written (`10m`), not as ISO 8601 (`PT10M`).
        return None if value is None else format_duration(value)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_NAMES:
            raise ValueError(f"{value!r} is used by OpsLoop itself; choose another name")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone; write e.g. Europe/Lisbon") from None
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError(f"{value!r} is not a two-letter country code such as PT or US")
        return value.upper() if value else None

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if value < MIN_INTERVAL:
            raise ValueError("the shortest interval is 1m")
        return value

    @model_validator(mode="after")
    def _kind_config(self) -> SourceSpec:
        configs = {"http": self.http, "folder": self.folder, "sql": self.sql, "imap": self.imap}
        if self.kind in configs and configs[self.kind] is None:
            raise ValueError(f"a {self.kind} source needs a `{self.kind}:` block")
        extra = [
            name for name, config in configs.items() if config is not None and name != self.kind
        ]
        if self.segment is not None and self.kind != "segment":
            extra.append("segment")
        if extra:
            raise ValueError(f"a {self.kind} source takes no `{extra[0]}:` block")
        if self.kind != "webhook" and self.verify != "none":
            raise ValueError("`verify` is for webhook sources")
        if self.allow_unsigned and (self.kind != "webhook" or self.verify != "none"):
            raise ValueError(
                "`allow_unsigned` is for webhook sources with `verify: none`; a source that "
                "checks signatures refuses unsigned deliveries"
            )
        return self

    def written(self) -> dict[str, Any]:
        """The definition as a person writes it: JSON values, defaults left out. (Pydantic's
        `exclude_defaults` keeps fields that have a serializer, the durations here.)"""
        data = self.model_dump(mode="json", exclude_defaults=True)
        for name in DURATION_FIELDS:
            if getattr(self, name) == type(self).model_fields[name].default:
                data.pop(name, None)
        return data

    @property
    def pulled(self) -> bool:
        return self.kind in PULL_KINDS

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def late_threshold(self) -> timedelta:
        if self.late_after is not None:
            return self.late_after
        return self.interval * 2 if self.pulled else DEFAULT_LATE

    @property
    def content_window(self) -> timedelta | None:
        """The dedupe window in force: the one written (`0s`: none), else 24h for a webhook
        source whose deliveries carry no id its signature covers. Only Standard Webhooks signs
        its `webhook-id`; any other delivery header can be changed by whoever replays a
        captured delivery, so those sources are kept from repeats by content."""
        if self.dedupe_window is not None:
            return self.dedupe_window or None
        if self.kind == "webhook" and self.verify != "standard":
            return DEFAULT_DEDUPE
        return None

    @property
    def public(self) -> bool:
        """Its credential is public, so anyone may send as it: a segment source (its write key
        ships in web pages) or a webhook with `allow_unsigned`. Every other source is
        trusted (docs/sources.md#how-identity-merging-is-protected)."""
        return self.kind == "segment" or (self.kind == "webhook" and self.allow_unsigned)

    @property
    def needs_secret(self) -> bool:
        """The source cannot work without a secret: a signature check, a write key, an API
        token or password, a mailbox password."""
        if self.http is not None:
            return self.http.auth.type != "none"
        return self.verify != "none" or self.kind in ("segment", "imap")

    @property
    def secret_name(self) -> str:
        """What the secret is, in words, for messages."""
        if self.kind == "segment":
            return "write key"
        if self.kind == "imap":
            return "mailbox password"
        if self.http is not None:
            return "API token" if self.http.auth.type != "basic" else "API password"
        return "signing secret"


def parse_source(text: str, file: str = "<source>") -> tuple[SourceSpec, str | None]:
    """A source file as (definition, secret). A `secret:` key is taken out of the definition so
    it is stored apart and never shown; every problem is reported with its line."""
    document = parse_yaml(text, file)
    if not isinstance(document.data, dict):
        raise PlaybookInvalid([document.problem((), "a source is a mapping of keys to values")])
    data = dict(document.data)
    secret = data.pop("secret", None)
    if secret is not None and not isinstance(secret, str | int):
        raise PlaybookInvalid([document.problem(("secret",), "must be text")])
    try:
        spec = SourceSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field" + did_you_mean(str(loc[-1]), _fields_at(loc))
            elif error["type"] == "missing":
                message = "is required"
            elif error["type"] == "string_pattern_mismatch" and loc == ("name",):
                message = NAME_RULE
            problems.append(document.problem(loc, message))
        raise PlaybookInvalid(sorted(problems, key=lambda p: p.line or 0)) from None
    return spec, None if secret is None else str(secret)


def _fields_at(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = SourceSpec
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        inner = getattr(field, "annotation", None) if field else None
        for candidate in getattr(inner, "__args__", (inner,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
        else:
            return []
    return list(model.model_fields)

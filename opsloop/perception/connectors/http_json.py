"""An HTTP JSON API, page by page: auth, pagination by page, offset, cursor or Link header, and
an updated-at cursor so each sync asks only for what changed.

The checkpoint says where the next run starts:

    {"since": "2026-03-01T10:00:00Z"}                          # the last pass finished
    {"since": ..., "next": {"page": 3}, "high": "2026-03-02T09:00:00Z"}   # a pass half done

`since` is the updated-at value sent as `incremental.param` for the whole pass (so the pages
stay the same list), `next` the page to read next, `high` the largest updated-at seen so far
in this pass; when the pass ends, `high` becomes the next pass's `since`.

Plain httpx rather than dlt's REST client: see docs/sources.md#pulled-sources.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from opsloop.core.errors import InvalidInput, Unavailable
from opsloop.core.sources import HttpConfig
from opsloop.perception.big_integers import beyond_range, keep_beyond_range
from opsloop.perception.connectors import dig
from opsloop.perception.records import Batch, Record, Rejected

DEFAULT_PARAMS = {"page": "page", "offset": "offset", "cursor": "cursor"}


def fetch(
    config: HttpConfig,
    secret: str | None,
    checkpoint: dict[str, Any] | None,
    *,
    backfill: bool = False,
    client: httpx.Client | None = None,
) -> Iterator[Batch]:
    state = {} if backfill or not checkpoint else dict(checkpoint)
    since = state.get("since")
    position: dict[str, Any] | None = state.get("next")
    high = state.get("high")
    headers, auth = _auth(config, secret)
    own = client is None
    http = client or httpx.Client(timeout=config.timeout_seconds, follow_redirects=True)
    previous: list[Any] | None = None
    try:
        while True:
            url, params = _request(config, since, position)
            body, response = _get(http, url, params, headers, auth)
            label = _label(config, position)
            items = dig(body, config.items)
            if not isinstance(items, list):
                where = f"`{config.items}`" if config.items else "the top"
                raise Unavailable(
                    f"{label} of {config.url} has no list of items at {where} "
                    "(set `items:` to the path of the list)",
                    retryable=False,
                )
            if items and items == previous:
                # An API that ignores the page parameter would be read forever.
                raise Unavailable(
                    f"{label} of {config.url} repeats the page before it: does the API take "
                    "the page parameter this source sends? (set `pagination.param`)",
                    retryable=False,
                )
            previous = items
            records, rejected = _records(config, items, label)
            for item in items:
                updated = dig(item, config.incremental.field) if config.incremental else None
                if not isinstance(updated, orjson.Fragment):  # too big a number: refused
                    high = _later(high, updated)
            following = _next(config, position, items, body, response)
            if following is None:
                done = high if high is not None else since
                yield Batch(records, {"since": done} if done is not None else {}, rejected)
                return
            state = {"since": since, "next": following, "high": high}
            yield Batch(records, {k: v for k, v in state.items() if v is not None}, rejected)
            position = following
    finally:
        if own:
            http.close()


def _auth(config: HttpConfig, secret: str | None) -> tuple[dict[str, str], httpx.Auth | None]:
    headers = dict(config.headers)
    kind = config.auth.type
    if kind == "none":
        return headers, None
    if not secret:
        raise InvalidInput.single(
            "secret", f"`auth: {kind}` needs the source's secret: --secret-file or secret_env"
        )
    if kind == "bearer":
        headers["Authorization"] = f"Bearer {secret}"
        return headers, None
    if kind == "header":
        assert config.auth.header is not None
        headers[config.auth.header] = secret
        return headers, None
    return headers, httpx.BasicAuth(config.auth.username or "", secret)


def _request(
    config: HttpConfig, since: Any, position: dict[str, Any] | None
) -> tuple[str, dict[str, str]]:
    paging = config.pagination
    if paging.type == "link" and position is not None:
        return str(position["url"]), {}  # the server's own next link carries every parameter
    params = dict(config.params)
    if config.incremental is not None and since is not None:
        params[config.incremental.param] = str(since)
    if paging.size_param:
        params[paging.size_param] = str(paging.size)
    name = paging.param or DEFAULT_PARAMS.get(paging.type, "")
    if paging.type == "page":
        params[name] = str(position["page"] if position else paging.start)
    elif paging.type == "offset":
        params[name] = str(position["offset"] if position else 0)
    elif paging.type == "cursor" and position is not None:
        params[name] = str(position["cursor"])
    return config.url, params


def _get(
    http: httpx.Client,
    url: str,
    params: dict[str, str],
    headers: dict[str, str],
    auth: httpx.Auth | None,
) -> tuple[Any, httpx.Response]:
    try:
        response = http.get(
            url,
            params=params or None,  # an empty dict would drop the query of a `next` link
            headers=headers,
            auth=auth or httpx.USE_CLIENT_DEFAULT,
        )
    except httpx.HTTPError as exc:
        raise Unavailable(f"GET {url} failed: {exc}", retryable=True) from exc
    if response.status_code >= 400:
        text = response.text[:200].strip()
        raise Unavailable(
            f"GET {response.request.url} answered {response.status_code} "
            f"{response.reason_phrase}" + (f": {text}" if text else ""),
            retryable=response.status_code >= 500 or response.status_code == 429,
        )
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise Unavailable(
            f"GET {response.request.url} did not answer JSON: {exc}", retryable=False
        ) from None
    # An integer beyond 64 bits stays as it came, for `_records` to refuse its item by name.
    return keep_beyond_range(response.content, data), response


def _records(
    config: HttpConfig, items: list[Any], label: str
) -> tuple[list[Record], list[Rejected]]:
    records: list[Record] = []
    rejected: list[Rejected] = []
    for index, item in enumerate(items):
        where = f"{label} item {index}"
        raw = orjson.dumps(item)
        too_big = beyond_range(raw, data=item)
        if too_big:
            rejected.append(Rejected(where, "; ".join(str(e) for e in too_big), raw))
            continue
        key = dig(item, config.key)
        if key is None or key == "" or isinstance(key, dict | list):
            rejected.append(
                Rejected(
                    where,
                    f"has no `{config.key}` (the id that stores each item once; set `key:`)",
                    raw,
                )
            )
            continue
        if config.incremental is not None:
            # A changed item is a new version: its updated-at makes it a new record, while
            # the same version read again is stored once.
            updated = dig(item, config.incremental.field)
            key = f"{key}@{updated}" if updated is not None else key
        records.append(
            Record(item, where=f"{where} ({config.key} {dig(item, config.key)})", key=str(key))
        )
    return records, rejected


def _next(
    config: HttpConfig,
    position: dict[str, Any] | None,
    items: list[Any],
    body: Any,
    response: httpx.Response,
) -> dict[str, Any] | None:
    """Where the following page is, or None when this page was the last."""
    paging = config.pagination
    short = not items or (paging.size_param is not None and len(items) < paging.size)
    if paging.type == "page":
        return None if short else {"page": (position["page"] if position else paging.start) + 1}
    if paging.type == "offset":
        return None if short else {"offset": (position["offset"] if position else 0) + len(items)}
    if paging.type == "cursor":
        assert paging.cursor_path is not None
        cursor = dig(body, paging.cursor_path)
        if not items or cursor in (None, "") or (position and position["cursor"] == cursor):
            return None
        return {"cursor": cursor}
    if paging.type == "link":
        link = response.links.get("next", {}).get("url")
        return {"url": str(response.url.join(link))} if link else None
    return None


def _label(config: HttpConfig, position: dict[str, Any] | None) -> str:
    paging = config.pagination
    if paging.type == "page":
        return f"page {position['page'] if position else paging.start}"
    if paging.type == "offset":
        return f"offset {position['offset'] if position else 0}"
    if paging.type == "cursor":
        return f"cursor {position['cursor']}" if position else "first page"
    if paging.type == "link":
        return position["url"] if position else "first page"
    return "response"


def _later(current: Any, value: Any) -> Any:
    """The later of two updated-at values, as the API wrote them (numbers, or ISO text)."""
    if value is None or value == "":
        return current
    if current is None:
        return value
    return value if _order(value) > _order(current) else current


def _order(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (2, str(value))
    if isinstance(value, int | float):
        return (0, float(value))
    text = str(value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return (2, text)
    # A time without a zone is read as UTC: an API writes them all one way anyway.
    return (1, (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())

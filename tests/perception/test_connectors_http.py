"""The HTTP JSON pull connector against a real local API: four ways of paging, three ways of
authenticating, updated-at cursors, and checkpoints that resume where a failure stopped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opsloop.core.errors import InvalidInput, PlaybookInvalid, Unavailable
from opsloop.core.sources import SourceSpec, parse_source
from opsloop.perception.connectors import fetch
from opsloop.perception.records import Batch
from tests.perception.json_api import TOKEN, JsonApi, orders

PAGING = {
    "page": "{type: page, size_param: per_page, size: 3}",
    "offset": "{type: offset, size_param: limit, size: 3}",
    "cursor": "{type: cursor, size_param: limit, size: 3, cursor_path: meta.next_cursor}",
    "link": "{type: link}",
}


@pytest.fixture
def api() -> Iterator[JsonApi]:
    with JsonApi(items=orders(8)) as server:
        yield server


def source(api: JsonApi, path: str, *, extra: str = "", auth: str = "{type: bearer}") -> SourceSpec:
    items = "" if path == "link" else "  items: data\n"
    text = (
        f"name: shop\nkind: http\nhttp:\n  url: {api.url}/{path}\n{items}"
        f"  auth: {auth}\n  pagination: {PAGING[path]}\n{extra}"
    )
    return parse_source(text, "shop.yaml")[0]


def read(spec: SourceSpec, checkpoint: dict[str, Any] | None = None, **kw: Any) -> list[Batch]:
    return list(fetch(spec, TOKEN, checkpoint, **kw))


def ids(batches: list[Batch]) -> list[int]:
    return [record.data["id"] for batch in batches for record in batch.records]


@pytest.mark.parametrize("path", list(PAGING))
def test_every_kind_of_pagination_reads_every_item_once_page_by_page(
    api: JsonApi, path: str
) -> None:
    batches = read(source(api, path))
    assert ids(batches) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [len(batch.records) for batch in batches if batch.records] == [3, 3, 2]
    first = batches[0].records[0]
    assert first.key == "1"
    assert first.where.endswith("item 0 (id 1)")
    assert batches[-1].checkpoint == {}, "no incremental field: the next sync reads it all"


@pytest.mark.parametrize(
    ("auth", "yaml"),
    [
        ("basic", "{type: basic, username: shop}"),
        ("header", "{type: header, header: X-Api-Key}"),
        ("bearer", "{type: bearer}"),
    ],
)
def test_the_secret_is_sent_the_way_the_api_wants_it(api: JsonApi, auth: str, yaml: str) -> None:
    api.auth = auth
    spec = source(api, "page", auth=yaml)
    assert len(ids(read(spec))) == 8

    with pytest.raises(Unavailable, match="401 Unauthorized"):
        list(fetch(spec, "wrong-token", None))


def test_an_api_that_needs_a_secret_and_has_none_says_how_to_give_it(api: JsonApi) -> None:
    with pytest.raises(InvalidInput, match="--secret-file or secret_env"):
        list(fetch(source(api, "page"), None, None))


def test_auth_and_paging_settings_that_cannot_work_are_refused_with_their_line() -> None:
    text = "name: x\nkind: http\nhttp:\n  url: http://x\n  auth: {type: basic}\n"
    with pytest.raises(PlaybookInvalid, match=r"x.yaml:5: http.auth: .*username"):
        parse_source(text, "x.yaml")
    text = "name: x\nkind: http\nhttp:\n  url: http://x\n  pagination: {type: cursor}\n"
    with pytest.raises(PlaybookInvalid, match="cursor_path"):
        parse_source(text, "x.yaml")


INCREMENTAL = "  incremental: {field: updated_at, param: updated_since}\n"


def test_an_incremental_sync_asks_only_for_what_changed_since_the_last_pass(
    api: JsonApi,
) -> None:
    spec = source(api, "page", extra=INCREMENTAL)
    first = read(spec)
    assert ids(first) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert first[-1].checkpoint == {"since": "2026-03-01T09:08:00Z"}
    assert first[0].records[0].key == "1@2026-03-01T09:01:00Z", "a new version is a new record"

    api.items[2]["updated_at"] = "2026-03-01T10:00:00Z"  # order 3 changed
    api.items.append(
        {"id": 9, "email": "b9@example.com", "total": 90, "updated_at": "2026-03-01T10:01:00Z"}
    )
    api.requests.clear()
    second = read(spec, first[-1].checkpoint)
    assert api.pages_asked("/page")[0]["updated_since"] == "2026-03-01T09:08:00Z"
    # 8 again: the API keeps items updated *at* the time asked; its key stores it once.
    assert ids(second) == [8, 3, 9]
    assert second[-1].checkpoint == {"since": "2026-03-01T10:01:00Z"}


def test_a_backfill_ignores_the_checkpoint_and_reads_everything(api: JsonApi) -> None:
    spec = source(api, "offset", extra=INCREMENTAL)
    batches = read(spec, {"since": "2026-03-01T09:07:00Z"}, backfill=True)
    assert ids(batches) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert "updated_since" not in api.pages_asked("/offset")[0]


@pytest.mark.parametrize("path", ["page", "offset", "cursor", "link"])
def test_a_failed_page_stops_the_run_and_its_checkpoint_resumes_at_that_page(
    api: JsonApi, path: str
) -> None:
    spec = source(api, path, extra=INCREMENTAL if path != "link" else "")
    api.fail_once = {"page=2", "offset=3", "cursor=c3"} if path != "link" else {"page=2"}
    done: list[Batch] = []
    with pytest.raises(Unavailable, match="500 Internal Server Error"):
        done.extend(fetch(spec, TOKEN, None))
    assert ids(done) == [1, 2, 3]
    checkpoint = done[-1].checkpoint
    assert checkpoint is not None
    assert checkpoint["next"], checkpoint

    api.requests.clear()
    rest = read(spec, checkpoint)
    assert ids(rest) == [4, 5, 6, 7, 8], "resumed at the failed page, not from the start"
    assert len(api.requests) == 2


def test_an_item_without_its_key_is_rejected_and_the_rest_is_read(api: JsonApi) -> None:
    api.items[4]["id"] = None
    batches = read(source(api, "page"))
    assert ids(batches) == [1, 2, 3, 4, 6, 7, 8]
    [rejected] = [r for batch in batches for r in batch.rejected]
    assert rejected.where == "page 2 item 1"
    assert "has no `id`" in rejected.reason
    assert b"buyer5@example.com" in rejected.raw


def test_a_response_without_the_list_of_items_names_the_path_to_set(api: JsonApi) -> None:
    spec = source(api, "page")
    assert spec.http is not None
    spec = spec.model_copy(update={"http": spec.http.model_copy(update={"items": "results"})})
    with pytest.raises(Unavailable, match="no list of items at `results`"):
        read(spec)


def test_an_api_that_ignores_the_page_parameter_is_not_read_forever(api: JsonApi) -> None:
    spec = source(api, "page")
    assert spec.http is not None
    paging = spec.http.pagination.model_copy(update={"param": "p"})  # the API wants `page`
    spec = spec.model_copy(update={"http": spec.http.model_copy(update={"pagination": paging})})
    with pytest.raises(Unavailable, match=r"page 2 of .* repeats the page before it"):
        read(spec)

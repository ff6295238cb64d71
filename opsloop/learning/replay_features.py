"""The events a replay reads, and the features it computes from them for many triggers at once.

The events sit in one Polars frame sorted by subject, time and id, with a sortable integer key
per (subject, time). The events a feature counts for a trigger are then the rows between two
binary searches — the start of its window and the trigger's time — found for every trigger in
one vectorised call. `where` conditions run through the same compiled expression as live, once
per distinct value they read (a page path, an event type), not once per event.

As-of semantics are those of `reasoning.features`: only events at or before the trigger count,
a `within` window ends at the trigger's time and excludes its start, and ties in time are
ordered by event id. Entity traits are rebuilt as they stood when the trigger was stored: the
trait patches of the subject's events merged in the order they were stored (event id), up to
and including the trigger itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import polars as pl

from opsloop.core.expressions import CompiledExpression, ExpressionError, normalize
from opsloop.core.key_paths import walk
from opsloop.reasoning.compiler import CompiledFeature
from opsloop.store.backtests import SAFE_KEY
from opsloop.store.events import merge_patch

US = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(at: datetime) -> int:
    """A time as microseconds since the epoch, exactly (no float on the way)."""
    return duration(at - EPOCH)


def moment(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def duration(delta: timedelta) -> int:
    """A duration in microseconds, exactly."""
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


# --- where conditions ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WherePlan:
    """A `where` that reads only the event's type, source and named payload keys: it can be
    run once per distinct combination of those values."""

    keys: tuple[str, ...]
    source: bool
    paths: tuple[tuple[str, ...], ...]


STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`")
INDEXING = re.compile(r"[\w)\]]\s*\[|[$#]")


def where_plan(where: CompiledExpression | None) -> WherePlan | None:
    if where is None:
        return WherePlan((), False, ())
    if INDEXING.search(STRING.sub('""', where.text)):
        return None  # `payload["a b"]`, closures: read the whole payload, per event
    keys: list[str] = []
    paths: list[tuple[str, ...]] = []
    source = False
    for name in where.names:
        parts = tuple(name.split("."))
        if name == "type":
            continue
        if name == "source":
            source = True
        elif parts[0] == "payload" and len(parts) > 1 and all(SAFE_KEY.match(p) for p in parts):
            keys.append(parts[1])
            paths.append(parts[1:])
        else:
            return None  # the whole payload, or occurred_at: per event
    return WherePlan(tuple(dict.fromkeys(keys)), source, tuple(paths))


@dataclass
class History:
    """The events a backtest read from the ledger, prepared once and shared by the versions
    replayed.

    `events` is sorted by subject, time and id and has `code` (a number per subject), `key`
    (`code * span + rank of t`: sorts like (subject, time), so one binary search finds a
    subject's events up to a time) and the columns `store.backtests.read_history` gives.
    """

    events: pl.DataFrame
    times: pl.Series
    """Every distinct event time, sorted: the ranks behind `key`."""
    span: int
    patches: pl.DataFrame
    """Events that carry traits: `code`, `id`, `traits`, sorted by subject and id."""
    end: int | None
    """The latest event time read (µs): an outcome window still open then is `open`."""
    masks: dict[tuple[Any, ...], pl.Series] = field(default_factory=dict)
    """`where` results by (event types, condition), shared by the versions replayed."""
    computed: dict[tuple[str, str], Any] = field(default_factory=dict)
    """What depends only on the trigger definition — the triggers, their traits, each
    feature's values — by (trigger definition, what), shared likewise."""
    memo: dict[str, dict[Any, Any]] = field(default_factory=dict)
    """Expression results by expression text, then by the values it read."""
    timezone: str = "UTC"
    """The business's time zone: a schedule without its own runs in it."""

    @property
    def height(self) -> int:
        return self.events.height

    def at_or_before(self, codes: pl.Series, times: pl.Series) -> pl.Series:
        """Query keys: a search with side="right" counts the events up to these times."""
        ranks = self.times.search_sorted(times, side="right").cast(pl.Int64)
        return codes * self.span + ranks - 1

    def before(self, codes: pl.Series, times: pl.Series) -> pl.Series:
        """Query keys: a search with side="right" counts the events strictly before these."""
        ranks = self.times.search_sorted(times, side="left").cast(pl.Int64)
        return codes * self.span + ranks - 1


def prepare(frame: pl.DataFrame) -> History:
    """Sort and key the frame `store.backtests.read_history` returned."""
    coded = frame.with_columns(code=pl.col("subject").cast(pl.Categorical).to_physical())
    coded = coded.with_columns(pl.col("code").cast(pl.Int64)).sort("code", "t", "id")
    times = coded.get_column("t").unique().sort()
    span = times.len() + 1
    events = coded.with_columns(
        key=pl.col("code") * span + times.search_sorted(coded.get_column("t"), side="left")
    )
    patches = (
        events.filter(pl.col("traits").is_not_null())
        .select("code", "id", "traits")
        .sort("code", "id")
    )
    # Patches are all that is read of traits: a column less in every copy made below.
    events = events.drop("traits")
    end = coded.get_column("t").max()
    return History(events, times, span, patches, end if isinstance(end, int) else None)


# --- features --------------------------------------------------------------------------------


def event_feature(
    history: History,
    feature: CompiledFeature,
    triggers: pl.DataFrame,
    at_trigger: pl.Series,
    subject_start: pl.Series,
) -> list[Any]:
    """One event feature's value for every trigger (None where it has none)."""
    # `subject` is the widest column and features never read it: left out of the copy.
    rows = (
        history.events.lazy()
        .filter(pl.col("type").is_in(list(feature.event_types)))
        .select(pl.exclude("subject"))
        .collect()
    )
    if feature.where is not None:
        rows = rows.filter(_where_mask(history, feature, rows))
    kind = feature.kind
    values: list[Any] | None = None
    if feature.field_path:
        values = _field_values(feature, rows)
        if kind in ("sum", "avg", "min", "max"):
            # Only numbers count; keep the rows that have one.
            numeric = [_is_number(value) for value in values]
            rows = rows.filter(pl.Series(numeric, dtype=pl.Boolean))
            values = [value for value, keep in zip(values, numeric, strict=True) if keep]
    keys = rows.get_column("key")
    hi = keys.search_sorted(at_trigger, side="right").cast(pl.Int64)
    if feature.within is not None:
        start = triggers.get_column("t") - duration(feature.within)
        lo = keys.search_sorted(
            history.at_or_before(triggers.get_column("code"), start), side="right"
        ).cast(pl.Int64)
    else:
        lo = keys.search_sorted(subject_start, side="right").cast(pl.Int64)
    if kind == "count":
        return (hi - lo).to_list()
    his, los = hi.to_list(), lo.to_list()
    if kind == "days_since":
        moments = rows.get_column("t").to_list()
        return [
            # as features.py: (at - last).total_seconds() / 86400, to two decimals
            round((at - moments[h - 1]) / US / 86400, 2) if h > low else None
            for at, h, low in zip(triggers.get_column("t").to_list(), his, los, strict=True)
        ]
    assert values is not None
    if kind == "last":
        return [values[h - 1] if h > low else None for h, low in zip(his, los, strict=True)]
    out: list[Any] = []
    for h, low in zip(his, los, strict=True):
        numbers = values[low:h]
        if kind == "sum":
            out.append(normalize(float(sum(numbers))))
        elif not numbers:
            out.append(None)
        elif kind == "avg":
            out.append(normalize(round(sum(numbers) / len(numbers), 6)))
        elif kind == "min":
            out.append(min(numbers))
        else:
            out.append(max(numbers))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


FLAT_KEY = re.compile(r"^[A-Za-z0-9_\-.]+$")
"""A dotted payload key (`visits.last.7d`, a CSV column) read by name in SQL: safe inside the
quoted JSON path (`$."visits.last.7d"`) SQLite is given, and a bound parameter in PostgreSQL."""


def field_keys(feature: CompiledFeature) -> tuple[str, ...] | None:
    """The top-level payload keys that hold the feature's `field`, as `_field_values` reads
    them: the whole name as one key first (`visits.last.7d`), then the first key of the nested
    path (`visits`). None when one of them cannot be read by name (the whole payload is read)."""
    path = feature.path
    if path is None or not path.parts:
        return None
    keys = (path.parts[0],) if path.flat is None else (path.flat, path.parts[0])
    if not SAFE_KEY.match(keys[-1]) or (path.flat is not None and not FLAT_KEY.match(path.flat)):
        return None
    return keys


def _field_values(feature: CompiledFeature, rows: pl.DataFrame) -> list[Any]:
    """The feature's `field` for each row, decoded once per distinct JSON text; read as
    `reasoning.features` reads it (`KeyPath.read`: the flat key first, then the nested path)."""
    path = feature.path
    assert path is not None
    keys = field_keys(feature)
    if keys is None or any(f"k:{key}" not in rows.columns for key in keys):
        return _decoded(rows.get_column("payload").to_list(), path.read)
    rest = path.parts[1:]
    nested = _decoded(rows.get_column(f"k:{path.parts[0]}").to_list(), lambda v: walk(v, rest))
    if path.flat is None:
        return nested
    # A key that is there holds JSON text (`null` included); a missing one is SQL NULL.
    flat = rows.get_column(f"k:{path.flat}").to_list()
    found = _decoded(flat, lambda value: value)
    return [f if text is not None else n for text, f, n in zip(flat, found, nested, strict=True)]


def _decoded(texts: list[str | None], read: Callable[[Any], Any]) -> list[Any]:
    decoded: dict[str | None, Any] = {None: None}
    for text in set(texts):
        if text is not None:
            decoded[text] = read(orjson.loads(text))
    return [decoded[text] for text in texts]


def _where_mask(history: History, feature: CompiledFeature, rows: pl.DataFrame) -> pl.Series:
    """Does each row pass the feature's `where`? As `reasoning.features._where`: an event the
    condition cannot be checked on does not match."""
    where = feature.where
    assert where is not None
    cache_key = (tuple(sorted(feature.event_types)), where.text)
    if cache_key in history.masks:
        return history.masks[cache_key]
    plan = where_plan(where)
    if plan is not None:
        columns = ["type", *(["source"] if plan.source else []), *(f"k:{k}" for k in plan.keys)]
        distinct = rows.select(columns).unique()
        matched = [
            _passes(where, _history_context(dict(zip(columns, values, strict=True)), plan))
            for values in distinct.iter_rows()
        ]
        table = distinct.with_columns(_matched=pl.Series(matched, dtype=pl.Boolean))
        joined = rows.select(columns).join(
            table, on=columns, how="left", nulls_equal=True, maintain_order="left"
        )
        mask = joined.get_column("_matched")
    else:
        mask = pl.Series(_row_by_row(where, rows), dtype=pl.Boolean)
    history.masks[cache_key] = mask
    return mask


def _history_context(values: dict[str, Any], plan: WherePlan) -> dict[str, Any]:
    payload = {
        key: orjson.loads(values[f"k:{key}"]) for key in plan.keys if values[f"k:{key}"] is not None
    }
    context = {"type": values["type"], "payload": payload}
    if plan.source:
        context["source"] = values["source"]
    return context


def _row_by_row(where: CompiledExpression, rows: pl.DataFrame) -> list[bool]:
    """`where` on each event with its whole payload (conditions that index into it or read
    its time): the slow path, still one pass and no queries."""
    reads_time = "occurred_at" in where.roots
    results: dict[tuple[Any, ...], bool] = {}
    out: list[bool] = []
    for type_, source, payload, at in zip(
        rows.get_column("type").to_list(),
        rows.get_column("source").to_list(),
        rows.get_column("payload").to_list(),
        rows.get_column("t").to_list(),
        strict=True,
    ):
        key = (type_, source, payload, at if reads_time else None)
        if key not in results:
            context: dict[str, Any] = {
                "type": type_,
                "source": source,
                "payload": orjson.loads(payload) if payload else {},
            }
            if reads_time:
                context["occurred_at"] = moment(at).isoformat()
            results[key] = _passes(where, context)
        out.append(results[key])
    return out


def _passes(where: CompiledExpression, context: dict[str, Any]) -> bool:
    try:
        return where.truth(context)
    except ExpressionError:
        return False


class Traits:
    """Each trigger's entity traits: the subject's trait patches stored up to and including
    the trigger (event id order, as the live merge applies them), merged."""

    def __init__(self, history: History, triggers: pl.DataFrame) -> None:
        patches = history.patches
        self.texts: list[str] = patches.get_column("traits").to_list()
        self.decoded: dict[int, dict[str, Any]] = {}
        self.merged: dict[tuple[int, int], dict[str, Any]] = {}
        ids = patches.get_column("id").unique().sort()
        span = ids.len() + 1
        keys = patches.get_column("code") * span + ids.search_sorted(
            patches.get_column("id"), side="left"
        ).cast(pl.Int64)
        codes = triggers.get_column("code")
        upto = codes * span + ids.search_sorted(triggers.get_column("id"), side="right").cast(
            pl.Int64
        )
        self.start = keys.search_sorted(codes * span - 1, side="right").to_list()
        self.stop = keys.search_sorted(upto - 1, side="right").to_list()

    def at(self, index: int) -> dict[str, Any]:
        start, stop = self.start[index], self.stop[index]
        if start == stop:
            return {}
        found = self.merged.get((start, stop))
        if found is None:
            # Extend the longest prefix of the subject's patches already merged.
            done = stop - 1
            while done > start and (start, done) not in self.merged:
                done -= 1
            found = self.merged.get((start, done), {})
            for position in range(done, stop):
                found = merge_patch(found, self._patch(position))
            self.merged[(start, stop)] = found
        return found

    def _patch(self, position: int) -> dict[str, Any]:
        patch = self.decoded.get(position)
        if patch is None:
            patch = self.decoded[position] = orjson.loads(self.texts[position])
        return patch

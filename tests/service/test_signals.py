"""The pipeline every declared source's records take: a bad record is quarantined with where it
came from and the rest go on; contracts normalize; repeats by id or by content are stored once;
the quality report adds it all up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.core.errors import InvalidInput
from opsloop.core.sources import SourceSpec
from opsloop.perception.records import Record
from opsloop.service import OpsLoop
from opsloop.service.ingest.contracts import apply_contracts
from opsloop.service.ingest.signals import take_records
from tests.conftest import Clock, OpsFactory

ORDERS = """\
name: shop-db
kind: sql
timezone: Europe/Lisbon
region: PT
sql:
  url: sqlite://
  query: SELECT * FROM orders
mapping:
  type: order.completed
  subject: "'customer:' + email"
  occurred_at: placed_at
  payload:
    order_id: id
    email: email
    phone: phone
    amount: total
    currency: currency
"""
CONTRACT = """\
contracts:
  order.completed:
    fields:
      order_id: {type: string, required: true}
      email: {type: email, required: true}
      phone: {type: phone}
      amount: {type: money, currency: currency, required: true}
      currency: {type: currency, required: true}
"""


def row(n: int, **changes: object) -> Record:
    data = {
        "id": f"o-{n}",
        "email": f" Cliente{n}@Example.PT ",
        "phone": "912 345 678",
        "total": "19.90",
        "currency": "eur",
        "placed_at": "2026-03-01 09:30:00",  # the day before the tests' clock
        **changes,
    }
    return Record(data=data, where=f"row {n}", key=f"o-{n}")


@pytest.fixture
def shop(make_ops: OpsFactory, database_url: str) -> tuple[OpsLoop, SourceSpec]:
    ops = make_ops(database_url)
    ops.ingest.add_source(ORDERS, "shop-db.yaml", actor="test")
    apply_contracts(ops.ctx, CONTRACT, "contracts.yaml", actor="test")
    return ops, ops.ingest.get_source("shop-db").spec


def test_a_bad_row_is_held_with_where_it_came_from_and_the_rest_are_stored_clean(
    shop: tuple[OpsLoop, SourceSpec],
) -> None:
    ops, spec = shop
    taken = take_records(ops.ctx, spec, [row(1), row(2, email="not-an-email"), row(3)])

    assert (taken.stored, taken.rejected) == (2, 1)
    [held] = ops.ingest.quarantine_items()
    assert "row 2: payload.email" in held["reason"]
    assert held["cannot_replay"] is None

    stored = ops.ingest.list_events(type="order.completed")
    event = next(e for e in stored if e["payload"]["order_id"] == "o-1")
    assert event["payload"]["email"] == "cliente1@example.pt"
    assert event["payload"]["phone"] == "+351912345678"
    assert event["payload"]["currency"] == "EUR"
    assert event["payload"]["amount"] == 19.9
    # 09:30 in Lisbon in March (before summer time) is 09:30 UTC.
    assert event["occurred_at"] == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def test_a_record_seen_again_is_a_duplicate_and_counted(shop: tuple[OpsLoop, SourceSpec]) -> None:
    ops, spec = shop
    take_records(ops.ctx, spec, [row(1), row(2)])
    again = take_records(ops.ctx, spec, [row(1), row(2), row(3)])
    assert (again.stored, again.duplicates) == (1, 2)
    quality = ops.ingest.source_quality("shop-db")
    assert (quality.received, quality.stored, quality.duplicates) == (5, 3, 2)


def test_a_push_refuses_the_whole_call_when_a_record_is_bad(
    shop: tuple[OpsLoop, SourceSpec],
) -> None:
    ops, spec = shop
    with pytest.raises(InvalidInput, match=r"payload\.amount"):
        take_records(ops.ctx, spec, [row(1, total="lots")], whole=True)
    assert ops.ingest.list_events(type="order.completed") == []
    assert len(ops.ingest.quarantine_items()) == 1


def test_the_same_content_within_the_window_is_stored_once(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock
) -> None:
    ops = make_ops(sqlite_url)
    ops.ingest.add_source(
        "name: kiosk\nkind: webhook\ndedupe_window: 10m\n", "kiosk.yaml", actor="test"
    )
    spec = ops.ingest.get_source("kiosk").spec
    now = clock()

    def visit(at: datetime) -> Record:
        event = {
            "type": "visit.checked_in",
            "subject": "customer:77",
            "occurred_at": at.isoformat(),
            "payload": {"desk": 2},
        }
        return Record(data=event, where="the delivery")

    first = take_records(ops.ctx, spec, [visit(now)])
    # The kiosk sends the check-in again a few minutes later, with the same time in it.
    repeat = take_records(ops.ctx, spec, [visit(now)])
    later = take_records(ops.ctx, spec, [visit(now + timedelta(hours=3))])
    assert (first.stored, repeat.stored, repeat.duplicates, later.stored) == (1, 0, 1, 1)
    assert len(ops.ingest.list_events(type="visit.checked_in")) == 2


def test_the_quality_report_groups_violations_and_counts_late_events(
    shop: tuple[OpsLoop, SourceSpec], clock: Clock
) -> None:
    ops, spec = shop
    now = clock()
    fresh = (now - timedelta(minutes=1)).astimezone(spec.zone).strftime("%Y-%m-%d %H:%M:%S")
    records = [row(n, placed_at=fresh) for n in range(1, 7)]
    records += [row(7, email="nope"), row(8, email="also-bad"), row(9, currency="XXY")]
    records += [row(10)]  # placed the day before: late
    take_records(ops.ctx, spec, records)

    quality = ops.ingest.source_quality("shop-db")
    assert quality.received == 10
    assert quality.rejected == 3
    assert quality.valid_share == pytest.approx(0.7)
    assert quality.late == 1
    top = quality.top_violations[0]
    assert (top.field, top.count) == ("payload.email", 2)
    assert "payload.currency" in {v.field for v in quality.top_violations}


def test_the_quality_command_prints_the_report(
    make_ops: OpsFactory,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("OPSLOOP_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    ops = make_ops(database_url, use_clock=False)
    ops.ingest.add_source(ORDERS, "shop-db.yaml", actor="test")
    apply_contracts(ops.ctx, CONTRACT, "contracts.yaml", actor="test")
    spec = ops.ingest.get_source("shop-db").spec
    take_records(ops.ctx, spec, [row(1), row(2, email="nope"), row(1)])

    done = CliRunner().invoke(app, ["source", "quality", "shop-db"])
    assert done.exit_code == 0, done.output
    assert "received 3; valid 66.7% (1 rejected, kept in quarantine)" in done.output
    assert "stored 1; duplicates 1; ignored 0; late 1 (100.0%)" in done.output
    assert "payload.email" in done.output
    assert "'nope'" in done.output

    unknown = CliRunner().invoke(app, ["source", "quality", "nowhere"])
    assert unknown.exit_code == 1
    assert "no source 'nowhere'" in unknown.output

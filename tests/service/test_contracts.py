"""Applying contracts on SQLite and PostgreSQL (a version per changed event type, unchanged
ones left alone, each change audited), removing them, which contract checks which event, and
the same from the command line and the JSON API."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.core.errors import NotFound, PlaybookInvalid
from opsloop.perception.records import Record
from opsloop.service import OpsLoop
from opsloop.service.ingest.contracts import (
    active_contracts,
    apply_contracts,
    builtin_contracts,
    contract_for,
    get_contract,
    list_contracts,
    remove_contract,
)
from opsloop.service.ingest.signals import take_records
from opsloop.store.schema import audit
from tests.conftest import OpsFactory, Serve, eventually

ORDERS = """\
contracts:
  order.completed:
    fields:
      amount: {type: money, currency: currency, required: true}
      currency: currency
  lead.created:
    fields:
      email: {type: email, required: true}
"""

runner = CliRunner()


def statuses(ops: OpsLoop, text: str, file: str = "shop.yaml") -> list[tuple[str, int, str]]:
    applied = apply_contracts(ops.ctx, text, file, actor="ana")
    return [(item.event_type, item.version, item.status) for item in applied]


def test_apply_makes_a_version_per_changed_type_and_leaves_the_rest(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    assert statuses(ops, ORDERS) == [
        ("order.completed", 1, "created"),
        ("lead.created", 1, "created"),
    ]
    # Comments and layout are not rules: the same rules are no new version.
    assert statuses(
        ops, "# again\n" + ORDERS.replace("currency: currency\n", "currency: {type: currency}\n")
    ) == [
        ("order.completed", 1, "unchanged"),
        ("lead.created", 1, "unchanged"),
    ]
    changed = ORDERS.replace("email: {type: email, required: true}", "email: email")
    assert statuses(ops, changed) == [
        ("order.completed", 1, "unchanged"),
        ("lead.created", 2, "updated"),
    ]

    shown = get_contract(ops.ctx, "lead.created")
    assert (shown["origin"], shown["version"]) == ("applied", 2)
    assert shown["spec"] == {"fields": {"email": {"type": "email"}}}
    assert shown["yaml"] == "contracts:\n  lead.created:\n    fields:\n      email: email\n"
    assert [(v["version"], v["active"], v["applied_by"]) for v in shown["versions"]] == [
        (2, True, "ana"),
        (1, False, "ana"),
    ]
    assert not active_contracts(ops.ctx)["lead.created"].fields["email"].required

    with ops.db.read() as conn:
        trail = conn.execute(
            sa.select(audit.c.verb, audit.c.object_id, audit.c.actor, audit.c.detail)
            .where(audit.c.object_type == "contract")
            .order_by(audit.c.id)
        ).all()
    assert [tuple(row) for row in trail] == [
        ("contract.created", "order.completed", "ana", {"version": 1, "file": "shop.yaml"}),
        ("contract.created", "lead.created", "ana", {"version": 1, "file": "shop.yaml"}),
        ("contract.updated", "lead.created", "ana", {"version": 2, "file": "shop.yaml"}),
    ]


def test_a_bad_file_applies_nothing(make_ops: OpsFactory, database_url: str) -> None:
    ops = make_ops(database_url)
    broken = ORDERS.replace("type: email", "type: e-mail")
    with pytest.raises(PlaybookInvalid) as caught:
        apply_contracts(ops.ctx, broken, "shop.yaml", actor="ana")
    assert str(caught.value).startswith("shop.yaml:8: contracts.lead.created.fields.email.type:")
    assert active_contracts(ops.ctx) == {}


def test_an_apply_elsewhere_is_seen_within_a_second(make_ops: OpsFactory, sqlite_url: str) -> None:
    server = make_ops(sqlite_url)
    assert active_contracts(server.ctx) == {}
    cli = make_ops(sqlite_url)  # another process: its own database handle and cache
    statuses(cli, ORDERS)
    eventually(lambda: "lead.created" in active_contracts(server.ctx), timeout=3)


def test_built_in_contracts_check_what_built_in_mappings_make(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url)
    builtin = builtin_contracts()
    for event_type in (
        "order.completed",
        "order.refunded",
        "meeting.booked",
        "ticket.created",
        "contact.created",
    ):
        assert event_type in builtin
    assert (
        contract_for(ops.ctx, "order.completed", builtin_mapping=True) is builtin["order.completed"]
    )
    # Events a sender shapes itself are held only to contracts someone applied.
    assert contract_for(ops.ctx, "order.completed", builtin_mapping=False) is None
    statuses(ops, ORDERS)
    for made_by_builtin in (True, False):
        mine = contract_for(ops.ctx, "order.completed", builtin_mapping=made_by_builtin)
        assert mine is not None
        assert mine.fields["amount"].required  # the applied contract replaces the built-in

    rows = {row["event_type"]: row for row in list_contracts(ops.ctx)}
    assert (rows["order.completed"]["origin"], rows["order.completed"]["version"]) == (
        "applied",
        1,
    )
    assert (rows["meeting.booked"]["origin"], rows["meeting.booked"]["version"]) == (
        "built-in",
        None,
    )
    shown = get_contract(ops.ctx, "meeting.booked")
    assert shown["origin"] == "built-in"
    assert shown["yaml"].startswith("contracts:\n  meeting.booked:\n")
    with pytest.raises(
        NotFound, match=r"no contract for 'meeting\.boked'; did you mean 'meeting\.booked'"
    ):
        get_contract(ops.ctx, "meeting.boked")


LEADS_SOURCE = """\
name: crm-db
kind: sql
sql:
  url: sqlite://
  query: SELECT * FROM leads
mapping:
  type: lead.created
  subject: "'lead:' + id"
  payload:
    email: email
"""


def lead(key: str, email: str) -> Record:
    return Record(data={"id": key, "email": email}, where=f"row {key}", key=key)


def test_a_removed_contract_no_longer_refuses_events_and_reapplying_makes_the_next_version(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    ops.ingest.add_source(LEADS_SOURCE, "crm-db.yaml", actor="test")
    spec = ops.ingest.get_source("crm-db").spec
    statuses(ops, ORDERS)
    refused = take_records(ops.ctx, spec, [lead("l-1", "not-an-email")])
    assert (refused.stored, refused.rejected) == (0, 1)

    assert remove_contract(ops.ctx, "lead.created", actor="bo") == 1
    taken = take_records(ops.ctx, spec, [lead("l-2", "not-an-email")])
    assert (taken.stored, taken.rejected) == (1, 0)
    assert "lead.created" not in active_contracts(ops.ctx)
    assert "lead.created" not in {row["event_type"] for row in list_contracts(ops.ctx)}
    # The history stays readable; nothing is in force.
    shown = get_contract(ops.ctx, "lead.created")
    assert (shown["origin"], shown["version"]) == ("removed", None)
    assert [(v["version"], v["active"]) for v in shown["versions"]] == [(1, False)]
    with pytest.raises(NotFound, match=r"no applied contract for 'lead\.created'"):
        remove_contract(ops.ctx, "lead.created", actor="bo")

    # The same rules again are a new version in force, not a clash with the removed one.
    assert statuses(ops, ORDERS) == [
        ("order.completed", 1, "unchanged"),
        ("lead.created", 2, "created"),
    ]
    again = take_records(ops.ctx, spec, [lead("l-3", "not-an-email")])
    assert (again.stored, again.rejected) == (0, 1)

    with ops.db.read() as conn:
        trail = conn.execute(
            sa.select(audit.c.verb, audit.c.actor, audit.c.detail)
            .where(audit.c.object_type == "contract", audit.c.object_id == "lead.created")
            .order_by(audit.c.id)
        ).all()
    assert [tuple(row) for row in trail] == [
        ("contract.created", "ana", {"version": 1, "file": "shop.yaml"}),
        ("contract.removed", "bo", {"version": 1}),
        ("contract.created", "ana", {"version": 2, "file": "shop.yaml"}),
    ]


def test_removing_brings_back_the_built_in_contract_and_unknown_types_are_not_found(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    statuses(ops, ORDERS)
    remove_contract(ops.ctx, "order.completed", actor="bo")
    builtin = builtin_contracts()["order.completed"]
    assert contract_for(ops.ctx, "order.completed", builtin_mapping=True) is builtin
    assert contract_for(ops.ctx, "order.completed", builtin_mapping=False) is None
    assert get_contract(ops.ctx, "order.completed")["origin"] == "built-in"

    with pytest.raises(
        NotFound, match=r"no applied contract for 'lead\.create'; did you mean 'lead\.created'"
    ):
        remove_contract(ops.ctx, "lead.create", actor="bo")
    with pytest.raises(NotFound, match="its built-in contract cannot be removed"):
        remove_contract(ops.ctx, "meeting.booked", actor="bo")


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPSLOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"


def test_the_cli_validates_applies_lists_and_shows(data_dir: Path, tmp_path: Path) -> None:
    file = tmp_path / "shop.yaml"
    file.write_text(ORDERS)
    checked = runner.invoke(app, ["contract", "validate", str(file)])
    assert checked.exit_code == 0, checked.output
    assert "OK order.completed: 2 fields" in checked.output

    first = runner.invoke(app, ["contract", "apply", str(file)])
    assert first.exit_code == 0, first.output
    assert "order.completed: created, version 1" in first.output
    again = runner.invoke(app, ["contract", "apply", str(file)])
    assert "lead.created: unchanged at version 1" in again.output

    listing = runner.invoke(app, ["contract", "list"])
    assert listing.exit_code == 0, listing.output
    assert "lead.created" in listing.output
    assert "built-in" in listing.output  # e.g. meeting.booked

    shown = runner.invoke(app, ["contract", "show", "order.completed"])
    assert shown.exit_code == 0, shown.output
    assert "version 1 (replaces the built-in one)" in shown.output
    assert "amount: {type: money, currency: currency, required: true}" in shown.output
    as_json = runner.invoke(app, ["contract", "show", "lead.created", "--json"])
    assert '"origin": "applied"' in as_json.output

    missing = runner.invoke(app, ["contract", "show", "nothing.here"])
    assert missing.exit_code == 1
    assert "no contract for 'nothing.here'" in missing.output


def test_the_cli_removes_a_contract(data_dir: Path, tmp_path: Path) -> None:
    file = tmp_path / "shop.yaml"
    file.write_text(ORDERS)
    assert runner.invoke(app, ["contract", "apply", str(file)]).exit_code == 0

    removed = runner.invoke(app, ["contract", "remove", "order.completed"])
    assert removed.exit_code == 0, removed.output
    assert "order.completed: removed version 1" in removed.output
    assert "The built-in contract checks events built-in mappings make again." in removed.output
    listing = runner.invoke(app, ["contract", "list"])
    assert "lead.created" in listing.output
    shown = runner.invoke(app, ["contract", "show", "order.completed"])
    assert "order.completed: built-in" in shown.output

    lead_removed = runner.invoke(app, ["contract", "remove", "lead.created"])
    assert lead_removed.output.strip() == "lead.created: removed version 1"
    history = runner.invoke(app, ["contract", "show", "lead.created"])
    assert history.exit_code == 0, history.output
    assert "removed, no contract in force" in history.output

    again = runner.invoke(app, ["contract", "remove", "lead.created"])
    assert again.exit_code == 1
    assert "no applied contract for 'lead.created'" in again.output
    reapplied = runner.invoke(app, ["contract", "apply", str(file)])
    assert "lead.created: created, version 2" in reapplied.output


def test_the_cli_names_the_file_and_line_of_a_mistake(data_dir: Path, tmp_path: Path) -> None:
    file = tmp_path / "shop.yaml"
    file.write_text(
        ORDERS.replace("required: true}\n      currency", "requird: true}\n      currency")
    )
    for command in ("validate", "apply"):
        result = runner.invoke(app, ["contract", command, str(file)])
        assert result.exit_code == 1
        assert f"{file}:4: contracts.order.completed.fields.amount.requird: unknown key" in (
            " ".join(result.output.split())
        )


# --- the JSON API ----------------------------------------------------------------------------


def test_the_api_applies_with_admin_and_reads_with_read(
    make_ops: OpsFactory, database_url: str, serve: Serve
) -> None:
    ops = make_ops(database_url)
    server = serve(ops)
    reader_token = ops.accounts.create_token("reader", "read", actor="tests").token
    reader = {"Authorization": f"Bearer {reader_token}"}
    with server.client() as admin:
        refused = admin.put("/api/contracts", content=ORDERS, headers=reader)
        assert refused.status_code == 403

        created = admin.put("/api/contracts?file=shop.yaml", content=ORDERS)
        assert created.status_code == 201, created.text
        assert created.json()["contracts"] == [
            {"event_type": "order.completed", "version": 1, "status": "created"},
            {"event_type": "lead.created", "version": 1, "status": "created"},
        ]
        same = admin.put("/api/contracts", content=ORDERS)
        assert same.status_code == 200
        assert {c["status"] for c in same.json()["contracts"]} == {"unchanged"}

        bad = admin.put(
            "/api/contracts?file=shop.yaml", content=ORDERS.replace("type: email", "type: emial")
        )
        assert bad.status_code == 422
        (problem,) = bad.json()["problems"]
        assert (problem["file"], problem["line"], problem["field"]) == (
            "shop.yaml",
            8,
            "contracts.lead.created.fields.email.type",
        )
        assert "did you mean 'email'?" in problem["message"]

        listed = admin.get("/api/contracts", headers=reader)
        assert listed.status_code == 200
        origins = {row["event_type"]: row["origin"] for row in listed.json()["contracts"]}
        assert origins["lead.created"] == "applied"
        assert origins["ticket.created"] == "built-in"

        one = admin.get("/api/contracts/order.completed", headers=reader)
        assert one.status_code == 200
        assert one.json()["versions"][0]["version"] == 1
        assert admin.get("/api/contracts/nothing.here").status_code == 404
        assert admin.get("/api/contracts", headers={"Authorization": ""}).status_code == 401


def test_the_api_removes_with_admin(make_ops: OpsFactory, database_url: str, serve: Serve) -> None:
    ops = make_ops(database_url)
    statuses(ops, ORDERS)
    server = serve(ops)
    admin = {"Authorization": f"Bearer {ops.accounts.create_token('a', 'admin', actor='t').token}"}
    reader = {"Authorization": f"Bearer {ops.accounts.create_token('r', 'read', actor='t').token}"}
    with server.client() as client:
        assert client.delete("/api/contracts/lead.created", headers=reader).status_code == 403
        removed = client.delete("/api/contracts/lead.created", headers=admin)
        assert removed.status_code == 200, removed.text
        assert removed.json() == {"event_type": "lead.created", "version": 1, "removed": True}
        listed = client.get("/api/contracts", headers=reader).json()["contracts"]
        assert "lead.created" not in {row["event_type"] for row in listed}
        shown = client.get("/api/contracts/lead.created", headers=reader).json()
        assert (shown["origin"], shown["versions"][0]["active"]) == ("removed", False)

        missing = client.delete("/api/contracts/lead.created", headers=admin)
        assert missing.status_code == 404
        assert "no applied contract for 'lead.created'" in missing.json()["message"]
        unknown = client.delete("/api/contracts/nothing.here", headers=admin)
        assert unknown.status_code == 404

        reapplied = client.put("/api/contracts", content=ORDERS, headers=admin)
        assert {"event_type": "lead.created", "version": 2, "status": "created"} in (
            reapplied.json()["contracts"]
        )

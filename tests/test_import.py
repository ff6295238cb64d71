"""`opsloop import`: a historical CSV export becomes events, outcome events and traits, without
deciding anything; bad rows are quarantined by line; importing again stores nothing new."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.core.errors import InvalidInput
from opsloop.perception.history import (
    HistorySpec,
    TimeReader,
    cell_value,
    outcome_of,
    sniff_delimiter,
)
from opsloop.service import OpsLoop
from tests.conftest import ROOT, Clock, OpsFactory, lead_playbook

LEADS = (
    "lead_id,signed_up,company_size,plan,newsletter,zip,won,notes\n"
    "L1,2026-01-05,40,pro,yes,01234,TRUE,\n"
    "L2,2026-01-06 10:30,5,free,no,,FALSE,called twice\n"
    "L3,last tuesday,7,free,no,,FALSE,\n"
    ",2026-01-07,9,free,no,,,\n"
    "L5,2026-01-08T09:00:00Z,12,pro,TRUE,,maybe,\n"
    "\n"
    "L6,2026-01-09,,,,,,\n"
)
LEAD_SPEC = HistorySpec(
    kind="lead",
    id_column="lead_id",
    time_column="signed_up",
    event_type="lead.created",
    outcome_column="won",
    success_event="deal.won",
    failure_event="deal.lost",
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def events_of(ops: OpsLoop, subject: str) -> list[dict[str, Any]]:
    return sorted(
        ops.ingest.list_events(subject=subject), key=lambda e: (e["occurred_at"], e["id"])
    )


@pytest.fixture
def leads(tmp_path: Path) -> Path:
    path = tmp_path / "leads.csv"
    path.write_text(LEADS)
    return path


def test_rows_become_events_traits_and_later_outcome_events(
    make_ops: OpsFactory, database_url: str, leads: Path
) -> None:
    ops = make_ops(database_url)
    report = ops.ingest.import_history(leads, LEAD_SPEC)
    assert (report.rows, report.refused, report.stored, report.duplicates) == (6, 3, 5, 0)
    assert dict(report.stored_by_type) == {"lead.created": 3, "deal.won": 1, "deal.lost": 1}

    created, won = events_of(ops, "lead:L1")
    assert (created["type"], created["occurred_at"]) == ("lead.created", utc(2026, 1, 5))
    assert created["source"] == "import"
    expected = {"company_size": 40, "plan": "pro", "newsletter": True, "zip": "01234"}
    assert created["payload"] == expected, "no id, time or outcome column; empty cells left out"
    assert ops.ingest.get_entity("lead:L1")["traits"] == expected
    assert won["type"] == "deal.won"
    assert won["occurred_at"] == utc(2026, 1, 5, 0, 0, 1), "one second after the row"
    assert won["payload"] == {"column": "won", "value": True}

    created, lost = events_of(ops, "lead:L2")
    assert created["occurred_at"] == utc(2026, 1, 6, 10, 30)
    assert created["payload"]["notes"] == "called twice"
    assert created["payload"]["newsletter"] is False
    assert lost["type"] == "deal.lost"
    [only] = events_of(ops, "lead:L6")
    assert only["payload"] == {}, "an empty outcome is not known yet: no outcome event"


def test_bad_rows_are_quarantined_by_line_with_the_column_named(
    make_ops: OpsFactory, database_url: str, leads: Path
) -> None:
    ops = make_ops(database_url)
    report = ops.ingest.import_history(leads, LEAD_SPEC)
    assert [(p.line, p.message.split(":")[0]) for p in report.problems] == [
        (4, "signed_up"),
        (5, "lead_id"),
        (6, "won"),
    ]
    assert str(report.problems[0]) == (
        f"{leads}:4: signed_up: the time column 'last tuesday' is not a time OpsLoop recognizes "
        "(ISO 8601 such as 2026-01-10 or 2026-01-10T09:30:00Z, 10/01/2026, 10.01.2026, "
        "10 Jan 2026 …); give --time-format"
    )
    assert report.problems[1].message == "lead_id: the id column is empty"
    assert report.problems[2].message.startswith(
        "won: the outcome column: 'maybe' is neither yes (true, yes, 1, won, converted) nor no"
    )
    held = sorted(ops.ingest.list_quarantine(), key=lambda item: item["line"])
    assert [(item["file"], item["line"]) for item in held] == [
        (str(leads), 4),
        (str(leads), 5),
        (str(leads), 6),
    ]
    assert held[0]["body"] == "L3,last tuesday,7,free,no,,FALSE,"
    assert held[0]["errors"] == [{"field": "signed_up", "message": report.problems[0].message[11:]}]


def test_importing_the_same_file_again_stores_nothing_new(
    make_ops: OpsFactory, database_url: str, leads: Path, tmp_path: Path
) -> None:
    ops = make_ops(database_url)
    ops.ingest.import_history(leads, LEAD_SPEC)
    again = ops.ingest.import_history(leads, LEAD_SPEC, batch_size=2)
    assert (again.stored, again.duplicates, again.refused) == (0, 5, 3)
    assert len(ops.ingest.list_events(limit=500)) == 5

    # With an id column, the key is the row: the same rows re-exported in another order and
    # under another name are still the same rows.
    lines = LEADS.splitlines()
    reordered = tmp_path / "leads-march.csv"
    reordered.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    assert ops.ingest.import_history(reordered, LEAD_SPEC).stored == 0


def test_history_decides_nothing_even_for_an_auto_playbook_but_features_see_it(
    make_ops: OpsFactory, database_url: str, leads: Path, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("auto")])
    report = ops.ingest.import_history(leads, LEAD_SPEC)
    assert report.stored_by_type["lead.created"] == 3, "the playbook's trigger event"
    ops.run_jobs()
    assert ops.decide.list_decisions() == []
    assert ops.deliver.list_actions() == []
    assert ops.deliver.list_tasks() == []

    # A live event about an imported lead is decided as usual, on the imported profile.
    event = {"type": "demo.requested", "subject": "lead:L1", "traits": {"budget": 9000}}
    ops.ingest.body(json.dumps(event).encode())
    [decision] = ops.decide.list_decisions()
    detail = ops.decide.decision_detail(decision["id"])
    assert detail["inputs"]["features"]["company_size"] == 40


def test_history_skips_the_group_commit_writer_which_always_decides(
    make_ops: OpsFactory, database_url: str, leads: Path
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("recommend")])
    assert ops.ctx.committer is not None
    ops.ctx.committer.start()
    try:
        ops.ingest.import_history(leads, LEAD_SPEC)
    finally:
        ops.ctx.committer.stop()
    assert ops.decide.list_decisions() == []


def test_month_only_times_keep_the_file_order_within_each_month(
    make_ops: OpsFactory, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "sessions.csv"
    path.write_text(
        "Month,PageValues,Weekend,Revenue\n"
        "Feb,0,FALSE,FALSE\n"
        "Feb,12.5,TRUE,TRUE\n"
        "June,3,FALSE,FALSE\n"
        "Mar,0,FALSE,\n"
        "Jnu,0,FALSE,FALSE\n"
        "Feb,1,FALSE,FALSE\n"
    )
    spec = HistorySpec(
        kind="session",
        time_column="Month",
        time_format="%b",
        outcome_column="Revenue",
        year=2025,
        year_rollover="never",
    )
    ops = make_ops(database_url)
    report = ops.ingest.import_history(path, spec)
    assert (report.rows, report.refused) == (6, 1)
    assert report.problems[0].line == 6
    assert (
        report.problems[0].message
        == "Month: the time column 'Jnu' does not match the time format %b"
    )

    def times(subject: str) -> list[tuple[str, datetime]]:
        return [(e["type"], e["occurred_at"]) for e in events_of(ops, subject)]

    assert times("session:sessions-2") == [
        ("session.imported", utc(2025, 2, 1)),
        ("session.lost", utc(2025, 2, 1, 0, 0, 1)),
    ]
    assert times("session:sessions-3")[1] == ("session.converted", utc(2025, 2, 1, 0, 0, 2))
    assert times("session:sessions-4")[0] == ("session.imported", utc(2025, 6, 1))
    assert times("session:sessions-5") == [("session.imported", utc(2025, 3, 1))]
    assert times("session:sessions-7")[0] == ("session.imported", utc(2025, 2, 1, 0, 0, 2))
    assert ops.ingest.get_entity("session:sessions-3")["traits"] == {
        "PageValues": 12.5,
        "Weekend": True,
    }
    assert report.in_future == 0


def test_labelled_messages_give_text_and_label_pairs(
    make_ops: OpsFactory, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "support.csv"
    path.write_text(
        "ticket,received,message,category\n"
        '981,2026-02-01 09:00,"My card was charged twice",billing\n'
        "982,2026-02-01 09:05,Where is my parcel?,delivery\n"
        "983,2026-02-01 09:07,Hello?,\n"
    )
    spec = HistorySpec(
        kind="ticket",
        id_column="ticket",
        time_column="received",
        event_type="ticket.opened",
        label_column="category",
    )
    ops = make_ops(database_url)
    ops.ingest.import_history(path, spec)
    opened, labelled = events_of(ops, "ticket:981")
    assert opened["payload"] == {"message": "My card was charged twice"}, "no label at trigger"
    assert labelled["type"] == "ticket.labelled"
    assert labelled["occurred_at"] == opened["occurred_at"] + timedelta(seconds=1)
    assert labelled["payload"] == {
        "label": "billing",
        "event_type": "ticket.opened",
        "event_key": opened["idempotency_key"],
    }
    # How a text classifier reads its examples: each label, joined to the event it names.
    by_key = {e["idempotency_key"]: e for e in ops.ingest.list_events(type="ticket.opened")}
    pairs = sorted(
        (by_key[e["payload"]["event_key"]]["payload"]["message"], e["payload"]["label"])
        for e in ops.ingest.list_events(type="ticket.labelled")
    )
    assert pairs == [("My card was charged twice", "billing"), ("Where is my parcel?", "delivery")]


def test_options_that_do_not_fit_the_file_are_refused_before_anything_is_stored(
    make_ops: OpsFactory, sqlite_url: str, leads: Path
) -> None:
    ops = make_ops(sqlite_url)
    spec = HistorySpec(
        kind="Lead", id_column="lead", time_column="signed_up", event_type="new lead"
    )
    with pytest.raises(InvalidInput) as caught:
        ops.ingest.import_history(leads, spec)
    fields = {e.field: e.message for e in caught.value.errors}
    assert set(fields) == {"subject_kind", "event_type", "id_column"}
    assert fields["id_column"].startswith("no column 'lead'; did you mean 'lead_id'?")
    assert ops.ingest.list_events() == []


def test_an_import_whose_first_100_rows_are_all_refused_stops(
    make_ops: OpsFactory, sqlite_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("day,amount\n" + "".join(f"2026-01-{1 + i % 28:02d},{i}\n" for i in range(150)))
    ops = make_ops(sqlite_url)
    spec = HistorySpec(kind="order", time_column="day", time_format="%d.%m.%Y")
    report = ops.ingest.import_history(path, spec)
    assert report.gave_up
    assert (report.rows, report.refused, report.stored) == (100, 100, 0)
    assert len(ops.ingest.list_quarantine(limit=500)) == 100


# --- files as people export them ---------------------------------------------------------


def test_months_that_go_back_in_file_order_roll_the_year_forward(
    make_ops: OpsFactory, database_url: str, tmp_path: Path
) -> None:
    """Three years of a month-only export in time order (the bank-marketing kind of file):
    each time the months go back, the year goes forward, and the report says where."""
    months = ["Oct", "Nov", "Dec", *["Jan", "Mar", "Jun", "Sep", "Dec"], *["Feb", "May"]]
    path = tmp_path / "campaign.csv"
    path.write_text("month,calls,y\n" + "".join(f"{m},{i},no\n" for i, m in enumerate(months)))
    spec = HistorySpec(
        kind="contact", time_column="month", time_format="%b", outcome_column="y", year=2021
    )
    ops = make_ops(database_url)
    report = ops.ingest.import_history(path, spec)
    assert report.refused == 0
    assert [(r.line, r.before, r.after, r.year) for r in report.rollovers] == [
        (5, "Dec", "Jan", 2022),
        (10, "Dec", "Feb", 2023),
    ]
    assert report.rows_by_year == {2021: 3, 2022: 5, 2023: 2}
    assert (report.first_at, report.last_at) == (utc(2021, 10, 1), utc(2023, 5, 1, 0, 0, 1))
    assert events_of(ops, "contact:campaign-5")[0]["occurred_at"] == utc(2022, 1, 1)
    assert events_of(ops, "contact:campaign-11")[0]["occurred_at"] == utc(2023, 5, 1)


def test_months_in_no_time_order_are_refused_unless_the_file_says_how_to_read_them(
    make_ops: OpsFactory, sqlite_url: str, tmp_path: Path
) -> None:
    months = ["Feb", "Mar", "Feb", "May", "Mar", "Nov", "Mar", "Oct", "May", "Dec", "Nov"]
    path = tmp_path / "sessions.csv"
    path.write_text("Month,v\n" + "".join(f"{m},{i}\n" for i, m in enumerate(months)))
    spec = HistorySpec(kind="session", time_column="Month", time_format="%b", year=2025)
    ops = make_ops(sqlite_url)
    with pytest.raises(InvalidInput) as caught:
        ops.ingest.import_history(path, spec)
    [error] = caught.value.errors
    assert error.field == "year_rollover"
    assert error.message.startswith(
        "the months go back 5 times in file order (the first at line 4: Feb after Mar) in "
        "10 changes of month: the rows are not in time order"
    )
    assert "If every row is in 2025, give --year-rollover never" in error.message
    assert ops.ingest.list_events() == [], "refused before anything is stored"

    one_year = ops.ingest.import_history(path, replace(spec, year_rollover="never"))
    assert (one_year.rollovers, one_year.rows_by_year) == ([], {2025: 11})

    trusted = tmp_path / "trusted.csv"
    trusted.write_text(path.read_text())
    rolled = ops.ingest.import_history(trusted, replace(spec, year_rollover="always"))
    assert [r.year for r in rolled.rollovers] == [2026, 2027, 2028, 2029, 2030]


def test_a_semicolon_separated_file_is_read_by_its_separator(
    make_ops: OpsFactory, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "bank.csv"
    path.write_text(
        'age;"job";"month";"balance";"y"\n'
        '58;"management";"2021-05-05";2143;"no"\n'
        '44;"technician, senior";"2021-05-06";29;"yes"\n'
    )
    spec = HistorySpec(kind="contact", time_column="month", outcome_column="y")
    ops = make_ops(database_url)
    report = ops.ingest.import_history(path, spec)
    assert (report.delimiter, report.sniffed, report.refused) == (";", True, 0)
    created = events_of(ops, "contact:bank-3")[0]
    assert created["payload"] == {"age": 44, "job": "technician, senior", "balance": 29}

    with pytest.raises(InvalidInput) as caught:
        ops.ingest.import_history(path, replace(spec, delimiter=","))
    errors = {e.field: e.message for e in caught.value.errors}
    assert set(errors) == {"time_column", "outcome_column"}
    error = caught.value.errors[0]
    assert error.message.startswith("no column 'month' (columns: age;")
    assert error.message.endswith("; the column names hold ';': did you mean --delimiter ';'?")


def test_tabs_and_pipes_are_found_and_a_single_column_stays_a_comma_file(tmp_path: Path) -> None:
    cases = {
        "a\tb\tc\n1\t2\t3\n": "\t",
        "a|b\n1|x, y\n": "|",
        "a,b;c\n1,2;3\n4,5;6\n": ",",  # a tie goes to the comma
        "message\nhello\n": ",",
        'text,label\n"a; b; c",x\n"d; e",y\n': ",",
    }
    for text, expected in cases.items():
        path = tmp_path / "f.csv"
        path.write_text(text)
        assert sniff_delimiter(path) == expected, text


def test_a_file_with_no_time_column_reads_its_rows_in_file_order(
    make_ops: OpsFactory, database_url: str, tmp_path: Path, clock: Clock
) -> None:
    """More than 100 rows and no date: once refused after 100 rows, now order-only times,
    one minute apart from 2000-01-01, marked in the report and in the audit trail."""
    path = tmp_path / "utterances.csv"
    rows = [(f"message number {i}", "card" if i % 3 else "cash") for i in range(150)]
    path.write_text("text,category\n" + "".join(f"{t},{c}\n" for t, c in rows))
    spec = HistorySpec(
        kind="ticket", file_order=True, event_type="ticket.opened", label_column="category"
    )
    ops = make_ops(database_url)
    report = ops.ingest.import_history(path, spec)
    assert (report.rows, report.refused, report.gave_up) == (150, 0, False)
    assert report.order_only
    assert report.order_start == utc(2000, 1, 1)
    assert report.label_order is None, "labels mixed through the file"
    opened, labelled = events_of(ops, "ticket:utterances-4")
    assert opened["occurred_at"] == utc(2000, 1, 1, 0, 2), "the third row, two minutes in"
    assert labelled["occurred_at"] == utc(2000, 1, 1, 0, 2, 1)
    assert report.last_at == utc(2000, 1, 1, 2, 29, 1)

    [found] = ops.ingest.file_order_imports(["ticket.opened"])
    assert found.file == str(path)
    assert found.event_types == ("ticket.labelled", "ticket.opened")
    assert (found.first_at, found.imported_at) == (utc(2000, 1, 1), clock.now)
    assert ops.ingest.file_order_imports(["lead.created"]) == []

    # An import with real times is recorded too, but is not order-only.
    dated = tmp_path / "dated.csv"
    dated.write_text("at,text\n2026-01-02,hello\n")
    ops.ingest.import_history(
        dated, HistorySpec(kind="ticket", time_column="at", event_type="ticket.opened")
    )
    assert [f.file for f in ops.ingest.file_order_imports(["ticket.opened"])] == [str(path)]
    with pytest.raises(InvalidInput) as caught:
        ops.ingest.import_history(path, replace(spec, file_order=False))
    assert caught.value.errors[0].field == "time_column"
    assert "--file-order" in caught.value.errors[0].message


def test_labels_sorted_in_the_file_are_noted_at_import(
    make_ops: OpsFactory, sqlite_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "intents.csv"
    labels = ["card_arrival"] * 20 + ["card_linking"] * 20 + ["cash_withdrawal"] * 10
    path.write_text(
        "text,category\n" + "".join(f"utterance {i},{label}\n" for i, label in enumerate(labels))
    )
    spec = HistorySpec(kind="ticket", file_order=True, label_column="category")
    report = make_ops(sqlite_url).ingest.import_history(path, spec)
    assert report.label_order is not None
    assert report.label_order.startswith(
        "the labels come grouped in time order: 3 runs of one label over 50 rows"
    )
    assert "holds 1 labels training never saw (cash_withdrawal; 10 of 10 test rows)" in (
        report.label_order
    )
    assert report.label_order.endswith(
        "train with --split stratified (every label in training and test)"
    )


# --- reading cells ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("40", 40),
        ("-3.5", -3.5),
        ("01234", "01234"),
        ("TRUE", True),
        ("no", False),
        ("Yes", True),
        ("", None),
        ("  ", None),
        (" pro ", "pro"),
    ],
)
def test_cells_get_sensible_types(cell: str, value: Any) -> None:
    assert cell_value(cell) == value
    assert type(cell_value(cell)) is type(value)


def test_outcome_cells_are_yes_no_or_not_known() -> None:
    assert [outcome_of(c) for c in ("TRUE", "won", "1", "no", "Lost", "0", "")] == [
        "success",
        "success",
        "success",
        "failure",
        "failure",
        "failure",
        None,
    ]
    with pytest.raises(ValueError, match="'maybe' is neither yes"):
        outcome_of("maybe")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2026-01-10", utc(2026, 1, 10)),
        ("2026-01-10T09:30:00Z", utc(2026, 1, 10, 9, 30)),
        ("2026-01-10 10:30:00+01:00", utc(2026, 1, 10, 9, 30)),
        ("2026/01/10 09:30", utc(2026, 1, 10, 9, 30)),
        ("10.01.2026", utc(2026, 1, 10)),
        ("10 Jan 2026", utc(2026, 1, 10)),
        ("Jan 10, 2026", utc(2026, 1, 10)),
        ("25/01/2026", utc(2026, 1, 25)),
        ("01/25/2026 3:05 PM", utc(2026, 1, 25, 15, 5)),
        ("Sat, 10 Jan 2026 09:30:00 +0000", utc(2026, 1, 10, 9, 30)),
        ("1768037400", utc(2026, 1, 10, 9, 30)),
    ],
)
def test_common_time_formats_are_recognized(cell: str, expected: datetime) -> None:
    assert TimeReader(None, year=2026).read(cell) == expected


def test_slashed_dates_take_the_order_the_file_shows() -> None:
    with pytest.raises(ValueError, match="could be day/month or month/day"):
        TimeReader(None, year=2026).read("03/04/2026")
    assert TimeReader(None, year=2026, day_month="dm").read("03/04/2026") == utc(2026, 4, 3)
    assert TimeReader(None, year=2026, day_month="md").read("03/04/2026") == utc(2026, 3, 4)


def test_a_format_without_a_year_takes_the_given_one_even_on_29_february() -> None:
    reader = TimeReader("%d %b", year=2028)
    assert reader.read("29 Feb") == utc(2028, 2, 29)
    assert TimeReader("%B", year=2025).read("Sep") == utc(2025, 9, 1), "%b and %B both work"


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPSLOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output.replace("\n", "")


def test_the_command_reports_what_it_stored_and_the_first_refused_rows(
    data_dir: Path, leads: Path
) -> None:
    args = ["import", str(leads), "--subject-kind", "lead", "--id-column", "lead_id"]
    args += ["--time-column", "signed_up", "--outcome-column", "won"]
    code, output = run(*args)
    assert code == 1, "refused rows make the exit code 1, as for `opsloop ingest`"
    assert (
        "Imported 3 of 6 rows: 5 events stored (1 lead.converted, 3 lead.imported, 1 lead.lost), "
        "0 already stored, 3 rows refused."
    ) in output
    assert "The events stored run from 2026-01-05 00:00 to 2026-01-09 00:00 UTC." in output
    assert "3 rows refused, kept in quarantine (`opsloop quarantine`); the first 3:" in output
    assert f"{leads}:5: lead_id: the id column is empty" in output

    code, output = run(*args)
    assert "Imported 3 of 6 rows: 0 events stored, 5 already stored, 3 rows refused." in output
    code, output = run("quarantine")
    assert f"{leads}:4" in output


def test_the_command_names_the_option_that_does_not_fit(data_dir: Path, leads: Path) -> None:
    code, output = run(
        "import", str(leads), "--subject-kind", "lead", "--id-column", "id", "--time-column", "t"
    )
    assert code == 1
    assert "--id-column: no column 'id'" in output
    assert "--time-column: no column 't'" in output

    code, output = run("import", "--help")
    assert code == 0
    assert "line number" in output


def test_the_uci_online_shoppers_export_imports_end_to_end(
    make_ops: OpsFactory, sqlite_url: str, shoppers_csv: Path
) -> None:
    ops = make_ops(sqlite_url)
    # The file is one year (UCI's description) in no time order: its months go back about
    # every second change, which `auto` refuses (test_months_in_no_order_are_refused_...).
    spec = HistorySpec(
        kind="session",
        time_column="Month",
        time_format="%b",
        outcome_column="Revenue",
        year=2025,
        year_rollover="never",
    )
    started = time.monotonic()
    report = ops.ingest.import_history(shoppers_csv, spec, batch_size=1000)
    print(f"imported {report.rows} rows in {time.monotonic() - started:.1f} s")
    assert (report.rows, report.refused) == (12330, 0)
    assert report.stored_by_type == {
        "session.imported": 12330,
        "session.converted": 1908,
        "session.lost": 10422,
    }
    assert (report.first_at, report.in_future) == (utc(2025, 2, 1), 0)
    assert report.last_at is not None
    assert report.last_at.month == 12
    june = events_of(ops, "session:online_shoppers_intention-5458")[0]
    assert june["occurred_at"] == utc(2025, 6, 1), "the one month written in full"
    traits = ops.ingest.get_entity("session:online_shoppers_intention-2")["traits"]
    assert traits["VisitorType"] == "Returning_Visitor"
    assert traits["Weekend"] is False
    assert "Revenue" not in traits
    assert "Month" not in traits


def test_the_shoppers_export_trains_a_useful_model_through_the_product(
    make_ops: OpsFactory, sqlite_url: str, shoppers_csv: Path
) -> None:
    """The issue's evidence path, as a user runs it: import the export, apply
    examples/shopper-intent.yaml, train; the time-ordered report is honest and useful."""
    ops = make_ops(sqlite_url)
    # The file is one year (UCI's description) in no time order: its months go back about
    # every second change, which `auto` refuses (test_months_in_no_order_are_refused_...).
    spec = HistorySpec(
        kind="session",
        time_column="Month",
        time_format="%b",
        outcome_column="Revenue",
        year=2025,
        year_rollover="never",
    )
    ops.ingest.import_history(shoppers_csv, spec, batch_size=1000)
    ops.decide.apply_playbook_file(ROOT / "examples" / "shopper-intent.yaml", actor="test")

    trained = ops.learn.train("shopper-intent", actor="test")

    assert trained["status"] == "promoted"
    report = trained["report"]
    print({k: report[k] for k in ("algorithm", "roc_auc", "pr_auc", "brier")})
    assert report["train"]["end"] < report["test"]["start"], "the test rows are the latest"
    assert report["roc_auc"] > 0.8  # published random-split reference: 0.89-0.93
    assert report["lift_top_10"] > 3
    assert report["top_features"][0]["feature"] == "page_values"


def test_the_command_reads_semicolons_rolls_months_and_says_so(
    data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "campaign.csv"
    months = ["Nov", "Dec", "Jan", "Feb", "Mar", "Apr"]
    path.write_text("month;calls\n" + "".join(f"{m};{i}\n" for i, m in enumerate(months)))
    args = ["import", str(path), "--subject-kind", "contact", "--time-column", "month"]
    code, output = run(*args, "--time-format", "%b", "--year", "2021")
    assert code == 0, output
    assert "Cells separated by ';' (found from the first lines)." in output
    assert "The events stored run from 2021-11-01 00:00 to 2022-04-01 00:00 UTC." in output
    assert (
        "The months went back 1 time in file order, so the year was rolled forward: line 4 "
        "(Jan after Dec) starts 2022. Rows per year: 2021: 2, 2022: 4."
    ) in output

    code, output = run(*args, "--delimiter", ",", "--time-format", "%b")
    assert code == 1
    assert (
        "--time-column: no column 'month' (columns: month;calls); the column names hold ';': "
        "did you mean --delimiter ';'?"
    ) in output


def test_the_command_imports_a_file_without_times_in_file_order(
    data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("text\n" + "".join(f"note {i}\n" for i in range(120)))
    code, output = run("import", str(path), "--subject-kind", "note")
    assert code == 1
    assert "--time-column: is needed" in output
    assert "--file-order" in output

    code, output = run("import", str(path), "--subject-kind", "note", "--file-order")
    assert code == 0, output
    assert "Imported 120 of 120 rows: 120 events stored (120 note.imported)" in output
    assert "Times are the file's order, not real dates: row 1 at 2000-01-01 00:00" in output

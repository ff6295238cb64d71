"""Reading events from files for `opsloop ingest`: rows keep their line, CSV cells get types."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsloop.perception.files import count_rows, read_rows


def test_csv_columns_become_event_fields_traits_and_payload(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(
        "type,subject,occurred_at,traits.company_size,traits.zip,payload.amount,plan,paid\n"
        "lead.created,lead:1,2026-01-05T10:00:00Z,40,01234,19.5,pro,true\n"
        "\n"
        "lead.created,lead:2,,7,,,,false\n"
    )
    rows = list(read_rows(path))
    assert [row.line for row in rows] == [2, 4]
    assert rows[0].item == {
        "type": "lead.created",
        "subject": "lead:1",
        "occurred_at": "2026-01-05T10:00:00Z",
        "traits": {"company_size": 40, "zip": "01234"},
        "payload": {"amount": 19.5, "plan": "pro", "paid": True},
    }
    assert rows[1].item == {
        "type": "lead.created",
        "subject": "lead:2",
        "traits": {"company_size": 7},
        "payload": {"paid": False},
    }
    assert count_rows(path) == 2, "the progress bar counts data rows"


def test_a_csv_row_with_the_wrong_number_of_cells_is_reported_by_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("type,subject\npage.viewed,lead:1\npage.viewed,lead:2,extra\n")
    rows = list(read_rows(path))
    assert rows[1].line == 3
    assert rows[1].error == "has 3 cells but the header has 2"
    assert rows[1].raw == b"page.viewed,lead:2,extra"


def test_jsonl_keeps_line_numbers_and_reports_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "a.b", "subject": "lead:1"}\n\n{"type": "a.b", \n')
    rows = list(read_rows(path))
    assert [(row.line, row.error is None) for row in rows] == [(1, True), (3, False)]
    assert rows[1].error is not None
    assert rows[1].error.startswith("malformed JSON")


def test_other_file_types_are_refused_with_the_ones_that_work(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text("[]")
    with pytest.raises(ValueError, match=r"use .jsonl \(one JSON event per line\) or .csv"):
        list(read_rows(path))


def test_a_jsonl_line_with_a_nul_character_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "a.b", "subject": "lead:1", "payload": {"n": "x\\u0000"}}\n')
    [row] = list(read_rows(path))
    assert row.error == "contains \\u0000 (a NUL character), which cannot be stored"

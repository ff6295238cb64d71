"""`opsloop replay` and `opsloop cancel` on SQLite and PostgreSQL, as a person uses them: each
says what happened, and exits 1 when the item is refused again or the action cannot be
cancelled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.core.errors import InvalidInput
from tests.conftest import OpsFactory, lead_playbook
from tests.leads import settle
from tests.sinks import SmtpSink

runner = CliRunner()
FORM = b'{"email": "Ana@Example.com", "answers": [1, 2]}'


@pytest.fixture
def cli_database(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The database the `opsloop` command runs on (the same as the test's `make_ops`)."""
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("OPSLOOP_DATABASE_URL", database_url)
    # Its own data folder, so the key that seals secrets is given (as on a second machine).
    monkeypatch.setenv("OPSLOOP_ENCRYPTION_KEY", "one key for the test and its commands")
    monkeypatch.setenv("COLUMNS", "200")
    return database_url


def run(*args: str) -> tuple[int, str]:
    """Exit code and output, with line wrapping undone (Rich wraps at the terminal width)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output.replace("\n", " ")


def test_replay_says_why_an_item_is_refused_again_and_replays_it_once_fixed(
    make_ops: OpsFactory, cli_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A source that takes unsigned deliveries, without a mapping yet (here and for the CLI).
    monkeypatch.setenv("OPSLOOP_SOURCES__TYPEFORM__ALLOW_UNSIGNED", "true")
    ops = make_ops(cli_database, sources={"typeform": {"allow_unsigned": True}})
    with pytest.raises(InvalidInput):
        ops.ingest.hook("typeform", FORM, {})
    [item] = ops.ingest.quarantine_items()

    code, output = run("replay", str(item["id"]))
    assert code == 1
    assert f"Quarantined item {item['id']} was refused again: type: is required" in output
    assert "It stays held" in output

    # The owner maps the source (here in the environment) and replays it again.
    monkeypatch.setenv("OPSLOOP_SOURCES__TYPEFORM__TYPE", "form.submitted")
    monkeypatch.setenv("OPSLOOP_SOURCES__TYPEFORM__SUBJECT", "'lead:' + lower(email)")
    code, output = run("replay", str(item["id"]))
    assert code == 0, output
    [event] = ops.ingest.list_events(type="form.submitted")
    assert (
        f"Quarantined item {item['id']} replayed: stored as event ids {event['id']} "
        "(1 new, 0 already stored)." in output
    )
    assert ops.ingest.quarantine_item(item["id"])["status"] == "replayed"

    code, output = run("replay", str(item["id"]))
    assert code == 1
    assert f"Error: quarantined item {item['id']} is already replayed" in output
    code, output = run("replay", "999999")
    assert (code, output.strip()) == (1, "Error: no quarantined item 999999")


def test_cancel_stops_a_pending_action_and_refuses_a_delivered_one(
    make_ops: OpsFactory, cli_database: str, smtp_sink: SmtpSink
) -> None:
    ops = make_ops(
        cli_database,
        playbooks=[lead_playbook()],
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
    )
    [waiting] = settle(ops, 1)

    code, output = run("cancel", str(waiting["id"]))
    assert code == 0, output
    assert f"Action {waiting['id']} (email) cancelled: it will not be delivered." in output
    [sent] = settle(ops, 2)
    ops.run_jobs()
    assert ops.deliver.get_action(waiting["id"])["status"] == "cancelled"
    assert ops.deliver.get_action(sent["id"])["status"] == "delivered"
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["lead2@example.com"]]

    code, output = run("cancel", str(sent["id"]))
    assert code == 1
    assert (
        f"Error: action {sent['id']} is delivered; only pending or retrying actions can be "
        "cancelled" in output
    )
    code, output = run("cancel", "999999")
    assert (code, output.strip()) == (1, "Error: no action 999999")


def test_sequences_lists_the_next_step_and_stop_needs_a_reason(
    make_ops: OpsFactory, cli_database: str
) -> None:
    import json

    from tests.service.test_sequences import ONBOARDING

    ops = make_ops(cli_database, playbooks=[ONBOARDING])
    for name in ("ann", "bo"):
        event = {"type": "signup.completed", "subject": f"customer:{name}"}
        ops.ingest.body(json.dumps(event).encode())
    ops.run_jobs()
    code, output = run("sequences")
    assert code == 0, output
    assert output.count('email "Resources"') == 2
    assert "customer:ann" in output
    [ann] = ops.deliver.list_sequences(subject="customer:ann")

    code, output = run("sequences", "stop", str(ann["id"]))
    assert code == 2
    assert "Say why with --reason" in output
    code, output = run("sequences", "stop", str(ann["id"]), "--reason", "asked us to")
    assert (code, output.strip()) == (0, "Stopped 1 sequence.")
    code, output = run("sequences", "stop", str(ann["id"]), "--reason", "again")
    assert code == 1
    assert "is not open" in output
    code, output = run("sequences", "stop", "--all", "--reason", "offer ended")
    assert (code, output.strip()) == (0, "Stopped 1 sequence.")
    code, output = run("sequences", "--status", "stopped")
    assert output.count("stopped by") == 2


def test_playbook_list_says_what_triggers_each_and_when_a_schedule_runs_next(
    make_ops: OpsFactory, cli_database: str
) -> None:
    from tests.service.test_absences import NUDGE
    from tests.service.test_schedules import WIN_BACK

    make_ops(cli_database, playbooks=[NUDGE, WIN_BACK])
    code, output = run("playbook", "list")
    assert code == 0, output
    assert "3 days after signup.completed unless project.created or account.closed" in output
    assert "At 08:00 every day (Europe/Berlin)" in output
    # The command runs by the wall clock: 08:00 in Berlin is 07:00 UTC in winter, 06:00 in summer.
    assert re.search(r"\d{4}-\d\d-\d\d 0[67]:00 UTC", output), output


def test_tasks_are_listed_reassigned_and_done_from_the_command_line(
    make_ops: OpsFactory, cli_database: str
) -> None:
    ops = make_ops(cli_database, playbooks=[lead_playbook()])
    settle(ops, 1, "hot", name="Ana", company="Acme")
    ops.run_jobs()
    [task] = ops.deliver.list_tasks()
    code, output = run("tasks")
    assert code == 0, output
    assert "Call Ana at Acme" in output
    assert "sales" in output
    code, output = run("tasks", "assign", str(task["id"]), "maria@shop.example")
    assert (code, output.strip()) == (0, f"Task {task['id']} is now for maria@shop.example.")
    code, output = run("tasks", "--assignee", "MARIA@shop.example")
    assert "Call Ana at Acme" in output
    code, output = run("tasks", "done", str(task["id"]))
    assert (code, output.strip()) == (0, f"Task {task['id']} done: Call Ana at Acme")
    code, output = run("tasks", "done", str(task["id"]))
    assert code == 1
    assert "already done" in output
    code, output = run("tasks", "--status", "done")
    assert "done by" in output

"""The `opsloop` command as a person uses it: validate and apply a playbook, import a file with
a bad row, list and explain decisions, review one, read the metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from opsloop.cli import app
from tests.conftest import lead_playbook

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPSLOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"


def run(*args: str) -> tuple[int, str]:
    """Exit code and output, with line wrapping undone (Rich wraps at the terminal width)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output.replace("\n", "")


def test_every_command_explains_itself() -> None:
    command = typer.main.get_command(app)
    names = list(command.commands)  # type: ignore[attr-defined]
    assert {
        "serve",
        "demo",
        "worker",
        "migrate",
        "ingest",
        "decisions",
        "review",
        "metrics",
        "playbook",
    } <= set(names)
    for name in names:
        code, output = run(name, "--help")
        assert code == 0, output
        assert "Usage:" in output
        summary = command.commands[name].help or ""  # type: ignore[attr-defined]
        assert len(summary) > 20, f"`opsloop {name}` needs a sentence of help"


def test_validate_reports_the_line_of_a_typo(tmp_path: Path) -> None:
    good = tmp_path / "lead.yaml"
    good.write_text(lead_playbook("recommend"))
    code, output = run("playbook", "validate", str(good))
    assert code == 0
    assert (
        "OK lead-qualification: 6 features, 6 scorecard lines, 1 rules, options hot, nurture; mode recommend"
        in output
    )

    bad = tmp_path / "typo.yaml"
    text = lead_playbook("recommend", **{"choose: hot": "choose: hott"})
    bad.write_text(text)
    code, output = run("playbook", "validate", str(bad))
    assert code == 1
    line = text.splitlines().index("    choose: hott") + 1
    assert (
        f"{bad}:{line}: rules[0].choose: no option named 'hott'; did you mean 'hot'?"
        in output.replace("\n", "")
    )


def test_import_stores_good_rows_and_quarantines_bad_ones_by_line(
    data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(
        "type,subject,traits.email,traits.company_size,idempotency_key\n"
        "lead.created,lead:1,a@x.co,40,crm-1\n"
        "lead.created,lead1,b@x.co,5,crm-2\n"
        "lead.created,lead:3,c@x.co,5,crm-3\n"
    )
    code, output = run("ingest", str(path), "--source", "crm")
    assert code == 1, "a file with refused rows exits non-zero"
    assert f"{path}:3: subject: 'lead1' is not a subject" in output.replace("\n", "")
    assert "Stored 2 events, 0 already stored, 1 refused (in quarantine)." in output

    code, output = run("ingest", str(path), "--source", "crm")
    assert "Stored 0 events, 2 already stored, 1 refused" in output

    code, output = run("quarantine")
    assert code == 0
    assert f"{path}:3" in output


def test_decisions_review_and_metrics_from_the_command_line(data_dir: Path, tmp_path: Path) -> None:
    playbook = tmp_path / "lead.yaml"
    playbook.write_text(lead_playbook("recommend"))
    code, output = run("playbook", "apply", str(playbook))
    assert code == 0
    assert output.startswith("lead-qualification: now at version 1 (mode recommend)")
    # Nothing is set up for its channels yet: applying says so, naming each setting.
    assert (
        "Warning: chat channel 'sales' is not configured (known: none yet): add it under "
        "Settings → Webhooks and chat (or OPSLOOP_NOTIFY_CHANNELS) (used by option hot)" in output
    )
    assert "set the mail server under Settings → Email (or OPSLOOP_SMTP_HOST" in output
    code, output = run("playbook", "apply", str(playbook))
    assert output.startswith("lead-qualification: unchanged at version 1 (mode recommend)")

    events = tmp_path / "events.jsonl"
    events.write_text(
        json.dumps(
            {
                "type": "lead.created",
                "subject": "lead:1",
                "traits": {"email": "a@x.co", "company_size": 40, "budget": 9000},
            }
        )
        + "\n"
    )
    assert run("ingest", str(events))[0] == 0
    # No server is running here: a worker run makes the decision.
    from opsloop.service import OpsLoop
    from opsloop.settings import Settings

    ops = OpsLoop(Settings())
    ops.run_jobs()
    ops.close()

    code, output = run("decisions", "--status", "pending")
    assert code == 0
    assert "lead:1" in output
    assert "Right size (10-500 people) +20; Has a budget of 5,000 or more +20" in output

    code, output = run("decisions", "1")
    assert code == 0
    assert "Scorecard: 40 points" in output
    assert "No rule matched: otherwise → nurture" in output
    # Rules are numbered from 1, with their labels, as on the decision's web page.
    assert "Rule 1 (Engaged, right size and funded): score >= 60 → hot: no" in output

    code, output = run("review", "1", "--override", "hot")
    assert code == 1
    assert "reason: say why you override it" in output

    code, output = run("review", "1", "--approve", "--reject")
    assert code == 2
    assert "Give exactly one of --approve, --override OPTION or --reject." in output

    code, output = run(
        "review", "1", "--override", "hot", "--reason", "called us", "--reviewer", "ana"
    )
    assert code == 0
    assert "Decision 1 overridden: runs hot." in output

    result = runner.invoke(app, ["decisions", "1", "--json"])
    detail = json.loads(result.output)
    assert detail["reviews"][0]["reviewer"] == "ana"

    assert [a["kind"] for a in detail["actions"]] == ["notify", "task"]

    code, output = run("metrics")
    assert code == 0
    assert "human override rate" in output
    assert "100% (1/1)" in output

    code, output = run("metrics", "--since", "a while")
    assert code == 2
    assert "--since" in output

    # Once OpsLoop has accounts, a review names one of them, never the Unix login.
    made = runner.invoke(
        app,
        ["user", "create", "rui@example.com", "--role", "reviewer", "--password-stdin"],
        input="rui's password\n",
    )
    assert made.exit_code == 0, made.output
    events.write_text(events.read_text().replace("lead:1", "lead:2"))
    assert run("ingest", str(events))[0] == 0
    ops = OpsLoop(Settings())
    ops.run_jobs()
    ops.close()
    code, output = run("review", "2", "--approve")
    assert code == 2
    assert "Say who reviews: --reviewer you@example.com" in output
    code, output = run("review", "2", "--approve", "--reviewer", "root")
    assert code == 2
    assert "root has no active OpsLoop account" in output
    code, output = run("review", "2", "--approve", "--reviewer", "Rui@Example.com")
    assert code == 0
    detail = json.loads(runner.invoke(app, ["decisions", "2", "--json"]).output)
    assert detail["reviews"][0]["reviewer"] == "rui@example.com"


def test_a_bad_setting_is_reported_not_a_traceback(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSLOOP_SMTP_PORT", "twenty-five")
    code, output = run("decisions")
    assert code == 2
    assert "Configuration error" in output
    assert "smtp_port" in output


def test_piped_output_is_not_laid_out_for_80_columns(tmp_path: Path) -> None:
    """In a pipe or a CI log, a long message stays on one line (it was wrapped mid-word)."""
    import os
    import subprocess
    import sys

    bad = tmp_path / "long.yaml"
    option = "nurturing_with_a_rather_long_option_name_that_does_not_exist_in_this_file"
    bad.write_text(
        "name: long\nsubject: lead\ntrigger: lead.created\n"
        f"otherwise: {option}\noptions:\n  nurture:\n    actions: []\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-m", "opsloop", "playbook", "validate", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert f"{bad}:4: otherwise: no option named '{option}' (options: nurture)" in lines

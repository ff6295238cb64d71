"""Playbook templates: every built-in playbook is valid and named after its file; support triage
comes with and without a language model; a template is installed in recommend mode whatever
its file says, once; a name that is not a template (or reaches out of the folder) is not found;
and a template is backtested on the stored history before it is installed."""

from __future__ import annotations

import json
from importlib.resources.abc import Traversable
from pathlib import Path

import pytest

from opsloop.builtin import builtin_playbooks
from opsloop.core.errors import Conflict, NotFound, PlaybookInvalid
from opsloop.service.decide import playbook_templates
from opsloop.service.decide.playbooks import load_playbook
from tests.conftest import ROOT, OpsFactory

BUILT_IN = sorted(
    (entry for entry in builtin_playbooks().iterdir() if entry.name.endswith(".yaml")),
    key=lambda entry: entry.name,
)


@pytest.mark.parametrize("entry", BUILT_IN, ids=[entry.name for entry in BUILT_IN])
def test_every_built_in_playbook_validates_and_is_named_after_its_file(entry: Traversable) -> None:
    text = entry.read_text(encoding="utf-8")
    playbook, _ = load_playbook(text, entry.name, llm_configured=True)
    assert playbook.name == entry.name.removesuffix(".yaml")
    assert playbook.description, "the gallery shows each template's description"
    installed, _ = load_playbook(playbook_templates.in_recommend_mode(text), entry.name)
    assert installed.mode == "recommend"


def test_the_templates_are_the_built_in_playbooks() -> None:
    assert playbook_templates.template_names() == [
        "customer-onboarding",
        "lead-qualification",
        "restock",
        "slow-movers",
        "stock-alerts",
        "support-triage",
        "support-triage-rules",
        "win-back",
    ]


def test_support_triage_comes_with_and_without_a_language_model() -> None:
    with_llm, _ = load_playbook(*playbook_templates.template_source("support-triage"))
    without, _ = load_playbook(
        *playbook_templates.template_source("support-triage-rules"), llm_configured=False
    )
    assert with_llm.text is not None
    assert with_llm.text.needs_llm
    assert without.text is not None
    assert not without.text.needs_llm
    assert with_llm.trigger.events == without.trigger.events == ("ticket.created",)


def test_the_support_triage_example_is_the_built_in_template() -> None:
    example = ROOT / "examples" / "support-triage.yaml"
    assert example.read_text() == (ROOT / "playbooks" / "support-triage.yaml").read_text(), (
        "examples/support-triage.yaml is kept for the docs and tests that name it: change both"
    )


@pytest.mark.parametrize(
    ("line", "installed"),
    [
        ("mode: shadow", "mode: recommend"),
        ("mode: auto      # earned elsewhere", "mode: recommend      # earned elsewhere"),
        ("mode: recommend", "mode: recommend"),
    ],
)
def test_the_mode_a_template_is_installed_in_is_recommend(line: str, installed: str) -> None:
    text = f"name: x\n{line}\ntrigger:\n  events: a.b\n  # mode: shadow stays a comment\n"
    assert playbook_templates.in_recommend_mode(text) == text.replace(line, installed, 1)


@pytest.mark.parametrize(
    "name", ["nope", "../playbooks/lead-qualification", "", "lead-qualification.yaml"]
)
def test_a_name_that_is_not_a_template_is_not_found(name: str) -> None:
    with pytest.raises(
        NotFound, match=r"no playbook template named .*; the templates are customer-"
    ):
        playbook_templates.template_source(name)


def test_installing_a_template_puts_it_in_recommend_mode_once(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    [lead] = [t for t in ops.decide.list_templates() if t["name"] == "lead-qualification"]
    assert lead["installed"] is None

    applied = ops.decide.install_template("lead-qualification", actor="olga@example.com")
    assert (applied.name, applied.version, applied.mode) == ("lead-qualification", 1, "recommend")
    detail = ops.decide.get_playbook("lead-qualification")
    assert detail["mode"] == "recommend"
    assert detail["versions"][0]["file"] == "lead-qualification.yaml (built-in template)"
    assert detail["versions"][0]["created_by"] == "olga@example.com"

    with pytest.raises(Conflict, match="'lead-qualification' is already installed \\(version 1"):
        ops.decide.install_template("lead-qualification", actor="olga@example.com")
    assert len(ops.decide.get_playbook("lead-qualification")["versions"]) == 1

    installed = ops.decide.get_template("lead-qualification")["installed"]
    assert installed == {"version": 1, "mode": "recommend", "as_shipped": True}
    edited = ops.decide.get_template("lead-qualification")["source"].replace("60", "70")
    ops.decide.apply_playbook(edited, "web editor", actor="olga@example.com")
    ops.review.change_mode("lead-qualification", "shadow", actor="olga@example.com")
    installed = ops.decide.get_template("lead-qualification")["installed"]
    assert installed == {"version": 2, "mode": "shadow", "as_shipped": False}


def test_a_playbook_written_by_hand_with_a_templates_name_is_not_replaced(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    own = (ROOT / "playbooks" / "lead-qualification.yaml").read_text().replace("60", "50")
    ops = make_ops(sqlite_url, playbooks=[own])
    with pytest.raises(Conflict, match="already installed"):
        ops.decide.install_template("lead-qualification", actor="olga@example.com")
    assert ops.decide.get_playbook("lead-qualification")["source"] == own


def test_a_template_whose_file_says_shadow_is_installed_in_recommend(
    make_ops: OpsFactory, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "builtin"
    folder.mkdir()
    text = (ROOT / "playbooks" / "lead-qualification.yaml").read_text()
    (folder / "lead-qualification.yaml").write_text(text.replace("mode: recommend", "mode: shadow"))
    monkeypatch.setattr(playbook_templates, "builtin_playbooks", lambda: folder)
    ops = make_ops(sqlite_url)
    assert ops.decide.install_template("lead-qualification", actor="olga").mode == "recommend"
    source = ops.decide.get_playbook("lead-qualification")["source"]
    assert source is not None
    assert "\nmode: recommend\n" in source, "the stored version says what runs"


def test_the_language_model_template_says_what_it_needs(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url)
    needs = {t["name"]: t["needs"] for t in ops.decide.list_templates()}
    [llm, email] = needs["support-triage"]
    assert (llm["what"], llm["ready"], llm["setting"]) == ("a language model", False, "llm")
    assert llm["fix"] is not None
    assert "Settings" in llm["fix"]
    assert (email["what"], email["ready"]) == ("an email channel (a mail server)", False)
    assert [need["what"] for need in needs["support-triage-rules"]] == [
        "an email channel (a mail server)"
    ]
    assert [need["what"] for need in needs["lead-qualification"]] == [
        "the chat channel 'sales'",
        "an email channel (a mail server)",
    ]
    assert needs["customer-onboarding"][0]["what"] == "an email channel (a mail server)"
    with pytest.raises(PlaybookInvalid, match="needs a language model"):
        ops.decide.install_template("support-triage", actor="olga")

    configured = make_ops(
        sqlite_url,
        llm={"url": "http://127.0.0.1:9/v1", "model": "tiny"},
        smtp_host="mail.example.com",
        notify_channels={"sales": "http://127.0.0.1:9/hook"},
        notify_url="http://127.0.0.1:9/team",  # stock alerts go to the default chat
    )
    needs = {t["name"]: t["needs"] for t in configured.decide.list_templates()}
    assert all(need["ready"] for listed in needs.values() for need in listed)
    assert configured.decide.install_template("support-triage", actor="olga").mode == "recommend"


def test_installed_playbooks_on_the_same_events_are_named(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url)
    ops.decide.install_template("support-triage-rules", actor="olga")
    overlaps = {t["name"]: t["overlaps"] for t in ops.decide.list_templates()}
    assert overlaps == {
        "customer-onboarding": [],
        "lead-qualification": [],
        "restock": [],
        "slow-movers": [],
        "stock-alerts": [],
        "support-triage": ["support-triage-rules"],
        "support-triage-rules": [],
        "win-back": [],
    }


def test_a_template_is_backtested_on_the_stored_history(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    empty = ops.learn.backtest_template("support-triage-rules", since="30d", actor="olga")
    assert empty["counts"]["triggers"] == 0

    tickets = [
        ("Where is my order?", "It has not arrived and the tracking page is blank."),
        ("Refund please", "I would like my money back for the broken kettle."),
        ("Invoice", "Please send me an invoice for March."),
        ("Hello", "Do you ship to Norway?"),
    ]
    events = [
        {
            "type": "ticket.created",
            "subject": f"ticket:{n}",
            "payload": {"subject": subject, "body": body, "email": f"c{n}@example.com"},
        }
        for n, (subject, body) in enumerate(tickets)
    ]
    ops.ingest.body(json.dumps({"events": events}).encode())
    ops.run_jobs()
    report = ops.learn.backtest_template("support-triage-rules", since="30d", actor="olga")
    assert report["counts"]["decisions"] == 4
    chosen = {c["choice"]: c["decisions"] for c in report["choices"]}
    assert chosen == {"tracking_reply": 1, "billing": 2, "personal_reply": 1}
    assert report["changes"] is None, "nothing installed to compare with"
    assert ops.decide.list_playbooks() == [], "a backtest installs nothing"

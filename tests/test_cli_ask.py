"""`opsloop ask`: the answer and the records it cites, as the person named by `--as`, logged."""

from __future__ import annotations

import json

from tests.ask_business import PLAYBOOKS, REVIEWER, VIEWER, build
from tests.conftest import OpsFactory
from tests.people import add_people
from tests.test_cli_replay_and_cancel import cli_database, run

__all__ = ["cli_database"]  # the fixture used here


def test_ask_prints_the_answer_and_the_records_it_cites_as_the_person_named(
    make_ops: OpsFactory, cli_database: str
) -> None:
    ops = make_ops(cli_database, playbooks=PLAYBOOKS)
    add_people(ops)
    shop = build(ops)

    code, out = run("ask", "What is waiting for me?", "--as", REVIEWER.email.upper())
    assert code == 0, out
    assert "3 decisions wait for review" in out
    assert "Records used" in out
    assert f"[task:{shop.task}] Task {shop.task}: Call Ana at Acme" in out
    assert f"/tasks?status=mine#task-{shop.task}" in out
    assert f"/decisions/{shop.waiting_leads[0]}" in out
    assert "Answered by the built-in router" in out

    code, out = run("ask", "What is waiting for me?", "--as", VIEWER.email)
    assert code == 0, out
    assert "wait for a reviewer" in out
    assert "Records used" not in out

    code, out = run("ask", "What happened to order 1042?", "--json")
    assert code == 0, out
    answer = json.loads(out)
    assert "subject:order:1042" in {c["ref"] for c in answer["citations"]}

    asked = [q["asked_by"] for q in ops.ask.questions()]
    assert asked[1:] == [VIEWER.email, REVIEWER.email]


def test_ask_as_someone_without_an_account_is_refused(
    make_ops: OpsFactory, cli_database: str
) -> None:
    make_ops(cli_database, playbooks=PLAYBOOKS)
    code, out = run("ask", "my tasks", "--as", "nobody@example.com")
    assert code == 1
    assert "no active account 'nobody@example.com'" in out

"""The win-back template's page in the gallery: its schedule, its subject lines and its outcome
in plain words, and a backtest over the stored history."""

from __future__ import annotations

import json

from opsloop.service import OpsLoop
from tests.conftest import OpsFactory
from tests.people import OWNER, add_people
from tests.web.test_playbook_pages import Browse, browse, text_of

__all__ = ["browse"]  # a fixture used here

PAGE = "/playbooks/_templates/win-back"


def test_the_win_back_template_reads_in_plain_words_and_backtests(
    make_ops: OpsFactory, sqlite_url: str, browse: Browse
) -> None:
    ops: OpsLoop = make_ops(sqlite_url)
    add_people(ops)
    order = {"type": "order.placed", "subject": "customer:1", "traits": {"email": "a@example.com"}}
    ops.ingest.body(json.dumps(order).encode())
    owner = browse(ops, OWNER)
    page = owner.get(PAGE)
    assert page.status_code == 200
    words = text_of(page.text)
    for said in (
        "Runs on a schedule (0 9 * * MON) for each customer where entity.email != null and "
        "days_since_order != null and days_since_order >= 60.",
        "Days since the last order (days_since_order)",
        "Email to entity.email",
        "- name: running-low",
        "Success: a order.placed event within 2 weeks after the trigger.",
        "Install in recommend mode",
    ):
        assert said in words, said

    report = owner.htmx(f"{PAGE}/backtest", {"since": "90d"})
    assert report.status_code == 200
    assert text_of(report.text).startswith("Backtest of win-back")
    assert ops.decide.list_playbooks() == [], "a backtest installs nothing"

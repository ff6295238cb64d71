"""Every page fits a phone (390 px) and a laptop (1366 px) without scrolling sideways.

The pages are the app's own GET page routes, read from the app, so a new page is checked
without anyone remembering to add it; a path parameter needs a sample here (the test says
which). The business behind them has long names and addresses, a waiting decision, a
delivered email, an open task, a running sequence, a declared source and a quarantined
delivery, so the pages show their real content, not their empty states.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from opsloop.builtin import builtin_playbook
from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import InvalidInput
from opsloop.service import OpsLoop
from opsloop.store import playbook_runs
from opsloop.store.schema import playbooks
from tests.browser.conftest import sideways
from tests.browser.test_sign_in import sign_in
from tests.conftest import LiveServer, OpsFactory
from tests.people import OWNER, add_people
from tests.sinks import SmtpSink
from tests.test_docs import page_routes

WIDTHS = (390, 1366)
EXTRA_PAGES = ["/playbooks/restock", "/decisions/{lead_decision_id}"]
"""Pages whose sample above shows too little: a scheduled playbook's page, with its runs, and
a lead's decision, with its scorecard's table."""
SOURCE = """\
name: storefront-orders-webhook
kind: webhook
verify: hmac
signed: body
"""
LONG_COMPANY = "Internationale Handelsgesellschaft für Nachhaltige Verpackungslösungen GmbH"
LONG_EMAIL = "procurement.department.head.of.operations@internationale-handelsgesellschaft.example"


@pytest.fixture
def live_app(
    make_ops: OpsFactory,
    sqlite_url: str,
    serve: Callable[[OpsLoop], LiveServer],
    smtp_sink: SmtpSink,
) -> LiveServer:
    onboarding, _ = builtin_playbook("customer-onboarding")
    restock, _ = builtin_playbook("restock")  # a schedule, and a task of long template fields
    leads, _ = builtin_playbook("lead-qualification")  # a scorecard of long feature names
    ops = make_ops(
        sqlite_url,
        playbooks=[leads, onboarding, restock],
        use_clock=False,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
    )
    add_people(ops)
    ops.ingest.add_source(SOURCE, "source.yaml", secret="a-secret-of-the-shop", actor="tests")
    events = [
        {
            "type": "lead.created",
            "subject": f"lead:{n}-{'x' * 40}",
            "traits": {
                "email": LONG_EMAIL.replace("head", f"head{n}"),
                "name": f"Maximilian Alexander von Hohenberg-Schwarzenfeld {n}",
                "company": LONG_COMPANY,
                "company_size": 40,
                "budget": 9000,
            },
        }
        for n in range(3)
    ]
    events.append(
        {
            "type": "signup.completed",
            "subject": "customer:" + "y" * 60,
            "traits": {"email": LONG_EMAIL, "name": "Ana", "company": LONG_COMPANY},
        }
    )
    ops.ingest.body(json.dumps({"events": events}).encode())
    ops.run_jobs()
    # A hot lead approved: its chat message and task; one refused body in the quarantine.
    pending = ops.decide.list_decisions(status="pending")
    ops.review.verdict(pending[0]["id"], ReviewRequest(verdict="approve", reviewer=OWNER.email))
    ops.run_jobs()
    with pytest.raises(InvalidInput):
        ops.ingest.body(b'{"type": "lead.created", "subject": "' + b"z" * 300 + b'"}')
    # A past run of the restock schedule, so its page lists the runs as a table.
    with ops.db.transaction() as tx:
        restock_id = tx.conn.execute(
            select(playbooks.c.id).where(playbooks.c.name == "restock")
        ).scalar_one()
        for weeks, status in ((2, "skipped"), (1, "done")):
            due = ops.now() - timedelta(weeks=weeks)
            run_id = playbook_runs.claim(tx.conn, restock_id, due, ops.now())
            assert run_id is not None
            playbook_runs.finish(
                tx.conn, run_id, ops.now(), status=status, subjects=6, selected=1, decided=1
            )
    return serve(ops)


def samples(ops: OpsLoop) -> dict[str, str]:
    decisions = ops.decide.list_decisions()
    tasks = ops.deliver.list_tasks()
    year, week, _ = ops.now().isocalendar()
    return {
        "decision_id": str(decisions[0]["id"]),
        "lead_decision_id": str(
            next(d["id"] for d in decisions if d["playbook"] == "lead-qualification")
        ),
        "task_id": str(tasks[0]["id"]) if tasks else "1",
        "kind": "webhook",
        "week": f"{year}-W{week:02d}",
        "document_id": str(
            ops.ask.add_document(
                name="returns.md",
                content=b"# Returns\n\nWe take returns within 30 days of delivery.\n",
                actor="tests",
            )["id"]
        ),
    }


def url_of(path: str, values: dict[str, str]) -> str:
    def sample(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "name":
            if path.startswith("/sources"):
                return "storefront-orders-webhook"
            return "lead-qualification"
        assert name in values, f"give the path parameter {{{name}}} of {path} a sample here"
        return values[name]

    return re.sub(r"\{([a-z_]+)\}", sample, path)


def overflowing(page: Any) -> str:
    """The elements that stick out of the window where their parent does not (the ones that
    widen it), outside any box that scrolls or clips them, for the failure message."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => {
        const width = document.documentElement.clientWidth;
        const clipped = (el) => {
          for (let up = el.parentElement; up; up = up.parentElement) {
            if (getComputedStyle(up).overflowX !== 'visible') return true;
          }
          return false;
        };
        const out = [];
        for (const el of document.body.querySelectorAll('*')) {
          const box = el.getBoundingClientRect();
          const parent = el.parentElement.getBoundingClientRect();
          if (box.right > width + 1 && parent.right <= width + 1 && !clipped(el)) {
            out.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} in ` +
                     `${el.parentElement.tagName.toLowerCase()}.` +
                     `${[...el.parentElement.classList].join('.')} ` +
                     `right=${Math.round(box.right)} "${el.textContent.trim().slice(0, 40)}"`);
          }
        }
        return out.slice(0, 8).join('; ');
      }"""
    )


def test_no_page_scrolls_sideways_on_a_phone_or_a_laptop(
    browser: Any, live_app: LiveServer
) -> None:
    from opsloop.web.app import create_app

    routes = sorted(
        path
        for method, path in page_routes(create_app(live_app.ops.settings, service=live_app.ops))
        if method == "GET" and path not in ("/login", "/setup", "/logout")
    )
    values = samples(live_app.ops)
    problems = []
    for width in WIDTHS:
        context = browser.new_context(
            base_url=live_app.url,
            viewport={"width": width, "height": 844},
            is_mobile=width < 600,
        )
        page = context.new_page()
        page.goto("/login")
        sign_in(page, OWNER.email, OWNER.password)
        page.wait_for_url(lambda url: "/login" not in url)
        for url in [url_of(path, values) for path in [*routes, *EXTRA_PAGES]]:
            answer = page.goto(url)
            assert answer is not None
            assert answer.status < 500, f"{url}: {answer.status}"
            extra = sideways(page)
            if extra > 0:
                problems.append(f"{url} at {width}px: {extra}px too wide ({overflowing(page)})")
        context.close()
    assert not problems, "\n".join(problems)

"""A small business for the operations chat's tests (service, pages, CLI, browser), built
through the façade: leads decided by the lead playbook (one hot, with its follow-up task given
to the reviewer; two waiting for review), support tickets triaged (one reviewed), and an order
with its events."""

from __future__ import annotations

import json
from dataclasses import dataclass

from opsloop.core.access import Principal
from opsloop.core.decisions import ReviewRequest
from opsloop.service import OpsLoop
from tests.conftest import lead_playbook
from tests.leads import new_lead, settle
from tests.people import OWNER, REVIEWER, VIEWER, Person

SUPPORT_TRIAGE = """\
name: support-triage
description: Escalate urgent tickets, answer the rest.
subject: ticket
mode: recommend
trigger:
  events: ticket.opened
rules:
  - label: Marked urgent
    when: event.payload.urgent == true
    choose: escalate
otherwise: reply
options:
  reply:
    label: Reply with the help article
    actions:
      - kind: task
        title: "Reply to {{ subject }}"
  escalate:
    label: Escalate
    actions:
      - kind: task
        title: "Call about {{ subject }}"
        assignee: senior
"""

PLAYBOOKS = [lead_playbook(), SUPPORT_TRIAGE]


@dataclass(frozen=True)
class Business:
    hot_lead: int
    """The settled hot lead's decision."""
    waiting_leads: list[int]
    """Lead decisions waiting for review."""
    tickets: list[int]
    """Ticket decisions: the first reviewed, the others waiting."""
    task: int
    """The hot lead's follow-up task, assigned to the reviewer."""
    order_events: list[int]


def build(ops: OpsLoop) -> Business:
    """The business on `ops` (made with `PLAYBOOKS`)."""
    settle(ops, 1, "hot", name="Ana", company="Acme")
    waiting = [new_lead(ops, n, name=f"Lead {n}")["id"] for n in (2, 3)]
    tickets = []
    for n, urgent in ((501, False), (502, True)):
        body = {"type": "ticket.opened", "subject": f"ticket:{n}", "payload": {"urgent": urgent}}
        ops.ingest.body(json.dumps(body).encode())
        [decision] = ops.decide.list_decisions(subject=f"ticket:{n}")
        tickets.append(decision["id"])
    ops.review.verdict(tickets[0], ReviewRequest("approve", REVIEWER.email))
    order = [
        {"type": "order.placed", "subject": "order:1042", "payload": {"total": 80, "items": 2}},
        {"type": "order.shipped", "subject": "order:1042", "payload": {"carrier": "DHL"}},
    ]
    ops.ingest.body(json.dumps({"events": order}).encode())
    ops.run_jobs()
    task = next(t for t in ops.deliver.list_tasks() if t["title"] == "Call Ana at Acme")
    ops.deliver.reassign_task(task["id"], REVIEWER.email, by=OWNER.email)
    events = [e["id"] for e in ops.ingest.list_events(subject="order:1042")]
    return Business(
        hot_lead=ops.decide.list_decisions(subject="lead:1")[0]["id"],
        waiting_leads=waiting,
        tickets=tickets,
        task=task["id"],
        order_events=sorted(events),
    )


def principal(person: Person) -> Principal:
    """`person` as a signed-in principal (their account's id does not matter to the chat)."""
    permission = {"owner": "admin", "reviewer": "review", "viewer": "read"}[person.role]
    return Principal(
        kind="user",
        id=1,
        name=person.email,
        permission=permission,  # type: ignore[arg-type]
        role=person.role,  # type: ignore[arg-type]
    )


__all__ = ["OWNER", "REVIEWER", "VIEWER", "Business", "build", "principal"]

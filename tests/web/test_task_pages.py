"""The Tasks page, API and CLI: the follow-ups decisions created — open, mine, overdue, done —
marked done and reassigned by the people who do them."""

from __future__ import annotations

from tests.conftest import Clock, lead_playbook
from tests.leads import settle
from tests.people import REVIEWER, VIEWER
from tests.web.test_playbook_pages import AppFor, Browse, app_for, browse, text_of

__all__ = ["app_for", "browse"]  # fixtures used here


def test_a_reviewer_takes_a_task_sees_it_overdue_and_marks_it_done(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    ops = app_for(lead_playbook())
    settle(ops, 1, "hot", name="Ana", company="Acme")
    ops.run_jobs()  # the task action creates the task
    [task] = ops.deliver.list_tasks()
    assert (task["title"], task["assignee"]) == ("Call Ana at Acme", "sales")

    viewer = browse(ops, VIEWER).get("/tasks")
    row = text_of(viewer.text.split(f'data-testid="task-{task["id"]}"')[1].split("</tr>")[0])
    assert "Call Ana at Acme" in row
    assert "sales lead:1 · decision" in row
    assert "/tasks/" not in viewer.text.split("<table")[1], "a viewer cannot change tasks"

    reviewer = browse(ops, REVIEWER)
    mine = reviewer.get("/tasks?status=mine")
    assert 'data-testid="tasks-empty"' in mine.text
    given = reviewer.post(f"/tasks/{task['id']}/assign", {"assignee": REVIEWER.email})
    assert given.headers["location"] == "/tasks?status=open&changed=assigned"
    assert f'data-testid="task-{task["id"]}"' in reviewer.get("/tasks?status=mine").text

    clock.advance(days=2)  # due in one day: now overdue
    overdue = reviewer.get("/tasks?status=overdue")
    assert "overdue" in text_of(overdue.text.split('data-testid="tasks"')[1])
    closed = reviewer.post(f"/tasks/{task['id']}/done", {"status": "overdue"})
    assert closed.headers["location"] == "/tasks?status=overdue&changed=done"
    done = text_of(reviewer.get("/tasks?status=done").text)
    assert f"by {REVIEWER.email}" in done
    again = reviewer.post(f"/tasks/{task['id']}/done", {})
    assert again.status_code == 409
    assert f"Task {task['id']} is already done." in text_of(again.text)

    api = reviewer.client.post(
        f"/api/tasks/{task['id']}/assign",
        json={"assignee": "someone"},
        headers={"X-CSRF-Token": reviewer.csrf},
    )
    assert api.status_code == 409, "a done task is not reassigned"
    assert (
        reviewer.get(f"/api/tasks?assignee={REVIEWER.email.upper()}").json()["tasks"][0]["status"]
        == "done"
    )

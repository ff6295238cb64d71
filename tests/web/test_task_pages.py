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


def test_a_decision_shows_its_task_and_it_is_closed_from_there(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(lead_playbook())
    settle(ops, 1, "hot", name="Ana", company="Acme")
    ops.run_jobs()
    [task] = ops.deliver.list_tasks()
    reviewer = browse(ops, REVIEWER)
    url = f"/decisions/{task['decision_id']}"

    line = text_of(reviewer.get(url).text.split('data-testid="task"')[1].split("</div>")[0])
    assert "Task “Call Ana at Acme” for sales: open, due" in line
    given = reviewer.post(f"/tasks/{task['id']}/assign", {"assignee": "rui", "next": url})
    assert given.headers["location"] == url
    closed = reviewer.post(f"/tasks/{task['id']}/done", {"next": url})
    assert closed.headers["location"] == url
    line = text_of(reviewer.get(url).text.split('data-testid="task"')[1].split("</div>")[0])
    assert f"Task “Call Ana at Acme” for rui: done by {REVIEWER.email}" in line
    # `next` only ever leads back into OpsLoop.
    settle(ops, 2, "hot", name="Bo", company="Bolt")
    ops.run_jobs()
    [second] = [t for t in ops.deliver.list_tasks() if t["status"] == "open"]
    away = reviewer.post(f"/tasks/{second['id']}/done", {"next": "https://evil.example/"})
    assert away.headers["location"] == "/tasks?status=open&changed=done"


def test_the_inbox_lists_your_open_tasks_to_close_there(app_for: AppFor, browse: Browse) -> None:
    ops = app_for(lead_playbook())
    settle(ops, 1, "hot", name="Ana", company="Acme")
    ops.run_jobs()
    [task] = ops.deliver.list_tasks()
    reviewer = browse(ops, REVIEWER)
    assert 'data-testid="my-tasks"' not in reviewer.get("/inbox").text, "given to sales"
    reviewer.post(f"/tasks/{task['id']}/assign", {"assignee": REVIEWER.email})

    strip = reviewer.get("/inbox").text.split('data-testid="my-tasks"')[1].split("</section>")[0]
    assert "Call Ana at Acme" in text_of(strip)
    closed = reviewer.post(f"/tasks/{task['id']}/done", {"next": "/inbox"})
    assert closed.headers["location"] == "/inbox"
    assert 'data-testid="my-tasks"' not in reviewer.get("/inbox").text

"""The Actions page over real HTTP: the outbox by status with each action's decision, target,
attempts and error; reviewers retry dead actions and cancel waiting ones, a cancelled action is
never delivered, and viewers may only look."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, OpsFactory, Serve, lead_playbook
from tests.leads import settle
from tests.people import OWNER, REVIEWER, VIEWER, SignIn, add_people
from tests.sinks import SmtpSink, free_port


class Mail(SmtpSink):
    """An SMTP server on a port of its own, started by the test when mail should get through."""

    started = False

    def start(self) -> None:
        super().start()
        self.started = True


@pytest.fixture
def mail() -> Iterator[Mail]:
    sink = Mail(free_port())
    yield sink
    if sink.started:
        sink.stop()
    else:
        sink.controller.loop.close()  # made with the controller, never run


@pytest.fixture
def site(make_ops: OpsFactory, sqlite_url: str, serve: Serve, mail: Mail) -> LiveServer:
    # No workers run: the test runs the delivery jobs itself with `ops.run_jobs()`.
    ops = make_ops(
        sqlite_url,
        playbooks=[lead_playbook()],
        use_clock=False,
        smtp_host="127.0.0.1",
        smtp_port=mail.port,
        outbox_max_attempts=2,
        notify_channels={"sales": "https://hooks.example.com/services/T0/SECRET-PATH"},
    )
    add_people(ops)
    return serve(ops)


def rows(page: str) -> dict[int, str]:
    found = re.findall(r'(<tr id="action-(\d+)".*?</tr>)', page, re.S)
    return {int(number): row for row, number in found}


def test_an_empty_outbox_says_where_actions_come_from(site: LiveServer, signed: SignIn) -> None:
    viewer, _ = signed(site.url, VIEWER)
    page = viewer.get("/actions")

    assert page.status_code == 200
    assert "Nothing has been sent yet." in page.text
    assert 'href="/inbox"' in page.text
    for tab in ("pending", "retrying", "dead", "delivered"):
        assert f'data-testid="tab-{tab}"' in page.text
    assert 'data-testid="tab-cancelled"' not in page.text  # shown once something is cancelled
    assert viewer.get("/actions?status=nonsense").status_code == 200


def test_each_tab_lists_its_actions_with_decision_target_attempts_and_error(
    site: LiveServer, signed: SignIn
) -> None:
    ops = site.ops
    [waiting] = settle(ops, 1)
    notify, task = settle(ops, 2, option="hot")
    [dead] = settle(ops, 3, email=None)
    [failing] = settle(ops, 4)
    ops.deliver.send(task["id"])  # a local kind: done at once
    ops.deliver.send(dead["id"])
    ops.deliver.send(failing["id"])  # the mail server is down: retried later
    reviewer, _ = signed(site.url, REVIEWER)

    # The dashboard counts both: what gave up, and what is failing now.
    tile = reviewer.get("/dashboard").text.split('data-tile="failed-deliveries"')[1]
    assert ">1</div>" in tile.split("</div>")[1] + "</div>", "one dead-lettered"
    assert "<strong>1</strong> failing now, to be tried again" in tile
    assert 'href="/actions?status=retrying"' in tile
    # With no tab asked for, the page opens where the work is: what failed for good first.
    assert set(rows(reviewer.get("/actions").text)) == {dead["id"]}
    pending = rows(reviewer.get("/actions?status=pending").text)
    assert set(pending) == {waiting["id"], notify["id"]}
    row = pending[waiting["id"]]
    assert (
        f'<a href="/decisions/{waiting["decision_id"]}">decision {waiting["decision_id"]}</a>'
        in row
    )
    assert "lead1@example.com" in row
    assert "Cancel</button>" in row
    assert "Retry</button>" not in row
    assert "chat channel sales" in pending[notify["id"]]
    assert "SECRET-PATH" not in reviewer.get("/actions?status=pending").text

    retrying = rows(reviewer.get("/actions?status=retrying").text)[failing["id"]]
    assert "cannot reach the SMTP server 127.0.0.1" in retrying
    assert "<time" in retrying.split("adm-error")[1]  # when it is tried next
    assert "<td>1</td>" in retrying  # attempts
    dead_page = reviewer.get("/actions?status=dead").text
    assert "email has no recipient" in rows(dead_page)[dead["id"]]
    assert "fails the same way until the cause is fixed" in rows(dead_page)[dead["id"]]
    assert "Retry</button>" in rows(dead_page)[dead["id"]]
    assert 'class="adm-tab-alert"' in dead_page
    assert set(rows(reviewer.get("/actions?status=delivered").text)) == {task["id"]}


def test_a_reviewer_retries_a_dead_action_and_it_is_delivered(
    site: LiveServer, signed: SignIn, mail: Mail
) -> None:
    ops = site.ops
    [email] = settle(ops, 1)
    ops.deliver.send(email["id"])
    ops.deliver.send(email["id"])  # both attempts fail: the mail server is down
    assert ops.deliver.get_action(email["id"])["status"] == "dead"
    mail.start()
    reviewer, csrf = signed(site.url, REVIEWER)

    answer = reviewer.post(
        f"/actions/{email['id']}/retry", data={"csrf_token": csrf, "status": "dead"}
    )

    assert (answer.status_code, answer.headers["location"]) == (303, "/actions?status=dead")
    assert ops.deliver.get_action(email["id"])["status"] == "pending"
    ops.run_jobs()
    assert ops.deliver.get_action(email["id"])["status"] == "delivered"
    assert [m.rcpt_tos for m in mail.messages] == [["lead1@example.com"]]
    page = reviewer.get("/actions?status=delivered").text
    assert email["id"] in rows(page)


def test_a_cancelled_action_is_never_delivered_even_if_its_job_runs(
    site: LiveServer, signed: SignIn, mail: Mail
) -> None:
    mail.start()
    ops = site.ops
    [email] = settle(ops, 1)
    owner, csrf = signed(site.url, OWNER)

    answer = owner.post(f"/actions/{email['id']}/cancel", data={"csrf_token": csrf})

    assert (answer.status_code, answer.headers["location"]) == (303, "/actions?status=pending")
    ops.run_jobs()  # the delivery job queued with the action
    assert ops.deliver.send(email["id"]) == "cancelled"
    assert mail.messages == []
    page = owner.get("/actions?status=cancelled").text
    assert "cancelled by olga@example.com" in rows(page)[email["id"]]
    assert "<button" not in rows(page)[email["id"]]
    # Cancelling it again, or retrying it, is refused with the reason.
    again = owner.post(f"/actions/{email['id']}/cancel", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert (
        f"Action {email['id']} is cancelled; only pending or retrying actions can be cancelled."
        in again.text
    )
    retried = owner.post(f"/actions/{email['id']}/retry", data={"csrf_token": csrf})
    assert retried.status_code == 409
    assert "only dead-lettered actions can be retried" in retried.text
    missing = owner.post("/actions/999/cancel", data={"csrf_token": csrf})
    assert (missing.status_code, "No action 999." in missing.text) == (404, True)


def test_htmx_gets_the_row_back_with_the_outcome(site: LiveServer, signed: SignIn) -> None:
    ops = site.ops
    [email] = settle(ops, 1)
    ops.deliver.send(email["id"])  # fails: retrying
    reviewer, csrf = signed(site.url, REVIEWER)
    htmx = {"HX-Request": "true", "X-CSRF-Token": csrf}

    cancelled = reviewer.post(
        f"/actions/{email['id']}/cancel", headers=htmx, data={"status": "retrying"}
    )
    assert cancelled.status_code == 200
    assert cancelled.text.strip().startswith(f'<tr id="action-{email["id"]}"')
    assert 'data-status="cancelled"' in cancelled.text
    refused = reviewer.post(f"/actions/{email['id']}/retry", headers=htmx)
    assert refused.status_code == 200  # htmx swaps only 2xx: the error travels in the row
    assert 'role="alert"' in refused.text
    assert "only dead-lettered actions can be retried" in refused.text


def test_a_viewer_may_look_but_not_retry_or_cancel(site: LiveServer, signed: SignIn) -> None:
    ops = site.ops
    [email] = settle(ops, 1)
    [dead] = settle(ops, 2, email=None)
    ops.deliver.send(dead["id"])
    viewer, csrf = signed(site.url, VIEWER)

    for status in ("pending", "dead"):
        page = viewer.get(f"/actions?status={status}").text
        assert rows(page)
        assert '<button type="submit"' not in page.split("<main>")[1]
    for url in (f"/actions/{email['id']}/cancel", f"/actions/{dead['id']}/retry"):
        refused = viewer.post(url, data={"csrf_token": csrf})
        assert refused.status_code == 403, url
        assert "needs the reviewer role" in refused.text
    assert ops.deliver.get_action(email["id"])["status"] == "pending"
    assert ops.deliver.get_action(dead["id"])["status"] == "dead"

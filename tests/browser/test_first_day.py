"""A new owner's first day, in the browser only: from `opsloop serve` on an empty folder to a
delivered email and a closed task, with nothing typed into a terminal or a config file.

The owner creates their account, sets up the mail server, a chat channel and the language
model in Settings, adds a signed webhook source, installs two templates, and the business's
website posts two signed deliveries (the curl line the source page offers). The hot lead's
decision shows what approving would send; approved, its chat message arrives and its task is
marked done from the decision's page. The upset customer's ticket waits with a reply the
language model drafted; the owner edits it in place, approves, and the edited email arrives.
The dashboard counts the closed task.

Real parts throughout: `opsloop serve` in its own process, an SMTP server and an HTTP server
on loopback, bash, openssl and curl; only the language model is a stub on loopback.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.conftest import eventually
from tests.fake_llm import Answer, FakeOpenAI
from tests.service.test_text_triage import label_answer
from tests.sinks import HttpSink, SmtpSink, free_port

pytestmark = pytest.mark.browser

EMAIL = "owner@corner-shop.example"
PASSWORD = "a long owner password"
HOT_LEAD = {  # asked for a demo (+20), the right size (+20) and funded (+20): 60, hot
    "type": "demo.requested",
    "subject": "lead:ana",
    "traits": {
        "email": "ana@acme.example",
        "name": "Ana Silva",
        "company": "Acme",
        "company_size": 40,
        "budget": 9000,
    },
}
TICKET = {
    "type": "ticket.created",
    "subject": "ticket:77",
    "payload": {
        "email": "sam@example.com",
        "subject": "My kettle broke again",
        "body": "This is unacceptable: the kettle broke again and I want my money back!",
        "order_id": "A-77",
    },
    "traits": {"name": "Sam", "lifetime_value": 120},
}


class Server:
    """`opsloop serve` on an empty data folder, in its own process."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")}
        env.update(
            OPSLOOP_DATA_DIR=str(data_dir),
            OPSLOOP_PORT=str(self.port),
            OPSLOOP_WORKER_POLL_SECONDS="0.1",
            OPSLOOP_LOG_LEVEL="INFO",
        )
        data_dir.mkdir()
        self.log = data_dir / "server.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "opsloop", "serve"], env=env, stdout=log, stderr=log
            )
        eventually(self._ready, timeout=60)

    def _ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "empty")
    yield running
    running.stop()


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


def save(page: Any, group: str, fields: dict[str, str]) -> None:
    """Fill a group of Settings and save it; the notice says it is in force."""
    form = page.get_by_test_id(f"settings-{group}")
    for field, value in fields.items():
        form.locator(f"[name={field}]").fill(value)
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id(f"settings-{group}")).to_contain_text("in force now")


def post_with_the_curl_line(command: str, event: dict[str, Any], secret: str) -> str:
    """Run the source page's command with bash, sending `event` instead of its sample."""
    body = json.dumps(event)
    script = re.sub(r"(?m)^BODY=.*$", lambda _: f"BODY={shlex.quote(body)}", command)
    script = re.sub(r"(?m)^SECRET=.*$", lambda _: f"SECRET={shlex.quote(secret)}", script)
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def reload_until(page: Any, check: Any) -> None:
    """The workers decide and deliver in the server's own time: look again until they have."""

    def looked() -> bool:
        try:
            page.reload()
        except PlaywrightError:  # a navigation the last click started was still under way
            return False
        return bool(check())

    eventually(looked, timeout=30, interval=0.3)


def test_a_new_owner_goes_from_an_empty_folder_to_a_sent_email_and_a_closed_task(
    browser: Any,
    server: Server,
    smtp_sink: SmtpSink,
    http_sink: HttpSink,
    llm: FakeOpenAI,
    tmp_path: Path,
) -> None:
    context = browser.new_context(base_url=server.url, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    # 1. The first visit makes the owner's account.
    page.goto("/")
    page.wait_for_url("**/setup")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/setup" not in url)

    # 2. Settings: the mail server, the sales chat channel, the language model.
    page.goto("/settings")
    save(
        page,
        "smtp",
        {
            "smtp_host": "127.0.0.1",
            "smtp_port": str(smtp_sink.port),
            "smtp_from": "Corner Shop <hello@corner-shop.example>",
        },
    )
    save(page, "chat", {"notify_channels": f"sales = {http_sink.url}/sales"})
    save(page, "llm", {"llm__url": llm.url, "llm__model": "tiny"})
    page.get_by_role("button", name="Test the mail server").click()
    expect(page.get_by_test_id("smtp-check")).to_contain_text("Connected to")

    # 3. A signed webhook source for the website; its secret is shown once.
    page.goto("/sources")
    page.get_by_test_id("add-source").click()
    page.get_by_test_id("start-webhook").click()
    page.fill("#f-name", "website")
    page.get_by_test_id("save-source").click()
    page.wait_for_url("**/sources/website?done=added&k=*")
    secret = page.get_by_test_id("secret-value").inner_text()
    command = page.get_by_test_id("delivery-command").inner_text()

    # 4. Two templates, each installed in recommend mode with one click.
    for template in ("lead-qualification", "support-triage"):
        page.goto(f"/playbooks/_templates/{template}")
        page.get_by_role("button", name="Install in recommend mode").click()
        page.wait_for_url(f"**/playbooks/{template}?installed=true")
        expect(page.get_by_test_id("installed")).to_contain_text("recommend mode")

    # 5. The website posts a hot lead and an upset customer's ticket, signed.
    llm.then(label_answer("refund"), Answer(content="Dear Sam, we are sorry. (AI draft)"))
    post_with_the_curl_line(command, HOT_LEAD, secret)
    post_with_the_curl_line(command, TICKET, secret)

    # 6. The inbox: both wait. The lead's decision shows what approving sends, then runs it.
    page.goto("/inbox")
    reload_until(page, lambda: page.locator(".inbox-item").count() == 2)
    page.get_by_role("link", name=re.compile("Ana Silva")).first.click()
    page.wait_for_url("**/decisions/*")
    preview = page.get_by_test_id("preview")
    expect(preview.nth(0)).to_contain_text("Hot lead Ana Silva (Acme)")
    expect(preview.nth(1)).to_contain_text("Call Ana Silva at Acme")
    # Wait for the review's answer: reloading at once could cancel the request in flight.
    with page.expect_response(
        lambda answer: answer.url.endswith("/review") and answer.request.method == "POST"
    ) as reviewed:
        page.get_by_role("button", name="Approve").first.click()
    assert reviewed.value.ok, reviewed.value.status
    reload_until(page, lambda: page.get_by_test_id("task").count() == 1)
    eventually(lambda: http_sink.requests, timeout=15)
    assert "Hot lead Ana Silva (Acme)" in http_sink.requests[0].json()["text"]

    # 7. The follow-up task is marked done from the decision's page.
    page.get_by_test_id("task").get_by_role("button", name="Mark done").click()
    expect(page.get_by_test_id("task")).to_contain_text(f"done by {EMAIL}")

    # 8. The ticket waits with the AI draft; edited in place and approved, the email goes.
    page.goto("/inbox")
    row = page.locator(".inbox-item").filter(has_text="ticket:77")
    draft = row.locator("textarea[name=draft]")
    expect(draft).to_have_value("Dear Sam, we are sorry. (AI draft)")
    final = "Dear Sam,\n\nSorry about the kettle: a new one ships today, at our cost.\n\nAna"
    draft.fill(final)
    row.get_by_role("button", name="Approve").click()
    expect(row).to_contain_text("approved")
    [mail] = eventually(lambda: smtp_sink.messages[-1:], timeout=15)
    assert mail.rcpt_tos == ["sam@example.com"]
    assert mail.message["From"] == "Corner Shop <hello@corner-shop.example>"
    assert mail.body.replace("\r\n", "\n").strip() == final

    # 9. The dashboard counts the closed task.
    page.goto("/dashboard?playbook=lead-qualification")
    completion = page.locator("[data-metric=task_completion]")
    expect(completion).to_contain_text("over 1 task done")
    assert not problems, problems
    context.close()

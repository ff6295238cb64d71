"""Review over real HTTP: decisions appear with their explanation; approving sends the email to
a real SMTP server; an override runs the other option and its signed webhook arrives."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from standardwebhooks import Webhook

from opsloop.service import OpsLoop
from tests.conftest import WEBHOOK_SECRET, LiveServer, OpsFactory, eventually, lead_playbook
from tests.sinks import HttpSink, SmtpSink


@pytest.fixture
def api(
    make_ops: OpsFactory,
    sqlite_url: str,
    serve: Callable[[OpsLoop], LiveServer],
    smtp_sink: SmtpSink,
    http_sink: HttpSink,
) -> Iterator[httpx.Client]:
    # The hot option also tells the CRM, through a signed webhook.
    playbook = lead_playbook(
        "recommend",
        **{
            "      - kind: task\n": f"      - kind: webhook\n        url: {http_sink.url}/crm\n      - kind: task\n"
        },
    )
    ops = make_ops(
        sqlite_url,
        playbooks=[playbook],
        use_clock=False,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        notify_channels={"sales": f"{http_sink.url}/chat"},
    )
    ops.start()
    server = serve(ops)
    with server.client() as client:
        yield client


def pending(api: httpx.Client, subject: str) -> dict:
    def find() -> dict | None:
        found = api.get(
            "/api/decisions",
            params={"status": "pending", "playbook": "lead-qualification", "subject": subject},
        )
        rows = found.json()["decisions"]
        return rows[0] if rows else None

    return eventually(find)


def test_approving_over_http_sends_the_email(api: httpx.Client, smtp_sink: SmtpSink) -> None:
    created = api.post(
        "/api/events",
        json={
            "type": "lead.created",
            "subject": "lead:31",
            "traits": {"email": "mo@shop.test", "first_name": "Mo"},
        },
    )
    assert created.status_code == 201

    decision = pending(api, "lead:31")
    assert decision["choice"] == "nurture"
    detail = api.get(f"/api/decisions/{decision['id']}").json()
    assert detail["trigger"]["id"] == created.json()["id"]
    assert [line["label"] for line in detail["explanation"]["scorecard"]][:2] == [
        "Engaged this week",
        "Looked at pricing",
    ]
    assert detail["explanation"]["chosen_by"]["label"] == "otherwise"

    reviewed = api.post(
        f"/api/decisions/{decision['id']}/review", json={"verdict": "approve", "reviewer": "sam"}
    )
    assert reviewed.status_code == 200
    assert reviewed.json()["status"] == "approved"

    [mail] = eventually(lambda: smtp_sink.messages)
    assert mail.rcpt_tos == ["mo@shop.test"]
    assert "Hi Mo," in mail.body
    delivered = eventually(
        lambda: [
            a
            for a in api.get(f"/api/decisions/{decision['id']}").json()["actions"]
            if a["status"] == "delivered"
        ]
    )
    assert delivered[0]["attempt_log"][0]["detail"]["to"] == "mo@shop.test"


def test_an_override_runs_the_other_option_and_its_webhook_is_signed(
    api: httpx.Client, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    api.post(
        "/api/events",
        json={
            "type": "lead.created",
            "subject": "lead:32",
            "traits": {"email": "li@shop.test", "company": "Shop"},
        },
    )
    decision = pending(api, "lead:32")

    response = api.post(
        f"/api/decisions/{decision['id']}/review",
        json={
            "verdict": "override",
            "option": "hot",
            "reason": "they asked for a quote by phone",
            "reviewer": "sam",
        },
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["final_choice"]) == ("overridden", "hot")

    [hook] = eventually(lambda: http_sink.to("/crm"))
    payload = Webhook(WEBHOOK_SECRET).verify(hook.body, hook.headers)
    assert payload["data"]["subject"] == "lead:32"
    assert payload["data"]["choice"] == "hot"
    [chat] = eventually(lambda: http_sink.to("/chat"))
    assert chat.json()["text"].startswith("Hot lead lead:32 (Shop)")
    tasks = eventually(lambda: api.get("/api/tasks").json()["tasks"])
    assert tasks[0]["title"] == "Call lead:32 at Shop"
    detail = api.get(f"/api/decisions/{decision['id']}").json()
    assert detail["reviews"][0]["reason"] == "they asked for a quote by phone"
    assert smtp_sink.messages == []


def test_review_mistakes_get_clear_answers(api: httpx.Client) -> None:
    api.post("/api/events", json={"type": "lead.created", "subject": "lead:33"})
    decision = pending(api, "lead:33")
    url = f"/api/decisions/{decision['id']}/review"

    no_reason = api.post(url, json={"verdict": "override", "option": "hot"})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"] == [
        {"field": "reason", "message": "say why you override it; the reason becomes training data"}
    ]

    typo = api.post(url, json={"verdict": "override", "option": "hott", "reason": "x"})
    assert typo.status_code == 422
    assert (
        typo.json()["errors"][0]["message"]
        == "no option 'hott'; did you mean 'hot'?; choose one of hot, nurture"
    )

    bad_verdict = api.post(url, json={"verdict": "maybe"})
    assert bad_verdict.status_code == 422
    assert bad_verdict.json()["errors"][0]["field"] == "verdict"

    assert api.post("/api/decisions/999999/review", json={"verdict": "approve"}).status_code == 404
    assert api.post(url, json={"verdict": "reject", "reason": "spam"}).status_code == 200
    again = api.post(url, json={"verdict": "approve"})
    assert again.status_code == 409
    assert (
        again.json()["message"]
        == f"decision {decision['id']} is rejected, not pending; it cannot be reviewed again"
    )


def test_metrics_count_reviews(api: httpx.Client) -> None:
    for key in ("41", "42"):
        api.post("/api/events", json={"type": "lead.created", "subject": f"lead:{key}"})
    first, second = pending(api, "lead:41"), pending(api, "lead:42")
    api.post(f"/api/decisions/{first['id']}/review", json={"verdict": "approve"})
    api.post(
        f"/api/decisions/{second['id']}/review", json={"verdict": "reject", "reason": "student"}
    )
    [row] = api.get("/api/metrics").json()["playbooks"]
    assert row["reviewed"] == 2
    assert row["override_rate"] == 0.5
    assert row["decisions"]["approved"] == 1
    assert row["pending_reviews"] == 0
    bad = api.get("/api/metrics", params={"since": "a week"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "since"

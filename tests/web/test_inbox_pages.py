"""The inbox and the decision page over real HTTP, signed in through the real /login form:
the empty and the full inbox, reviews through the htmx endpoint (approve, override, reject, a
missing reason, a forged request, a viewer), AI-drafted replies, and one decision in full."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from opsloop.service import OpsLoop
from tests.conftest import LiveServer, OpsFactory, Serve, lead_playbook
from tests.fake_llm import Answer, FakeOpenAI
from tests.people import OWNER, REVIEWER, VIEWER, Person, add_people, sign_in
from tests.service.test_text_triage import EXAMPLE, label_answer, ticket
from tests.sinks import SmtpSink, free_port

HOT = "Hot lead — hand to sales"
NURTURE = "Nurture by email"


# --- helpers ---------------------------------------------------------------------------------


def send(ops: OpsLoop, *events: dict[str, Any]) -> None:
    ops.ingest.body(json.dumps({"events": list(events)}).encode())
    ops.run_jobs()


def lead(key: str, *, hot: bool, name: str = "Ana") -> list[dict[str, Any]]:
    """A new lead; a hot one has looked at pricing all week, is the right size and funded."""
    subject = f"lead:{key}"
    views = [
        {"type": "page.viewed", "subject": subject, "payload": {"path": "/pricing"}}
        for _ in range(6 if hot else 0)
    ]
    traits = {"name": name, "email": f"{key}@example.com", "company": "Acme"}
    if hot:
        traits |= {"company_size": 40, "budget": 9000}
    return [*views, {"type": "lead.created", "subject": subject, "traits": traits}]


def waiting(ops: OpsLoop) -> dict[str, int]:
    """Decision id by subject, of those waiting for a person."""
    return {row["subject"]: row["id"] for row in ops.decide.list_decisions(status="to_review")}


def text_of(page: str) -> str:
    """The page's words, without tags, on one line each run of spaces."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def row(page: str, decision_id: int) -> str:
    found = re.search(
        rf'<li class="inbox-item[^"]*" id="decision-{decision_id}".*?</li>', page, re.S
    )
    assert found, f"no row for decision {decision_id}"
    return found.group(0)


def row_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li class="inbox-item[^"]*" id="decision-(\d+)"', page)]


class Browser:
    """A signed-in person's HTTP client, posting reviews as htmx does from the inbox."""

    def __init__(self, server: LiveServer, person: Person) -> None:
        self.server = server
        self.client, self.csrf = sign_in(server.url, person)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def review(
        self, decision_id: int, *, origin: str = "inbox", htmx: bool = True, **form: str
    ) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf}
        if htmx:
            headers |= {"HX-Request": "true", "HX-Current-URL": f"{self.server.url}/inbox"}
        return self.client.post(
            f"/decisions/{decision_id}/review",
            data={"origin": origin, **form},
            headers=headers,
        )


@pytest.fixture
def site(make_ops: OpsFactory, sqlite_url: str, serve: Serve) -> LiveServer:
    # No mail server listens on the port: the nurture email's delivery fails, and says why.
    ops = make_ops(
        sqlite_url,
        playbooks=[lead_playbook("recommend")],
        use_clock=False,
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
    )
    add_people(ops)
    return serve(ops)


Browse = Callable[[LiveServer, Person], Browser]


@pytest.fixture
def browse() -> Iterator[Browse]:
    """Sign people in; their clients are closed when the test ends."""
    opened: list[Browser] = []

    def open_(server: LiveServer, person: Person) -> Browser:
        opened.append(Browser(server, person))
        return opened[-1]

    yield open_
    for browser in opened:
        browser.client.close()


@pytest.fixture
def reviewer(site: LiveServer, browse: Browse) -> Browser:
    return browse(site, REVIEWER)


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def triage_site(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve, llm: FakeOpenAI, smtp_sink: SmtpSink
) -> LiveServer:
    ops = make_ops(
        sqlite_url,
        playbooks=[EXAMPLE.read_text()],
        use_clock=False,
        llm={"url": llm.url, "model": "tiny", "max_retries": 0},
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
    )
    add_people(ops)
    return serve(ops)


# --- the inbox -------------------------------------------------------------------------------


def test_an_empty_inbox_says_nothing_waits_and_what_will_appear(
    site: LiveServer, browse: Browse
) -> None:
    viewer = browse(site, VIEWER)
    home = viewer.get("/")
    assert (home.status_code, home.headers["location"]) == (303, "/inbox")

    page = viewer.get("/inbox")
    assert page.status_code == 200
    words = text_of(page.text)
    assert "Nothing waits for you" in words
    assert "recommend mode decides" in words
    assert 'data-testid="waiting-count"' not in page.text
    assert re.search(
        r'<nav class="nav".*?<a href="/inbox" aria-current="page">Inbox</a>', page.text, re.S
    )
    # The first entry of the navigation bar.
    assert re.search(r'<nav class="nav" aria-label="Main">\s*<a href="/inbox"', page.text)


def test_the_inbox_lists_each_decision_with_its_choice_score_and_why(
    site: LiveServer, reviewer: Browser
) -> None:
    send(site.ops, *lead("1", hot=True), *lead("2", hot=False), *lead("3", hot=True, name="Bo"))
    ids = waiting(site.ops)

    page = reviewer.get("/inbox")
    assert page.status_code == 200
    assert re.search(r'data-testid="waiting-count"[^>]*>3<', page.text)
    # Newest first.
    assert row_ids(page.text) == [ids["lead:3"], ids["lead:2"], ids["lead:1"]]
    hot = text_of(row(page.text, ids["lead:1"]))
    assert "lead:1" in hot
    assert "lead-qualification" in hot
    assert f"Choice {HOT} score 80" in hot
    assert "Engaged this week +25; Looked at pricing +15" in hot
    assert "Approve a" in hot
    assert "Override… o" in hot
    cold = text_of(row(page.text, ids["lead:2"]))
    assert f"Choice {NURTURE} score 0" in cold
    # The override choices are the playbook's other options, by label.
    assert re.search(
        rf'<select id="option-{ids["lead:1"]}" name="option" required>\s*<option value="nurture">{NURTURE}</option>\s*</select>',
        row(page.text, ids["lead:1"]),
    )
    assert 'src="/static/inbox.js' in page.text

    # Most urgent first: the highest score first, then the longest waiting.
    urgent = reviewer.get("/inbox?sort=urgent")
    assert row_ids(urgent.text) == [ids["lead:1"], ids["lead:3"], ids["lead:2"]]
    assert '<a href="/inbox?sort=urgent" aria-current="true"' in urgent.text

    # One playbook at a time; an unknown one shows the empty state.
    only = reviewer.get("/inbox?playbook=lead-qualification")
    assert len(row_ids(only.text)) == 3
    none = reviewer.get("/inbox?playbook=nope")
    assert "Nothing waits for you" in text_of(none.text)
    assert "Show every playbook" in none.text


def test_the_inbox_counts_and_orders_on_every_backend(
    make_ops: OpsFactory, database_url: str, serve: Serve, browse: Browse
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("recommend")], use_clock=False)
    add_people(ops)
    server = serve(ops)
    send(ops, *lead("1", hot=False), *lead("2", hot=True), *lead("3", hot=False))
    ids = waiting(ops)
    owner = browse(server, OWNER)
    assert owner.review(ids["lead:3"], verdict="approve").status_code == 200

    assert ops.review.count_waiting() == {"lead-qualification": 2}
    page = owner.get("/inbox?sort=urgent")
    assert row_ids(page.text) == [ids["lead:2"], ids["lead:1"]]
    assert re.search(r'data-testid="waiting-count"[^>]*>2<', page.text)


def test_a_viewer_reads_the_inbox_but_cannot_review(site: LiveServer, browse: Browse) -> None:
    send(site.ops, *lead("1", hot=True))
    [decision_id] = waiting(site.ops).values()
    viewer = browse(site, VIEWER)

    page = viewer.get("/inbox")
    assert "lead:1" in page.text
    assert "needs the reviewer role" in text_of(page.text)
    assert "review-approve" not in page.text
    answer = viewer.review(decision_id, verdict="approve")
    assert answer.status_code == 403
    assert "needs the reviewer role" in text_of(answer.text)
    assert site.ops.decide.decision_detail(decision_id)["status"] == "pending"
    detail = viewer.get(f"/decisions/{decision_id}")
    assert detail.status_code == 200
    assert "review-approve" not in detail.text


def test_approving_replaces_the_row_with_a_confirmation_and_updates_the_count(
    site: LiveServer, reviewer: Browser
) -> None:
    send(site.ops, *lead("1", hot=True), *lead("2", hot=False))
    ids = waiting(site.ops)

    answer = reviewer.review(ids["lead:1"], verdict="approve")
    assert answer.status_code == 200, answer.text
    done = row(answer.text, ids["lead:1"])
    assert "data-done" in done
    assert f"lead:1 approved — runs “{HOT}”" in text_of(done)
    # The counts at the top are swapped out of band.
    assert 'id="inbox-summary" hx-swap-oob="true"' in answer.text
    assert re.search(r'data-testid="waiting-count"[^>]*>1<', answer.text)

    detail = site.ops.decide.decision_detail(ids["lead:1"])
    assert (detail["status"], detail["final_choice"]) == ("approved", "hot")
    assert detail["reviews"][0]["reviewer"] == REVIEWER.email
    assert [a["kind"] for a in detail["actions"]] == ["notify", "task"]
    assert row_ids(reviewer.get("/inbox").text) == [ids["lead:2"]]


def test_an_override_needs_a_reason_and_runs_the_option_chosen(
    site: LiveServer, reviewer: Browser
) -> None:
    send(site.ops, *lead("1", hot=True))
    [decision_id] = waiting(site.ops).values()

    missing = reviewer.review(decision_id, verdict="override", option="nurture", reason=" ")
    assert missing.status_code == 422
    again = row(missing.text, decision_id)
    assert "has-error" in again
    assert "Say why you override it; the reason becomes training data." in text_of(again)
    # The override form stays open with the option picked, ready to fix.
    assert '<details class="review-panel" data-panel="override" open>' in again
    assert '<option value="nurture" selected>' in again
    assert site.ops.decide.decision_detail(decision_id)["status"] == "pending"

    answer = reviewer.review(
        decision_id, verdict="override", option="nurture", reason="a student, not a buyer"
    )
    assert answer.status_code == 200, answer.text
    assert f"overridden — runs “{NURTURE}” instead" in text_of(answer.text)
    detail = site.ops.decide.decision_detail(decision_id)
    assert (detail["status"], detail["final_choice"]) == ("overridden", "nurture")
    assert detail["reviews"][0]["reason"] == "a student, not a buyer"


def test_a_reject_needs_a_reason_and_runs_nothing(site: LiveServer, reviewer: Browser) -> None:
    send(site.ops, *lead("1", hot=False))
    [decision_id] = waiting(site.ops).values()

    missing = reviewer.review(decision_id, verdict="reject")
    assert missing.status_code == 422
    assert "Say why you reject it" in text_of(missing.text)
    assert '<details class="review-panel" data-panel="reject" open>' in missing.text

    answer = reviewer.review(decision_id, verdict="reject", reason="a competitor")
    assert answer.status_code == 200
    assert "lead:1 rejected — nothing runs" in text_of(answer.text)
    detail = site.ops.decide.decision_detail(decision_id)
    assert (detail["status"], detail["actions"]) == ("rejected", [])


def test_a_review_without_the_csrf_token_is_refused(site: LiveServer, reviewer: Browser) -> None:
    send(site.ops, *lead("1", hot=True))
    [decision_id] = waiting(site.ops).values()

    forged = reviewer.client.post(
        f"/decisions/{decision_id}/review",
        data={"verdict": "approve", "origin": "inbox"},
        headers={"HX-Request": "true"},
    )
    assert forged.status_code == 403
    assert "This form has expired" in forged.text
    wrong = reviewer.client.post(
        f"/decisions/{decision_id}/review",
        data={"verdict": "approve", "csrf_token": "not-the-token"},
    )
    assert wrong.status_code == 403
    assert site.ops.decide.decision_detail(decision_id)["status"] == "pending"


def test_a_decision_reviewed_by_someone_else_meanwhile_says_so(
    site: LiveServer, reviewer: Browser, browse: Browse
) -> None:
    send(site.ops, *lead("1", hot=True))
    [decision_id] = waiting(site.ops).values()
    owner = browse(site, OWNER)
    assert owner.review(decision_id, verdict="approve").status_code == 200

    late = reviewer.review(decision_id, verdict="reject", reason="no")
    assert late.status_code == 409
    words = text_of(row(late.text, decision_id))
    assert "is approved, not pending" in words
    assert "Already reviewed. See what happened" in words
    on_its_page = reviewer.review(decision_id, origin="detail", verdict="approve")
    assert on_its_page.status_code == 409
    assert "Reload the page to see what happened." in text_of(on_its_page.text)
    assert "review-approve" not in on_its_page.text


def test_an_auto_decision_sampled_for_review_is_checked_after_the_fact(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve, browse: Browse
) -> None:
    sampled_all = lead_playbook("auto") + "\nautonomy:\n  sample: 1\n"
    ops = make_ops(sqlite_url, playbooks=[sampled_all], use_clock=False)
    add_people(ops)
    server = serve(ops)
    send(ops, *lead("1", hot=True))
    [decision_id] = waiting(ops).values()
    assert ops.decide.decision_detail(decision_id)["status"] == "auto"
    reviewer = browse(server, REVIEWER)

    item = text_of(row(reviewer.get("/inbox").text, decision_id))
    assert "already ran · check it" in item
    assert "Agree a" in item
    answer = reviewer.review(decision_id, verdict="override", option="nurture", reason="too early")
    assert answer.status_code == 200, answer.text
    assert f"noted: you would have run “{NURTURE}”; it already ran “{HOT}”" in text_of(answer.text)
    assert waiting(ops) == {}
    detail = text_of(reviewer.get(f"/decisions/{decision_id}").text)
    assert (
        f"Ran “{HOT}” automatically (auto mode). Checked afterwards by {REVIEWER.email}." in detail
    )


def test_an_unknown_verdict_or_decision_is_refused(site: LiveServer, reviewer: Browser) -> None:
    send(site.ops, *lead("1", hot=True))
    [decision_id] = waiting(site.ops).values()
    odd = reviewer.review(decision_id, verdict="maybe")
    assert odd.status_code == 422
    assert "Choose approve, override or reject." in text_of(odd.text)
    assert reviewer.review(999, verdict="approve").status_code == 404


# --- AI-drafted replies ----------------------------------------------------------------------


def test_the_ai_draft_is_edited_in_the_inbox_and_the_edited_reply_is_sent(
    triage_site: LiveServer, llm: FakeOpenAI, smtp_sink: SmtpSink, browse: Browse
) -> None:
    ops = triage_site.ops
    llm.then(label_answer("refund"), Answer(content="Dear Sam, sorry. (AI draft)"))
    send(ops, ticket("1", "This is UNACCEPTABLE, my kettle broke again. I want a refund!"))
    [decision_id] = waiting(ops).values()
    reviewer = browse(triage_site, REVIEWER)

    page = reviewer.get("/inbox")
    item = row(page.text, decision_id)
    assert "Reply drafted by AI: read it, edit it, then approve" in text_of(item)
    assert re.search(
        r'<textarea id="draft-\d+" name="draft"[^>]*>Dear Sam, sorry. \(AI draft\)</textarea>', item
    )
    assert f'hx-include="#draft-{decision_id}"' in item
    assert "my kettle broke again" in text_of(item)  # the customer's message, to answer it
    assert "Held for a person: the message reads as upset" in text_of(item)

    final = "Dear Sam,\r\n\r\nI am sorry about the kettle: a new one ships today.\r\n\r\nAna"
    answer = reviewer.review(decision_id, verdict="approve", draft=final)
    assert answer.status_code == 200, answer.text
    ops.run_jobs()
    sent = final.replace("\r\n", "\n")
    assert ops.decide.decision_detail(decision_id)["reviews"][0]["draft"] == sent
    [mail] = smtp_sink.messages
    assert mail.body.replace("\r\n", "\n").strip() == sent

    detail = reviewer.get(f"/decisions/{decision_id}")
    assert re.search(
        r'data-testid="final-reply">Dear Sam,\n\nI am sorry about the kettle', detail.text
    )
    assert "Edited by the reviewer" in detail.text
    assert 'data-testid="ai-draft">Dear Sam, sorry. (AI draft)' in detail.text
    words = text_of(detail.text)
    assert "Upset yes — very negative tone" in words
    assert "Category refund (93% sure)" in words


def test_when_the_ai_could_not_draft_the_reviewer_writes_the_reply(
    triage_site: LiveServer, llm: FakeOpenAI, browse: Browse
) -> None:
    ops = triage_site.ops
    llm.then(label_answer("refund"), Answer(status=500))
    send(ops, ticket("2", "I want my money back, this is unacceptable and a scam"))
    [decision_id] = waiting(ops).values()
    reviewer = browse(triage_site, REVIEWER)

    item = row(reviewer.get("/inbox").text, decision_id)
    assert "The AI could not draft this reply: the language model failed" in text_of(item)
    assert re.search(r'<textarea id="draft-\d+" name="draft"[^>]*></textarea>', item)

    refused = reviewer.review(decision_id, verdict="approve", draft="  ")
    assert refused.status_code == 422
    error = text_of(row(refused.text, decision_id))
    assert (
        "sends a reply a person writes (no draft was prepared: the language model failed" in error
    )
    assert 'aria-invalid="true"' in refused.text

    answer = reviewer.review(decision_id, verdict="approve", draft="Hello Sam, refunded today.")
    assert answer.status_code == 200
    assert (
        ops.decide.decision_detail(decision_id)["reviews"][0]["draft"]
        == "Hello Sam, refunded today."
    )


# --- a decision in full ----------------------------------------------------------------------

TABLES_AND_MODEL = """
name: lead-routing
description: Fit from a table, a model's probability, routing by another table.
subject: lead
mode: recommend
trigger:
  events: lead.created
features:
  company_size:
    trait: company_size
    default: 0
  industry:
    trait: industry
scorecard:
  - label: Asked for a demo
    when: event.payload.form == "demo"
    points: 20
tables:
  fit:
    label: Company fit
    hit: collect_sum
    rows:
      - label: Mid-size SaaS
        when: {company_size: "[10..500]", industry: saas}
        points: 30
      - label: Too small
        when: {company_size: "< 5"}
        points: -20
  route:
    label: Routing
    rows:
      - label: Fits well
        when: {fit: ">= 30"}
        choose: hot
      - when: {fit: "< 30"}
        choose: nurture
score: points + 40 * p_convert
model:
  as: p_convert
  predicts: deal.won
  within: 30d
  features: [company_size]
  fallback: 0.1
options:
  hot:
    label: Hand to sales
    actions:
      - kind: task
        title: "Call {{ subject }}"
  nurture:
    label: Nurture
    actions:
      - kind: task
        title: "Write to {{ subject }}"
otherwise: nurture
outcome:
  success: deal.won
  within: 30d
"""


def test_the_decision_page_shows_inputs_explanation_review_actions_outcome_and_audit(
    site: LiveServer, reviewer: Browser
) -> None:
    ops = site.ops
    send(ops, *lead("1", hot=True))
    [decision_id] = waiting(ops).values()

    pending = reviewer.get(f"/decisions/{decision_id}")
    assert pending.status_code == 200
    words = text_of(pending.text)
    assert "pending Waiting for a person to review it: nothing has run yet." in words
    assert f"Approve runs “{HOT}”" in words
    assert 'name="origin" value="detail"' in pending.text
    # Not blind: what approving would send, rendered as the outbox would record it.
    assert (
        "Nothing has run yet. Approving sends this: notify It could not be delivered yet" in words
    )
    assert "Chat channel sales : Hot lead Ana (Acme) scored 80: Engaged this week +25" in words
    assert "task Task for sales : Call Ana at Acme" in words

    # Overridden from the decision page, by htmx: the page reloads to show what happened.
    answer = reviewer.review(
        decision_id, origin="detail", verdict="override", option="nurture", reason="no budget yet"
    )
    assert (answer.status_code, answer.headers["hx-redirect"]) == (200, f"/decisions/{decision_id}")
    ops.run_jobs()  # the nurture email: no mail server is listening, so the attempt fails
    send(ops, {"type": "deal.won", "subject": "lead:1"})

    page = reviewer.get(f"/decisions/{decision_id}")
    words = text_of(page.text)
    assert (
        f"overridden Overridden by {REVIEWER.email}: ran “{NURTURE}” instead of “{HOT}”." in words
    )
    assert "Reason no budget yet" in words
    assert f"Instead {NURTURE}" in words
    # Inputs: features, traits, the event.
    assert "visits_7d 6" in words
    assert "budget 9000" in words
    assert 'company "Acme"' in words
    assert "lead.created" in words
    # Every scorecard line, with what it saw and the points it gave.
    assert "Engaged this week visits_7d >= 5 visits_7d = 6 +25" in words
    assert "Asked for a demo demo_requests_30d >= 1 demo_requests_30d = 0 0" in words
    assert "Scorecard · 80 points" in words
    assert "1. Engaged, right size and funded score >= 60 score = 80" in words
    # The action and its delivery attempt, the outcome, the audit trail.
    assert re.search(r"email (retrying|dead) · \d attempts? · ", words), words
    assert "Last error: cannot reach the SMTP server" in words
    assert "success It worked" in words
    for verb in ("decision.pending", "decision.overridden", "action.retry_scheduled"):
        assert verb in words, verb
    assert "review-approve" not in page.text  # reviewed: no form any more


def test_the_decision_page_shows_decision_tables_and_the_model(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve, browse: Browse
) -> None:
    ops = make_ops(sqlite_url, playbooks=[TABLES_AND_MODEL], use_clock=False)
    add_people(ops)
    server = serve(ops)
    send(
        ops,
        {
            "type": "lead.created",
            "subject": "lead:9",
            "traits": {"company_size": 40, "industry": "saas"},
        },
    )
    [decision_id] = waiting(ops).values()
    viewer = browse(server, VIEWER)
    words = text_of(viewer.get(f"/decisions/{decision_id}").text)
    assert "Company fit · points, hit policy collect_sum · result +30 points" in words
    assert "1. Mid-size SaaS used company_size: [10..500]" in words
    assert 'company_size = 40, industry = "saas" +30 points 1 other row did not match.' in words
    assert "Routing · chooses, hit policy first · result Hand to sales" in words
    assert "1. Fits well used fit: >= 30 fit = 30 Hand to sales" in words
    assert "decision table route, row 1: Fits well" in words
    assert "Predicts deal.won as p_convert" in words
    assert "Probability 0.1 (a fallback: no trained model yet)" in words
    assert "Part of the score +4" in words


def test_a_plain_form_post_without_htmx_goes_back_to_the_page(
    site: LiveServer, reviewer: Browser
) -> None:
    send(site.ops, *lead("1", hot=True), *lead("2", hot=True))
    ids = waiting(site.ops)

    refused = reviewer.review(ids["lead:1"], origin="detail", htmx=False, verdict="reject")
    assert refused.status_code == 422
    assert "Say why you reject it" in text_of(refused.text)
    assert "<title>Ana, Acme · decision" in refused.text  # the person, not the id

    reviewer.client.follow_redirects = False
    done = reviewer.review(ids["lead:1"], origin="detail", htmx=False, verdict="approve")
    assert (done.status_code, done.headers["location"]) == (303, f"/decisions/{ids['lead:1']}")
    back = reviewer.review(ids["lead:2"], htmx=False, verdict="approve")
    assert (back.status_code, back.headers["location"]) == (303, "/inbox")


@pytest.mark.parametrize("decision_id", ["999", "abc"])
def test_an_unknown_decision_is_a_404_page(
    site: LiveServer, reviewer: Browser, decision_id: str
) -> None:
    page = reviewer.get(f"/decisions/{decision_id}")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    words = text_of(page.text)
    assert f"No such decision There is no decision {decision_id}." in words
    assert "Back to the inbox" in words

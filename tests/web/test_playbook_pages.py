"""The playbooks pages through the test client, signed in through the real /login form: the
empty and full list, a playbook in plain words, a diff between versions, the editor's check
at the line of a typo, saving (owners only), backtests, and promotion refused until earned."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opsloop.core.decisions import ReviewRequest
from opsloop.core.playbooks import parse_playbook
from opsloop.service import OpsLoop
from opsloop.store import audit as audit_store
from opsloop.web.app import create_app
from opsloop.web.pages.playbook_outline import outline
from tests.conftest import LEAD_PLAYBOOK, OpsFactory, lead_playbook
from tests.people import OWNER, REVIEWER, VIEWER, Person, add_people, form_csrf

LEAD = "lead-qualification"

# A small target keeps the test quick; the math is the one of the defaults (test_autonomy.py).
TRIAGE = """\
name: triage
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
autonomy:
  target: 0.8
  min_reviews: 20
  window: 40
"""

# Decision tables, a points expression, a model, a guarded action and a guardrail.
ROUTING = """\
name: lead-routing
description: Score company fit with a table, route with another.
subject: lead
trigger:
  events: lead.created
features:
  company_size: {trait: company_size, default: 0}
  industry: {trait: industry}
  spend: {sum: order.paid, field: amount, within: 2w}
  score_hint: {formula: "company_size / 10"}
scorecard:
  - label: Big spender
    when: spend > 100
    points: "spend / 10"
tables:
  fit:
    label: Company fit
    hit: collect_sum
    rows:
      - label: Mid-size SaaS
        when: {company_size: "[10..500]", industry: saas}
        points: 30
      - when: {industry: [retail, hospitality]}
        points: 10
  route:
    label: Routing
    hit: priority
    rows:
      - when: {fit: ">= 30"}
        choose: hot
        priority: 1
score: "points + 40 * p_convert"
otherwise: skip
options:
  hot:
    label: Hot lead
    actions:
      - kind: discount
        endpoint: shop
      - kind: update_traits
        traits: {stage: hot}
  skip:
    label: Leave for now
guardrails:
  - when: entity.blocked == true
    reason: Blocked companies are handled by a person.
model:
  as: p_convert
  predicts: deal.won
  within: 45d
  features: [company_size, spend]
  retrain: 1d
"""


class Browser:
    """A signed-in person on the app, through the test client: `csrf` goes with each POST."""

    def __init__(self, client: TestClient, csrf: str) -> None:
        self.client = client
        self.csrf = csrf

    def get(self, url: str, **headers: str) -> Any:
        return self.client.get(url, headers=headers)

    def post(self, url: str, data: dict[str, str], **headers: str) -> Any:
        return self.client.post(url, data={**data, "csrf_token": self.csrf}, headers=headers)

    def htmx(self, url: str, data: dict[str, str]) -> Any:
        """A POST as htmx sends it: the token in the header, `HX-Request: true`."""
        return self.client.post(
            url, data=data, headers={"HX-Request": "true", "X-CSRF-Token": self.csrf}
        )


@pytest.fixture
def app_for(make_ops: OpsFactory, sqlite_url: str) -> Callable[..., OpsLoop]:
    """The service on SQLite with these playbooks applied and the three people."""

    def build(*playbooks: str) -> OpsLoop:
        ops = make_ops(sqlite_url, playbooks=list(playbooks))
        add_people(ops)
        return ops

    return build


@pytest.fixture
def browse() -> Iterator[Callable[[OpsLoop, Person], Browser]]:
    """`browse(ops, person)`: the app in the test client, signed in through /login."""
    clients: list[TestClient] = []

    def sign_in(ops: OpsLoop, person: Person) -> Browser:
        client = TestClient(create_app(ops.settings, service=ops), follow_redirects=False)
        clients.append(client)
        login = client.get("/login")
        answer = client.post(
            "/login",
            data={
                "email": person.email,
                "password": person.password,
                "csrf_token": form_csrf(login.text),
            },
        )
        assert answer.status_code == 303, answer.text
        return Browser(client, client.get("/api/me").json()["csrf_token"])

    yield sign_in
    for client in clients:
        client.close()


Browse = Callable[[OpsLoop, Person], Browser]
AppFor = Callable[..., OpsLoop]


def text_of(page: str) -> str:
    """The page as a person reads it: tags dropped, entities decoded, spaces collapsed."""
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    return re.sub(r"\(\s+", "(", re.sub(r"\s+([,.:;)?])", r"\1", words))


def open_tickets(ops: OpsLoop, start: int, count: int) -> list[int]:
    events = [
        {"type": "ticket.opened", "subject": f"ticket:{n}", "payload": {"urgent": False}}
        for n in range(start, start + count)
    ]
    ops.ingest.body(json.dumps({"events": events}).encode())
    ops.run_jobs()
    wanted = {f"ticket:{n}" for n in range(start, start + count)}
    found = ops.decide.list_decisions(playbook="triage", limit=500)
    return sorted(d["id"] for d in found if d["subject"] in wanted)


def approve(ops: OpsLoop, ids: list[int]) -> None:
    for decision_id in ids:
        ops.review.verdict(decision_id, ReviewRequest(verdict="approve", reviewer=REVIEWER.email))


# --- the list ----------------------------------------------------------------------------


def test_with_no_playbook_the_list_says_how_to_add_one(app_for: AppFor, browse: Browse) -> None:
    ops = app_for()
    owner = browse(ops, OWNER).get("/playbooks")
    assert owner.status_code == 200
    words = text_of(owner.text)
    assert "No playbooks yet" in words
    assert 'href="/playbooks/_new"' in owner.text
    assert str(ops.settings.resolved_playbooks_dir) in words
    assert "opsloop playbook apply" in words
    assert '<a href="/playbooks" aria-current="page">Playbooks</a>' in owner.text

    viewer = browse(ops, VIEWER).get("/playbooks")
    assert viewer.status_code == 200
    assert 'href="/playbooks/_new"' not in viewer.text
    assert "Only owners can add or change playbooks" in text_of(viewer.text)


def test_the_list_shows_each_playbook_with_its_mode_and_readiness(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(lead_playbook("shadow"), TRIAGE)
    ids = open_tickets(ops, 0, 5)
    approve(ops, ids[:4])
    ops.review.verdict(
        ids[4],
        ReviewRequest(verdict="override", reviewer="rui", option="escalate", reason="angry"),
    )

    page = browse(ops, VIEWER).get("/playbooks")
    assert page.status_code == 200
    lead, triage = page.text.split('data-testid="playbook-triage"')
    lead_words, triage_words = text_of(lead), text_of(triage)
    assert "Hot leads go to sales with a follow-up task" in lead_words
    assert "shadow" in lead_words
    assert "0 of 200 reviews" in lead_words
    assert "Not ready for auto: needs 200 reviewed decisions, has 0: 200 more to go" in lead_words

    assert "Escalate urgent tickets, answer the rest." in triage_words
    assert "recommend" in triage_words
    assert "5 of 20 reviews" in triage_words
    # 4 of 5 agree: 80.0%, Wilson lower bound 37.5%, target 80%.
    assert "Agreement 80.0% · lower bound 37.5% · target 80%" in triage_words
    assert "needs 20 reviewed decisions, has 5: 15 more to go" in triage_words


# --- one playbook --------------------------------------------------------------------------


def test_a_playbook_reads_in_plain_words_with_its_yaml_and_versions(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(lead_playbook())
    page = browse(ops, VIEWER).get(f"/playbooks/{LEAD}")
    assert page.status_code == 200
    words = text_of(page.text)
    for said in (
        "Runs when a lead.created or demo.requested event arrives about a lead.",
        "At most one decision per lead every 1 hour",
        "Page views in the last 7 days (visits_7d) how many page.viewed events in the last 7 days",
        'only those where payload.path == "/pricing"',
        "the lead's company_size trait, as it stands now",
        "days since the most recent page.viewed event",
        "Engaged this week when visits_7d >= 5 +25 points",
        "Gone quiet for two weeks",
        "\u221215 points",
        "The score is the total of the points above.",
        "Engaged, right size and funded: when score >= 60, choose Hot lead — hand to sales",
        "when no rule chooses, Nurture by email",
        "Task for sales, due in 1 day: \u201cCall entity.name or subject at",
        "Email to entity.email",
        "Chosen by the rule \u201cEngaged, right size and funded\u201d.",
        "Chosen when nothing else chooses.",
        "Success: a deal.won event within 45 days after the trigger.",
        "Failure: a deal.lost event, or nothing by then.",
        "at least 200 reviewed decisions",
    ):
        assert said in words, said
    # Template slots are filled in when the action runs: they are shown as slots, not Jinja.
    assert 'Email to <span class="pb-slot">entity.email</span>' in page.text
    assert "Mode recommend: every decision waits for a person's review" in words
    # The YAML, line-numbered, and the one version with who applied it.
    assert "name: lead-qualification" in words
    assert '<span class="pb-ln">6</span>name: lead-qualification' in page.text
    versions = page.text.split('data-testid="versions"')[1].split("</table>")[0]
    assert "test" in text_of(versions)
    assert "one version so far" in words
    # A viewer may not edit, promote or run a backtest.
    assert f"/playbooks/{LEAD}/edit" not in page.text
    assert "Promote to auto" not in page.text
    assert 'hx-post="/playbooks/backtest"' not in page.text


def test_tables_models_guarded_actions_and_guardrails_read_in_plain_words(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(ROUTING)
    words = text_of(browse(ops, VIEWER).get("/playbooks/lead-routing").text)
    for said in (
        "spend total amount of order.paid events in the last 2 weeks",
        "score_hint computed: company_size / 10",
        "Big spender when spend > 100 adds spend / 10 points",
        "Table \u201cCompany fit\u201d (gives points; the points of every matching row are added up)",
        "Mid-size SaaS: when company_size in [10..500] and industry = saas \u2192 +30 points",
        "industry in [retail, hospitality]: when industry in [retail, hospitality] \u2192 +10 points",
        "Table \u201cRouting\u201d (chooses an option; the matching row with the highest priority",
        "when fit >= 30 \u2192 choose Hot lead (priority 1)",
        "The score is points + 40 * p_convert, where points is the total above.",
        "Learns from history the chance that a deal.won event follows within 45 days, from "
        "company_size, spend. Expressions read it as p_convert (0 until a model is trained; "
        "training needs 200 labelled rows; retrained every 1 day).",
        "Hot lead hot waits for a person",
        "Discount request to endpoint shop always waits for a person (a money or data action)",
        "Update the lead's traits: stage",
        "Chosen by a row of the table \u201cRouting\u201d.",
        "Leave for now skip Does nothing; the decision is recorded.",
        "Blocked companies are handled by a person. (when entity.blocked == true)",
        "No outcome is set, so the success rate of this playbook is not measured.",
    ):
        assert said in words, said


def test_an_unknown_playbook_is_a_404_page(app_for: AppFor, browse: Browse) -> None:
    ops = app_for()
    viewer = browse(ops, VIEWER)
    for url in ("/playbooks/nope", "/playbooks/nope/diff"):
        page = viewer.get(url, **({"HX-Request": "true"} if url.endswith("diff") else {}))
        assert page.status_code == 404, url
        assert "There is no playbook named “nope”." in text_of(page.text)
    owner = browse(ops, OWNER)
    assert owner.get("/playbooks/nope/edit").status_code == 404
    assert owner.get("/playbooks/nope/promote").status_code == 404


def test_two_versions_are_compared_line_by_line(app_for: AppFor, browse: Browse) -> None:
    ops = app_for(lead_playbook())
    ops.decide.apply_playbook(
        lead_playbook(**{"score >= 60": "score >= 50"}), "v2.yaml", actor="ana"
    )
    viewer = browse(ops, VIEWER)

    page = viewer.get(f"/playbooks/{LEAD}")
    diff = page.text.split('<div id="diff">')[1]
    assert "From version 1 to version 2: 1 line added, 1 removed." in text_of(diff)
    removed = re.search(r'<tr class="pb-removed">.*?</tr>', diff, re.S)
    added = re.search(r'<tr class="pb-added">.*?</tr>', diff, re.S)
    assert removed
    assert added
    assert text_of(removed.group(0)) == "61 - when: score >= 60"
    assert text_of(added.group(0)) == "61 + when: score >= 50"
    assert '<span class="pb-sign">+</span>    when: score &gt;= 50' in added.group(0)

    split = viewer.get(f"/playbooks/{LEAD}/diff?from=2&to=1&view=split", **{"HX-Request": "true"})
    assert split.status_code == 200
    assert "<html" not in split.text, "htmx gets the fragment only"
    changed = re.search(r'<tr class="pb-changed">.*?</tr>', split.text, re.S)
    assert changed
    assert text_of(changed.group(0)) == "61 when: score >= 50 61 when: score >= 60"

    # Without htmx the comparison is part of the playbook's page.
    plain = viewer.get(f"/playbooks/{LEAD}/diff?from=1&to=2&view=split")
    assert plain.status_code == 303
    assert plain.headers["location"] == f"/playbooks/{LEAD}?from=1&to=2&view=split#compare"
    missing = viewer.get(f"/playbooks/{LEAD}?from=9&to=2")
    assert "Playbook 'lead-qualification' has no version 9 (versions: 1, 2)." in html.unescape(
        missing.text
    )
    same = viewer.get(f"/playbooks/{LEAD}?from=2&to=2")
    assert "Version 2 and version 2 have the same text." in text_of(same.text)


# --- the editor ----------------------------------------------------------------------------


def test_the_check_points_at_the_line_of_a_typo(app_for: AppFor, browse: Browse) -> None:
    ops = app_for(lead_playbook())
    owner = browse(ops, OWNER)
    editor = owner.get(f"/playbooks/{LEAD}/edit")
    assert editor.status_code == 200
    assert "name: lead-qualification" in html.unescape(editor.text)
    assert 'hx-post="/playbooks/validate"' in editor.text

    typo = lead_playbook(**{"when: visits_7d >= 5": "when: vists_7d >= 5"})
    line = typo.splitlines().index("    when: vists_7d >= 5") + 1
    answer = owner.htmx("/playbooks/validate", {"source": typo, "editing": LEAD})
    assert answer.status_code == 422
    assert f'<li data-line="{line}">' in answer.text
    assert (
        f"1 problem to fix before saving: line {line}: scorecard[0].when: unknown name "
        f"'vists_7d'; did you mean 'visits_7d'? {line} when: vists_7d >= 5"
    ) in text_of(answer.text)

    broken = owner.htmx("/playbooks/validate", {"source": "name: x\n  bad: [\n"})
    assert "YAML syntax" in text_of(broken.text)

    fine = owner.htmx("/playbooks/validate", {"source": lead_playbook(), "editing": LEAD})
    assert fine.status_code == 200
    assert "No problems: lead-qualification is ready to save." in text_of(fine.text)
    asks_auto = owner.htmx("/playbooks/validate", {"source": lead_playbook("auto")})
    assert "mode: auto must be earned: saving keeps this playbook in recommend" in text_of(
        asks_auto.text
    )


def test_saving_stores_a_new_version_and_says_auto_is_not_granted(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(lead_playbook())
    owner = browse(ops, OWNER)

    saved = owner.post("/playbooks/save", {"source": lead_playbook("auto"), "editing": LEAD})
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/playbooks/{LEAD}?saved=2"
    record = ops.decide.get_playbook(LEAD)
    assert (record["version"], record["mode"]) == (2, "recommend")
    assert record["versions"][0]["created_by"] == OWNER.email
    page = text_of(owner.get(saved.headers["location"]).text)
    assert "Saved as version 2." in page
    assert "This version's YAML says mode: auto, but auto must be earned" in page

    again = owner.post("/playbooks/save", {"source": lead_playbook("auto")})
    assert again.headers["location"] == f"/playbooks/{LEAD}?saved=2&unchanged=true"

    typo = lead_playbook(**{"choose: hot": "choose: hott"})
    refused = owner.post("/playbooks/save", {"source": typo, "editing": LEAD})
    assert refused.status_code == 422
    assert "no option named 'hott'; did you mean 'hot'?" in html.unescape(refused.text)
    assert "choose: hott" in html.unescape(refused.text), "the text is kept for fixing"
    assert ops.decide.get_playbook(LEAD)["version"] == 2

    new = owner.get("/playbooks/_new")
    assert new.status_code == 200
    starter = html.unescape(re.search(r"<textarea[^>]*>\n(.*?)</textarea>", new.text, re.S)[1])  # type: ignore[index]
    assert ops.decide.validate_playbook(starter, "starter.yaml").name == "my-playbook"


def test_a_reviewer_may_not_open_the_editor_or_save(app_for: AppFor, browse: Browse) -> None:
    ops = app_for(lead_playbook())
    reviewer = browse(ops, REVIEWER)
    source = lead_playbook(**{"score >= 60": "score >= 10"})
    refused = reviewer.post("/playbooks/save", {"source": source})
    assert refused.status_code == 403
    assert "needs the owner role" in refused.text
    assert reviewer.get(f"/playbooks/{LEAD}/edit").status_code == 403
    assert reviewer.get("/playbooks/_new").status_code == 403
    assert reviewer.htmx("/playbooks/validate", {"source": source}).status_code == 403
    assert ops.decide.get_playbook(LEAD)["version"] == 1
    # Without the session's CSRF token even an owner is refused.
    owner = browse(ops, OWNER)
    forged = owner.client.post("/playbooks/save", data={"source": source})
    assert forged.status_code == 403
    assert ops.decide.get_playbook(LEAD)["version"] == 1


# --- backtests -----------------------------------------------------------------------------


def leads(ops: OpsLoop, count: int) -> None:
    events = [
        {
            "type": "lead.created",
            "subject": f"lead:{n}",
            "traits": {"company_size": 40, "budget": 6000 if n % 2 else 1000},
        }
        for n in range(count)
    ]
    ops.ingest.body(json.dumps({"events": events}).encode())
    ops.run_jobs()


def test_a_backtest_shows_its_report_and_a_chart_of_the_choices(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(lead_playbook())
    leads(ops, 10)  # 5 with a budget score 40 (nurture), 5 without score 20 (nurture)
    reviewer = browse(ops, REVIEWER)

    saved = reviewer.htmx("/playbooks/backtest", {"playbook": LEAD, "since": "90d"})
    assert saved.status_code == 200
    assert "<html" not in saved.text
    words = text_of(saved.text)
    assert "Backtest of lead-qualification: version 1" in words
    assert "10 decisions from 10 triggering events; 0 would wait for a person." in words
    assert "This is the active version: it is compared with itself" in words
    assert "(the last 90 days)" in words

    draft = lead_playbook(**{"score >= 60": "score >= 40"})
    report = reviewer.htmx("/playbooks/backtest", {"source": draft, "since": "30d"})
    words = text_of(report.text)
    assert "Backtest of lead-qualification: draft against the active version 1" in words
    assert "5 of 10 decisions change" in words
    assert "nurture → hot: 5" in words
    assert "Took" in words
    [chart] = re.findall(
        r'<script type="application/json" id="backtest-chart-\d+">(.*?)</script>', report.text, re.S
    )
    spec = json.loads(chart)
    [rows] = spec["datasets"].values()
    assert {(r["name"], r["decisions"]) for r in rows} == {("hot", 5), ("nurture", 5)}
    assert spec["$schema"].endswith("vega-lite/v6.4.1.json")
    outcomes = text_of(report.text.split('data-testid="backtest-outcomes">')[1])
    assert outcomes.startswith(
        "choice decisions success failure open success rate hot 5 0 0 5 — nurture 5 0 0 5 —"
    )

    # Without htmx the report is a page of its own.
    page = reviewer.post("/playbooks/backtest", {"playbook": LEAD})
    assert page.status_code == 200
    assert "<html" in page.text
    assert "Backtest of lead-qualification" in text_of(page.text)


def test_a_backtest_that_cannot_run_says_why(app_for: AppFor, browse: Browse) -> None:
    ops = app_for(lead_playbook())
    reviewer = browse(ops, REVIEWER)
    typo = lead_playbook(**{"kind: email": "kind: emial"})
    refused = reviewer.htmx("/playbooks/backtest", {"source": typo})
    assert refused.status_code == 422
    bad = text_of(refused.text)
    assert "Backtest not run The YAML has problems; fix them before backtesting it." in bad
    assert "unknown action kind 'emial'; did you mean 'email'?" in bad
    period = text_of(reviewer.htmx("/playbooks/backtest", {"playbook": LEAD, "since": "soon"}).text)
    assert "'soon' is neither a duration back from now" in period
    unknown = text_of(reviewer.htmx("/playbooks/backtest", {"playbook": "nope"}).text)
    assert "No playbook named 'nope'." in unknown
    assert browse(ops, VIEWER).htmx("/playbooks/backtest", {"playbook": LEAD}).status_code == 403


# --- promotion -----------------------------------------------------------------------------


def test_promotion_is_refused_with_the_reason_until_it_is_earned(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(TRIAGE)
    approve(ops, open_tickets(ops, 0, 3))
    owner = browse(ops, OWNER)

    confirm = owner.get("/playbooks/triage/promote")
    assert confirm.status_code == 200
    words = text_of(confirm.text)
    assert "Not ready for auto: needs 20 reviewed decisions, has 3: 17 more to go." in words
    assert 'name="mode" value="auto"' not in confirm.text

    refused = owner.post("/playbooks/triage/mode", {"mode": "auto"})
    assert refused.status_code == 409
    assert (
        "Playbook 'triage' has not earned auto: needs 20 reviewed decisions, has 3: "
        "17 more to go." in html.unescape(refused.text)
    )
    assert ops.decide.get_playbook("triage")["mode"] == "recommend"
    assert owner.post("/playbooks/triage/mode", {"mode": "sideways"}).status_code == 422


def test_an_owner_promotes_a_ready_playbook_and_can_move_it_back(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(TRIAGE)
    approve(ops, open_tickets(ops, 0, 20))  # 20 of 20: lower bound 83.9%, target 80%
    reviewer = browse(ops, REVIEWER)
    assert reviewer.post("/playbooks/triage/mode", {"mode": "auto"}).status_code == 403
    assert reviewer.get("/playbooks/triage/promote").status_code == 403
    owner = browse(ops, OWNER)

    confirm = owner.get("/playbooks/triage/promote")
    words = text_of(confirm.text)
    assert (
        "Ready for auto: reviewers agreed 20 of 20 times; the 95% lower bound 83.9% clears" in words
    )
    assert 'name="mode" value="auto"' in confirm.text
    assert "20 reviews counted (20 needed)" in words

    promoted = owner.post("/playbooks/triage/mode", {"mode": "auto", "reason": "they agree"})
    assert promoted.status_code == 303
    assert promoted.headers["location"] == "/playbooks/triage?moved=auto"
    assert ops.decide.get_playbook("triage")["mode"] == "auto"
    with ops.ctx.db.read() as conn:
        [entry] = [
            e
            for e in audit_store.trail(conn, "playbook", "triage")
            if e["verb"] == "playbook.promoted"
        ]
    assert entry["actor"] == OWNER.email
    assert entry["detail"]["reason"] == "they agree"
    page = text_of(owner.get(promoted.headers["location"]).text)
    assert "The playbook is now in auto mode." in page
    assert "Running in auto" in page

    demoted = owner.post("/playbooks/triage/mode", {"mode": "shadow"})
    assert demoted.headers["location"] == "/playbooks/triage?moved=shadow"
    assert ops.decide.get_playbook("triage")["mode"] == "shadow"


def test_the_built_in_playbook_validates_unchanged_in_the_editor(
    app_for: AppFor, browse: Browse
) -> None:
    # The editor posts the text back as the browser sends it (CRLF line ends): it is stored
    # with LF, so saving the same text again is recognised as no change.
    ops = app_for(lead_playbook())
    owner = browse(ops, OWNER)
    crlf = LEAD_PLAYBOOK.read_text().replace("\n", "\r\n")
    saved = owner.post("/playbooks/save", {"source": crlf})
    assert saved.headers["location"] == f"/playbooks/{LEAD}?saved=1&unchanged=true"


def test_a_playbook_that_reads_messages_says_what_it_does_with_them() -> None:
    # examples/support-triage.yaml needs a language model to be applied; its words need none.
    source = (LEAD_PLAYBOOK.parents[1] / "examples" / "support-triage.yaml").read_text()
    said = outline(parse_playbook(source)[0])
    text = " ".join(text_of(str(line)) for line in said.text)
    assert "Reads the message in event.payload.body and its tone" in text
    assert "it counts as upset, and the decision waits for a person." in text
    assert "Sorts the message into order_status, refund, billing" in text
    assert "with the language model; expressions read it as category." in text
    assert "The language model drafts a reply (warm, brief and specific" in text
    drafted = {option.label: option.guarded for option in said.options}
    assert drafted["A person replies (AI draft)"] is True, "a drafted reply waits for a person"


def test_an_absence_reads_as_the_wait_it_is() -> None:
    from tests.service.test_absences import NUDGE

    said = text_of(str(outline(parse_playbook(NUDGE)[0]).trigger))
    assert said == (
        "Runs 3 days after a signup.completed event about a customer, unless a project.created "
        "or account.closed event came in between."
    )


def test_a_scheduled_playbook_shows_its_next_and_last_runs(app_for: AppFor, browse: Browse) -> None:
    from tests.service.test_schedules import WIN_BACK

    ops = app_for(WIN_BACK)
    ops.run_jobs()  # the schedule is seen: its past due time is recorded as skipped
    page = browse(ops, VIEWER).get("/playbooks/win-back")
    assert page.status_code == 200
    card = text_of(page.text.split('data-testid="schedule"')[1].split("</section>")[0])
    assert card.startswith("> Schedule At 08:00 every day (Europe/Berlin).")
    assert "Next runs (Europe/Berlin) Tue 03 Mar 2026, 08:00 Wed 04 Mar 2026, 08:00" in card
    assert "Mon 02 Mar 2026, 08:00 skipped 0 0 0" in card
    words = text_of(page.text)
    assert (
        "Runs on a schedule (0 8 * * *) for each customer where "
        "days_since_login == null or days_since_login > 14." in words
    )


def test_a_sequence_reads_as_its_steps_with_their_branches(app_for: AppFor, browse: Browse) -> None:
    onboarding = (LEAD_PLAYBOOK.parent / "customer-onboarding.yaml").read_text()
    ops = app_for(onboarding)
    page = browse(ops, VIEWER).get("/playbooks/customer-onboarding")
    steps = page.text.split('data-testid="steps-onboard"')[1].split("</ol>")[0]
    said = [text_of(item.split(">", 1)[1]) for item in steps.split("</li>")[:-1]]
    assert said[:4] == [
        "Welcome — Email to entity.email: “Welcome aboard, entity.first_name or "
        "'and thanks for signing up' ”",  # the slot ends where the template's {{ }} did
        "Wait 1 day",
        "Resources — Email to entity.email: “Three guides to get the most out of your first week”",
        "Wait up to 2 days for a project.created event",
    ]
    assert "If it does not come in time:" in said
    assert said[-1].startswith("A person follows up — Task for success, due in 1 day:")
    assert 'class="pb-depth-2"' in steps, "a branch's steps are indented under it"
    words = text_of(page.text)
    assert (
        "Sent one step at a time. Stops as soon as a project.created or account.closed or "
        "unsubscribed event arrives about the customer. At most 1 running per customer at a time."
    ) in words


def test_the_page_says_which_channels_are_not_set_up_and_the_setting_for_each(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(lead_playbook())
    page = browse(ops, VIEWER).get(f"/playbooks/{LEAD}")
    box = text_of(page.text.split('data-testid="channel-warnings"')[1].split("</div>")[0])
    assert "Some actions have nowhere to go yet." in box
    assert (
        "chat channel 'sales' is not configured (known: none yet): add it under "
        "Settings → Webhooks and chat (or OPSLOOP_NOTIFY_CHANNELS) (used by option hot)" in box
    )
    assert "set the mail server under Settings → Email (or OPSLOOP_SMTP_HOST" in box


def test_enough_reviews_with_too_little_agreement_never_shows_a_full_bar(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(TRIAGE)
    ids = open_tickets(ops, 0, 20)
    approve(ops, ids[:12])
    for decision_id in ids[12:]:  # a reviewer who overrides 40%
        request = ReviewRequest(
            verdict="override", reviewer=REVIEWER.email, option="escalate", reason="urgent"
        )
        ops.review.verdict(decision_id, request)
    page = browse(ops, VIEWER).get("/playbooks/triage")
    readiness = page.text.split('data-testid="readiness"')[1].split("</div>\n</div>")[0]
    reviews, agreement = re.findall(r'<progress max="(\d+)" value="(\d+)"', readiness)
    assert reviews == ("20", "20"), "the reviews needed are all there"
    assert int(agreement[1]) < 0.5 * int(agreement[0]), "agreement is far from its target"
    assert "Not ready" in text_of(readiness)


def test_a_backtest_over_no_events_draws_no_chart_of_nulls(app_for: AppFor, browse: Browse) -> None:
    ops = app_for(lead_playbook())
    report = browse(ops, REVIEWER).htmx("/playbooks/backtest", {"playbook": LEAD, "since": "7d"})
    assert report.status_code == 200
    assert "backtest-chart-" not in report.text, "nothing decided: nothing to draw"
    assert "null" not in text_of(report.text)
    assert "0 decisions from 0 triggering events" in text_of(report.text)

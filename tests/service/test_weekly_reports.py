"""The weekly report: the dashboard's numbers for one ISO week against the week before, what
was decided, what waits, what failed; emailed once per (recipient, week) with its charts inline,
even across a second process; a summary paragraph marked as written by AI when a model is
configured. Real SMTP and OpenAI-compatible servers on loopback; the clock moved by hand."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import InvalidInput, NotFound, PlaybookInvalid
from opsloop.service import OpsLoop
from opsloop.service.decide.playbooks import load_playbook
from tests.conftest import Clock, OpsFactory, lead_playbook
from tests.fake_llm import Answer, FakeOpenAI
from tests.leads import new_lead
from tests.people import OWNER, REVIEWER, add_people
from tests.sinks import SmtpSink

BOSS = "boss@example.com"


def business(
    make_ops: OpsFactory, url: str, clock: Clock, smtp: SmtpSink, **settings: Any
) -> OpsLoop:
    """Two weeks of leads: in 2026-W10 two reviewed (one overridden); in 2026-W11 two more
    reviewed (none overridden), one whose email fails for good, one still waiting."""
    ops = make_ops(
        url,
        playbooks=[lead_playbook()],
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        review_digest_minutes=0,
        public_url="https://ops.example.com",
        **settings,
    )
    add_people(ops)
    decided = [new_lead(ops, 1), new_lead(ops, 2)]
    ops.review.verdict(decided[0]["id"], ReviewRequest("reject", "rui", reason="a competitor"))
    ops.review.verdict(decided[1]["id"], ReviewRequest("approve", "rui"))
    ops.run_jobs()
    clock.advance(days=7)  # 2026-03-09: week 11
    later = [new_lead(ops, 3), new_lead(ops, 4, email=None)]  # no address: dead-lettered
    for decision in later:
        ops.review.verdict(decision["id"], ReviewRequest("approve", "rui"))
    new_lead(ops, 5)
    ops.run_jobs()
    return ops


def test_a_weeks_report_gives_the_dashboards_numbers_against_the_week_before(
    make_ops: OpsFactory, database_url: str, clock: Clock, smtp_sink: SmtpSink
) -> None:
    ops = business(make_ops, database_url, clock, smtp_sink, weekly_report=False)
    report = ops.learn.weekly_report("2026-W11")
    assert (str(report["starts"]), str(report["ends"])) == ("2026-03-09", "2026-03-15")
    assert report["partial"] is True, "the clock is still in week 11"

    [row] = ops.learn.dashboard()["playbooks"]
    weeks = {w["week"]: w for w in row["weeks"] or []}
    numbers = {n["key"]: n for n in report["numbers"]}
    override = numbers["override_rate"]
    assert override["value"] == weeks["2026-W11"]["override_rate"]
    assert override["previous"] == weeks["2026-W10"]["override_rate"]
    assert override["playbook"] == "lead-qualification"
    assert "reviewed decisions were overridden or rejected" in override["sentence"]
    assert numbers["time_to_action"]["value"] == weeks["2026-W11"]["median_time_to_action_seconds"]
    assert numbers["csat"]["value"] is None
    assert numbers["csat"]["sentence"] == "No customer answered the satisfaction survey this week."

    [decided] = report["playbooks"]
    assert decided["total"] == weeks["2026-W11"]["total"] == 3
    assert decided["pending_reviews"] == 1
    assert "3 decisions" in decided["sentence"]
    assert report["waiting"]["total"] == 1
    assert report["waiting"]["by_playbook"] == {"lead-qualification": 1}
    [failed] = report["failed_deliveries"]
    assert (failed["playbook"], failed["kind"]) == ("lead-qualification", "email")
    assert failed["error"]

    earlier = ops.learn.weekly_report("2026-W10", playbook="lead-qualification")
    assert earlier["failed_deliveries"] == []
    assert earlier["partial"] is False
    [chart_ids] = [[c["id"] for c in report["charts"]]]
    assert chart_ids == ["success-rate", "override-rate", "time-to-action", "csat"]
    spec = report["charts"][1]["spec"]
    assert spec is not None
    assert "vega-lite" in spec["$schema"]
    assert {v["week"] for v in spec["datasets"][next(iter(spec["datasets"]))]} == {
        "2026-W10",
        "2026-W11",
    }


def quiet_playbook() -> str:
    """A second lead playbook that nothing ever triggers."""
    return lead_playbook(
        **{
            "name: lead-qualification": "name: quiet-leads",
            "events: [lead.created, demo.requested]": "events: [lead.archived]",
        }
    )


def test_a_quiet_playbook_has_no_row_but_is_named_in_one_line(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock, smtp_sink: SmtpSink
) -> None:
    ops = make_ops(
        sqlite_url,
        playbooks=[lead_playbook(), quiet_playbook()],
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        review_digest_minutes=0,
        weekly_report=False,
    )
    add_people(ops)
    decided = new_lead(ops, 1)
    ops.review.verdict(decided["id"], ReviewRequest("approve", "rui"))
    ops.run_jobs()

    report = ops.learn.weekly_report("2026-W10")
    assert report["quiet"] == ["quiet-leads"]
    assert {n["playbook"] for n in report["numbers"]} == {"lead-qualification", None}
    assert [p["playbook"] for p in report["playbooks"]] == ["lead-qualification"]
    email = ops.learn.report_email(report)
    html = email["html"]
    table = html.split("<table")[1].split("</table>")[0]
    assert "lead-qualification" in table
    assert "quiet-leads" not in table, "no row for a quiet playbook"
    assert "Quiet this week: quiet-leads." in html.split("</table>")[1]
    assert html.count("quiet-leads") == 1, "named once, in the line"
    text = email["text"]
    assert "Quiet this week: quiet-leads." in text
    assert text.count("quiet-leads") == 1
    assert "(lead-qualification)" in text

    clock.advance(days=7)  # week 11: nothing at all
    everything_quiet = ops.learn.weekly_report("2026-W11")
    assert everything_quiet["quiet"] == ["lead-qualification", "quiet-leads"]
    assert [n["key"] for n in everything_quiet["numbers"]] == ["csat"]
    email = ops.learn.report_email(everything_quiet)
    assert "<table" not in email["html"], "the line takes the table's place"
    line = "Quiet this week: lead-qualification, quiet-leads."
    assert line in email["html"]
    assert "No customer answered the satisfaction survey this week." in email["html"]
    assert line in email["text"]
    assert "Decision success rate" not in email["text"]

    alone = ops.learn.weekly_report("2026-W11", playbook="quiet-leads")
    assert (alone["quiet"], alone["playbooks"]) == (["quiet-leads"], [])


def test_a_bad_week_or_an_unknown_playbook_is_refused(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url, playbooks=[lead_playbook()])
    for bad in ("2026-47", "2026-W54", "next week"):
        with pytest.raises(InvalidInput, match="not an ISO week"):
            ops.learn.weekly_report(bad)
    with pytest.raises(NotFound, match="no playbook called 'nope'"):
        ops.learn.weekly_report("2026-W10", playbook="nope")


def test_the_weekly_email_goes_once_per_recipient_and_week_even_from_a_second_process(
    make_ops: OpsFactory, database_url: str, clock: Clock, smtp_sink: SmtpSink
) -> None:
    ops = business(
        make_ops, database_url, clock, smtp_sink, weekly_report_recipients=[BOSS, OWNER.email]
    )
    reports = [m for m in smtp_sink.messages if "weekly report" in str(m.message["Subject"])]
    assert [m.message["Subject"] for m in reports][:2] == [
        "OpsLoop weekly report, 2026-W10",
        "OpsLoop weekly report, 2026-W10",
    ], "week 10 ended while the clock moved to week 11"
    assert sorted(m.rcpt_tos[0] for m in reports) == sorted([OWNER.email, BOSS])
    assert REVIEWER.email not in [m.rcpt_tos[0] for m in reports], "owners only, and extras"

    clock.advance(days=7)  # week 12: week 11 has ended
    ops.run_jobs()
    second = make_ops(database_url, weekly_report_recipients=[BOSS], smtp_host="127.0.0.1",
                      smtp_port=smtp_sink.port)  # fmt: skip
    second.run_jobs()
    clock.advance(hours=2)
    ops.run_jobs()
    second.run_jobs()
    week11 = [
        m for m in smtp_sink.messages if m.message["Subject"] == "OpsLoop weekly report, 2026-W11"
    ]
    assert sorted(m.rcpt_tos[0] for m in week11) == sorted([OWNER.email, BOSS]), "once each"

    mail = next(m.message for m in week11 if m.rcpt_tos == [OWNER.email])
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    plain = text.get_content()
    assert "THE NUMBERS" in plain
    assert "DELIVERIES THAT FAILED" in plain
    assert "- email for lead-qualification (decision" in plain
    assert "https://ops.example.com/reports/2026-W11" in plain
    related = next(p for p in mail.iter_parts() if p.get_content_type() == "multipart/related")
    images = [p for p in related.iter_parts() if p.get_content_type() == "image/png"]
    named = {str(p["Content-ID"]).strip("<>") for p in images}
    html_text = html.get_content()
    cited = set(re.findall(r'src="cid:([^"]+)"', html_text))
    assert cited
    assert cited == named, "every chart the HTML shows travels inline"
    assert all(p.get_content().startswith(b"\x89PNG") for p in images)
    assert sum(1 for _ in second.learn.sent_reports()) == 2
    assert [s["week"] for s in second.learn.sent_reports()] == ["2026-W11", "2026-W10"]


def test_a_quiet_week_sends_nothing(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock, smtp_sink: SmtpSink
) -> None:
    ops = make_ops(sqlite_url, playbooks=[lead_playbook()], smtp_host="127.0.0.1",
                   smtp_port=smtp_sink.port)  # fmt: skip
    add_people(ops)
    clock.advance(days=7)
    ops.run_jobs()
    assert smtp_sink.messages == []
    assert ops.learn.sent_reports() == []


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


def test_with_a_model_the_report_opens_with_a_summary_marked_as_written_by_ai(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock, smtp_sink: SmtpSink, llm: FakeOpenAI
) -> None:
    llm.then(Answer(content="A steady week: three leads decided, one email failed."))
    ops = business(
        make_ops,
        sqlite_url,
        clock,
        smtp_sink,
        weekly_report=False,
        llm={"url": llm.url, "model": "tiny", "max_retries": 0},
    )
    report = ops.learn.weekly_report("2026-W11", summarize=True)
    assert report["summary"] == "A steady week: three leads decided, one email failed."
    assert report["summary_model"]
    [asked] = llm.requests
    facts = json.dumps(asked.user_content)
    assert "reviewed decisions were overridden" in facts, "the model reads the report's sentences"
    email = ops.learn.report_email(report)
    assert "Written by AI" in email["html"]
    assert "Summary (written by AI" in email["text"]
    assert ops.learn.weekly_report("2026-W11")["summary"] is None, "only when asked"


def test_without_a_model_or_when_it_fails_the_report_has_no_summary(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock, smtp_sink: SmtpSink, llm: FakeOpenAI
) -> None:
    ops = business(make_ops, sqlite_url, clock, smtp_sink, weekly_report=False)
    assert ops.learn.weekly_report("2026-W11", summarize=True)["summary"] is None
    llm.then(Answer(status=500))
    broken = make_ops(sqlite_url, llm={"url": llm.url, "model": "tiny", "max_retries": 0},
                      weekly_report=False)  # fmt: skip
    report = broken.learn.weekly_report("2026-W11", summarize=True)
    assert report["summary"] is None
    assert "Written by AI" not in broken.learn.report_email(report)["html"]


def test_the_summary_sent_by_email_is_kept_with_the_week(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock, smtp_sink: SmtpSink, llm: FakeOpenAI
) -> None:
    llm.then(Answer(content="Week 10: two leads reviewed, one turned down."))
    ops = business(
        make_ops,
        sqlite_url,
        clock,
        smtp_sink,
        llm={"url": llm.url, "model": "tiny", "max_retries": 0},
    )
    sent = [
        m for m in smtp_sink.messages if m.message["Subject"] == "OpsLoop weekly report, 2026-W10"
    ]
    assert sent, "week 10 ended while the clock moved to week 11"
    calls = len(llm.requests)
    report = ops.learn.weekly_report("2026-W10")
    assert report["summary"] == "Week 10: two leads reviewed, one turned down."
    assert ops.learn.weekly_report("2026-W10", summarize=True)["summary"] == report["summary"]
    assert len(llm.requests) == calls, "the kept summary is read back, not written again"
    # The playbook sends no report of its own, so it has no summary of its own.
    assert ops.learn.weekly_report("2026-W10", playbook="lead-qualification")["summary"] is None


def test_a_playbook_names_who_gets_its_own_weekly_report(
    make_ops: OpsFactory, database_url: str, clock: Clock, smtp_sink: SmtpSink
) -> None:
    lead_with_report = lead_playbook() + "report:\n  to: [sales-lead@example.com]\n"
    ops = make_ops(
        database_url,
        playbooks=[lead_with_report],
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        review_digest_minutes=0,
    )
    add_people(ops)
    decided = new_lead(ops, 1)
    ops.review.verdict(decided["id"], ReviewRequest("approve", "rui"))
    ops.run_jobs()
    clock.advance(days=7)  # week 10 ends
    ops.run_jobs()
    ops.run_jobs()  # a second look sends nothing twice
    subjects = sorted(
        (m.rcpt_tos[0], str(m.message["Subject"]))
        for m in smtp_sink.messages
        if "weekly report" in str(m.message["Subject"])
    )
    assert subjects == [
        (OWNER.email, "OpsLoop weekly report, 2026-W10"),
        ("sales-lead@example.com", "OpsLoop weekly report, 2026-W10 — lead-qualification"),
    ]
    weeks = ops.learn.sent_reports()
    assert [(w["week"], w["recipients"]) for w in weeks] == [("2026-W10", 2)]


def test_a_playbooks_own_report_gets_and_keeps_a_summary_of_its_own(
    make_ops: OpsFactory, database_url: str, clock: Clock, smtp_sink: SmtpSink, llm: FakeOpenAI
) -> None:
    llm.then(Answer(content="The business: one lead approved."))
    llm.then(Answer(content="Lead qualification: one lead, approved at once."))
    ops = make_ops(
        database_url,
        playbooks=[lead_playbook() + "report:\n  to: [sales-lead@example.com]\n"],
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        review_digest_minutes=0,
        llm={"url": llm.url, "model": "tiny", "max_retries": 0},
    )
    add_people(ops)
    decided = new_lead(ops, 1)
    ops.review.verdict(decided["id"], ReviewRequest("approve", "rui"))
    ops.run_jobs()
    clock.advance(days=7)  # week 10 ends: both reports go
    ops.run_jobs()
    bodies = {
        m.rcpt_tos[0]: m.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        for m in smtp_sink.messages
        if "weekly report" in str(m.message["Subject"])
    }
    assert "The business: one lead approved." in bodies[OWNER.email]
    assert "Lead qualification: one lead, approved at once." in bodies["sales-lead@example.com"]
    told = [json.dumps(request.user_content) for request in llm.requests]
    assert "the playbook lead-qualification only" in told[-1], "the model knows whose report"
    calls = len(llm.requests)
    # Read back wherever the report is shown, each with its own, and not written again.
    assert ops.learn.weekly_report("2026-W10")["summary"] == "The business: one lead approved."
    own = ops.learn.weekly_report("2026-W10", playbook="lead-qualification", summarize=True)
    assert own["summary"] == "Lead qualification: one lead, approved at once."
    assert len(llm.requests) == calls


def test_a_report_address_must_be_one() -> None:
    with pytest.raises(PlaybookInvalid, match="is not an email address"):
        load_playbook(lead_playbook() + "report:\n  to: [Sales team]\n", "lead.yaml")

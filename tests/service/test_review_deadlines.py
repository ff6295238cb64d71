"""Review deadlines and digests: a decision that waits too long is marked, escalated or settled
by the playbook's fallback; reviewers get one message per interval, never one per decision.
Real SMTP and HTTP servers on loopback; the clock moved by hand."""

from __future__ import annotations

from typing import Any

import pytest

from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import PlaybookInvalid
from opsloop.core.playbooks import parse_playbook
from tests.conftest import Clock, OpsFactory, lead_playbook
from tests.leads import new_lead
from tests.people import OWNER, REVIEWER, VIEWER, add_people
from tests.sinks import HttpSink, SmtpSink


def with_review(then: str, within: str = "4h") -> str:
    return lead_playbook() + f"\nreview:\n  within: {within}\n  then: {then}\n"


def service(make_ops: OpsFactory, url: str, smtp: SmtpSink, then: str, **settings: Any) -> Any:
    ops = make_ops(
        url,
        playbooks=[with_review(then)],
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        **settings,
    )
    add_people(ops)
    return ops


def test_a_deadline_chooses_the_fallback_and_it_counts_as_no_review(
    make_ops: OpsFactory, database_url: str, clock: Clock, smtp_sink: SmtpSink
) -> None:
    ops = service(make_ops, database_url, smtp_sink, "choose nurture", review_digest_minutes=0)
    waits = new_lead(ops, 1)
    answered = new_lead(ops, 2)
    ops.review.verdict(answered["id"], ReviewRequest("approve", "rui"))
    clock.advance(hours=3)
    ops.run_jobs()
    assert ops.decide.decision_detail(waits["id"])["status"] == "pending"

    clock.advance(hours=1, seconds=1)
    ops.run_jobs()
    settled = ops.decide.decision_detail(waits["id"])
    assert (settled["status"], settled["final_choice"]) == ("auto", "nurture")
    assert settled["reviews"] == []
    assert [m.rcpt_tos for m in smtp_sink.messages].count(["lead1@example.com"]) == 1
    readiness = ops.review.readiness("lead-qualification")
    assert readiness["reviewed"] == 1, "only the person's review is evidence"
    [defaulted] = [e for e in settled["audit"] if e["verb"] == "decision.defaulted"]
    assert defaulted["actor"] == "deadline"
    assert defaulted["detail"] == {"option": "nurture", "waited": "4 hours"}
    assert ops.decide.decision_detail(answered["id"])["status"] == "approved"


def test_overdue_decisions_are_marked_and_each_reviewer_gets_one_digest_per_interval(
    make_ops: OpsFactory,
    database_url: str,
    clock: Clock,
    smtp_sink: SmtpSink,
    http_sink: HttpSink,
) -> None:
    ops = service(
        make_ops,
        database_url,
        smtp_sink,
        "notify",
        review_digest_minutes=60,
        review_digest_channel="team",
        notify_channels={"team": f"{http_sink.url}/team"},
        public_url="https://ops.example.com/",
    )
    clock.now = clock.now.replace(minute=30)
    for n in range(3):
        new_lead(ops, n)
    clock.advance(minutes=45)  # a new hour: the digest's first period with decisions waiting
    ops.run_jobs()
    digests = {m.rcpt_tos[0]: m for m in smtp_sink.messages}
    assert sorted(digests) == sorted([OWNER.email, REVIEWER.email]), "not the viewer"
    assert VIEWER.email not in digests
    mail = digests[REVIEWER.email]
    assert mail.message["Subject"] == "3 decisions wait for review"
    assert "The oldest has waited 45 minutes." in mail.body
    assert "- lead-qualification: 3 — https://ops.example.com/inbox?playbook=" in mail.body
    assert [r.json()["text"].splitlines()[0] for r in http_sink.requests] == [
        "3 decisions wait for review."
    ]
    [item, *_] = ops.review.inbox()["items"]
    assert item["overdue"] is False

    clock.advance(minutes=10)
    ops.run_jobs()
    assert len(smtp_sink.messages) == 2, "one digest per reviewer per interval"

    clock.advance(hours=3, minutes=30)  # past the 4-hour deadline, in a later period
    ops.run_jobs()
    latest = [m for m in smtp_sink.messages if m.rcpt_tos == [REVIEWER.email]][-1]
    assert latest.message["Subject"] == "3 decisions wait for review (3 overdue)"
    assert all(item["overdue"] for item in ops.review.inbox()["items"])
    for item in ops.review.inbox()["items"]:
        trail = ops.decide.decision_detail(item["id"])["audit"]
        assert [e["verb"] for e in trail].count("decision.overdue") == 1

    def digests_so_far() -> int:
        return sum(m.rcpt_tos[0] in (OWNER.email, REVIEWER.email) for m in smtp_sink.messages)

    before = digests_so_far()
    for item in ops.review.inbox()["items"]:
        ops.review.verdict(item["id"], ReviewRequest("approve", "rui"))
    clock.advance(hours=1)
    ops.run_jobs()
    assert digests_so_far() == before, "nothing waits: no digest"


def test_an_escalated_decision_is_named_in_the_owners_digest(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock, smtp_sink: SmtpSink
) -> None:
    ops = service(make_ops, sqlite_url, smtp_sink, "escalate", review_digest_minutes=60)
    new_lead(ops, 1)
    clock.advance(hours=5)
    ops.run_jobs()
    subjects = {m.rcpt_tos[0]: str(m.message["Subject"]) for m in smtp_sink.messages}
    assert subjects == {
        OWNER.email: "1 decision wait for review (1 overdue), 1 escalated to you",
        REVIEWER.email: "1 decision wait for review (1 overdue)",
    }


@pytest.mark.parametrize(
    ("then", "says"),
    [
        ("choose nurturing", "no option named 'nurturing'; did you mean 'nurture'?"),
        ("remind", "write notify, escalate or choose <option>"),
    ],
)
def test_a_bad_deadline_is_refused_with_its_line(then: str, says: str) -> None:
    with pytest.raises(PlaybookInvalid) as raised:
        parse_playbook(with_review(then), "lead.yaml")
    [problem] = raised.value.problems
    assert problem.field == "review.then"
    assert says in problem.message
    assert problem.line is not None


def test_a_deadline_cannot_choose_a_sensitive_option() -> None:
    text = with_review("choose hot").replace(
        "      - kind: notify\n        channel: sales",
        "      - kind: notify\n        sensitive: true\n        channel: sales",
    )
    with pytest.raises(PlaybookInvalid) as raised:
        parse_playbook(text, "lead.yaml")
    assert "never runs without a person" in str(raised.value)

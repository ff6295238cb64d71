"""The weekly report: for one ISO week (and optionally one playbook), the four numbers with
their change from the week before and a sentence each, what the playbooks decided and what came
of it, what waits for people, the deliveries that failed for good, and the dashboard's weekly
charts up to that week. With a language model configured, a short summary paragraph written by
it (and marked so wherever it is shown). A playbook with nothing in the week (no decision, no
action, no outcome) gets no numbers and no line of its own: one line names the quiet ones,
"Quiet this week: a, b.", under the numbers (a sentence each instead of a table when every
playbook is quiet).

The numbers are the dashboard's (`dashboard.dashboard`, which is `metrics.report(by="week")`):
a report never computes a number another way than the dashboard shows it.

Sending: a periodic `WEEKLY_REPORT` job (every hour) sends the last ended week's report to
every owner and to `weekly_report_recipients`. Each (recipient, week) is claimed in
`weekly_reports` before the email goes, so a restart or a second process never sends a week
twice (as the review digests do, service/review/deadlines.py). A week in which nothing happened
(no decision, no answer, no failed delivery) sends nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from opsloop.core.errors import DeliveryError, InvalidInput
from opsloop.core.periods import iso_week
from opsloop.service.context import Context
from opsloop.service.learn import charts, metrics
from opsloop.service.learn import dashboard as dashboard_service
from opsloop.service.learn.views import (
    CsatReport,
    DashboardPlaybook,
    ReportChart,
    ReportExperiment,
    ReportFailure,
    ReportForecast,
    ReportNumber,
    ReportPlaybook,
    ReportWaiting,
    SentReport,
    WeeklyReport,
)
from opsloop.store import accounts as account_store
from opsloop.store import weekly_reports as report_store

log = logging.getLogger(__name__)

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
CHART_WEEKS = 8
"""The charts show the report's week and the seven before it."""
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def parse_week(text: str) -> date:
    """The Monday of an ISO week written `2026-W47`; InvalidInput otherwise."""
    found = WEEK.match(text.strip())
    if found:
        try:
            return date.fromisocalendar(int(found[1]), int(found[2]), 1)
        except ValueError:
            pass
    raise InvalidInput.single("week", f"{text!r} is not an ISO week such as 2026-W47")


def last_ended_week(now: datetime) -> str:
    """The ISO week before the one `now` falls in: the latest whose numbers are whole."""
    return iso_week(now - timedelta(days=7))


def weekly_report(
    ctx: Context, week: str, *, playbook: str | None = None, summarize: bool = False
) -> WeeklyReport:
    """The report of `week` (NotFound for a playbook that does not exist). `summarize`: ask the
    language model for a summary paragraph when one is configured."""
    monday = parse_week(week)
    week = iso_week(datetime.combine(monday, time(), UTC))  # 2026-W5 → 2026-W05
    previous = iso_week(datetime.combine(monday - timedelta(days=7), time(), UTC))
    start = datetime.combine(monday, time(), UTC)
    end = start + timedelta(days=7)
    data = dashboard_service.dashboard(ctx, playbook=playbook)
    rows = data["playbooks"]
    with ctx.db.read() as conn:
        busy = report_store.busy_playbooks(conn, start, end)
    numbers: list[ReportNumber] = []
    decided: list[ReportPlaybook] = []
    quiet: list[str] = []
    for row in rows:
        weeks = {w["week"]: w for w in row["weeks"] or []}
        this, before = weeks.get(week), weeks.get(previous)
        if (this is None or not this["total"]) and row["playbook"] not in busy:
            quiet.append(row["playbook"])  # named in one line, not three rows of dashes
            continue
        numbers += _playbook_numbers(row["playbook"], this, before)
        if this is not None or playbook is not None:
            decided.append(_decided(row, this))
    numbers.append(_csat_number(data["csat"], week, previous))
    from opsloop.service.review import deadlines  # learn reads every stage

    now = ctx.clock()
    waiting = deadlines.waiting_now(ctx, now)
    by_playbook = {
        name: count
        for name, count in waiting.by_playbook.items()
        if playbook is None or name == playbook
    }
    with ctx.db.read() as conn:
        failed = report_store.failed_deliveries(conn, start, end, playbook)
    report: WeeklyReport = {
        "week": week,
        "starts": monday,
        "ends": monday + timedelta(days=6),
        "playbook": playbook,
        "partial": now < end,
        "numbers": numbers,
        "playbooks": decided,
        "quiet": quiet,
        "waiting": _waiting(waiting, by_playbook, now, whole=playbook is None),
        "failed_deliveries": [
            ReportFailure(
                action_id=f.action_id,
                decision_id=f.decision_id,
                playbook=f.playbook,
                kind=f.kind,
                attempts=f.attempts,
                error=f.last_error,
                failed_at=f.failed_at,
            )
            for f in failed
        ],
        "experiments": _experiments(ctx, playbook),
        "forecasts": _forecasts(ctx, playbook),
        "charts": _charts(rows, data["csat"], week),
        "summary": None,
        "summary_model": None,
    }
    with ctx.db.read() as conn:
        kept = report_store.summary(conn, week, playbook or "")
    if kept is not None:  # what the email said, shown wherever the report is read
        report["summary"], report["summary_model"] = kept
    if summarize and report["summary"] is None:
        _summarize(ctx, report)
    return report


def happened(report: WeeklyReport) -> bool:
    """Whether anything happened in the week: a decision, an answer, a failed delivery."""
    answered = any(n["key"] == "csat" and n["value"] is not None for n in report["numbers"])
    decided = any(p["total"] for p in report["playbooks"])
    return decided or answered or bool(report["failed_deliveries"])


def sent_reports(ctx: Context) -> list[SentReport]:
    with ctx.db.read() as conn:
        return [
            SentReport(week=s.week, recipients=s.recipients, failed=s.failed, sent_at=s.sent_at)
            for s in report_store.sent_weeks(conn)
        ]


# --- the four numbers ------------------------------------------------------------------------


def _playbook_numbers(
    name: str, this: Mapping[str, Any] | None, before: Mapping[str, Any] | None
) -> list[ReportNumber]:
    def value(week: Mapping[str, Any] | None, field: str) -> float | None:
        return None if week is None else week[field]

    success = value(this, "success_rate"), value(before, "success_rate")
    override = value(this, "override_rate"), value(before, "override_rate")
    waits = (
        value(this, "median_time_to_action_seconds"),
        value(before, "median_time_to_action_seconds"),
    )
    closed = 0 if this is None else this["successes"] + this["failures"]
    reviewed = 0 if this is None else this["reviewed"]
    timed = 0 if this is None else this["actions_timed"]
    return [
        _number(
            "success_rate",
            "Decision success rate",
            name,
            *success,
            _share_sentence(
                success,
                f"of the {closed} decisions whose outcome window has closed succeeded",
                "No decision of this week has a closed outcome window yet.",
            ),
        ),
        _number(
            "override_rate",
            "Human override rate",
            name,
            *override,
            _share_sentence(
                override,
                f"of the {reviewed} reviewed decisions were overridden or rejected by a person",
                "Nobody reviewed a decision of this week.",
            ),
        ),
        _number(
            "time_to_action",
            "Time to action",
            name,
            *waits,
            _time_sentence(waits, timed),
        ),
    ]


def _csat_number(csat: CsatReport, week: str, previous: str) -> ReportNumber:
    weeks = {w["week"]: w for w in csat["weeks"] or []}
    this, before = weeks.get(week), weeks.get(previous)
    now = None if this is None else this["mean_rating"]
    then = None if before is None else before["mean_rating"]
    if now is None:
        sentence = "No customer answered the satisfaction survey this week."
    else:
        answers = this["responses"] if this else 0
        sentence = f"Customers rated {now:.2f} of 5 on average ({_count(answers, 'answer')})"
        sentence += (
            "." if then is None else f", {_direction(now, then)} {then:.2f} the week before."
        )
    return _number("csat", "Customer satisfaction", None, now, then, sentence)


def _number(
    key: Any,
    title: str,
    playbook: str | None,
    value: float | None,
    previous: float | None,
    sentence: str,
) -> ReportNumber:
    change = metrics.change(previous, value)
    return {
        "key": key,
        "title": title,
        "playbook": playbook,
        "value": value,
        "previous": previous,
        "change": change,
        "shown": _shown(key, value),
        "previous_shown": _shown(key, previous),
        "change_shown": _change_shown(key, value, previous, change),
        "sentence": sentence,
    }


def _change_shown(
    key: str, value: float | None, previous: float | None, change: float | None
) -> str:
    """Shares change by points (50% to 40% is `-10 pts`), the others by a relative change."""
    if key in ("success_rate", "override_rate"):
        if value is None or previous is None:
            return ""
        return f"{(value - previous) * 100:+.0f} pts"
    return "" if change is None else f"{change:+.0%}"


def _shown(key: str, value: float | None) -> str:
    if value is None:
        return "—"
    if key == "time_to_action":
        return duration(value)
    if key == "csat":
        return f"{value:.2f}"
    return share(value)


def _share_sentence(values: tuple[float | None, float | None], what: str, none: str) -> str:
    now, then = values
    if now is None:
        return none
    sentence = f"{share(now)} {what}"
    if then is None:
        return sentence + "; the week before had no figure to compare."
    if round(now, 2) == round(then, 2):
        return sentence + f", as the week before ({share(then)})."
    points = round(abs(now - then) * 100)
    way = "up" if now > then else "down"
    return sentence + f", {way} {points} points from {share(then)} the week before."


def _time_sentence(values: tuple[float | None, float | None], timed: int) -> str:
    now, then = values
    if now is None:
        return "No action of this week's decisions was delivered."
    sentence = f"Half of the {_count(timed, 'action')} went out within {duration(now)} of the event"
    if then is None:
        return sentence + "."
    if now < then:
        return sentence + f", sooner than the week before ({duration(then)})."
    if now > then:
        return sentence + f", later than the week before ({duration(then)})."
    return sentence + ", as the week before."


def _direction(now: float, then: float) -> str:
    return "up from" if now > then else "down from" if now < then else "the same as"


# --- what was decided, what waits, the charts ------------------------------------------------


def _decided(row: DashboardPlaybook, this: Mapping[str, Any] | None) -> ReportPlaybook:
    def get(field: str) -> int:
        return 0 if this is None else int(this[field])

    total = get("total")
    if total == 0:
        sentence = "No decisions this week."
    else:
        sentence = f"{_count(total, 'decision')}: {get('successes')} succeeded, "
        sentence += f"{get('failures')} did not, {get('open_windows')} still open"
        if get("reviewed"):
            sentence += f"; {get('reviewed')} reviewed, {get('overridden')} overridden"
            sentence += f", {get('rejected')} rejected"
        if get("pending_reviews"):
            waiting = get("pending_reviews")
            sentence += f"; {waiting} still {'waits' if waiting == 1 else 'wait'} for review"
        sentence += "."
    return {
        "playbook": row["playbook"],
        "mode": row["mode"],
        "total": total,
        "decisions": dict(this["decisions"]) if this is not None else {},
        "successes": get("successes"),
        "failures": get("failures"),
        "open_windows": get("open_windows"),
        "reviewed": get("reviewed"),
        "overridden": get("overridden"),
        "rejected": get("rejected"),
        "pending_reviews": get("pending_reviews"),
        "sentence": sentence,
    }


def _waiting(
    waiting: Any, by_playbook: dict[str, int], now: datetime, *, whole: bool
) -> ReportWaiting:
    total = sum(by_playbook.values())
    overdue = waiting.overdue if whole else 0
    escalated = waiting.escalated if whole else 0
    if total == 0:
        sentence = "Nothing waits for a person."
    else:
        sentence = f"{_count(total, 'decision')} {'waits' if total == 1 else 'wait'} for a person"
        if overdue:
            sentence += f", {overdue} overdue"
        if escalated:
            sentence += f", {escalated} escalated"
        if whole and waiting.oldest is not None:
            sentence += (
                f"; the oldest has waited {duration((now - waiting.oldest).total_seconds())}"
            )
        sentence += "."
    return {
        "total": total,
        "overdue": overdue,
        "escalated": escalated,
        "oldest": waiting.oldest if whole else None,
        "by_playbook": dict(sorted(by_playbook.items())),
        "sentence": sentence,
    }


def _charts(rows: Sequence[DashboardPlaybook], csat: CsatReport, week: str) -> list[ReportChart]:
    """The dashboard's four weekly charts over the report's week and the seven before it."""

    def upto(w: Mapping[str, Any]) -> bool:
        return bool(w["week"] <= week and w["partial"] != "first")

    recent = sorted({w["week"] for row in rows for w in row["weeks"] or [] if upto(w)})
    recent_csat = [w["week"] for w in csat["weeks"] or [] if upto(w)]
    first = min([*recent[-CHART_WEEKS:], *recent_csat[-CHART_WEEKS:]], default=week)
    return [
        {"id": series.id, "title": series.title, "spec": series.spec(), "empty": series.empty}
        for series in charts.four_series(rows, csat, lambda w: first <= w["week"] <= week)
    ]


# --- worth a look: experiments and forecasts, as they stand when the report is made ------------


def _experiments(ctx: Context, only: str | None) -> list[ReportExperiment]:
    from opsloop.service.learn import experiments

    found: list[ReportExperiment] = []
    for name in sorted(ctx.catalog.active()):
        if only is not None and name != only:
            continue
        for e in experiments.experiments(ctx, name):
            sends = sum(v["sends"] for v in e["variants"])
            if sends:
                found.append(
                    ReportExperiment(
                        playbook=name,
                        option=e["option"],
                        action=e["action"],
                        sends=sends,
                        winner=e["winner"],
                        verdict=e["verdict"],
                        ended=e["ended"] is not None,
                    )
                )
    return found


SHOWN_PRODUCTS = 10
"""Products named per list in the report; the forecast page has them all."""


def _forecasts(ctx: Context, only: str | None) -> list[ReportForecast]:
    from opsloop.service.learn import forecasts

    found: list[ReportForecast] = []
    for name, active in sorted(ctx.catalog.active().items()):
        if only is not None and name != only:
            continue
        if not any(f.kind == "forecast" for f in active.compiled.features):
            continue
        report = forecasts.forecast_report(ctx, name, weeks=0)
        out = [p["subject"] for p in report["products"] if p["status"] == "out of stock"]
        low = [p["subject"] for p in report["products"] if p["status"] == "reorder"]
        parts = []
        if out:
            parts.append(f"{_count(len(out), 'product')} out of stock")
        if low:
            parts.append(f"{_count(len(low), 'product')} at or below the reorder point")
        sentence = (
            " and ".join(parts) + f", of {report['overall']['products']} forecast."
            if parts
            else f"All {report['overall']['products']} products forecast have stock above "
            "their reorder point."
        )
        found.append(
            ReportForecast(
                playbook=name,
                products=report["overall"]["products"],
                out_of_stock=out[:SHOWN_PRODUCTS],
                to_reorder=low[:SHOWN_PRODUCTS],
                sentence=sentence[0].upper() + sentence[1:],
            )
        )
    return found


# --- the language model's summary ------------------------------------------------------------


SUMMARY_INSTRUCTIONS = (
    "You write the opening paragraph of a small business's weekly operations report. Use only "
    "the numbers and facts given; do not invent causes. Plain sentences, no lists, no greeting."
)


def _summarize(ctx: Context, report: WeeklyReport) -> None:
    """Add the model's summary paragraph; without a model, or when it fails, none (the report
    reads whole without it)."""
    from opsloop.reasoning.llm_client import LLMError, LLMNotConfigured, select_fields
    from opsloop.service.decide import llm_setup  # learn reads every stage

    if not llm_setup.is_configured(ctx):
        return
    playbook = report["playbook"]
    facts = {
        "week": report["week"],
        "report": "the whole business" if playbook is None else f"the playbook {playbook} only",
        "numbers": [n["sentence"] for n in report["numbers"]],
        "playbooks": [f"{p['playbook']}: {p['sentence']}" for p in report["playbooks"]],
        "waiting": report["waiting"]["sentence"],
        "failed_deliveries": len(report["failed_deliveries"]),
    }
    try:
        with llm_setup.language_model(ctx, needed_by="the weekly report") as model:
            summary = model.summarize(
                select_fields(facts, list(facts)),
                max_words=80,
                instructions=SUMMARY_INSTRUCTIONS,
            )
    except (LLMError, LLMNotConfigured) as exc:
        log.warning("weekly report %s: no summary: %s", report["week"], exc)
        return
    report["summary"] = summary.text.strip()
    report["summary_model"] = summary.call.model


# --- sending ---------------------------------------------------------------------------------


def recipients(ctx: Context) -> list[str]:
    """Every enabled owner, then `weekly_report_recipients`, each once."""
    with ctx.db.read() as conn:
        owners = [
            user["email"]
            for user in account_store.list_users(conn)
            if user["role"] == "owner" and user["disabled_at"] is None
        ]
    found: list[str] = []
    for address in [*owners, *ctx.settings.weekly_report_recipients]:
        address = address.strip()
        if address and address.lower() not in (a.lower() for a in found):
            found.append(address)
    return found


def send_weekly_reports(ctx: Context) -> int:
    """Send the last ended week's report to each recipient that has not had it, and each
    playbook's own report to the people its `report: to:` names; return how many went. A
    report of a week in which nothing happened is not sent."""
    if not ctx.settings.weekly_report:
        return 0
    week = last_ended_week(ctx.clock())
    sent = _send_report(ctx, week, None, recipients(ctx))
    for name, active in sorted(ctx.catalog.active().items()):
        wanted = active.compiled.playbook.report
        if wanted is not None:
            sent += _send_report(ctx, week, name, list(dict.fromkeys(wanted.to)))
    return sent


def _send_report(ctx: Context, week: str, playbook: str | None, people: list[str]) -> int:
    scope = playbook or ""
    with ctx.db.read() as conn:
        pending = [p for p in people if not report_store.was_claimed(conn, p, week, scope)]
    if not pending:
        return 0
    report = weekly_report(ctx, week, playbook=playbook)
    if not happened(report):
        return 0  # and no model is asked to summarize a quiet week, each time the job looks
    if report["summary"] is None:
        _summarize(ctx, report)
    if report["summary"] is not None and report["summary_model"] is not None:
        with ctx.db.transaction() as tx:
            report_store.keep_summary(
                tx.conn, week, report["summary"], report["summary_model"], ctx.clock(), scope
            )
    from opsloop.service.learn import report_rendering

    email = report_rendering.email(ctx, report)
    sent = 0
    for address in pending:
        with ctx.db.transaction() as tx:
            report_id = report_store.claim(tx.conn, address, week, ctx.clock(), scope)
        if report_id is None:
            continue  # another process sent it meanwhile
        sent += _send(ctx, report_id, address, email)
    return sent


def _send(ctx: Context, report_id: int, address: str, email: Any) -> int:
    request = {
        "to": address,
        "subject": email["subject"],
        "body": email["text"],
        "html": email["html"],
        "images": email["images"],
    }
    try:
        ctx.channels["email"].send(request, idempotency_key=f"weekly-report-{report_id}")
    except DeliveryError as exc:
        # Not retried: the Reports page shows it, and the report stays there to read.
        log.warning("weekly report to %s not sent: %s", address, exc)
        with ctx.db.transaction() as tx:
            report_store.failed(tx.conn, report_id, str(exc))
        return 0
    return 1


# --- words -----------------------------------------------------------------------------------


def share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def duration(seconds: float | None) -> str:
    """Rounded for reading: `45 seconds`, `12 minutes`, `3.5 hours`, `2.0 days`."""
    if seconds is None:
        return "—"
    if seconds < 2 * MINUTE:
        return _count(round(seconds), "second")
    if seconds < 2 * HOUR:
        return _count(round(seconds / MINUTE), "minute")
    if seconds < 2 * DAY:
        return f"{seconds / HOUR:.1f} hours"
    return f"{seconds / DAY:.1f} days"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"

"""The operations chat's tools: read-only views over what the stages already offer, run as the
person (or token) who asked. Each returns records, each with the page where it lives, and facts
(plain numbers and words) for the answer.

Only reading exists here: no tool reviews, sends, retries, changes a playbook or reads
settings, accounts, tokens or secrets. A tool shows what the asker's pages show: everything at
`read` level, and "waiting for me" by who is asking (a reviewer's inbox; a person's own tasks).

A `Toolbox` is made per question and remembers every record its tools returned, so the answer
can cite those and nothing else (opsloop/service/ask/chat.py).
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from opsloop.core.access import Principal
from opsloop.core.decision_views import DecisionSummary
from opsloop.core.errors import OpsLoopError
from opsloop.core.event_views import Entity
from opsloop.core.events import Event
from opsloop.core.periods import Baseline, Period
from opsloop.knowledge.answers import MIN_COVERAGE
from opsloop.reasoning.llm_tools import function_tool
from opsloop.service import reading
from opsloop.service.ask import documents as document_service
from opsloop.service.ask.chat_views import ChatRecord, RecordKind, ToolUse
from opsloop.service.context import Context
from opsloop.service.decide.views import PlaybookSummary
from opsloop.service.learn import metrics as metric_service
from opsloop.service.review import inbox as inbox_service
from opsloop.store import lookups

log = logging.getLogger(__name__)

MAX_RECORDS = 10
"""At most this many records per tool call: an answer cites a few, not a table."""

PERIODS = (
    "today",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "last_7_days",
    "last_30_days",
    "all_time",
)
PERIOD_WORDS = {
    "today": "today",
    "this_week": "this week",
    "last_week": "last week",
    "this_month": "this month",
    "last_month": "last month",
    "last_7_days": "the last 7 days",
    "last_30_days": "the last 30 days",
    "all_time": "all time",
}


class ToolProblem(OpsLoopError):
    """A tool could not answer with these arguments; the message says why, for the model."""


@dataclass(frozen=True, slots=True)
class Found:
    """What one tool call returned."""

    records: list[ChatRecord]
    facts: dict[str, Any]


@dataclass
class Toolbox:
    """The tools, for one question asked by `principal`."""

    ctx: Context
    principal: Principal
    seen: dict[str, ChatRecord] = field(default_factory=dict)
    """Every record a tool returned, by ref."""
    uses: list[ToolUse] = field(default_factory=list)

    def run(self, name: str, arguments: dict[str, Any]) -> Found:
        """Call one tool; a bad name or bad arguments give an `error` fact, never an exception
        (the model reads it and tries again)."""
        tool = TOOLS.get(name)
        try:
            if tool is None:
                raise ToolProblem(f"there is no tool {name!r}; the tools are {', '.join(TOOLS)}")
            found = tool.run(self, arguments)
        except OpsLoopError as exc:
            self.uses.append(
                {"name": name, "arguments": arguments, "records": [], "error": str(exc)}
            )
            return Found([], {"error": str(exc)})
        for record in found.records:
            self.seen[record["ref"]] = record
        self.uses.append(
            {
                "name": name,
                "arguments": arguments,
                "records": [record["ref"] for record in found.records],
                "error": None,
            }
        )
        return found

    # --- what the tools share ----------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.ctx.clock()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.ctx.settings.timezone)

    def playbooks(self) -> list[PlaybookSummary]:
        from opsloop.service.decide import playbooks as playbook_service

        return playbook_service.list_playbooks(self.ctx)

    def playbook_named(self, text: str) -> str:
        """The active playbook `text` names, forgiving case, spaces for dashes and small typos;
        a subject kind (`leads`) names the playbook deciding about it."""
        names = [p["name"] for p in self.playbooks()]
        found = match_playbook(text, self.playbooks())
        if found is None:
            raise ToolProblem(
                f"no playbook is called {text!r}; the playbooks are {', '.join(names) or 'none'}"
            )
        return found

    def email(self) -> str | None:
        """The asker's email: a signed-in person's; a token has none."""
        return self.principal.name if self.principal.kind == "user" else None


# --- matching --------------------------------------------------------------------------------


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[-_/]+", " ", text.lower()).split())


def match_playbook(text: str, playbooks: list[PlaybookSummary]) -> str | None:
    """The playbook `text` names: its name (`support triage`, `Support-Triage`, a small typo),
    or the kind of subject it decides about (`leads`, `tickets`) when one playbook does."""
    wanted = _plain(text)
    if not wanted:
        return None
    by_plain = {_plain(p["name"]): p["name"] for p in playbooks}
    if wanted in by_plain:
        return by_plain[wanted]
    for plain, name in by_plain.items():
        if plain in wanted:
            return name
    close = difflib.get_close_matches(wanted, list(by_plain), n=1, cutoff=0.75)
    if close:
        return by_plain[close[0]]
    words = set(wanted.split())
    kinds = [p["name"] for p in playbooks if {p["subject"], p["subject"] + "s"} & words]
    if len(kinds) == 1:
        return kinds[0]
    return None


# --- records ---------------------------------------------------------------------------------


def _record(kind: RecordKind, ref: str, title: str, detail: str, link: str) -> ChatRecord:
    return {"kind": kind, "ref": ref, "title": title, "detail": detail, "link": link}


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "-"


def decision_record(d: DecisionSummary) -> ChatRecord:
    choice = d["final_choice"] or d["choice"] or "no choice"
    return _record(
        "decision",
        f"decision:{d['id']}",
        f"Decision {d['id']}: {d['playbook']} on {d['subject']}",
        f"{choice}, {d['status']}, {_when(d['created_at'])}: {d['why']}",
        f"/decisions/{d['id']}",
    )


def entity_record(entity: Entity) -> ChatRecord:
    subject = entity["subject"]
    return _record(
        "subject",
        f"subject:{subject}",
        subject,
        f"first seen {_when(entity['first_seen_at'])}, last seen {_when(entity['last_seen_at'])}",
        f"/api/entities/{quote(subject, safe=':@')}",
    )


def event_record(event: Event) -> ChatRecord:
    return _record(
        "event",
        f"event:{event.id}",
        f"Event {event.id}: {event.type} on {event.subject}",
        f"from {event.source}, {_when(event.occurred_at)}",
        f"/api/events/{event.id}",
    )


def playbook_record(p: PlaybookSummary) -> ChatRecord:
    return _record(
        "playbook",
        f"playbook:{p['name']}",
        p["name"],
        f"{p['mode']} mode, decides about {p['subject']}s: {p['description']}",
        f"/playbooks/{quote(p['name'], safe='')}",
    )


def _short(value: Any, limit: int = 120) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    if isinstance(value, dict):
        return {k: _short(v) for k, v in list(value.items())[:12]}
    if isinstance(value, list):
        return [_short(v) for v in value[:5]]
    return value


def _decision_facts(d: DecisionSummary) -> dict[str, Any]:
    return {
        "ref": f"decision:{d['id']}",
        "playbook": d["playbook"],
        "subject": d["subject"],
        "status": d["status"],
        "choice": d["choice"],
        "final_choice": d["final_choice"],
        "created_at": d["created_at"].isoformat(),
        "why": _short(d["why"]),
    }


def _text(arguments: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = arguments.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ToolProblem(f"give `{name}`")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ToolProblem(f"`{name}` must be text")
    return str(value).strip()[:200]


def _limit(arguments: dict[str, Any], default: int = 5) -> int:
    value = arguments.get("limit", default)
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return max(1, min(MAX_RECORDS, value))


# --- the tools -------------------------------------------------------------------------------


def search_subjects(box: Toolbox, arguments: dict[str, Any]) -> Found:
    query = _text(arguments, "query", required=True)
    assert query is not None
    # `order:1042`, `order 1042` and `order #1042` name the subject `order:1042`; failing
    # that, anything whose key or traits hold `1042`.
    keyed = re.fullmatch(r"([a-z_]+)[\s:#]+#?(\S+)", query.lower())
    key = keyed.group(2) if keyed else query
    tries = [query, f"{keyed.group(1)}:{key}", key] if keyed else [query]
    with box.ctx.db.read() as conn:
        entities: list[Entity] = []
        for text in tries:
            entities = entities or lookups.find_subjects(conn, text, limit=3)
        mentioning = lookups.events_mentioning(conn, key, limit=5)
    records: list[ChatRecord] = []
    subjects: list[dict[str, Any]] = []
    for entity in entities:
        subject = entity["subject"]
        events = [_as_event(e) for e in reading.list_events(box.ctx, subject=subject, limit=5)]
        decisions = reading.list_decisions(box.ctx, subject=subject, limit=5)
        records.append(entity_record(entity))
        records.extend(event_record(e) for e in events)
        records.extend(decision_record(d) for d in decisions)
        subjects.append(
            {
                "ref": f"subject:{subject}",
                "traits": _short(entity["traits"]),
                "first_seen_at": entity["first_seen_at"].isoformat(),
                "last_seen_at": entity["last_seen_at"].isoformat(),
                "events": [
                    {
                        "ref": f"event:{e.id}",
                        "type": e.type,
                        "occurred_at": e.occurred_at.isoformat(),
                    }
                    for e in events
                ],
                "decisions": [_decision_facts(d) for d in decisions],
            }
        )
    known = {record["ref"] for record in records}
    others = [e for e in mentioning if f"event:{e.id}" not in known]
    records.extend(event_record(e) for e in others)
    return Found(
        records,
        {
            "query": query,
            "subjects": subjects,
            "other_events": [
                {
                    "ref": f"event:{e.id}",
                    "type": e.type,
                    "subject": e.subject,
                    "occurred_at": e.occurred_at.isoformat(),
                    "payload": _short(e.payload),
                }
                for e in others
            ],
        },
    )


def _as_event(view: Any) -> Event:
    return Event(**view)


def recent_decisions(box: Toolbox, arguments: dict[str, Any]) -> Found:
    playbook = _text(arguments, "playbook")
    status = _text(arguments, "status")
    subject = _text(arguments, "subject")
    name = box.playbook_named(playbook) if playbook else None
    found = reading.list_decisions(
        box.ctx, playbook=name, status=status, subject=subject, limit=_limit(arguments)
    )
    return Found(
        [decision_record(d) for d in found],
        {"playbook": name, "status": status, "decisions": [_decision_facts(d) for d in found]},
    )


def inbox(box: Toolbox, arguments: dict[str, Any]) -> Found:
    playbook = _text(arguments, "playbook")
    name = box.playbook_named(playbook) if playbook else None
    waiting = inbox_service.inbox(box.ctx, playbook=name, order="urgent", limit=_limit(arguments))
    records = [
        _record(
            "inbox",
            f"decision:{item['id']}",
            f"Waiting: {item['playbook']} on {item['subject']}",
            f"suggests {item['choice'] or 'no choice'}"
            + (f", due {_when(item['due_at'])}" if item["due_at"] else "")
            + (" (overdue)" if item["overdue"] else ""),
            f"/decisions/{item['id']}",
        )
        for item in waiting["items"]
    ]
    return Found(
        records,
        {
            "waiting_per_playbook": waiting["waiting"],
            "total_waiting": waiting["total"],
            "shown": [
                {
                    "ref": f"decision:{item['id']}",
                    "playbook": item["playbook"],
                    "subject": item["subject"],
                    "who": item["who"],
                    "suggested": item["choice"],
                    "due_at": item["due_at"].isoformat() if item["due_at"] else None,
                    "overdue": item["overdue"],
                }
                for item in waiting["items"]
            ],
            "review_page": "/inbox",
        },
    )


def tasks(box: Toolbox, arguments: dict[str, Any]) -> Found:
    mine = arguments.get("mine") is True
    overdue = arguments.get("overdue") is True
    status = _text(arguments, "status") or "open"
    if status not in ("open", "done"):
        raise ToolProblem("`status` is open or done")
    assignee = None
    if mine:
        assignee = box.email()
        if assignee is None:
            return Found([], {"tasks": [], "note": "an API token has no tasks of its own"})
    rows = reading.list_tasks(
        box.ctx, status=status, assignee=assignee, overdue=overdue, limit=_limit(arguments)
    )
    tab = "mine" if mine else "overdue" if overdue else status
    return Found([task_record(row, tab) for row in rows], {"tasks": [_task_facts(r) for r in rows]})


def task_record(row: Any, tab: str) -> ChatRecord:
    due = f", due {_when(row['due_at'])}" if row["due_at"] else ""
    return _record(
        "task",
        f"task:{row['id']}",
        f"Task {row['id']}: {row['title']}",
        f"for {row['assignee'] or 'anyone'}, {row['status']}{due}",
        f"/tasks?status={tab}#task-{row['id']}",
    )


def _task_facts(row: Any) -> dict[str, Any]:
    return {
        "ref": f"task:{row['id']}",
        "title": row["title"],
        "subject": row["subject"],
        "assignee": row["assignee"],
        "status": row["status"],
        "due_at": row["due_at"].isoformat() if row["due_at"] else None,
        "decision": f"decision:{row['decision_id']}",
    }


def waiting_for_me(box: Toolbox, arguments: dict[str, Any]) -> Found:
    """A reviewer's (or owner's) inbox and a person's own open tasks. A viewer reviews
    nothing, so the inbox is counted for them, not listed as theirs."""
    records: list[ChatRecord] = []
    facts: dict[str, Any] = {"asked_by": box.principal.actor}
    if box.principal.may("review"):
        found = inbox(box, {"limit": 5})
        records.extend(found.records)
        facts["inbox"] = found.facts
    else:
        facts["inbox"] = {
            "total_waiting": sum(inbox_service.count(box.ctx).values()),
            "note": "decisions wait for a reviewer; a viewer does not review",
        }
    email = box.email()
    if email is None:
        facts["tasks"] = {"note": "an API token has no tasks of its own"}
    else:
        rows = reading.list_tasks(box.ctx, status="open", assignee=email, limit=5)
        records.extend(task_record(row, "mine") for row in rows)
        facts["tasks"] = {"open": [_task_facts(r) for r in rows]}
    return Found(records, facts)


def needs_attention(box: Toolbox, arguments: dict[str, Any]) -> Found:
    """Subjects of a kind (leads, tickets …) a person should look at today: their decisions
    waiting for review, and their open tasks due by the end of today (or overdue)."""
    kind = (_text(arguments, "kind") or "").lower().rstrip("s") or None
    zone = box.zone
    local = box.now.astimezone(zone)
    end_of_day = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    waiting = inbox_service.inbox(box.ctx, order="urgent", limit=200)["items"]
    items = [i for i in waiting if kind is None or i["subject"].split(":", 1)[0] == kind]
    open_tasks = reading.list_tasks(box.ctx, status="open", limit=200)
    due = [
        t
        for t in open_tasks
        if (kind is None or t["subject"].split(":", 1)[0] == kind)
        and t["due_at"] is not None
        and t["due_at"] < end_of_day
    ]
    limit = _limit(arguments, MAX_RECORDS)
    records = [
        _record(
            "inbox",
            f"decision:{i['id']}",
            f"Waiting: {i['playbook']} on {i['subject']}",
            f"suggests {i['choice'] or 'no choice'}"
            + (f", due {_when(i['due_at'])}" if i["due_at"] else "")
            + (" (overdue)" if i["overdue"] else ""),
            f"/decisions/{i['id']}",
        )
        for i in items[:limit]
    ]
    records.extend(
        task_record(t, "overdue" if t["due_at"] and t["due_at"] < box.now else "open")
        for t in due[:limit]
    )
    return Found(
        records,
        {
            "kind": kind,
            "today_ends_at": end_of_day.isoformat(),
            "waiting_for_review": len(items),
            "tasks_due_today_or_overdue": len(due),
            "subjects": sorted({i["subject"] for i in items} | {t["subject"] for t in due}),
        },
    )


def playbooks(box: Toolbox, arguments: dict[str, Any]) -> Found:
    found = box.playbooks()
    return Found(
        [playbook_record(p) for p in found],
        {
            "playbooks": [
                {"ref": f"playbook:{p['name']}", "mode": p["mode"], "subject": p["subject"]}
                for p in found
            ]
        },
    )


def period_bounds(period: str, now: datetime, zone: ZoneInfo) -> tuple[datetime | None, datetime]:
    """[since, until) of a named period in the business's time zone; since None: all time."""
    local = now.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    monday = midnight - timedelta(days=local.weekday())
    first = midnight.replace(day=1)
    previous_first = (first - timedelta(days=1)).replace(day=1)
    bounds: dict[str, tuple[datetime | None, datetime]] = {
        "today": (midnight, now),
        "this_week": (monday, now),
        "last_week": (monday - timedelta(days=7), monday),
        "this_month": (first, now),
        "last_month": (previous_first, first),
        "last_7_days": (now - timedelta(days=7), now),
        "last_30_days": (now - timedelta(days=30), now),
        "all_time": (None, now),
    }
    if period not in bounds:
        raise ToolProblem(f"`period` is one of {', '.join(PERIODS)}")
    return bounds[period]


def metrics(box: Toolbox, arguments: dict[str, Any]) -> Found:
    playbook = _text(arguments, "playbook")
    period = _text(arguments, "period") or "this_month"
    name = box.playbook_named(playbook) if playbook else None
    since, until = period_bounds(period, box.now, box.zone)
    words = PERIOD_WORDS[period]
    records: list[ChatRecord] = []
    facts: list[dict[str, Any]] = []
    if until >= box.now:
        found = metric_service.metrics(
            box.ctx, since=None if since is None else box.now - since, playbook=name
        )
        for m in found:
            figures = {
                "decisions": m["total"],
                "by_status": {k: v for k, v in m["decisions"].items() if v},
                "waiting_for_review": m["pending_reviews"],
                "reviewed": m["reviewed"],
                "success_rate": m["success_rate"],
                "override_rate": m["override_rate"],
                "median_time_to_action_seconds": m["median_time_to_action_seconds"],
                "tasks_open": m["tasks_open"],
                "tasks_done": m["tasks_done"],
            }
            facts.append({"playbook": m["playbook"], "mode": m["mode"], **figures})
            records.append(_metrics_record(m["playbook"], words, figures))
    else:
        assert since is not None
        report = metric_service.report(
            box.ctx,
            playbook=name,
            baseline=Baseline(text=period, period=Period(since, until)),
        )
        for m in report["playbooks"]:
            versus = m["vs_baseline"]
            if versus is None:
                figures = {"decisions": 0}
            else:
                base = versus["baseline"]
                figures = {
                    "decisions": base["total"],
                    "reviewed": base["reviewed"],
                    "success_rate": versus["success_rate"]["baseline"],
                    "override_rate": versus["override_rate"]["baseline"],
                    "median_time_to_action_seconds": versus["median_time_to_action_seconds"][
                        "baseline"
                    ],
                    "tasks_open": base["tasks_open"],
                    "tasks_done": base["tasks_done"],
                }
            facts.append({"playbook": m["playbook"], "mode": m["mode"], **figures})
            records.append(_metrics_record(m["playbook"], words, figures))
    return Found(
        records,
        {
            "period": words,
            "since": since.isoformat() if since else None,
            "until": until.isoformat(),
            "playbooks": facts,
        },
    )


def _metrics_record(playbook: str, words: str, figures: dict[str, Any]) -> ChatRecord:
    return _record(
        "metrics",
        f"metrics:{playbook}",
        f"{playbook}, {words}",
        figure_words(figures),
        f"/dashboard?playbook={quote(playbook, safe='')}",
    )


def figure_words(figures: dict[str, Any]) -> str:
    """`12 decisions, 3 waiting for review, 40% succeeded, 10% overridden`."""
    parts = [f"{figures.get('decisions', 0)} decisions"]
    if figures.get("waiting_for_review"):
        parts.append(f"{figures['waiting_for_review']} waiting for review")
    if figures.get("success_rate") is not None:
        parts.append(f"{figures['success_rate']:.0%} succeeded")
    if figures.get("override_rate") is not None:
        parts.append(f"{figures['override_rate']:.0%} of reviews overridden or rejected")
    if figures.get("median_time_to_action_seconds") is not None:
        parts.append(f"median time to action {_duration(figures['median_time_to_action_seconds'])}")
    if figures.get("tasks_open"):
        parts.append(f"{figures['tasks_open']} tasks open")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def documents(box: Toolbox, arguments: dict[str, Any]) -> Found:
    query = _text(arguments, "query", required=True)
    assert query is not None
    collection = _text(arguments, "collection")
    hits = document_service.search_passages(
        box.ctx, query, collection=collection, limit=_limit(arguments, 4)
    )
    # As a documents answer does (opsloop/knowledge/answers.py): nothing when the best passage
    # covers too little of the query, else the passages covering at least half as much.
    best = max((hit["coverage"] for hit in hits), default=0.0)
    if best < MIN_COVERAGE:
        hits = []
    hits = [hit for hit in hits if hit["coverage"] >= min(MIN_COVERAGE, best / 2)]
    records: list[ChatRecord] = []
    passages: list[dict[str, Any]] = []
    for hit in hits:
        ref = f"document:{hit['document_id']}#p{hit['ordinal']}"
        heading = hit["heading"]
        records.append(
            _record(
                "document",
                ref,
                hit["document_name"] + (f": {heading}" if heading else ""),
                _short(" ".join(hit["text"].split()), 200),
                hit["link"],
            )
        )
        passages.append(
            {"ref": ref, "document": hit["document_name"], "text": _short(hit["text"], 800)}
        )
    return Found(records, {"query": query, "passages": passages})


# --- the catalog -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[[Toolbox, dict[str, Any]], Found]

    def spec(self) -> dict[str, Any]:
        return function_tool(self.name, self.description, self.parameters)


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_STRING = {"type": "string"}
_LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_RECORDS}
_PLAYBOOK = {"type": "string", "description": "A playbook's name (see `playbooks`)."}

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "search_subjects",
            "Find customers, leads, orders, tickets … by key or a value they carry "
            "(`1042`, `order:1042`, `ana@example.com`): their profile, recent events and "
            "decisions.",
            _object({"query": _STRING}, ("query",)),
            search_subjects,
        ),
        Tool(
            "recent_decisions",
            "The newest decisions, optionally of one playbook, status "
            "(pending, approved, overridden, rejected, auto, shadow, failed) or subject.",
            _object(
                {"playbook": _PLAYBOOK, "status": _STRING, "subject": _STRING, "limit": _LIMIT}
            ),
            recent_decisions,
        ),
        Tool(
            "inbox",
            "Decisions waiting for a person's review, most urgent first, with how many wait "
            "per playbook.",
            _object({"playbook": _PLAYBOOK, "limit": _LIMIT}),
            inbox,
        ),
        Tool(
            "waiting_for_me",
            "What waits for the person asking: the review inbox (for reviewers) and their "
            "own open tasks.",
            _object({}),
            waiting_for_me,
        ),
        Tool(
            "needs_attention",
            "Subjects of a kind (lead, ticket, order …) a person should look at today: "
            "decisions waiting for review and open tasks due today or overdue.",
            _object({"kind": _STRING, "limit": _LIMIT}),
            needs_attention,
        ),
        Tool(
            "tasks",
            "Follow-up tasks: open (default) or done; only the asker's (`mine`); only overdue.",
            _object(
                {
                    "mine": {"type": "boolean"},
                    "overdue": {"type": "boolean"},
                    "status": {"type": "string", "enum": ["open", "done"]},
                    "limit": _LIMIT,
                }
            ),
            tasks,
        ),
        Tool(
            "metrics",
            "How playbooks are doing in a period: decisions, reviews waiting, success rate, "
            "override rate, time to action, tasks.",
            _object({"playbook": _PLAYBOOK, "period": {"type": "string", "enum": list(PERIODS)}}),
            metrics,
        ),
        Tool(
            "playbooks",
            "The active playbooks: name, mode and what they decide about.",
            _object({}),
            playbooks,
        ),
        Tool(
            "documents",
            "Passages of the business's documents (FAQ, policies, price lists) that match a query.",
            _object({"query": _STRING, "collection": _STRING, "limit": _LIMIT}, ("query",)),
            documents,
        ),
    )
}
"""Every tool the chat has. All of them read; none acts."""


def specs() -> list[dict[str, Any]]:
    """The tools in the OpenAI `tools` shape, for the model."""
    return [tool.spec() for tool in TOOLS.values()]

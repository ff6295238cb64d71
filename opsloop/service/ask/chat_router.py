"""The operations chat without a language model: the common questions recognized by their words
and patterns, each answered by one tool (opsloop/service/ask/chat_tools.py) in plain sentences.

| a question like                                   | tool                      |
| ------------------------------------------------- | ------------------------- |
| what is waiting for me?                           | `waiting_for_me`          |
| my tasks / tasks assigned to me                   | `tasks` (mine)            |
| which leads need attention today?                 | `needs_attention` (lead)  |
| how is support triage doing this month?           | `metrics`                 |
| what happened to order 1042? / tell me about X    | `search_subjects`         |
| overdue tasks / open tasks                        | `tasks`                   |
| what is in the inbox? / waiting for review        | `inbox`                   |
| recent decisions of lead qualification            | `recent_decisions`        |
| which playbooks are there?                        | `playbooks`               |
| anything else                                     | `documents`, else help    |
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from opsloop.service.ask.chat_tools import PERIOD_WORDS, Found, Toolbox, match_playbook
from opsloop.service.ask.chat_views import ChatRecord

EXAMPLES = (
    "What is waiting for me?",
    "Which leads need attention today?",
    "What happened to order 1042?",
    "How is support triage doing this month?",
    "My tasks",
    "Overdue tasks",
    "Recent decisions of lead qualification",
)
"""Questions the router answers without a model (the /ask page offers them)."""

KINDS = ("lead", "ticket", "order", "customer", "invoice", "account", "sku", "user", "deal")


@dataclass(frozen=True, slots=True)
class Routed:
    text: str
    citations: list[ChatRecord]


def answer(box: Toolbox, question: str) -> Routed:
    """Answer `question` with one tool, or say what can be asked."""
    q = " ".join(question.lower().split())
    for intent in INTENTS:
        routed = intent(box, q, question)
        if routed is not None:
            return routed
    return help_answer()


def help_answer(prefix: str = "I could not find an answer to that.") -> Routed:
    lines = "\n".join(f"- {example}" for example in EXAMPLES)
    return Routed(
        f"{prefix} I can answer questions about the ledger, such as:\n{lines}\n"
        "I read only; I never review, send or change anything.",
        [],
    )


def _listing(intro: str, found: Found, empty: str) -> Routed:
    if not found.records:
        return Routed(empty, [])
    lines = "\n".join(f"- {r['title']}: {r['detail']} [{r['ref']}]" for r in found.records)
    return Routed(f"{intro}\n{lines}", list(found.records))


# --- intents ---------------------------------------------------------------------------------

_WAITING = re.compile(
    r"\b(waiting|wait|waits)\b.*\b(me|my|i)\b|\bfor me\b|\bmy (inbox|queue|work|plate)\b"
    r"|what should i do|what do i have"
)
_MY_TASKS = re.compile(r"\bmy tasks?\b|\btasks? (assigned )?(to|for) me\b")
_ATTENTION = re.compile(
    r"attention|follow[- ]?up|\bneed(s)? (a )?(call|reply|look|action)|\burgent\b|\btoday\b"
)
_METRICS = re.compile(
    r"\bhow (is|are|was|were|did|does|do)\b.*\b(doing|going|performing|perform|do)\b"
    r"|\bhow'?s\b|\bmetrics\b|\bperformance\b|\bstats\b|\bsuccess rate\b|\boverride rate\b"
)
_SUBJECT = re.compile(
    r"what happened (to|with)\s+(?P<a>.+)|status of\s+(?P<b>.+)|history of\s+(?P<c>.+)"
    r"|tell me about\s+(?P<d>.+)|where is\s+(?P<e>.+)|look up\s+(?P<f>.+)|find\s+(?P<g>.+)"
)
_KIND_KEY = re.compile(r"\b(?P<kind>[a-z_]+)\s*(?:#|no\.?|number)?\s*(?P<key>\d[\w\-]*)\b")
_TASKS = re.compile(r"\btasks?\b|\boverdue\b")
_INBOX = re.compile(r"\binbox\b|waiting for (a )?review|pending review|\bto review\b")
_DECISIONS = re.compile(r"\bdecisions?\b|\bdecided\b")
_PLAYBOOKS = re.compile(r"\bplaybooks?\b")


def _waiting(box: Toolbox, q: str, question: str) -> Routed | None:
    if not _WAITING.search(q) or _MY_TASKS.search(q):
        return None
    found = box.run("waiting_for_me", {})
    inbox = found.facts.get("inbox", {})
    total = int(inbox.get("total_waiting", 0))
    lines: list[str] = []
    if box.principal.may("review"):
        lines.append(
            f"{total} decision{'s' if total != 1 else ''} wait for review in the inbox (/inbox)."
        )
    elif total:
        lines.append(
            f"{total} decision{'s' if total != 1 else ''} wait for a reviewer; "
            "your role reads them but does not review."
        )
    tasks = found.facts.get("tasks", {}).get("open")
    if tasks is None:
        lines.append("An API token has no tasks of its own.")
    else:
        lines.append(
            f"You have {len(tasks)} open task{'s' if len(tasks) != 1 else ''}"
            f"{':' if tasks else '.'}"
        )
    listed = "\n".join(f"- {r['title']}: {r['detail']} [{r['ref']}]" for r in found.records)
    text = "\n".join(lines) + (f"\n{listed}" if listed else "")
    if not found.records and not total:
        text = "Nothing is waiting for you." + (
            "" if tasks is not None else " An API token has no tasks of its own."
        )
    return Routed(text, list(found.records))


def _my_tasks(box: Toolbox, q: str, question: str) -> Routed | None:
    if not _MY_TASKS.search(q):
        return None
    found = box.run("tasks", {"mine": True, "limit": 10})
    if box.principal.kind != "user":
        return Routed("An API token has no tasks of its own; ask as a person.", [])
    return _listing("Your open tasks:", found, "You have no open tasks.")


def _kind_in(box: Toolbox, q: str) -> str | None:
    words = set(re.findall(r"[a-z_]+", q))
    kinds = set(KINDS) | {p["subject"] for p in box.playbooks()}
    for kind in sorted(kinds):
        if kind in words or kind + "s" in words:
            return kind
    return None


def _attention(box: Toolbox, q: str, question: str) -> Routed | None:
    if not _ATTENTION.search(q) or _METRICS.search(q):
        return None
    kind = _kind_in(box, q)
    found = box.run("needs_attention", {"kind": kind} if kind else {})
    what = f"{kind}s" if kind else "records"
    intro = (
        f"{found.facts.get('waiting_for_review', 0)} {what} wait for review and "
        f"{found.facts.get('tasks_due_today_or_overdue', 0)} tasks on them are due today "
        "or overdue:"
    )
    return _listing(intro, found, f"No {what} need attention today.")


def _period(q: str) -> str:
    for words, period in (
        ("last month", "last_month"),
        ("last week", "last_week"),
        ("this week", "this_week"),
        ("today", "today"),
        ("30 days", "last_30_days"),
        ("7 days", "last_7_days"),
        ("all time", "all_time"),
        ("ever", "all_time"),
    ):
        if words in q:
            return period
    return "this_month"


def _metrics(box: Toolbox, q: str, question: str) -> Routed | None:
    if not _METRICS.search(q):
        return None
    playbooks = box.playbooks()
    name = match_playbook(q, playbooks)
    if name is None:
        # `how is support triage doing`: the words between the verb and `doing`.
        inner = re.search(r"\bhow (?:is|are|was|were|'s)\s+(.+?)\s+(?:doing|going|perform)", q)
        if inner:
            name = match_playbook(inner.group(1), playbooks)
    period = _period(q)
    arguments = {"period": period} | ({"playbook": name} if name else {})
    found = box.run("metrics", arguments)
    words = PERIOD_WORDS[period]
    if not found.records:
        return Routed(f"No playbook has decided anything {words}.", [])
    lines = "\n".join(f"- {r['title']}: {r['detail']} [{r['ref']}]" for r in found.records)
    return Routed(f"How it went {words}:\n{lines}", list(found.records))


def _subject(box: Toolbox, q: str, question: str) -> Routed | None:
    asked = _SUBJECT.search(q)
    keyed = next((m for m in _KIND_KEY.finditer(q) if m.group("kind") in KINDS), None)
    if asked is None and keyed is None:
        return None
    if keyed is not None:
        query = f"{keyed.group('kind')}:{keyed.group('key')}"
    else:
        assert asked is not None
        query = next(value for value in asked.groupdict().values() if value)
        query = query.strip(" ?.!").removeprefix("the ").strip()
    found = box.run("search_subjects", {"query": query})
    subjects = found.facts.get("subjects", [])
    if not found.records:
        return Routed(f"I found nothing about {query} in the ledger.", [])
    if subjects:
        first = subjects[0]
        ref = first["ref"]
        events = ", ".join(
            f"{e['type']} ({e['occurred_at'][:16].replace('T', ' ')})"
            for e in reversed(first["events"])
        )
        decisions = "; ".join(
            f"{d['playbook']} chose {d['final_choice'] or d['choice'] or 'nothing'}, "
            f"{d['status']} [{d['ref']}]"
            for d in first["decisions"]
        )
        text = f"{ref.removeprefix('subject:')} [{ref}]"
        text += f"\nEvents, oldest first: {events or 'none'}."
        text += f"\nDecisions: {decisions or 'none'}."
    else:
        text = f"No subject is called {query}; these events mention it:"
    lines = "\n".join(
        f"- {r['title']}: {r['detail']} [{r['ref']}]"
        for r in found.records
        if r["kind"] == "event" and r["ref"] not in text
    )
    return Routed(text + (f"\n{lines}" if lines else ""), list(found.records))


def _tasks(box: Toolbox, q: str, question: str) -> Routed | None:
    if not _TASKS.search(q):
        return None
    overdue = "overdue" in q
    status = "done" if re.search(r"\b(done|finished|completed)\b", q) else "open"
    found = box.run("tasks", {"overdue": overdue, "status": status, "limit": 10})
    label = "Overdue tasks" if overdue else f"{status.capitalize()} tasks"
    return _listing(f"{label}:", found, f"No {label.lower()}.")


def _inbox(box: Toolbox, q: str, question: str) -> Routed | None:
    if not _INBOX.search(q):
        return None
    name = match_playbook(q, box.playbooks())
    found = box.run("inbox", {"limit": 10} | ({"playbook": name} if name else {}))
    total = found.facts.get("total_waiting", 0)
    return _listing(
        f"{total} decisions wait for review (/inbox), most urgent first:",
        found,
        "Nothing waits for review.",
    )


def _decisions(box: Toolbox, q: str, question: str) -> Routed | None:
    if not _DECISIONS.search(q):
        return None
    name = match_playbook(q, box.playbooks())
    found = box.run("recent_decisions", {"limit": 10} | ({"playbook": name} if name else {}))
    return _listing(
        f"The newest decisions{f' of {name}' if name else ''}:", found, "No decisions yet."
    )


def _playbooks(box: Toolbox, q: str, question: str) -> Routed | None:
    if not _PLAYBOOKS.search(q):
        return None
    found = box.run("playbooks", {})
    return _listing("The active playbooks:", found, "No playbook is active yet.")


def _documents(box: Toolbox, q: str, question: str) -> Routed | None:
    found = box.run("documents", {"query": question, "limit": 3})
    if not found.records:
        return None
    best = found.records[0]
    text = f"From {best['title']}: {best['detail']} [{best['ref']}]"
    others = "\n".join(f"- {r['title']} [{r['ref']}]" for r in found.records[1:])
    return Routed(text + (f"\nSee also:\n{others}" if others else ""), list(found.records))


INTENTS: tuple[Callable[[Toolbox, str, str], Routed | None], ...] = (
    _waiting,
    _my_tasks,
    _attention,
    _metrics,
    _subject,
    _tasks,
    _inbox,
    _decisions,
    _playbooks,
    _documents,
)

"""Plays generated guardrail scenarios (tests/guardrail_scenarios.py) on a real OpsLoop and
checks, after every step and at the end of each scenario, that nothing sensitive was carried
out without a person's approval given before it.

Two independent views are checked:

* the outside world: what the HTTP sink and the SMTP sink received and the tasks people see
  (after every step), and the traits set on profiles (at the end). Every delivered action names its playbook version, option,
  action, event and decision (see `marker`), so the test's own model of the scenario says
  whether it was sensitive, and its own log of the verdicts people gave says whether one of
  them said yes to that option of that decision first;
* the ledger: every delivered action row, its decision and the reviews stored for it, and
  that the approving review is a person's and older than the action's first attempt.

One service serves every scenario of a test: each scenario gets fresh playbook names, event
types and subjects, so scenarios do not see one another's decisions.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import seed as fixed_seed
from sqlalchemy import func, select

from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import Conflict, InvalidInput
from opsloop.service import OpsLoop
from opsloop.store import schema
from tests.conftest import Clock, grant_auto
from tests.guardrail_scenarios import (
    BULK_PAGE,
    OPTION_NAMES,
    PEOPLE,
    SEPARATOR,
    Advance,
    Cancel,
    ChangeMode,
    EventSpec,
    FailNext,
    GrantAuto,
    Ingest,
    Mode,
    Operation,
    PlaybookSpec,
    Reapply,
    Retry,
    Review,
    ReviewAny,
    RunJobs,
    Scenario,
    Verdict,
    event_type,
    is_sensitive,
    playbook_yaml,
    scenarios,
    with_option,
)
from tests.sinks import HttpSink, SmtpSink

ACTED = frozenset({"approved", "overridden", "auto"})
APPROVED = frozenset({"approved", "overridden"})


class GuardrailViolation(AssertionError):
    """Something sensitive was carried out without a person's prior approval."""


@dataclass(frozen=True)
class Said:
    """A verdict a person gave, as the test logged it when the service accepted it."""

    decision_id: int
    key: str
    verdict: Verdict
    option: str | None
    """The option the person said yes to: the playbook's choice (approve) or theirs (override)."""
    step: int
    after_the_fact: bool
    """A sampled `auto` decision reviewed after its actions ran: a second opinion, not a yes."""


class World:
    def __init__(self, ops: OpsLoop, http: HttpSink, smtp: SmtpSink, clock: Clock) -> None:
        self.ops = ops
        self.http = http
        self.smtp = smtp
        self.clock = clock
        self.example = 0
        self.step = 0
        self.counts: Counter[str] = Counter()
        # The test's model: every playbook version it applied, every event it sent, every
        # verdict a person gave.
        self.versions: dict[tuple[str, str], PlaybookSpec] = {}
        self.vtag_of: dict[tuple[str, int], str] = {}
        self.events: dict[str, EventSpec] = {}
        self.said: dict[int, list[Said]] = defaultdict(list)
        # What has been looked at already.
        self.http_seen = 0
        self.mail_seen = 0
        self.task_seen = 0
        self.keys_seen: set[str] = set()
        self.ran: Counter[tuple[int, str, int]] = Counter()
        self.ledger_checked: set[int] = set()
        self.ledger_delivered: dict[tuple[int, str, int], int] = {}
        self.snapshot: list[dict[str, Any]] = []
        # The scenario being played: its playbooks as last applied, how many subjects so far.
        self.current: dict[str, PlaybookSpec] = {}
        self.subjects = 0

    # --- one scenario --------------------------------------------------------------------

    def play(self, scenario: Scenario) -> None:
        self.example += 1
        self.counts["scenarios"] += 1
        names = [f"g{self.example}p{i}" for i in range(len(scenario.playbooks))]
        self.current, self.subjects, self.snapshot = {}, 0, []
        self._forget_earlier_scenarios()
        for name, spec in zip(names, scenario.playbooks, strict=True):
            self._apply(name, spec, spec.mode)
            if spec.mode == "auto":
                self._grant(name)
        try:
            try:
                for operation in scenario.operations:
                    self.step += 1
                    self._do(operation, names)
                    self.check_step(names)
            finally:
                self._settle()
            self.check_step(names)
            self.census(names)
        except AssertionError as exc:
            # The scenario goes into the message: the reporter that prints Hypothesis's
            # failing example under pytest may show it empty.
            raise type(exc)(f"{exc}\n\nin scenario {self.example}: {scenario!r}") from None

    def _forget_earlier_scenarios(self) -> None:
        """A scenario that failed stopped checking at its first violation; what else it sent
        is its own, not the next scenario's (which Hypothesis would otherwise shrink towards).
        A scenario that passed has had everything it sent checked already."""
        self.http_seen = len(self.http.requests)
        self.mail_seen = len(self.smtp.messages)
        self._new_tasks()

    def _apply(self, name: str, spec: PlaybookSpec, mode: Mode) -> None:
        vtag = f"v{sum(1 for n, _ in self.versions if n == name) + 1}"  # v1, v2 … per playbook
        text = playbook_yaml(
            spec, name=name, vtag=vtag, example=self.example, sink_url=self.http.url, mode=mode
        )
        applied = self.ops.decide.apply_playbook(text, f"{name}.yaml", actor="ana")
        self.versions[(name, vtag)] = spec
        self.vtag_of[(name, applied.version)] = vtag
        self.current[name] = spec

    def _grant(self, name: str) -> None:
        grant_auto(self.ops.db, name)
        self.ops.ctx.catalog.invalidate()  # grant_auto writes the row; the cache must see it

    def _do(self, operation: Operation, names: Sequence[str]) -> None:
        self.counts[f"op {type(operation).__name__}"] += 1
        match operation:
            case Ingest(playbook, events, copies):
                trigger = self.current[names[playbook % len(names)]].trigger
                self._ingest(trigger, events * copies)
            case RunJobs():
                self.ops.run_jobs()
            case Advance(seconds):
                self.clock.advance(seconds=seconds)
            case FailNext(count, status):
                self.http.fail_next, self.http.fail_status = count, status
            case Review(playbook, pick, verdict, alternative, bulk, stride, reviewer):
                name = names[playbook % len(names)]
                items = self.ops.review.inbox(playbook=name, limit=500)["items"]
                if not items:
                    return
                start = pick % len(items)
                chosen = items[start::stride][:BULK_PAGE] if bulk else [items[start]]
                if bulk:
                    self.counts["bulk reviews"] += 1
                for item in chosen:
                    # The options to override with, and one that does not exist.
                    options = [*item["alternatives"], "nope"]
                    self._review(
                        item["id"],
                        item["choice"],
                        item["subject"],
                        verdict,
                        options[alternative % len(options)],
                        reviewer,
                    )
            case ReviewAny(playbook, pick, verdict, alternative):
                name = names[playbook % len(names)]
                found = self.ops.decide.list_decisions(playbook=name, limit=500)
                if not found:
                    return
                decision = found[pick % len(found)]
                spec = self.versions[(name, self.vtag_of[(name, decision["playbook_version"])])]
                # Any option, even the one chosen (refused: approve it instead), or none.
                options = [*spec.option_names(), "nope"]
                self._review(
                    decision["id"],
                    decision["choice"],
                    decision["subject"],
                    verdict,
                    options[alternative % len(options)],
                    "ben",
                )
            case Retry(pick):
                dead = [a for a in self.snapshot if a["status"] == "dead"]
                if dead:
                    try:
                        self.ops.deliver.retry_action(dead[pick % len(dead)]["id"], actor="ana")
                        self.counts["retries"] += 1
                    except Conflict:
                        self.counts["refused retries"] += 1
            case Cancel(pick):
                waiting = [a for a in self.snapshot if a["status"] in ("pending", "retrying")]
                if waiting:
                    try:
                        self.ops.deliver.cancel_action(
                            waiting[pick % len(waiting)]["id"], actor="ana"
                        )
                        self.counts["cancels"] += 1
                    except Conflict:
                        self.counts["refused cancels"] += 1
            case ChangeMode(playbook, mode):
                try:
                    self.ops.review.change_mode(
                        names[playbook % len(names)], mode, actor="ana", reason="generated"
                    )
                except Conflict:
                    self.counts["refused promotions"] += 1
            case GrantAuto(playbook):
                self._grant(names[playbook % len(names)])
            case Reapply(playbook, option, actions, mode):
                name = names[playbook % len(names)]
                self._apply(name, with_option(self.current[name], option, actions), mode)
            case _:
                raise AssertionError(f"unknown operation {operation!r}")

    def _ingest(self, trigger: int, events: Sequence[EventSpec]) -> None:
        body = []
        for event in events:
            key = f"g{self.example}-{self.subjects}"
            subject = f"customer:{key}"
            self.subjects += 1
            self.events[key] = event
            payload: dict[str, Any] = {"key": key}
            if event.route is not None:
                payload["route"] = OPTION_NAMES[event.route]
            if event.n is not None:
                payload["n"] = event.n
            if event.tag is not None:
                payload["tag"] = event.tag
            sent: dict[str, Any] = {
                "type": event_type(self.example, trigger),
                "subject": subject,
                "payload": payload,
            }
            if event.level is not None:
                sent["traits"] = {"level": event.level}
            body.append(sent)
        self.ops.ingest.body(json.dumps(body).encode())
        self.counts["events"] += len(body)

    def _review(
        self,
        decision_id: int,
        choice: str | None,
        subject: str,
        verdict: Verdict,
        option: str,
        reviewer: str,
    ) -> None:
        request = ReviewRequest(
            verdict=verdict,
            reviewer=reviewer,
            option=option if verdict == "override" else None,
            reason=None if verdict == "approve" else "generated by the property test",
        )
        try:
            settled = self.ops.review.verdict(decision_id, request)
        except (Conflict, InvalidInput) as exc:
            self.counts[f"reviews refused ({type(exc).__name__})"] += 1
            return
        self.counts[f"{verdict} accepted"] += 1
        yes_to = {"approve": choice, "override": option, "reject": None}[verdict]
        after = settled.status == "auto"
        if after:
            self.counts["reviews after the fact"] += 1
        if not after and settled.final_choice != yes_to:
            raise GuardrailViolation(
                f"decision {decision_id}: a person said {verdict} to {yes_to!r}, the ledger "
                f"records {settled.final_choice!r} ({settled.status})"
            )
        self.said[decision_id].append(
            Said(
                decision_id,
                subject.removeprefix("customer:"),
                verdict,
                yes_to,
                self.step,
                after_the_fact=after,
            )
        )

    def _settle(self) -> None:
        """Let every delivery that can still happen happen: the sink stops failing, the clock
        passes every backoff."""
        self.http.fail_next = 0
        for _ in range(2):
            self.clock.advance(seconds=5)
            self.ops.run_jobs()

    # --- the property --------------------------------------------------------------------

    def check_step(self, names: Sequence[str]) -> None:
        self._check_outside()
        self._check_ledger(names)

    def _check_outside(self) -> None:
        for request in self.http.requests[self.http_seen :]:
            self.http_seen += 1
            parts = request.path.strip("/").split("/")
            self._outside(parts, request.headers.get("idempotency-key"), f"POST {request.path}")
        for mail in self.smtp.messages[self.mail_seen :]:
            self.mail_seen += 1
            subject = str(mail.message["Subject"])
            key = str(mail.message["X-OpsLoop-Idempotency-Key"])
            self._outside(subject.split(SEPARATOR), key, f"email {subject!r}")
        for task in self._new_tasks():
            self._outside(
                task["title"].split(SEPARATOR),
                f"task:{task['action_id']}",
                f"task {task['title']!r}",
            )

    def _new_tasks(self) -> list[dict[str, Any]]:
        """Tasks made since the last look, oldest first (the list is newest first)."""
        limit = 50
        while True:
            tasks = self.ops.deliver.list_tasks(limit=limit)
            fresh = [t for t in tasks if t["id"] > self.task_seen]
            if len(fresh) < len(tasks) or len(tasks) < limit:
                self.task_seen = max([self.task_seen, *(t["id"] for t in fresh)])
                return sorted(fresh, key=lambda t: t["id"])
            limit *= 4

    def _outside(self, parts: list[str], idempotency_key: str | None, what: str) -> None:
        """One thing the outside world received; `parts` is its marker."""
        playbook, vtag, option, position_text, key, decision_text = parts
        position, decision_id = int(position_text), int(decision_text)
        self.counts["deliveries seen outside"] += 1
        if idempotency_key is not None:
            assert idempotency_key not in self.keys_seen, f"{what} arrived twice"
            self.keys_seen.add(idempotency_key)
        self.ran[(decision_id, option, position)] += 1
        assert self.ran[(decision_id, option, position)] == 1, f"{what} ran twice"
        spec = self.versions[(playbook, vtag)]
        if not is_sensitive(spec, option, position, self.events[key]):
            return
        self.counts["sensitive deliveries seen outside"] += 1
        yes = [
            said
            for said in self.said.get(decision_id, [])
            if said.verdict in ("approve", "override")
            and not said.after_the_fact
            and said.option == option
            and said.key == key
            and said.step <= self.step
        ]
        if not yes:
            given = self.said.get(decision_id, [])
            raise GuardrailViolation(
                f"{what}: action {position} ({spec.action(option, position).kind}) of option "
                f"{option} of {playbook} {vtag} is sensitive, and no person said yes to it for "
                f"decision {decision_id} (verdicts given: {given})"
            )

    def _check_ledger(self, names: Sequence[str]) -> None:
        rows = example_actions(self.ops, names)
        self.snapshot = rows
        fresh = [
            r for r in rows if r["status"] == "delivered" and r["id"] not in self.ledger_checked
        ]
        if not fresh:
            return
        reviews = reviews_of(self.ops, {r["decision_id"] for r in fresh})
        first_attempts = first_attempt_at(self.ops, [r["id"] for r in fresh])
        for row in fresh:
            self.ledger_checked.add(row["id"])
            self._ledger_delivery(row, reviews[row["decision_id"]], first_attempts.get(row["id"]))

    def _ledger_delivery(
        self, row: dict[str, Any], reviews: list[dict[str, Any]], first_attempt: datetime | None
    ) -> None:
        what = f"action {row['id']} ({row['kind']}) of decision {row['decision_id']}"
        self.counts["deliveries in the ledger"] += 1
        option, decision_status = row["final_choice"], row["decision_status"]
        if option is None or decision_status not in ACTED:
            raise GuardrailViolation(f"{what} was delivered, yet its decision is {decision_status}")
        self.ledger_delivered[(row["decision_id"], option, row["position"])] = row["id"]
        spec = self.versions[(row["playbook"], self.vtag_of[(row["playbook"], row["version"])])]
        action = spec.action(option, row["position"])
        assert action.kind == row["kind"], f"{what} is not action {row['position']} of {option}"
        key = row["subject"].removeprefix("customer:")
        sensitive = (
            is_sensitive(spec, option, row["position"], self.events[key])
            or row["guarded"]
            or row["needs_approval"]
        )
        if not sensitive:
            return
        self.counts["ledger deliveries that needed a yes"] += 1
        if decision_status not in APPROVED:
            raise GuardrailViolation(
                f"{what} is sensitive and ran in a decision that is {decision_status}"
            )
        assert first_attempt is not None, f"{what} is delivered with no attempt logged"
        yes = [
            r
            for r in reviews
            if r["reviewer"] in PEOPLE
            and (
                (r["verdict"] == "approve" and row["choice"] == option)
                or (r["verdict"] == "override" and r["option"] == option)
            )
            and r["created_at"] <= row["created_at"]
            and r["created_at"] <= first_attempt
        ]
        if not yes:
            raise GuardrailViolation(
                f"{what} is sensitive; the ledger holds no person's approval of {option} before "
                f"its first attempt at {first_attempt} (reviews: {reviews})"
            )
        mine = [
            s
            for s in self.said.get(row["decision_id"], [])
            if s.option == option and not s.after_the_fact and s.verdict != "reject"
        ]
        if not mine:
            raise GuardrailViolation(
                f"{what} is sensitive; the ledger says approved, yet no person was asked"
            )

    # --- the count -----------------------------------------------------------------------

    def census(self, names: Sequence[str]) -> None:
        """Count every action case of this scenario: each action of each option a decision
        chose or a person chose instead, sensitive or not, delivered or held back. Traits set
        by `update_traits` are read here from the profiles, as the outside world sees them."""
        for subject, traits in example_traits(self.ops, self.example):
            for name, value in (traits or {}).items():
                if name.startswith("guard" + SEPARATOR):
                    marker = name.split(SEPARATOR)[1:] + str(value).split(SEPARATOR)
                    self._outside(marker, None, f"trait {name!r} of {subject}")
        for decision in example_decisions(self.ops, names):
            self.counts["decisions"] += 1
            self.counts[f"decisions {decision['status']}"] += 1
            self.counts[f"decisions made in {decision['mode']}"] += 1
            if decision["status"] == "error":
                continue
            spec = self.versions[
                (decision["playbook"], self.vtag_of[(decision["playbook"], decision["version"])])
            ]
            event = self.events[decision["subject"].removeprefix("customer:")]
            involved = {decision["choice"], decision["final_choice"]} - {None}
            for option in sorted(involved):
                for position in range(len(spec.options[OPTION_NAMES.index(option)].actions)):
                    case = (decision["id"], option, position)
                    self.counts["action cases"] += 1
                    ran = case in self.ran or case in self.ledger_delivered
                    if is_sensitive(spec, option, position, event):
                        self.counts["sensitive cases"] += 1
                        if ran:
                            self.counts["sensitive cases run after approval"] += 1
                        else:
                            self.counts["sensitive cases held"] += 1
                            self.counts[f"sensitive cases held in {decision['mode']}"] += 1
                    elif ran:
                        self.counts["plain cases run"] += 1


def explore(world: World, profile: settings, *, seed: int) -> None:
    """Play `profile.max_examples` generated scenarios in `world`, from `seed`. Hypothesis
    shrinks a failing scenario to a small one and prints it."""

    @profile
    @fixed_seed(seed)
    @given(scenario=scenarios())
    def check(scenario: Scenario) -> None:
        world.play(scenario)

    check()


# --- ledger reads (read-only; the test's view of the stored rows) --------------------------


def example_actions(ops: OpsLoop, names: Sequence[str]) -> list[dict[str, Any]]:
    a, d, p, v = schema.actions, schema.decisions, schema.playbooks, schema.playbook_versions
    query = (
        select(
            a.c.id,
            a.c.decision_id,
            a.c.position,
            a.c.kind,
            a.c.guarded,
            a.c.status,
            a.c.created_at,
            d.c.status.label("decision_status"),
            d.c.choice,
            d.c.final_choice,
            d.c.needs_approval,
            d.c.subject,
            p.c.name.label("playbook"),
            v.c.version,
        )
        .select_from(
            a.join(d, a.c.decision_id == d.c.id)
            .join(p, d.c.playbook_id == p.c.id)
            .join(v, d.c.playbook_version_id == v.c.id)
        )
        .where(p.c.name.in_(list(names)))
        .order_by(a.c.id)
    )
    with ops.db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def example_decisions(ops: OpsLoop, names: Sequence[str]) -> list[dict[str, Any]]:
    d, p, v = schema.decisions, schema.playbooks, schema.playbook_versions
    query = (
        select(
            d.c.id,
            d.c.mode,
            d.c.status,
            d.c.choice,
            d.c.final_choice,
            d.c.subject,
            p.c.name.label("playbook"),
            v.c.version,
        )
        .select_from(
            d.join(p, d.c.playbook_id == p.c.id).join(v, d.c.playbook_version_id == v.c.id)
        )
        .where(p.c.name.in_(list(names)))
    )
    with ops.db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def example_traits(ops: OpsLoop, example: int) -> list[tuple[str, dict[str, Any]]]:
    """Every profile of the scenario's subjects with its traits, in one read."""
    e = schema.entities
    query = select(e.c.subject, e.c.traits).where(e.c.subject.like(f"customer:g{example}-%"))
    with ops.db.read() as conn:
        return [(row.subject, row.traits) for row in conn.execute(query)]


def reviews_of(ops: OpsLoop, decision_ids: set[int]) -> dict[int, list[dict[str, Any]]]:
    r = schema.reviews
    query = select(r.c.decision_id, r.c.verdict, r.c.option, r.c.reviewer, r.c.created_at).where(
        r.c.decision_id.in_(sorted(decision_ids))
    )
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    with ops.db.read() as conn:
        for row in conn.execute(query):
            found[row.decision_id].append(dict(row._mapping))
    return found


def first_attempt_at(ops: OpsLoop, action_ids: list[int]) -> dict[int, datetime]:
    t = schema.action_attempts
    query = (
        select(t.c.action_id, func.min(t.c.started_at))
        .where(t.c.action_id.in_(action_ids))
        .group_by(t.c.action_id)
    )
    with ops.db.read() as conn:
        return {row[0]: row[1] for row in conn.execute(query)}

"""What the guardrail property test generates: playbooks (options, actions of every kind,
`sensitive` marks, guardrails, rules, modes, autonomy), events that hit their rules and
guardrails, and the operations a business runs on them (ingest, run jobs, single and bulk
reviews, overrides, retries, cancels, mode changes, a changed option re-applied, time passing).

OpsLoop has no bulk-review call (nor schedules, yet): a bulk review here is what a reviewer
does with a page of the inbox, the same verdict on each decision in turn through the same
`review` the API and the inbox pages call.

It also holds the test's own oracle of what is sensitive, written from the promise in
DESIGN.md rather than imported from the code under test: money and deletions by kind, anything
marked `sensitive`, and any action of a decision a playbook guardrail holds (a guardrail that
cannot be evaluated holds too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Literal

from hypothesis import strategies as st

# Every action kind the product knows, and which of them move money or destroy data. The test
# module checks this list against opsloop.core.playbooks.ACTION_KINDS, so a new kind cannot
# arrive without someone deciding here whether it is sensitive.
HTTP_KINDS = ("webhook", "refund", "payment", "discount", "delete", "notify")
MAIL_KINDS = ("email",)
LOCAL_KINDS = ("task", "update_traits")
KINDS = (*HTTP_KINDS, *MAIL_KINDS, *LOCAL_KINDS)
MONEY_OR_DELETION = frozenset({"refund", "payment", "discount", "delete"})

OPTION_NAMES = ("o0", "o1", "o2", "o3")
PEOPLE = ("ana", "ben")
"""The reviewers. A review by anyone else (the system, a playbook) is no person's approval."""
BULK_PAGE = 12
"""How many inbox decisions one bulk review covers at most."""

Mode = Literal["shadow", "recommend", "auto"]
Verdict = Literal["approve", "override", "reject"]


@dataclass(frozen=True)
class ActionSpec:
    kind: str
    sensitive: bool


@dataclass(frozen=True)
class OptionSpec:
    actions: tuple[ActionSpec, ...]


@dataclass(frozen=True)
class RuleSpec:
    """`route`: event.payload.route == "o<k>"; `amount`: event.payload.n >= threshold (an
    error when n is missing or not a number, which the product treats as no match)."""

    test: Literal["route", "amount"]
    option: int
    threshold: int


@dataclass(frozen=True)
class GuardrailSpec:
    """`amount`: event.payload.n > threshold; `tag`: event.payload.tag == "vip";
    `level`: the `level` trait feature >= threshold."""

    test: Literal["amount", "tag", "level"]
    threshold: int


@dataclass(frozen=True)
class Autonomy:
    target: float
    min_reviews: int
    sample: float


@dataclass(frozen=True)
class PlaybookSpec:
    options: tuple[OptionSpec, ...]
    rules: tuple[RuleSpec, ...]
    otherwise: int
    guardrails: tuple[GuardrailSpec, ...]
    mode: Mode
    trigger: int
    autonomy: Autonomy

    def option_names(self) -> tuple[str, ...]:
        return OPTION_NAMES[: len(self.options)]

    def action(self, option: str, position: int) -> ActionSpec:
        return self.options[OPTION_NAMES.index(option)].actions[position]


Value = int | str | None


@dataclass(frozen=True)
class EventSpec:
    route: int | None
    n: Value
    """An amount, missing (None), or of the wrong type ("x")."""
    tag: str | None
    level: Value
    """The `level` trait sent with the event: a number, not sent (None), or "high"."""


# --- operations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingest:
    """One batch of the event type `playbook` listens to (others may listen to it too): the
    `events`, sent `copies` times over, each copy about fresh subjects (many decisions for
    little generation and shrinking work)."""

    playbook: int
    events: tuple[EventSpec, ...]
    copies: int


@dataclass(frozen=True)
class RunJobs:
    pass


@dataclass(frozen=True)
class Advance:
    seconds: float


@dataclass(frozen=True)
class FailNext:
    """The HTTP sink refuses the next `count` requests with `status` (5xx: retried; 4xx:
    dead-lettered at once)."""

    count: int
    status: int


@dataclass(frozen=True)
class Review:
    """A person reviews waiting decisions from the inbox: one (`bulk` False, the `pick`-th) or
    every `stride`-th from `pick` on with the same verdict, as a bulk review of a page of the
    inbox does (at most BULK_PAGE)."""

    playbook: int
    pick: int
    verdict: Verdict
    alternative: int
    bulk: bool
    stride: int
    reviewer: str


@dataclass(frozen=True)
class ReviewAny:
    """A person reviews any decision of the playbook, whatever its status (a stale page, a
    repeated click, a decision logged in shadow mode): refusals are expected."""

    playbook: int
    pick: int
    verdict: Verdict
    alternative: int


@dataclass(frozen=True)
class Retry:
    pick: int


@dataclass(frozen=True)
class Cancel:
    pick: int


@dataclass(frozen=True)
class ChangeMode:
    playbook: int
    mode: Mode


@dataclass(frozen=True)
class GrantAuto:
    """The playbook is put in `auto` as if it had earned it (tests/conftest.py grant_auto)."""

    playbook: int


@dataclass(frozen=True)
class Reapply:
    """A new version of the playbook with one option's actions changed, its file asking for
    `mode` (a file may ask for more caution; `auto` in a file is never granted)."""

    playbook: int
    option: int
    actions: OptionSpec
    mode: Mode


Operation = (
    Ingest
    | RunJobs
    | Advance
    | FailNext
    | Review
    | ReviewAny
    | Retry
    | Cancel
    | ChangeMode
    | GrantAuto
    | Reapply
)


@dataclass(frozen=True)
class Scenario:
    playbooks: tuple[PlaybookSpec, ...]
    operations: tuple[Operation, ...]


# --- the oracle ----------------------------------------------------------------------------


def guardrail_holds(guardrail: GuardrailSpec, event: EventSpec) -> bool:
    """Whether the guardrail holds a decision on this event. A condition that cannot be
    evaluated (a missing amount, a value of the wrong type) holds: fail safe, not open."""
    if guardrail.test == "tag":
        return event.tag == "vip"
    if guardrail.test == "amount":
        return not isinstance(event.n, int) or event.n > guardrail.threshold
    level = 0 if event.level is None else event.level  # the feature's default
    return not isinstance(level, int) or level >= guardrail.threshold


def is_sensitive(playbook: PlaybookSpec, option: str, position: int, event: EventSpec) -> bool:
    action = playbook.action(option, position)
    return (
        action.kind in MONEY_OR_DELETION
        or action.sensitive
        or any(guardrail_holds(g, event) for g in playbook.guardrails)
    )


# --- playbook text -------------------------------------------------------------------------

SEPARATOR = "|"


def marker(playbook: str, vtag: str, option: str, position: int) -> str:
    """What a delivered action carries so the outside world can say which playbook version,
    option, action, event and decision it came from: `pb|v|option|position|key|decision`."""
    return SEPARATOR.join(
        (playbook, vtag, option, str(position), "{{ event.payload.key }}", "{{ decision.id }}")
    )


def event_type(example: int, trigger: int) -> str:
    return f"g{example}.t{trigger}"


def playbook_yaml(
    spec: PlaybookSpec, *, name: str, vtag: str, example: int, sink_url: str, mode: Mode
) -> str:
    q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
    lines = [
        f"name: {name}",
        "subject: customer",
        f"mode: {mode}",
        "trigger:",
        f"  events: {event_type(example, spec.trigger)}",
        "features:",
        "  level:",
        "    trait: level",
        "    default: 0",
        "rules:" if spec.rules else "rules: []",
    ]
    names = spec.option_names()
    for rule in spec.rules:
        target = names[rule.option % len(names)]
        when = (
            f'event.payload.route == "{target}"'
            if rule.test == "route"
            else f"event.payload.n >= {rule.threshold}"
        )
        lines += [f"  - when: {q(when)}", f"    choose: {target}"]
    lines += [f"otherwise: {names[spec.otherwise % len(names)]}", "options:"]
    for option_name, option in zip(names, spec.options, strict=True):
        lines += [f"  {option_name}:", "    actions:"]
        for position, action in enumerate(option.actions):
            mark = marker(name, vtag, option_name, position)
            lines.append(f"      - kind: {action.kind}")
            if action.sensitive:
                lines.append("        sensitive: true")
            lines += [f"        {line}" for line in _action_fields(action.kind, mark, sink_url)]
    if spec.guardrails:
        lines.append("guardrails:")
        for guardrail in spec.guardrails:
            when = {
                "amount": f"event.payload.n > {guardrail.threshold}",
                "tag": 'event.payload.tag == "vip"',
                "level": f"level >= {guardrail.threshold}",
            }[guardrail.test]
            lines += [f"  - when: {q(when)}", f"    reason: {q('held: ' + when)}"]
    autonomy = spec.autonomy
    lines += [
        "autonomy:",
        f"  target: {autonomy.target}",
        f"  min_reviews: {autonomy.min_reviews}",
        f"  window: {max(autonomy.min_reviews, 20)}",
        f"  sample: {autonomy.sample}",
    ]
    return "\n".join(lines) + "\n"


def _action_fields(kind: str, mark: str, sink_url: str) -> list[str]:
    q = json.dumps
    url = sink_url + "/" + mark.replace(SEPARATOR, "/")
    if kind in ("webhook", *MONEY_OR_DELETION):
        return [f"url: {q(url)}"]
    if kind == "notify":
        return [f"url: {q(url)}", f"text: {q('Decision ' + mark)}"]
    if kind == "email":
        return ['to: "owner@example.com"', f"subject: {q(mark)}", 'body: "See the decision."']
    if kind == "task":
        return [f"title: {q(mark)}", "assignee: ana", "due_in: 1d"]
    if kind == "update_traits":
        # The trait's name says which action set it; its value, for which event and decision.
        name = SEPARATOR.join(mark.split(SEPARATOR)[:4])
        value = SEPARATOR.join(mark.split(SEPARATOR)[4:])
        return ["traits:", f"  {q('guard' + SEPARATOR + name)}: {q(value)}"]
    raise AssertionError(f"no fields for action kind {kind!r}: teach guardrail_scenarios.py")


# --- strategies ----------------------------------------------------------------------------

# Plain kinds are drawn twice as often as money and deletions, and one action in four is
# marked sensitive, so options that may act at once and options that must wait both abound.
PLAIN_KINDS = tuple(kind for kind in KINDS if kind not in MONEY_OR_DELETION)
actions = st.builds(
    ActionSpec,
    kind=st.sampled_from((*PLAIN_KINDS, *PLAIN_KINDS, *sorted(MONEY_OR_DELETION))),
    sensitive=st.sampled_from((False, False, False, True)),
)
options = st.builds(OptionSpec, actions=st.lists(actions, min_size=1, max_size=3).map(tuple))
modes: st.SearchStrategy[Mode] = st.sampled_from(("shadow", "recommend", "recommend", "auto"))


@st.composite
def playbook_specs(draw: st.DrawFn) -> PlaybookSpec:
    # One to four options, mostly more than one so a person has something to override with.
    count = draw(st.sampled_from((1, 2, 2, 3, 3, 4)))
    chosen = tuple(draw(st.lists(options, min_size=count, max_size=count)))
    rules = draw(
        st.lists(
            st.builds(
                RuleSpec,
                test=st.sampled_from(("route", "route", "amount")),
                option=st.integers(0, 3),
                threshold=st.integers(0, 100),
            ),
            max_size=4,
        )
    )
    guardrails = draw(
        st.lists(
            st.builds(
                GuardrailSpec,
                test=st.sampled_from(("amount", "tag", "level")),
                threshold=st.integers(1, 100),
            ),
            max_size=2,
        )
    )
    # Half the playbooks have no guardrail expression: their non-sensitive options can act
    # in `auto`, so sensitive and plain actions meet in the same decisions and deliveries.
    if draw(st.booleans()):
        guardrails = []
    autonomy = Autonomy(
        # A low target lets a few approvals earn `auto` through the real promotion gate.
        target=draw(st.sampled_from((0.1, 0.95))),
        min_reviews=draw(st.integers(1, 3)),
        sample=draw(st.sampled_from((0.0, 0.3, 1.0))),
    )
    return PlaybookSpec(
        options=chosen,
        rules=tuple(rules),
        otherwise=draw(st.integers(0, 3)),
        guardrails=tuple(guardrails),
        mode=draw(modes),
        trigger=draw(st.integers(0, 1)),
        autonomy=autonomy,
    )


events = st.builds(
    EventSpec,
    route=st.one_of(st.none(), st.integers(0, 3)),
    n=st.one_of(*[st.integers(0, 100)] * 4, st.none(), st.just("x")),
    tag=st.sampled_from((None, "std", "std", "vip")),
    level=st.one_of(st.none(), st.none(), st.integers(0, 5), st.integers(0, 5), st.just("high")),
)

verdicts: st.SearchStrategy[Verdict] = st.sampled_from(
    ("approve", "approve", "override", "override", "reject")
)

ingests = st.builds(
    Ingest,
    playbook=st.integers(0, 1),
    events=st.lists(events, min_size=1, max_size=6).map(tuple),
    copies=st.integers(3, 20),
)
reviews = st.builds(
    Review,
    playbook=st.integers(0, 1),
    pick=st.integers(0, 20),
    verdict=verdicts,
    alternative=st.integers(0, 3),
    bulk=st.booleans(),
    stride=st.integers(1, 3),
    reviewer=st.sampled_from(PEOPLE),
)
bulk_reviews = st.builds(
    Review,
    playbook=st.integers(0, 1),
    pick=st.integers(0, 2),
    verdict=verdicts,
    alternative=st.integers(0, 3),
    bulk=st.just(True),
    stride=st.just(1),
    reviewer=st.sampled_from(PEOPLE),
)
operations: st.SearchStrategy[Operation] = st.one_of(
    # Repeated entries weigh the draw: most steps bring events, run jobs or review.
    ingests,
    ingests,
    ingests,
    st.just(RunJobs()),
    st.just(RunJobs()),
    reviews,
    reviews,
    bulk_reviews,
    st.builds(Advance, seconds=st.sampled_from((0.01, 0.1, 0.5, 2.0))),
    st.builds(FailNext, count=st.integers(1, 6), status=st.sampled_from((500, 503, 400))),
    st.builds(
        ReviewAny,
        playbook=st.integers(0, 1),
        pick=st.integers(0, 30),
        verdict=verdicts,
        alternative=st.integers(0, 4),
    ),
    st.builds(Retry, pick=st.integers(0, 10)),
    st.builds(Cancel, pick=st.integers(0, 10)),
    st.builds(ChangeMode, playbook=st.integers(0, 1), mode=modes),
    st.builds(GrantAuto, playbook=st.integers(0, 1)),
    st.builds(
        Reapply, playbook=st.integers(0, 1), option=st.integers(0, 3), actions=options, mode=modes
    ),
)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Playbooks, then a large batch of events for each (so every scenario has a few hundred
    action cases), then the generated operations."""
    playbooks = tuple(draw(st.lists(playbook_specs(), min_size=1, max_size=2)))
    opening = [
        Ingest(
            index,
            tuple(draw(st.lists(events, min_size=2, max_size=6))),
            draw(st.integers(15, 40)),
        )
        for index in range(len(playbooks))
    ]
    later = draw(st.lists(operations, min_size=5, max_size=30))
    return Scenario(playbooks, (*opening, *later))


def with_option(spec: PlaybookSpec, index: int, option: OptionSpec) -> PlaybookSpec:
    """The playbook with option `index` (modulo the options it has) replaced."""
    changed = list(spec.options)
    changed[index % len(changed)] = option
    return replace(spec, options=tuple(changed))

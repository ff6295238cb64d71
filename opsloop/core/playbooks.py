"""The playbook model: what a playbook YAML file may say, and the checks that need no engine.

A playbook is one decision workflow: which events trigger it, what features it computes from
the subject's history, how it scores, which option it chooses, what each option does, whether a
human must approve, and what counts as success afterwards. docs/playbooks.md is the user guide.

Expressions and templates are kept as text here; `opsloop.reasoning.compiler` compiles them and
`opsloop.execution.templates` checks the templates. `parse_playbook` runs the structural part of
validation and reports every problem with its file, line and field.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from opsloop.core.decision_tables import HIT_POLICIES, DecisionTable
from opsloop.core.durations import in_words, parse_duration
from opsloop.core.errors import PlaybookInvalid, PlaybookProblem
from opsloop.core.events import EVENT_TYPE_PATTERN, did_you_mean
from opsloop.core.key_paths import path_problem
from opsloop.core.schedules import SCHEDULED_EVENT, parse_schedule, parse_zone
from opsloop.core.yaml_source import Path, YamlDocument, parse_yaml

if TYPE_CHECKING:
    import jinja2

Mode = Literal["shadow", "recommend", "auto"]
MODES: tuple[Mode, ...] = ("shadow", "recommend", "auto")

# Action kinds that move money or destroy data: they wait for a human in every mode.
GUARDED_KINDS = frozenset({"refund", "payment", "discount", "delete"})

# Names the expression context provides; a feature may not take one of them.
CONTEXT_NAMES = frozenset({"points", "score", "event", "entity", "subject", "choice"})
RESERVED_NAMES = CONTEXT_NAMES | {"features", "decision", "playbook", "now", "option"}

NAME_PATTERN = r"^[a-z_][a-z0-9_]*$"


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(str(value))


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
EventType = Annotated[str, Field(pattern=EVENT_TYPE_PATTERN, max_length=100)]
EventTypes = Annotated[tuple[EventType, ...], BeforeValidator(_listify), Field(min_length=1)]
Expression = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int | float) else v)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


OptionalEventTypes = Annotated[tuple[EventType, ...], BeforeValidator(_listify)]


class Trigger(_Model):
    """What starts a decision: an event (`events`); an absence — an `after` event not
    followed by an `unless` event `within` a window, decided when the window closes; or a
    `schedule`, deciding about each subject its `select` condition picks."""

    events: OptionalEventTypes = ()
    """Event types that start a decision at once."""
    after: OptionalEventTypes = ()
    """Absence: event types that open a window (e.g. signup.completed)."""
    unless: OptionalEventTypes = ()
    """Absence: event types that close the window early; then nothing is decided."""
    within: Duration | None = None
    """Absence: how long the window stays open; the decision is made when it closes."""
    schedule: str | None = None
    """A cron expression (`0 8 * * MON`) or an interval (`6h`): when the playbook runs."""
    timezone: str | None = None
    """The time zone of `schedule` (default: the `timezone` setting)."""
    select: Expression | None = None
    """Which subjects a scheduled run decides about: an expression over the features and the
    entity (`days_since_login > 14`); default: every subject of the playbook's kind."""
    cooldown: Duration | None = None
    """Skip a trigger when this playbook already decided on the subject within this window."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """`trigger: ticket.created` and `trigger: [a, b]` mean `trigger: {events: ...}`."""
        if isinstance(value, str | list | tuple):
            return {"events": value}
        return value

    @property
    def is_absence(self) -> bool:
        return bool(self.after)

    @property
    def is_scheduled(self) -> bool:
        return self.schedule is not None

    @property
    def starts(self) -> tuple[str, ...]:
        """The event types a decision is anchored on: its trigger event's possible types."""
        if self.schedule is not None:
            return (SCHEDULED_EVENT,)
        return self.after or self.events

    def problems(self) -> Iterator[tuple[Path, str]]:
        if self.schedule is not None:
            yield from self._schedule_problems()
            return
        for name in ("timezone", "select"):
            if getattr(self, name) is not None:
                yield (name,), f"`{name}` belongs to a schedule: add `schedule: 0 8 * * MON`"
        if self.events and self.after:
            yield (
                ("after",),
                "a trigger is an event (`events`) or an absence (`after`, `unless`, `within`), "
                "not both",
            )
            return
        if not self.events and not self.after:
            yield (
                ("events",),
                "say what starts a decision: `events: [lead.created]`, or an absence: "
                "`after: signup.completed`, `unless: project.created`, `within: 3d`",
            )
            return
        if self.after:
            if not self.unless:
                yield ("unless",), "an absence needs `unless`: the event types that cancel it"
            if self.within is None:
                yield ("within",), "an absence needs `within`: how long to wait, e.g. 3d"
            elif self.within <= timedelta(0):
                yield ("within",), "must be longer than zero"
            overlap = sorted(set(self.after) & set(self.unless))
            if overlap:
                yield ("unless",), f"{overlap[0]} is both `after` and `unless`"
        else:
            for name in ("unless", "within"):
                if getattr(self, name):
                    yield (name,), f"`{name}` belongs to an absence: add `after: <event type>`"

    def _schedule_problems(self) -> Iterator[tuple[Path, str]]:
        for name in ("events", "after", "unless", "within"):
            if getattr(self, name):
                yield (
                    (name,),
                    f"a scheduled playbook starts by the clock: `{name}` cannot be combined "
                    "with `schedule`",
                )
        if self.timezone is not None:
            try:
                parse_zone(self.timezone)
            except ValueError as exc:
                yield ("timezone",), str(exc)
                return
        try:
            parse_schedule(str(self.schedule), self.timezone)
        except ValueError as exc:
            yield ("schedule",), str(exc)


AGGREGATES = ("count", "sum", "avg", "min", "max", "last", "days_since")
FEATURE_KINDS = ("trait", *AGGREGATES, "formula", "forecast")


class ForecastSpec(_Model):
    """A demand forecast from the subject's own events, and the reorder point it gives
    (`forecast:` feature; computed by the service: opsloop/learning/forecast_features.py)."""

    events: EventTypes
    quantity: str = "quantity"
    """Payload path of the units each event sold: `quantity`, `line.qty`."""
    horizon: Duration = timedelta(weeks=4)
    """How far ahead the weekly rate is averaged (whole weeks, at least one)."""
    stock: str | None = None
    """Trait path of the units on hand; without it only the forecast is given."""
    on_order: str | None = None
    """Trait path of the units already ordered and not yet received."""
    lead_time: Duration = timedelta(days=7)
    review_period: Duration = timedelta(days=14)
    service_level: float = 0.95

    def problems(self) -> Iterator[tuple[Path, str]]:
        if not 0.5 <= self.service_level < 1.0:
            yield ("service_level",), "`service_level` is a probability from 0.5 to below 1: 0.95"
        if self.horizon < timedelta(days=1):
            yield ("horizon",), "`horizon` is at least 1d (it is counted in whole weeks)"
        if problem := path_problem(self.quantity):
            yield ("quantity",), problem
        for name in ("stock", "on_order"):
            value = getattr(self, name)
            if value is not None and (problem := path_problem(value, "entity")):
                yield (name,), problem


class Feature(_Model):
    """One input to the decision, computed from the ledger as of the triggering event."""

    trait: str | None = None
    count: EventTypes | None = None
    sum: EventTypes | None = None
    avg: EventTypes | None = None
    min: EventTypes | None = None
    max: EventTypes | None = None
    last: EventTypes | None = None
    days_since: EventTypes | None = None
    formula: Expression | None = None
    forecast: ForecastSpec | None = None
    field: str | None = None
    """Payload path read by sum/avg/min/max/last, e.g. `amount` or `order.total`."""
    within: Duration | None = None
    where: Expression | None = None
    """Condition on each history event: `payload.path == '/pricing'`."""
    default: Any = None
    label: str | None = None

    @property
    def kind(self) -> str:
        for name in FEATURE_KINDS:
            if getattr(self, name) is not None:
                return name
        raise ValueError("feature without a kind")  # parse_playbook rejects these

    @property
    def event_types(self) -> tuple[str, ...]:
        if self.forecast is not None:
            return self.forecast.events
        value = getattr(self, self.kind)
        return value if isinstance(value, tuple) else ()

    def problems(self) -> Iterator[tuple[Path, str]]:
        kinds = [name for name in FEATURE_KINDS if getattr(self, name) is not None]
        if len(kinds) != 1:
            listed = ", ".join(FEATURE_KINDS)
            found = " and ".join(kinds) if kinds else "none"
            yield (), f"needs exactly one of {listed} (found {found})"
            return
        kind = kinds[0]
        needs_field = kind in ("sum", "avg", "min", "max", "last")
        if needs_field and not self.field:
            yield (kind,), f"`{kind}` needs `field`: the payload value to read, e.g. field: amount"
        if self.field and not needs_field:
            yield ("field",), f"`field` is only used with sum, avg, min, max and last, not {kind}"
        # A name with dots is one key first (a CSV column), then a nested path: key_paths.py.
        if self.field is not None and (problem := path_problem(self.field)):
            yield ("field",), problem
        if self.trait is not None and (problem := path_problem(str(self.trait), "entity")):
            yield ("trait",), problem
        if self.forecast is not None:
            for path, message in self.forecast.problems():
                yield ("forecast", *path), message
        if kind in ("trait", "formula"):
            for extra in ("within", "where"):
                if getattr(self, extra) is not None:
                    yield (extra,), f"`{extra}` applies to event features, not `{kind}`"


class ScoreLine(_Model):
    when: Expression
    points: float | Expression
    label: str | None = None


class Rule(_Model):
    when: Expression
    choose: str
    label: str | None = None


class _Action(_Model):
    sensitive: bool = False
    """Mark an action that must never run without a person's approval."""
    label: str | None = None

    @property
    def guarded(self) -> bool:
        return self.sensitive or getattr(self, "kind", "") in GUARDED_KINDS

    def templates(self) -> Iterator[tuple[Path, str]]:
        for name in type(self).model_fields:
            if name in ("kind", "sensitive", "label", "due_in"):
                continue
            if name == "variants":
                for index, variant in enumerate(getattr(self, name)):
                    for field in VARIANT_FIELDS:
                        text = getattr(variant, field)
                        if text is not None:
                            yield (name, index, field), text
                continue
            yield from _template_strings(getattr(self, name), (name,))


def _template_strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _template_strings(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _template_strings(item, (*path, index))


def _steps(steps: tuple[Step, ...], path: Path) -> Iterator[tuple[Path, Step]]:
    """Every step with its path, branches included, in order."""
    for index, step in enumerate(steps):
        here = (*path, index)
        yield here, step
        yield from _steps(step.then, (*here, "then"))
        yield from _steps(step.otherwise, (*here, "else"))


VARIANT_FIELDS = ("subject", "body", "html", "text")
"""What a variant may replace: `subject`, `body`, `html` of an email; `text` of a notify."""


class Variant(_Model):
    """One alternative message of an experiment: a name and the fields it replaces."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", max_length=60)
    """Lowercase letters, digits, - and _: `short-subject`."""
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    text: str | None = None

    def fields(self) -> dict[str, str]:
        """The fields this variant replaces, as given."""
        return {
            field: value for field in VARIANT_FIELDS if (value := getattr(self, field)) is not None
        }


class EmailAction(_Action):
    kind: Literal["email"]
    to: str
    subject: str
    body: str
    html: str | None = None
    cc: str | None = None
    reply_to: str | None = None
    variants: tuple[Variant, ...] = ()
    """Alternative subjects and/or bodies: an experiment chooses one per decision (Thompson
    sampling on the playbook's outcome); see docs/playbooks.md#message-testing."""


class WebhookAction(_Action):
    kind: Literal["webhook", "refund", "payment", "discount", "delete"]
    url: str | None = None
    endpoint: str | None = None
    """A name from the `webhook_endpoints` setting; use instead of `url` to keep URLs and
    secrets out of the playbook."""
    body: dict[str, Any] | None = None
    """JSON sent as `data`; string values are templates. Default: the decision summary."""


class NotifyAction(_Action):
    kind: Literal["notify"]
    text: str
    channel: str | None = None
    url: str | None = None
    variants: tuple[Variant, ...] = ()
    """Alternative texts, chosen among as for an email's `variants`."""


class UpdateTraitsAction(_Action):
    kind: Literal["update_traits"]
    traits: dict[str, Any] = Field(min_length=1)


class TaskAction(_Action):
    kind: Literal["task"]
    title: str
    notes: str | None = None
    assignee: str | None = None
    due_in: Duration | None = None


Action = Annotated[
    EmailAction | WebhookAction | NotifyAction | UpdateTraitsAction | TaskAction,
    Field(discriminator="kind"),
]
ACTION_KINDS = (
    "email",
    "webhook",
    "notify",
    "update_traits",
    "task",
    "refund",
    "payment",
    "discount",
    "delete",
)


class Step(_Model):
    """One step of a sequence: exactly one of `send`, `wait` or `wait_for`."""

    send: Action | None = None
    """An action (any kind), sent when the sequence reaches this step."""
    wait: Duration | None = None
    """Pause before the next step."""
    wait_for: OptionalEventTypes = ()
    """Wait until the subject has an event of these types (then `then`), or `within` passes
    without one (then `else`); either branch, then the steps after this one."""
    where: Expression | None = None
    """`wait_for` only: a condition on the awaited event (`payload.plan == "pro"`)."""
    within: Duration | None = None
    then: tuple[Step, ...] = ()
    otherwise: tuple[Step, ...] = Field(default=(), alias="else")
    label: str | None = None

    @property
    def kind(self) -> str:
        return "send" if self.send is not None else "wait" if self.wait is not None else "wait_for"

    def problems(self) -> Iterator[tuple[Path, str]]:
        given = [name for name in ("send", "wait", "wait_for") if getattr(self, name)]
        if len(given) != 1:
            found = " and ".join(given) if given else "none"
            yield (), f"a step is one of send, wait or wait_for (found {found})"
            return
        if self.wait_for:
            if self.within is None:
                yield ("within",), "`wait_for` needs `within`: how long to wait, e.g. 3d"
        else:
            for name in ("where", "within"):
                if getattr(self, name) is not None:
                    yield (name,), f"`{name}` belongs to a `wait_for` step"
            for name, branch in (("then", self.then), ("else", self.otherwise)):
                if branch:
                    yield (name,), f"`{name}` belongs to a `wait_for` step"
        for name, branch in (("then", self.then), ("else", self.otherwise)):
            for index, step in enumerate(branch):
                for path, message in step.problems():
                    yield (name, index, *path), message

    def describe(self) -> str:
        """The step in words: `email "Resources"`, `wait 1 day`, `wait for login (up to 2
        days)`."""
        if self.send is not None:
            title = getattr(self.send, "subject", None) or getattr(self.send, "title", None)
            return f'{self.send.kind} "{title}"' if title else str(self.send.kind)
        if self.wait is not None:
            return f"wait {in_words(self.wait)}"
        assert self.within is not None
        return f"wait for {' or '.join(self.wait_for)} (up to {in_words(self.within)})"

    @property
    def name(self) -> str:
        """What reports call the step: its `label`, else the step in words."""
        return self.label or self.describe()

    def actions(self) -> Iterator[Any]:
        """The actions this step and its branches may send."""
        if self.send is not None:
            yield self.send
        for step in (*self.then, *self.otherwise):
            yield from step.actions()


MAX_ACTIVE_SEQUENCES = 1


class Option(_Model):
    label: str | None = None
    description: str | None = None
    actions: tuple[Action, ...] = ()
    steps: tuple[Step, ...] = ()
    """A sequence: sends, waits and waits for the subject's events, one step after another."""
    stop_when: OptionalEventTypes = ()
    """Event types about the subject that end its sequence (it acted, unsubscribed, a person
    took over)."""
    max_active: int = Field(default=MAX_ACTIVE_SEQUENCES, ge=1)
    """A sequence does not start while the subject has this many active already."""

    @property
    def guarded(self) -> bool:
        return any(action.guarded for action in self.all_actions())

    @property
    def does_nothing(self) -> bool:
        """No action to run: no `actions`, and no step that sends (a sequence of waits only).
        In `recommend` a decision choosing it is settled without review (core/decisions.py)."""
        return next(self.all_actions(), None) is None

    def all_actions(self) -> Iterator[Any]:
        """Every action the option may send: its `actions`, or those of its steps."""
        yield from self.actions
        for step in self.steps:
            yield from step.actions()

    def sequence_types(self) -> tuple[set[str], set[str]]:
        """(event types the sequence reads — stop_when and wait_for —, those of them whose
        payload a `where` reads)."""
        types, payloads = set(self.stop_when), set[str]()
        for _, step in _steps(self.steps, ()):
            types.update(step.wait_for)
            if step.where is not None:
                payloads.update(step.wait_for)
        return types, payloads

    def problems(self) -> Iterator[tuple[Path, str]]:
        if self.steps and self.actions:
            yield (
                ("steps",),
                "an option has `actions` (all at once) or `steps` (a sequence), not both",
            )
        if not self.steps:
            if self.stop_when:
                yield ("stop_when",), "`stop_when` ends a sequence: give the option `steps`"
            if self.max_active != MAX_ACTIVE_SEQUENCES:
                yield ("max_active",), "`max_active` limits sequences: give the option `steps`"
        for index, step in enumerate(self.steps):
            for path, message in step.problems():
                yield ("steps", index, *path), message


class Guardrail(_Model):
    when: Expression
    reason: str


class Outcome(_Model):
    success: EventTypes
    failure: tuple[EventType, ...] = ()
    within: Duration

    @field_validator("failure", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return _listify(value)


class Autonomy(_Model):
    """When the playbook has earned `auto`, and how it keeps proving it."""

    target: float = Field(default=0.95, gt=0, le=1)
    """Agreement with reviewers needed, judged on the Wilson 95% lower bound."""
    min_reviews: int = Field(default=200, ge=1)
    """Reviewed decisions needed before the bound counts."""
    window: int = Field(default=500, ge=1)
    """Agreement is measured over this many most recent reviewed decisions."""
    sample: float = Field(default=0.05, ge=0, le=1)
    """Share of `auto` decisions still sent to a person for review."""


REVIEW_THEN = re.compile(r"^(notify|escalate|choose\s+(?P<option>\S+))$")


def fallback_option(then: str) -> str | None:
    """The option of a review deadline's `then: choose <option>`; None for notify/escalate."""
    found = REVIEW_THEN.match(then.strip())
    return found.group("option") if found and found.group("option") else None


class ReviewDeadline(_Model):
    """How long a decision may wait for a person, and what happens then."""

    within: Duration
    then: str = "notify"
    """`notify` (reviewers' digests mark it overdue), `escalate` (owners are told it waits),
    or `choose <option>` (the decision acts with that option, as no person answered)."""

    @property
    def fallback(self) -> str | None:
        """The option of `choose <option>`."""
        return fallback_option(self.then)

    @property
    def kind(self) -> str:
        return "choose" if self.fallback else self.then.strip()


class WeeklyReportTo(_Model):
    """Who gets this playbook's own weekly report (besides the business's, which owners get)."""

    to: tuple[str, ...] = Field(min_length=1, max_length=20)

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if not EMAIL_ADDRESS.fullmatch(address.strip()):
                raise ValueError(f"{address!r} is not an email address")
        return tuple(address.strip() for address in value)


EMAIL_ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")
"""Good enough to refuse a name or a typo; the mail server has the last word."""

MODEL_NAME_LENGTH = 120
"""Model versions are stored under `<playbook>:<predicts>` (a 120-character column)."""
REVIEW_PREFIX = "review:"
"""`predicts: review:<option>`: the chance a reviewer's final choice is that option."""


class ModelSpec(_Model):
    """A predictive model trained from the ledger; its probability is a name expressions use."""

    output: str = Field(default="p_success", alias="as")
    """The name scorecard, score, rules and guardrails read the probability by."""
    predicts: str = Field(max_length=100)
    """An event type (it happens within `within` after the trigger), or `review:<option>`."""
    within: Duration | None = None
    """How long after the trigger the event may come; default: the outcome's `within`."""
    features: tuple[str, ...] = Field(min_length=1)
    """Names of this playbook's features the model reads."""
    min_rows: int = Field(default=200, ge=10)
    """Labelled rows needed before a model is trained."""
    retrain: Duration | None = None
    """Retrain on this schedule (skipped when the labelled set has not changed)."""
    fallback: float = 0
    """What expressions see while no trained model can be used."""
    algorithm: Literal["auto", "logistic_regression", "gradient_boosting"] = "auto"
    """`auto` tries both on the end of the training period and keeps the better."""

    @field_validator("features", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return _listify(value)

    @property
    def review_option(self) -> str | None:
        """The option of a `review:<option>` model; None for an event prediction."""
        if self.predicts.startswith(REVIEW_PREFIX):
            return self.predicts.removeprefix(REVIEW_PREFIX)
        return None

    def window(self, outcome: Outcome | None) -> timedelta | None:
        """How long after the trigger an event prediction waits for its event."""
        if self.within is not None:
            return self.within
        return outcome.within if outcome is not None else None


class Classify(_Model):
    """Which category a message is in, by a model trained on labelled messages or by the LLM."""

    using: Literal["model", "llm"]
    """`model`: a text classifier trained from labelled messages (`opsloop train`); `llm`: the
    configured language model."""
    labels: tuple[str, ...] = ()
    """The categories. Required for `llm`; for `model`, the labels it learned (optional)."""
    output: str = Field(default="category", alias="as")
    """The name expressions read the category by; `<as>_confidence` holds its probability."""
    fields: tuple[str, ...] = ()
    """`llm` only: names sent along with the message (`event.payload.subject`,
    `entity.plan`); nothing else about the subject leaves the machine."""
    instructions: str | None = None
    """`llm` only: added to the prompt, e.g. what each category means."""
    min_rows: int = Field(default=20, ge=4)
    """`model` only: labelled messages needed before a classifier is trained."""
    method: Literal["tfidf", "embeddings"] = "tfidf"
    """`model` only: `embeddings` needs the optional extra `opsloop[embeddings]`."""

    @field_validator("labels", "fields", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return _listify(value)


class DraftSpec(_Model):
    """An AI-prepared reply for a person to finalize; never sent as the model wrote it."""

    tone: str = "friendly, brief and professional"
    fields: tuple[str, ...] = ()
    """Names sent with the message as context (`entity.name`, `event.payload.order_id`)."""
    instructions: str | None = None

    @field_validator("fields", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return _listify(value)


TEXT_NAMES = ("sentiment", "upset")
"""Names a `text:` block gives expressions, besides its classification's."""


class TextSpec(_Model):
    """Text triage: the trigger event carries a message (a support ticket, an email)."""

    field: str = "text"
    """Payload path of the message, e.g. `body` or `message.text`."""
    upset_below: float = Field(default=-0.5, ge=-1, le=1)
    """A VADER sentiment below this reads as angry or distressed."""
    hold_when_upset: bool = True
    """An upset message (tone, or words like `lawyer`, `chargeback`) waits for a person."""
    classify: Classify | None = None
    draft: DraftSpec | None = None
    """Prepare a reply with the LLM for options whose actions use `{{ draft }}`."""

    @property
    def needs_llm(self) -> bool:
        return self.draft is not None or (
            self.classify is not None and self.classify.using == "llm"
        )

    @property
    def names(self) -> tuple[str, ...]:
        if self.classify is None:
            return TEXT_NAMES
        output = self.classify.output
        return (*TEXT_NAMES, output, f"{output}_confidence")


class Playbook(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", max_length=80)
    description: str = ""
    subject: str = Field(pattern=NAME_PATTERN)
    """The subject kind this playbook decides about: `lead`, `ticket`, `customer`."""
    mode: Mode = "recommend"
    trigger: Trigger
    features: dict[str, Feature] = Field(default_factory=dict)
    scorecard: tuple[ScoreLine, ...] = ()
    score: Expression = "points"
    rules: tuple[Rule, ...] = ()
    tables: dict[str, DecisionTable] = Field(default_factory=dict)
    """Decision tables: points tables run after the scorecard, choosing ones after `rules`."""
    otherwise: str
    options: dict[str, Option] = Field(min_length=1)
    guardrails: tuple[Guardrail, ...] = ()
    outcome: Outcome | None = None
    autonomy: Autonomy = Field(default_factory=Autonomy)
    model: ModelSpec | None = None
    text: TextSpec | None = None
    review: ReviewDeadline | None = None
    """A deadline for decisions that wait for a person."""
    report: WeeklyReportTo | None = None
    """Send this playbook's own weekly report to these people."""

    def expressions(self) -> Iterator[tuple[Path, str, frozenset[str]]]:
        """Every expression with its path and the names it may use."""
        known: set[str] = {"event", "entity", "subject"}
        for name, feature in self.features.items():
            if feature.formula is not None:
                yield ("features", name, "formula"), feature.formula, frozenset(known)
            if feature.where is not None:
                history = frozenset({"type", "payload", "source", "occurred_at"})
                yield ("features", name, "where"), feature.where, history
            known.add(name)
        known.update(self.features)
        if self.trigger.select is not None:
            yield ("trigger", "select"), self.trigger.select, frozenset(known)
        if self.model is not None:
            known.add(self.model.output)  # the model reads the features; the rest reads it
        if self.text is not None:
            known.update(self.text.names)
        for index, line in enumerate(self.scorecard):
            yield ("scorecard", index, "when"), line.when, frozenset(known)
            if isinstance(line.points, str):
                yield ("scorecard", index, "points"), line.points, frozenset(known)
        for name, table in self.tables.items():
            if not table.chooses:  # points tables, in order; each result is a name after it
                yield from table.inputs(("tables", name), known)
                known.add(name)
        known.add("points")
        yield ("score",), self.score, frozenset(known)
        known.add("score")
        for index, rule in enumerate(self.rules):
            yield ("rules", index, "when"), rule.when, frozenset(known)
        for name, table in self.tables.items():
            if table.chooses:  # tried after the rules, so they may read points and score
                yield from table.inputs(("tables", name), known)
        known.add("choice")
        for index, guardrail in enumerate(self.guardrails):
            yield ("guardrails", index, "when"), guardrail.when, frozenset(known)
        awaited = frozenset({"type", "payload", "source", "occurred_at"})
        for name, option in self.options.items():
            for path, step in _steps(option.steps, ("options", name, "steps")):
                if step.where is not None:
                    yield (*path, "where"), step.where, awaited

    def templates(self) -> Iterator[tuple[Path, str]]:
        for option_name, option in self.options.items():
            for index, action in enumerate(option.actions):
                for path, text in action.templates():
                    yield ("options", option_name, "actions", index, *path), text
            for step_path, step in _steps(option.steps, ("options", option_name, "steps")):
                if step.send is not None:
                    for path, text in step.send.templates():
                        yield (*step_path, "send", *path), text

    def drafted_options(self) -> frozenset[str]:
        """Options whose actions send `{{ draft }}`, the reply a person finalizes: they always
        wait for a person, whatever the mode."""
        return frozenset(
            name
            for name, option in self.options.items()
            for action in option.all_actions()
            for _, text in action.templates()
            if "draft" in _template_names(text)
        )

    def event_types_read(self) -> set[str]:
        types: set[str] = {*self.trigger.starts, *self.trigger.unless}
        for feature in self.features.values():
            types.update(feature.event_types)
        return types


@cache
def _jinja() -> jinja2.Environment:
    import jinja2  # on the first template read: 15-20 ms that listing decisions never needs

    return jinja2.Environment()


def _template_names(source: str) -> set[str]:
    """Top-level names a template reads; none when it does not parse (reported elsewhere)."""
    if "{" not in source:
        return set()
    environment = _jinja()
    from jinja2 import TemplateSyntaxError, meta  # loaded by `_jinja`

    try:
        return meta.find_undeclared_variables(environment.parse(source))
    except TemplateSyntaxError:
        return set()


def parse_playbook(text: str, file: str = "<playbook>") -> tuple[Playbook, YamlDocument]:
    """Parse and structurally validate a playbook; raise PlaybookInvalid listing every problem."""
    playbook, document, problems = check_playbook(text, file)
    if problems:
        raise PlaybookInvalid(problems)
    return playbook, document


def check_playbook(
    text: str, file: str = "<playbook>"
) -> tuple[Playbook, YamlDocument, list[PlaybookProblem]]:
    """Like `parse_playbook`, but a playbook that parsed comes back with its reference problems
    (unknown options, bad feature definitions) so later checks can add theirs to the list.
    YAML and shape errors still raise: nothing further can be checked without a model."""
    document = parse_yaml(text, file)
    if not isinstance(document.data, dict):
        raise PlaybookInvalid([document.problem((), "a playbook is a mapping of keys to values")])
    try:
        playbook = Playbook.model_validate(document.data)
    except ValidationError as exc:
        raise PlaybookInvalid(_by_line(_pydantic_problems(exc, document))) from None
    problems = [document.problem(path, message) for path, message in _reference_problems(playbook)]
    return playbook, document, _by_line(problems)


def _by_line(problems: list[PlaybookProblem]) -> list[PlaybookProblem]:
    """In file order, as a reader fixes them (pydantic reports in model-field order)."""
    return sorted(problems, key=lambda p: p.line or 0)


def content_hash(text: str) -> str:
    """Identity of a version: the file's text with trailing spaces and blank ends removed."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _reference_problems(playbook: Playbook) -> Iterator[tuple[Path, str]]:
    options = list(playbook.options)
    for path, message in playbook.trigger.problems():
        yield ("trigger", *path), message
    for index, rule in enumerate(playbook.rules):
        if rule.choose not in playbook.options:
            yield ("rules", index, "choose"), _unknown_option(rule.choose, options)
    if playbook.otherwise not in playbook.options:
        yield ("otherwise",), _unknown_option(playbook.otherwise, options)
    if playbook.autonomy.window < playbook.autonomy.min_reviews:
        yield (
            ("autonomy", "window"),
            f"the window ({playbook.autonomy.window}) must hold at least min_reviews "
            f"({playbook.autonomy.min_reviews}) reviewed decisions",
        )
    for name, feature in playbook.features.items():
        if not re.match(NAME_PATTERN, name):
            yield ("features", name), "feature names use a-z, 0-9 and _ and start with a letter"
        elif name in RESERVED_NAMES:
            yield ("features", name), f"{name!r} is reserved; choose another feature name"
        for path, message in feature.problems():
            yield ("features", name, *path), message
    if playbook.model is not None:
        yield from _model_problems(playbook, playbook.model)
    if playbook.text is not None:
        yield from _text_problems(playbook, playbook.text)
    yield from _table_problems(playbook)
    if playbook.review is not None:
        yield from _review_problems(playbook, playbook.review)
    drafted = playbook.drafted_options()
    if drafted and (playbook.text is None or playbook.text.draft is None):
        name = sorted(drafted)[0]
        yield (
            ("options", name, "actions"),
            "`{{ draft }}` is the reply the LLM prepares for a person to finalize: add "
            "`text: {draft: {}}` (and say where the message is, e.g. `field: body`)",
        )
    for option_name, option in playbook.options.items():
        for path, message in option.problems():
            yield ("options", option_name, *path), message
        for path, step in _steps(option.steps, ("options", option_name, "steps")):
            if getattr(step.send, "variants", ()):
                yield (
                    (*path, "send", "variants"),
                    "variants are tried in an option's `actions`, not in sequence steps",
                )
            if isinstance(step.send, WebhookAction) and (step.send.url is None) == (
                step.send.endpoint is None
            ):
                yield (
                    (*path, "send"),
                    f"a `{step.send.kind}` action needs exactly one of `url` or `endpoint`",
                )
        for index, action in enumerate(option.actions):
            if isinstance(action, EmailAction | NotifyAction) and action.variants:
                for path, message in _variant_problems(playbook, action):
                    yield ("options", option_name, "actions", index, "variants", *path), message
            if isinstance(action, WebhookAction) and (action.url is None) == (
                action.endpoint is None
            ):
                yield (
                    ("options", option_name, "actions", index),
                    f"a `{action.kind}` action needs exactly one of `url` or `endpoint` (a name "
                    "from the webhook_endpoints setting)",
                )
            if (
                isinstance(action, NotifyAction)
                and action.url is not None
                and action.channel is not None
            ):
                yield (
                    ("options", option_name, "actions", index),
                    "give `channel` or `url`, not both",
                )


def _variant_problems(
    playbook: Playbook, action: EmailAction | NotifyAction
) -> Iterator[tuple[Path, str]]:
    """An experiment needs an outcome to learn from, two or more named variants, and variants
    that replace fields the action has."""
    variants = action.variants
    if playbook.outcome is None:
        yield (
            (),
            (
                "variants are chosen by the playbook's outcome: add `outcome:` "
                "(e.g. `outcome: {success: [purchase], within: 7d}`)"
            ),
        )
    if len(variants) < 2:
        yield (), "an experiment needs at least two variants to choose between"
    allowed = ("subject", "body", "html") if isinstance(action, EmailAction) else ("text",)
    seen: set[str] = set()
    for index, variant in enumerate(variants):
        if variant.name in seen:
            yield (index, "name"), f"two variants are named {variant.name!r}; names are unique"
        seen.add(variant.name)
        given = variant.fields()
        if not given:
            yield (index,), f"variant {variant.name!r} changes nothing: give {_or(allowed)}"
        for field in given:
            if field not in allowed:
                yield (
                    (index, field),
                    (
                        f"a variant of a `{action.kind}` action replaces {_or(allowed)}, "
                        f"not `{field}`"
                    ),
                )


def _or(names: tuple[str, ...]) -> str:
    quoted = [f"`{name}`" for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _model_problems(playbook: Playbook, model: ModelSpec) -> Iterator[tuple[Path, str]]:
    output = model.output
    if not re.match(NAME_PATTERN, output):
        yield ("model", "as"), "the name uses a-z, 0-9 and _ and starts with a letter"
    elif output in RESERVED_NAMES:
        yield ("model", "as"), f"{output!r} is reserved; choose another name, e.g. p_success"
    elif output in playbook.features or output in playbook.tables:
        taken = "a feature" if output in playbook.features else "a table"
        yield ("model", "as"), f"{output!r} is already {taken}; choose another name"
    option = model.review_option
    if option is not None:
        if option not in playbook.options:
            yield ("model", "predicts"), _unknown_option(option, list(playbook.options))
        if model.within is not None:
            yield ("model", "within"), "`within` applies to event predictions, not review:<option>"
    elif not re.match(EVENT_TYPE_PATTERN, model.predicts):
        yield (
            ("model", "predicts"),
            "predict an event type such as deal.won, or review:<option> for a reviewer's choice",
        )
    elif model.window(playbook.outcome) is None:
        yield (
            ("model", "within"),
            f"say how long after the trigger {model.predicts} may come (within: 45d), or give "
            "the playbook an `outcome`",
        )
    if len(playbook.name) + 1 + len(model.predicts) > MODEL_NAME_LENGTH:
        yield (
            ("model", "predicts"),
            f"the model is stored as `<playbook name>:<predicts>`, at most {MODEL_NAME_LENGTH} "
            "characters; shorten one of them",
        )
    names = list(playbook.features)
    for index, name in enumerate(model.features):
        if name not in playbook.features:
            known = ", ".join(names) if names else "none yet"
            yield (
                ("model", "features", index),
                f"no feature named {name!r}{did_you_mean(name, names)} (features: {known})",
            )
        elif name in model.features[:index]:
            yield ("model", "features", index), f"{name!r} is listed twice"


def _review_problems(playbook: Playbook, review: ReviewDeadline) -> Iterator[tuple[Path, str]]:
    if review.within <= timedelta(0):
        yield ("review", "within"), "must be longer than zero"
    if not REVIEW_THEN.match(review.then.strip()):
        yield (
            ("review", "then"),
            f"{review.then!r}: write notify, escalate or choose <option> (e.g. choose nurture)",
        )
        return
    option = review.fallback
    if option is None:
        return
    if option not in playbook.options:
        yield ("review", "then"), _unknown_option(option, list(playbook.options))
    elif playbook.options[option].guarded:
        yield (
            ("review", "then"),
            f"{option!r} has a sensitive action: it never runs without a person, so a deadline "
            "cannot choose it; use notify or escalate",
        )
    elif option in playbook.drafted_options():
        yield (
            ("review", "then"),
            f"{option!r} sends a reply a person finalizes: a deadline cannot choose it",
        )


def _text_problems(playbook: Playbook, text: TextSpec) -> Iterator[tuple[Path, str]]:
    # Any column name is a path (`Customer message text`), or a quoted one
    # (`payload["Customer message text"]`): core/key_paths.py.
    if (problem := path_problem(text.field)) is not None:
        yield ("text", "field"), f"{problem}; the message's payload key, e.g. body or message.text"
    classify = text.classify
    if classify is not None:
        output = classify.output
        taken = {
            **dict.fromkeys(playbook.features, "a feature"),
            **dict.fromkeys(playbook.tables, "a table"),
            **({playbook.model.output: "the model's name"} if playbook.model else {}),
        }
        if not re.match(NAME_PATTERN, output):
            yield (
                ("text", "classify", "as"),
                "the name uses a-z, 0-9 and _ and starts with a letter",
            )
        elif output in RESERVED_NAMES or output in TEXT_NAMES:
            yield ("text", "classify", "as"), f"{output!r} is reserved; choose another name"
        elif output in taken or f"{output}_confidence" in taken:
            yield ("text", "classify", "as"), f"{output!r} is already {taken.get(output, 'used')}"
        if classify.using == "llm" and len(set(classify.labels)) < 2:
            yield ("text", "classify", "labels"), "the LLM chooses among labels: list at least two"
        if classify.using == "model" and (classify.fields or classify.instructions):
            extra = "fields" if classify.fields else "instructions"
            yield ("text", "classify", extra), f"`{extra}` is for `using: llm`"
        if len(set(classify.labels)) != len(classify.labels):
            yield ("text", "classify", "labels"), "a label is listed twice"
    taken_names = set(playbook.features) | set(playbook.tables)
    for name in TEXT_NAMES:
        if name in taken_names:
            yield ("features", name), f"{name!r} is given by the `text:` block; rename this one"


def _table_problems(playbook: Playbook) -> Iterator[tuple[Path, str]]:
    options = list(playbook.options)
    model = playbook.model.output if playbook.model else None
    for name, table in playbook.tables.items():
        # A points table's result is a name expressions read, so table names follow the rules
        # of feature names.
        if not re.match(NAME_PATTERN, name):
            yield ("tables", name), "table names use a-z, 0-9 and _ and start with a letter"
        elif name in RESERVED_NAMES:
            yield ("tables", name), f"{name!r} is reserved; choose another table name"
        elif name in playbook.features or name == model:
            what = "a feature" if name in playbook.features else "the model's name"
            yield ("tables", name), f"{name!r} is already {what}; choose another table name"
        for path, message in table.problems():
            yield ("tables", name, *path), message
        for index, row in enumerate(table.rows):
            if row.choose is not None and row.choose not in playbook.options:
                path = ("tables", name, "rows", index, "choose")
                yield path, _unknown_option(row.choose, options)


def _unknown_option(name: str, options: list[str]) -> str:
    return f"no option named {name!r}{did_you_mean(name, options)} (options: {', '.join(options)})"


def _pydantic_problems(exc: ValidationError, document: YamlDocument) -> list[PlaybookProblem]:
    problems: list[PlaybookProblem] = []
    for error in exc.errors(include_url=False):
        loc: Path = tuple(error["loc"])
        kind = error["type"]
        message = error["msg"]
        if kind == "extra_forbidden":
            message = "unknown field" + did_you_mean(str(loc[-1]), _allowed_fields(loc))
        elif kind == "union_tag_invalid":
            tag = error.get("input", {}).get("kind", "") if isinstance(error["input"], dict) else ""
            message = f"unknown action kind {tag!r}{did_you_mean(str(tag), ACTION_KINDS)}"
            loc = (*loc, "kind")
        elif kind == "union_tag_not_found":
            message = f"an action needs `kind`: one of {', '.join(ACTION_KINDS)}"
        elif kind == "missing":
            message = "is required"
        elif kind == "literal_error" and loc and loc[-1] == "mode":
            message = f"must be one of {', '.join(MODES)}"
        elif kind == "literal_error" and loc and loc[-1] == "hit":
            given = str(error.get("input", ""))
            message = f"must be one of {', '.join(HIT_POLICIES)}{did_you_mean(given, HIT_POLICIES)}"
        elif kind == "value_error":
            message = message.removeprefix("Value error, ")
        elif kind == "string_pattern_mismatch":
            message = _pattern_hint(loc)
        # Tagged unions add the tag to the path (`actions.0.email.to`); drop it for the reader.
        loc = tuple(part for i, part in enumerate(loc) if not _is_union_tag(loc, i))
        problems.append(document.problem(loc, message))
    return problems


def _is_union_tag(loc: Path, index: int) -> bool:
    return (
        index >= 1
        and loc[index - 1] != "kind"
        and isinstance(loc[index - 1], int)
        and (index >= 2 and loc[index - 2] == "actions" and loc[index] in ACTION_KINDS)
    )


def _pattern_hint(loc: Path) -> str:
    last = loc[-1] if loc else ""
    if last == "name":
        return "use lowercase letters, digits, - and _, e.g. lead-qualification"
    if last == "subject":
        return "a subject kind is a lowercase word such as lead, ticket or customer"
    return "must look like `lead.created`: letters, digits, _ or -, dot-separated"


def _allowed_fields(loc: Path) -> list[str]:
    """Field names valid at the place `loc` points to, for typo suggestions."""
    model: type[BaseModel] | None = Playbook
    for part in loc[:-1]:
        if model is None:
            return []
        if isinstance(part, int) or part in ACTION_KINDS:
            continue
        field_info = model.model_fields.get(str(part))
        if field_info is None:
            # A dict key (feature or option name): the model stays the dict's value type.
            continue
        model = _inner_model(field_info.annotation)
    if model is None:
        return []
    if model is WebhookAction or (loc[-2:-1] and loc[-2] in ACTION_KINDS):
        return sorted({f for m in _ACTION_MODELS for f in m.model_fields})
    return [info.alias or name for name, info in model.model_fields.items()]


_ACTION_MODELS = (EmailAction, WebhookAction, NotifyAction, UpdateTraitsAction, TaskAction)


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    metadata = getattr(annotation, "__metadata__", None)
    origin = getattr(annotation, "__origin__", None)
    if metadata is not None and origin is not None:
        return _inner_model(origin)
    return None

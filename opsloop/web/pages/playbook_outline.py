"""A playbook in plain words: what triggers it, what it looks at, how it scores and chooses,
what each option does, what holds a decision for a person and what counts as success.

The playbook pages show this next to the YAML so that a person understands a playbook without
reading YAML. Everything is rendered from the parsed `Playbook` (never from the text), and
every value that comes from the file is escaped: the results are `Markup` built with
`Markup.format`, which escapes its arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from opsloop.core.decision_tables import ANY, DecisionTable, describe_cell
from opsloop.core.durations import in_words
from opsloop.core.playbooks import (
    GUARDED_KINDS,
    Action,
    EmailAction,
    Feature,
    ModelSpec,
    NotifyAction,
    Option,
    Playbook,
    Step,
    TaskAction,
    TextSpec,
    UpdateTraitsAction,
    WebhookAction,
)

MODE_WORDS = {
    "shadow": "decides and logs only: nothing runs and nobody is asked",
    "recommend": "every decision waits for a person's review before anything runs",
    "auto": "acts at once; a sample of decisions, and any decision a guardrail holds, still "
    "goes to a person",
}

HIT_WORDS = {
    "first": "the first matching row counts",
    "collect_sum": "the points of every matching row are added up",
    "priority": "the matching row with the highest priority counts",
}

GUARDED_WORDS = {
    "refund": "Refund request",
    "payment": "Payment request",
    "discount": "Discount request",
    "delete": "Deletion request",
}

AGGREGATE_WORDS = {
    "sum": "total",
    "avg": "average",
    "min": "smallest",
    "max": "largest",
}


@dataclass(frozen=True, slots=True)
class Line:
    """One row of a section: a name or label, and what it means."""

    title: str
    words: Markup
    note: Markup | None = None


@dataclass(frozen=True, slots=True)
class OptionWords:
    name: str
    label: str
    description: str | None
    actions: list[Markup]
    guarded: bool
    chosen_when: list[Markup]
    steps: list[tuple[int, Markup]] = field(default_factory=list)
    """A sequence's steps in words, each with its depth (a wait_for's branches are deeper)."""
    stops: Markup | None = None


@dataclass(frozen=True, slots=True)
class TableWords:
    name: str
    label: str
    gives: str
    hit: str
    rows: list[Line]


@dataclass(frozen=True, slots=True)
class Outline:
    mode: str
    mode_words: str
    trigger: Markup
    features: list[Line]
    scorecard: list[Line]
    score: Markup
    tables: list[TableWords]
    rules: list[Line]
    otherwise: Line
    options: list[OptionWords]
    guardrails: list[Line]
    outcome: Markup | None
    autonomy: Markup
    model: Markup | None
    text: list[Markup]


def outline(playbook: Playbook) -> Outline:
    """The whole playbook in words, section by section, in the order it runs."""
    labels = {name: option.label or name for name, option in playbook.options.items()}
    return Outline(
        mode=playbook.mode,
        mode_words=MODE_WORDS[playbook.mode],
        trigger=_trigger(playbook),
        features=[_feature(name, f, playbook.subject) for name, f in playbook.features.items()],
        scorecard=[
            Line(line.label or line.when, _when(line.when), _points(line.points))
            for line in playbook.scorecard
        ],
        score=(
            Markup("The score is the total of the points above.")
            if playbook.score.strip() == "points"
            else Markup("The score is {}, where <code>points</code> is the total above.").format(
                code(playbook.score)
            )
        ),
        tables=[_table(name, table, labels) for name, table in playbook.tables.items()],
        rules=[
            Line(
                rule.label or rule.when,
                _when(rule.when),
                Markup("choose <strong>{}</strong>").format(labels.get(rule.choose, rule.choose)),
            )
            for rule in playbook.rules
        ],
        otherwise=Line(
            "Otherwise",
            Markup("when no rule chooses, <strong>{}</strong>").format(
                labels.get(playbook.otherwise, playbook.otherwise)
            ),
        ),
        options=[_option(name, playbook) for name in playbook.options],
        guardrails=[
            Line(guardrail.reason, _when(guardrail.when)) for guardrail in playbook.guardrails
        ],
        outcome=_outcome(playbook),
        autonomy=_autonomy(playbook),
        model=_model(playbook.model, playbook) if playbook.model is not None else None,
        text=_text(playbook.text) if playbook.text is not None else [],
    )


def code(text: Any) -> Markup:
    return Markup("<code>{}</code>").format(text)


_SLOT = re.compile(r"\{\{\s*(.*?)\s*\}\}")


def template(text: str) -> Markup:
    """An action's template text with each `{{ ... }}` shown as a slot filled in when the action
    runs, so `Call {{ entity.name or subject }}` reads as "Call [entity.name or subject]"."""
    parts: list[Markup] = []
    last = 0
    for found in _SLOT.finditer(text):
        parts.append(Markup.escape(text[last : found.start()]))
        parts.append(Markup('<span class="pb-slot">{}</span>').format(found.group(1)))
        last = found.end()
    parts.append(Markup.escape(text[last:]))
    return Markup("").join(parts)


def _types(types: tuple[str, ...]) -> Markup:
    return Markup(" or ").join(code(t) for t in types)


def _when(condition: str) -> Markup:
    return Markup("when {}").format(code(condition))


def _points(points: float | str) -> Markup:
    if isinstance(points, str):
        try:
            points = float(points)  # `points: 25` is kept as the text "25"
        except ValueError:
            return Markup("adds {} points").format(code(points))
    number = f"{points:g}"
    return Markup("{} points").format(f"+{number}" if points >= 0 else f"\u2212{number[1:]}")


def _trigger(playbook: Playbook) -> Markup:
    trigger = playbook.trigger
    if trigger.schedule is not None:
        words = Markup("Runs on a schedule ({}) for each <strong>{}</strong>{}.").format(
            code(trigger.schedule),
            playbook.subject,
            Markup(" where {}").format(code(trigger.select)) if trigger.select else "",
        )
    elif trigger.is_absence and trigger.within is not None:
        words = Markup(
            "Runs {} after a {} event about a <strong>{}</strong>, unless a {} event came "
            "in between."
        ).format(
            in_words(trigger.within),
            _types(trigger.after),
            playbook.subject,
            _types(trigger.unless),
        )
    else:
        words = Markup("Runs when a {} event arrives about a <strong>{}</strong>.").format(
            _types(trigger.events), playbook.subject
        )
    if playbook.trigger.cooldown is not None:
        words += Markup(
            " At most one decision per {} every {}: a burst of events makes one decision."
        ).format(playbook.subject, in_words(playbook.trigger.cooldown))
    return words


def _window(feature: Feature) -> Markup:
    if feature.within is None:
        return Markup(" (all history)")
    return Markup(" in the last {}").format(in_words(feature.within))


def _feature(name: str, feature: Feature, subject: str) -> Line:
    kind = feature.kind
    if kind == "trait":
        words = Markup("the {}'s {} trait, as it stands now").format(subject, code(feature.trait))
    elif kind == "formula":
        words = Markup("computed: {}").format(code(feature.formula))
    else:
        types = _types(feature.event_types)
        window = _window(feature)
        if kind == "count":
            words = Markup("how many {} events{}").format(types, window)
        elif kind == "last":
            words = Markup("{} of the most recent {} event").format(code(feature.field), types)
        elif kind == "days_since":
            words = Markup("days since the most recent {} event").format(types)
        elif kind == "forecast" and feature.forecast is not None:
            spec = feature.forecast
            words = Markup(
                "a forecast of units per week from the {} of {} events{}, with the reorder point "
                "for a {} lead time at a {:g}% service level"
            ).format(
                code(spec.quantity),
                types,
                window,
                in_words(spec.lead_time),
                spec.service_level * 100,
            )
        else:
            words = Markup("{} {} of {} events{}").format(
                AGGREGATE_WORDS[kind], code(feature.field), types, window
            )
        if feature.where is not None:
            words += Markup(", only those where {}").format(code(feature.where))
    note = None
    if feature.default is not None:
        note = Markup("{} when there is nothing to read").format(code(json.dumps(feature.default)))
    title = f"{feature.label} ({name})" if feature.label else name
    return Line(title, words, note)


def _table(name: str, table: DecisionTable, labels: dict[str, str]) -> TableWords:
    rows = []
    for row in table.rows:
        cells = [_cell(key, cell) for key, cell in row.when.items() if cell != ANY]
        test = " and ".join(cells) if cells else "every time"
        if row.choose is not None:
            output = Markup("choose <strong>{}</strong>").format(labels.get(row.choose, row.choose))
        else:
            output = _points(row.points if row.points is not None else 0)
        if row.priority is not None:
            output += Markup(" (priority {})").format(f"{row.priority:g}")
        rows.append(Line(row.label or test, Markup("when {}").format(code(test)), output))
    gives = "chooses an option" if table.chooses else "gives points"
    return TableWords(name, table.label or name, gives, HIT_WORDS[table.hit], rows)


def _cell(name: str, cell: Any) -> str:
    """`company_size in [10..500]` rather than `company_size [10..500]` for a range."""
    said = describe_cell(name, cell)
    if isinstance(cell, str) and cell.strip()[:1] in "[(" and ".." in cell:
        return f"{name} in {cell.strip()}"
    return said


def _option(name: str, playbook: Playbook) -> OptionWords:
    option = playbook.options[name]
    chosen = [
        Markup("by the rule \u201c{}\u201d").format(rule.label or rule.when)
        for rule in playbook.rules
        if rule.choose == name
    ]
    chosen += [
        Markup("by a row of the table \u201c{}\u201d").format(table.label or table_name)
        for table_name, table in playbook.tables.items()
        if any(row.choose == name for row in table.rows)
    ]
    if playbook.otherwise == name:
        chosen.append(Markup("when nothing else chooses"))
    return OptionWords(
        name=name,
        label=option.label or name,
        description=option.description,
        actions=[_action(action, playbook.subject) for action in option.actions],
        guarded=option.guarded or name in playbook.drafted_options(),
        chosen_when=chosen,
        steps=list(_steps(option.steps, playbook.subject, 0)),
        stops=_stops(option, playbook.subject) if option.steps else None,
    )


def _steps(steps: tuple[Step, ...], subject: str, depth: int) -> Iterator[tuple[int, Markup]]:
    for step in steps:
        if step.send is not None:
            words = _action(step.send, subject)
            yield depth, Markup("{} \u2014 {}").format(step.label, words) if step.label else words
        elif step.wait is not None:
            yield depth, Markup("Wait {}").format(in_words(step.wait))
        else:
            assert step.within is not None
            where = Markup(" where {}").format(code(step.where)) if step.where else ""
            yield (
                depth,
                Markup("Wait up to {} for a {} event{}").format(
                    in_words(step.within), _types(step.wait_for), where
                ),
            )
            if step.then:
                yield depth + 1, Markup("<em>If it comes:</em>")
                yield from _steps(step.then, subject, depth + 2)
            if step.otherwise:
                yield depth + 1, Markup("<em>If it does not come in time:</em>")
                yield from _steps(step.otherwise, subject, depth + 2)


def _stops(option: Option, subject: str) -> Markup:
    words = Markup("Sent one step at a time.")
    if option.stop_when:
        words += Markup(" Stops as soon as a {} event arrives about the {}.").format(
            _types(option.stop_when), subject
        )
    return words + Markup(" At most {} running per {} at a time.").format(
        option.max_active, subject
    )


def _action(action: Action, subject: str) -> Markup:
    if isinstance(action, EmailAction):
        words = Markup("Email to {}: \u201c{}\u201d").format(
            template(action.to), template(action.subject)
        )
    elif isinstance(action, NotifyAction):
        where = action.channel or action.url
        words = Markup("Chat message{}: \u201c{}\u201d").format(
            Markup(" to {}").format(code(where)) if where else "", template(action.text)
        )
    elif isinstance(action, TaskAction):
        words = Markup("Task{}{}: \u201c{}\u201d").format(
            Markup(" for {}").format(action.assignee) if action.assignee else "",
            f", due in {in_words(action.due_in)}" if action.due_in else "",
            template(action.title),
        )
    elif isinstance(action, UpdateTraitsAction):
        words = Markup("Update the {}'s traits: {}").format(
            subject, Markup(", ").join(code(key) for key in action.traits)
        )
    else:
        assert isinstance(action, WebhookAction)
        target = (
            template(action.url) if action.url else Markup("endpoint {}").format(action.endpoint)
        )
        kind = GUARDED_WORDS.get(action.kind, "Signed webhook")
        words = Markup("{} to {}").format(kind, target)
    if action.label:
        words = Markup("{} \u2014 {}").format(action.label, words)
    if action.guarded:
        reason = "a money or data action" if action.kind in GUARDED_KINDS else "marked sensitive"
        words += Markup(' <span class="pb-guarded">always waits for a person ({})</span>').format(
            reason
        )
    return words


def _outcome(playbook: Playbook) -> Markup | None:
    outcome = playbook.outcome
    if outcome is None:
        return None
    words = Markup("Success: a {} event within {} after the trigger.").format(
        _types(outcome.success), in_words(outcome.within)
    )
    if outcome.failure:
        return words + Markup(" Failure: a {} event, or nothing by then.").format(
            _types(outcome.failure)
        )
    return words + Markup(" Failure: nothing by then.")


def _autonomy(playbook: Playbook) -> Markup:
    rules = playbook.autonomy
    return Markup(
        "It can be promoted to <strong>auto</strong> once reviewers agree with it often enough: "
        "at least {} reviewed decisions, and the 95% lower bound of agreement over the last {} "
        "reviews at {} or more. In auto, {} of decisions are still sent to a person."
    ).format(rules.min_reviews, rules.window, f"{rules.target:.0%}", f"{rules.sample:.0%}")


def _model(model: ModelSpec, playbook: Playbook) -> Markup:
    if model.review_option is not None:
        what = Markup("a reviewer picks {}").format(code(model.review_option))
    else:
        window = model.window(playbook.outcome)
        what = Markup("a {} event follows{}").format(
            code(model.predicts), f" within {in_words(window)}" if window else ""
        )
    words = Markup(
        "Learns from history the chance that {}, from {}. Expressions read it as {} "
        "({} until a model is trained; training needs {} labelled rows"
    ).format(
        what,
        Markup(", ").join(code(name) for name in model.features),
        code(model.output),
        f"{model.fallback:g}",
        model.min_rows,
    )
    if model.retrain is not None:
        words += Markup("; retrained every {}").format(in_words(model.retrain))
    return words + Markup(").")


def _text(text: TextSpec) -> list[Markup]:
    words = [
        Markup(
            "Reads the message in {} and its tone (from \u22121, angry, to +1); below {} it "
            "counts as upset{}."
        ).format(
            code(f"event.payload.{text.field}"),
            f"{text.upset_below:g}",
            ", and the decision waits for a person" if text.hold_when_upset else "",
        )
    ]
    if text.classify is not None:
        using = (
            "the language model"
            if text.classify.using == "llm"
            else "a classifier trained on your labelled messages"
        )
        labels = (
            Markup(" into ") + Markup(", ").join(code(label) for label in text.classify.labels)
            if text.classify.labels
            else Markup("")
        )
        words.append(
            Markup("Sorts the message{} with {}; expressions read it as {}.").format(
                labels, using, code(text.classify.output)
            )
        )
    if text.draft is not None:
        words.append(
            Markup(
                "The language model drafts a reply ({}) for a person to check and finish."
            ).format(text.draft.tone)
        )
    return words

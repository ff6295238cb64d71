"""What the learn stage reports: the metrics per playbook and week against a baseline, and
customer satisfaction (`GET /api/metrics`, `opsloop metrics`); the dashboard's totals; a
training run and a playbook's model versions (`opsloop train`, `opsloop models`,
`GET /api/playbooks/{name}/models`). A backtest's report is `opsloop.core.backtest_reports`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, NotRequired, TypedDict

from opsloop.core.playbooks import Mode

By = Literal["week"]
WeekPart = Literal["first", "current"]
"""Why a week's numbers cover only part of it: `first`, the data starts after its Monday;
`current`, it has not ended yet."""

# --- metrics ---------------------------------------------------------------------------------


class DecisionFigures(TypedDict):
    """A playbook's numbers over all time, a period or a week (service/learn/metrics.py)."""

    decisions: dict[str, int]
    """Per decision status, every status (0 when none)."""
    total: int
    pending_reviews: int
    success_rate: float | None
    """Of decisions that acted and whose outcome window has closed."""
    successes: int
    failures: int
    open_windows: int
    override_rate: float | None
    """Of reviewed decisions, the share a person overrode or rejected."""
    overridden: int
    rejected: int
    reviewed: int
    median_time_to_action_seconds: float | None
    p90_time_to_action_seconds: float | None
    actions_timed: int
    median_task_completion_seconds: float | None
    p90_task_completion_seconds: float | None
    tasks_done: int
    tasks_open: int


class Change(TypedDict):
    """One number in the baseline period and the recent one."""

    baseline: float | None
    recent: float | None
    change: float | None
    """`(recent - baseline) / baseline`: -0.25 is a quarter lower."""


class DecisionPeriod(TypedDict):
    since: datetime
    until: datetime
    """Not included."""
    total: int
    """Decisions in the period."""
    open_windows: int
    """Of those that acted, how many are still within their outcome window."""
    reviewed: int
    actions_timed: int
    """Decisions with a delivered action: what time to action (and time saved) is over."""
    tasks_done: int
    tasks_open: int


class DecisionsVersusBaseline(TypedDict):
    baseline: DecisionPeriod
    recent: DecisionPeriod | None
    """None until the baseline period has ended."""
    success_rate: Change
    override_rate: Change
    median_time_to_action_seconds: Change
    p90_time_to_action_seconds: Change
    median_task_completion_seconds: Change
    p90_task_completion_seconds: Change


class DecisionWeek(DecisionFigures):
    week: str
    """`2026-W10`."""
    starts: date
    """Its Monday."""
    partial: WeekPart | None
    """None for a whole week."""


class PlaybookMetrics(DecisionFigures):
    playbook: str
    mode: Mode
    outcome_within_seconds: float | None
    """The active version's `outcome.within`: how long after its trigger a decision's success
    is known. None without an outcome."""
    vs_baseline: DecisionsVersusBaseline | None
    """None before the playbook has decided anything."""
    weeks: list[DecisionWeek] | None
    """With `by="week"`."""


class DashboardPlaybook(PlaybookMetrics):
    time_saved_seconds: float | None
    """Waiting time the recent period's actions saved against the baseline's median time to
    action, estimated (service/learn/dashboard.py): negative when they came later. None while
    either period has no time to action."""


class CsatFigures(TypedDict):
    responses: int
    mean_rating: float | None
    satisfied: int
    """Ratings of 4 or 5."""
    satisfied_share: float | None


class CsatPeriod(TypedDict):
    since: datetime
    until: datetime
    responses: int


class CsatVersusBaseline(TypedDict):
    baseline: CsatPeriod
    recent: CsatPeriod | None
    mean_rating: Change
    satisfied_share: Change


class CsatWeek(CsatFigures):
    week: str
    starts: date
    partial: WeekPart | None


class CsatReport(CsatFigures):
    """Customer satisfaction: the 1-5 ratings of the CSAT events."""

    event: str
    field: str
    """The payload field holding the rating."""
    ignored: int
    """Answers without a 1-5 rating."""
    vs_baseline: CsatVersusBaseline | None
    weeks: list[CsatWeek] | None


class MetricsReport(TypedDict):
    playbooks: list[PlaybookMetrics]
    csat: CsatReport
    by: By | None
    baseline: str
    """As written: `30d`, or `2026-01-01..2026-01-31`."""


class Dashboard(TypedDict):
    """The metrics report by week, each playbook with `time_saved_seconds`, and the totals the
    dashboard shows above them."""

    playbooks: list[DashboardPlaybook]
    csat: CsatReport
    by: By | None
    baseline: str
    decisions: int
    pending_reviews: int
    failed_deliveries: int
    """Actions dead-lettered."""
    retrying_deliveries: int
    """Actions whose last attempt failed and that will be tried again."""
    time_saved_seconds: float | None


# --- training --------------------------------------------------------------------------------

TrainStatus = Literal["promoted", "challenger", "unchanged", "not_trained"]


class Verdict(TypedDict):
    """Champion against challenger: whether the new version was promoted, and why. The scores
    are there when the champion could be compared on the same held-out rows."""

    promoted: bool
    champion_version: int | None
    why: str
    compared_on: NotRequired[int]
    """Held-out rows (messages) both were scored on."""
    champion: NotRequired[dict[str, float]]
    """A tabular model's scores by name: `roc_auc`, `brier`."""
    challenger: NotRequired[dict[str, float]]
    note: NotRequired[str]
    champion_accuracy: NotRequired[float]
    """A text classifier's."""
    challenger_accuracy: NotRequired[float]
    skill: NotRequired[Skill]
    """Whether the new version's held-out score shows skill: without it, never champion."""


class Skill(TypedDict):
    """Whether a held-out score shows skill over a model that knows nothing
    (opsloop/learning/evidence.py): a version becomes champion only when `shown`."""

    metric: Literal["roc_auc", "accuracy"]
    score: float
    low: float
    high: float
    """The 95% bootstrap interval of `score`."""
    baseline: float
    """The no-skill score: 0.5 ROC AUC, or the share of the most common test label."""
    baseline_is: str
    margin: float
    """How far the interval's lower end must clear `baseline`."""
    luck: float
    """The chance a model with no skill scores this high on these rows (must be < 0.001)."""
    rows: int
    shown: bool
    why: str


class TabularTraining(TypedDict):
    """What a tabular model was trained on."""

    source: str
    """`reviews` (reviewed decisions) or `outcomes` (labelled triggers)."""
    rows: int
    positives: int
    window: dict[str, str | None]
    """`from` and `to`: the first and last row's time."""
    left_out: dict[str, int]
    """Rows not used, by reason (`window_open`, `unreviewed` …)."""
    train: NotRequired[dict[str, Any]]
    """The evaluation report's split: `rows`, `positives`, `start`, `end`."""
    test: NotRequired[dict[str, Any]]
    seconds: NotRequired[float]
    split: NotRequired[Literal["time", "stratified"]]
    """How the held-out rows were chosen: the latest fifth (`time`), or a random fifth of each
    label's rows (`stratified`: `opsloop train --split stratified`)."""
    label_order: NotRequired[str]
    """Why the time-ordered hold-out misleads here: the labels come grouped in time order
    (`learning/split_checks.py`). Only with `split: time`."""
    fingerprint: NotRequired[str]
    """What the version was trained from, summarised: an equal one means nothing to learn
    (service/learn/promotion.py)."""
    verdict: NotRequired[Verdict]
    """Champion or challenger, and why."""


class TextTraining(TypedDict):
    """What a text classifier was trained on."""

    source: str
    rows: int
    labels: dict[str, int]
    """Messages per label."""
    window: dict[str, str] | None
    left_out: dict[str, int]
    train: int
    test: int
    seconds: float
    split: NotRequired[Literal["time", "stratified"]]
    """As `TabularTraining.split`."""
    label_order: NotRequired[str]
    """As `TabularTraining.label_order`."""
    fingerprint: NotRequired[str]
    verdict: NotRequired[Verdict]


class TrainResult(TypedDict):
    """What training did (`train`, and each scheduled retrain): `promoted`, kept as the
    `challenger`, `unchanged` labels (nothing trained), or `not_trained` (a scheduled retrain
    with too little data: only `message` says why). A text classifier's result has `kind`
    `text`; a playbook with both models has the text one under `also`."""

    playbook: str
    status: TrainStatus
    message: str
    model: NotRequired[str]
    kind: NotRequired[Literal["text"]]
    version: NotRequired[int]
    features: NotRequired[list[str]]
    report: NotRequired[dict[str, Any]]
    """The evaluation on held-out rows, as the model version's `metrics` keep it:
    `opsloop.learning.tabular.EvaluationReport` or `opsloop.core.text_reports.TextReport`,
    as dicts."""
    verdict: NotRequired[Verdict]
    training: NotRequired[TabularTraining | TextTraining]
    also: NotRequired[list[TrainResult]]


class ModelVersion(TypedDict):
    """One version of a tabular model with its headline metrics."""

    version: int
    status: str
    """`champion`, `challenger` or `retired`."""
    algorithm: str
    created_at: datetime
    created_by: str
    features: list[str]
    roc_auc: float | None
    pr_auc: float | None
    brier: float | None
    lift_top_10: float | None
    training: TabularTraining
    """As stored with the version."""
    library_versions: dict[str, str]
    roc_auc_interval: list[float] | None
    """The 95% bootstrap interval of `roc_auc` (None for a version trained before it)."""
    skill: Skill | None
    warnings: list[str]
    """The report's notes in words: no skill shown, a base rate that moved, a small test set,
    one feature carrying nearly all the importance, a feature missing or constant on almost
    every row."""
    walk_forward: dict[str, Any] | None
    """The walk-forward evaluation (opsloop/learning/walk_forward.py), with its `summary`."""
    why: str | None
    """Why it is champion or challenger (the verdict when it was trained)."""


class TextModelVersion(TypedDict):
    """One version of a text classifier with its headline metrics."""

    version: int
    status: str
    algorithm: str
    created_at: datetime
    created_by: str
    accuracy: float | None
    macro_f1: float | None
    training: TextTraining
    """As stored with the version."""
    accuracy_interval: list[float] | None
    skill: Skill | None
    warnings: list[str]
    walk_forward: dict[str, Any] | None
    why: str | None


# `as` is a keyword: these are functional TypedDicts.
TextModels = TypedDict("TextModels", {"model": str, "as": str, "versions": list[TextModelVersion]})
"""A playbook's text classifier (`as`: the name its category is read under) and its versions,
newest first."""

TextModelListing = TypedDict(
    "TextModelListing",
    {
        "playbook": str,
        "kind": Literal["text"],
        "model": str,
        "as": str,
        "versions": list[TextModelVersion],
    },
)
"""`list_models` of a playbook whose only model is a text classifier."""

ModelListing = TypedDict(
    "ModelListing",
    {
        "playbook": str,
        "model": str,
        "as": str,
        "predicts": str,
        "features": list[str],
        "retrain": str | None,
        "versions": list[ModelVersion],
        "text": NotRequired[TextModels],
    },
)
"""`list_models` of a playbook with a `model:` block: its versions, newest first, and its
text classifier's under `text` when it has one too."""


# --- the weekly report -----------------------------------------------------------------------

ReportKey = Literal["success_rate", "override_rate", "time_to_action", "csat"]


class ReportNumber(TypedDict):
    """One of the four numbers for one ISO week, against the week before
    (opsloop/service/learn/reports.py)."""

    key: ReportKey
    title: str
    playbook: str | None
    """None for customer satisfaction, which belongs to no playbook."""
    value: float | None
    """A share (0-1), seconds, or a mean rating (1-5); None when the week has none."""
    previous: float | None
    change: float | None
    """Relative change from the week before (`metrics.change`): -0.25 is a quarter lower."""
    shown: str
    """`value` as the report writes it: `40%`, `12 minutes`, `4.20`; `—` for none."""
    previous_shown: str
    change_shown: str
    """`+25%`, `-10%`; empty without a change."""
    sentence: str


class ReportPlaybook(TypedDict):
    """What one playbook decided in the week, and what came of it."""

    playbook: str
    mode: Mode
    total: int
    decisions: dict[str, int]
    """Decisions of the week by status now."""
    successes: int
    failures: int
    open_windows: int
    reviewed: int
    overridden: int
    rejected: int
    pending_reviews: int
    """Decisions of the week that still wait for a person."""
    sentence: str


class ReportWaiting(TypedDict):
    """What waits for people when the report is made."""

    total: int
    overdue: int
    escalated: int
    oldest: datetime | None
    by_playbook: dict[str, int]
    sentence: str


class ReportFailure(TypedDict):
    """A delivery that failed for good in the week."""

    action_id: int
    decision_id: int
    playbook: str
    kind: str
    attempts: int
    error: str | None
    failed_at: datetime


class ReportChart(TypedDict):
    """One of the dashboard's weekly charts over the weeks up to the report's."""

    id: str
    title: str
    spec: dict[str, Any] | None
    """The Vega-Lite spec (the dashboard's `weekly_chart`); None when no week has a value."""
    empty: str


class ReportExperiment(TypedDict):
    """A message experiment still running, or ended, with its verdict in words."""

    playbook: str
    option: str
    action: int
    sends: int
    winner: str | None
    verdict: str
    ended: bool


class ReportForecast(TypedDict):
    """A playbook with a `forecast` feature: products that need a person now."""

    playbook: str
    products: int
    out_of_stock: list[str]
    to_reorder: list[str]
    sentence: str


class WeeklyReport(TypedDict):
    """`GET /api/reports/{week}`, `opsloop report --week`, the weekly email."""

    week: str
    starts: date
    ends: date
    """The Sunday the week ends on."""
    playbook: str | None
    partial: bool
    """The week has not ended: its numbers will still move."""
    numbers: list[ReportNumber]
    """The numbers of each playbook that was not quiet in the week, then customer
    satisfaction."""
    playbooks: list[ReportPlaybook]
    quiet: list[str]
    """The playbooks with no decision, action or outcome in the week: they have no numbers
    and no line of their own, only their names in "Quiet this week: …"."""
    waiting: ReportWaiting
    failed_deliveries: list[ReportFailure]
    experiments: list[ReportExperiment]
    """Message experiments with sends: how sure each is, in words (as of the report)."""
    forecasts: list[ReportForecast]
    """Forecast playbooks: products out of stock or at their reorder point now."""
    charts: list[ReportChart]
    summary: str | None
    """A short paragraph written by the language model (marked so wherever shown); None
    without a model, or when not asked for."""
    summary_model: str | None


class SentReport(TypedDict):
    """A week whose report went out by email (the Reports page)."""

    week: str
    recipients: int
    failed: int
    sent_at: datetime


class RenderedReport(TypedDict):
    """A weekly report as an email: subject, plain-text and HTML bodies, and the charts as
    PNGs the HTML names by `cid:`."""

    subject: str
    text: str
    html: str
    images: dict[str, bytes]

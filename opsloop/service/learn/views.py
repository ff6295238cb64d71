"""What the learn stage reports: the metrics per playbook and week against a baseline, and
customer satisfaction (`GET /api/metrics`, `opsloop metrics`); the dashboard's totals; a
training run and a playbook's model versions (`opsloop train`, `opsloop models`,
`GET /api/playbooks/{name}/models`). A backtest's report is `opsloop.core.backtest_reports`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, NotRequired, TypedDict

from opsloop.core.playbooks import Mode

By = Literal["week"]

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


class PlaybookMetrics(DecisionFigures):
    playbook: str
    mode: Mode
    vs_baseline: DecisionsVersusBaseline | None
    """None before the playbook has decided anything."""
    weeks: list[DecisionWeek] | None
    """With `by="week"`."""


class DashboardPlaybook(PlaybookMetrics):
    time_saved_seconds: float | None
    """Waiting time saved since the baseline, estimated (service/learn/dashboard.py); None
    while the baseline period has not ended."""


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

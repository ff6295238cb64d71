"""The learn stage as the edges see it: what happened next: metrics, the dashboard, backtests,
models and their training. `OpsLoop.learn` is one of these, on the service's context; every
method is one use case."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from opsloop.core.backtest_reports import BacktestRun, SavedBacktest
from opsloop.core.experiment_reports import ExperimentReport
from opsloop.core.periods import Baseline
from opsloop.service.context import Context
from opsloop.service.learn import completion, forecasts, reports, training
from opsloop.service.learn import dashboard as dashboard_service
from opsloop.service.learn import metrics as metric_service
from opsloop.service.learn.completion import CompletionReport
from opsloop.service.learn.forecast_views import ForecastReport
from opsloop.service.learn.views import (
    By,
    Dashboard,
    MetricsReport,
    ModelListing,
    PlaybookMetrics,
    RenderedReport,
    SentReport,
    TextModelListing,
    TrainResult,
    WeeklyReport,
)


class Learn:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._retrain_checked: dict[str, datetime] = {}
        """When each playbook's `retrain` schedule was last looked at."""

    def metrics(
        self, *, since: timedelta | None = None, playbook: str | None = None
    ) -> list[PlaybookMetrics]:
        return metric_service.metrics(self.ctx, since=since, playbook=playbook)

    def completion(self, playbook: str, *, weeks: int = 12) -> CompletionReport:
        """Completion speed per weekly cohort before and after a sequence playbook went live,
        and its funnel (opsloop/service/learn/completion.py)."""
        return completion.completion(self.ctx, playbook, weeks=weeks)

    def completion_playbooks(self) -> list[str]:
        """The active playbooks `completion` reports on: a sequence and a success outcome."""
        return [playbook.name for playbook in completion.sequence_playbooks(self.ctx)]

    def experiments(self, playbook: str) -> list[ExperimentReport]:
        """The playbook's message experiments: each variant's sends, outcomes, rate with its
        interval, probability of being best; the expected loss of stopping now and the winner
        or "no winner yet" (opsloop/service/learn/experiments.py)."""
        from opsloop.service.learn import experiments  # scipy: loaded only for this report

        return experiments.experiments(self.ctx, playbook)

    def end_experiment(
        self, playbook: str, *, option: str, action: int, keep: str, actor: str
    ) -> ExperimentReport:
        """A person ends an experiment keeping one variant (audited); only it is sent since."""
        from opsloop.service.learn import experiments

        return experiments.end_experiment(
            self.ctx, playbook, option=option, action=action, keep=keep, actor=actor
        )

    def forecast_report(self, playbook: str, *, weeks: int = 8) -> ForecastReport:
        """Each product's forecast, stock and reorder point, and a backtest of the last `weeks`
        (forecast error against last week repeated; the reorder policy against min/max)."""
        return forecasts.forecast_report(self.ctx, playbook, weeks=weeks)

    def dashboard(self, *, playbook: str | None = None) -> Dashboard:
        """`metrics_report(by="week")` with time saved, reviews waiting and failed deliveries:
        what the web dashboard shows (opsloop/service/learn/dashboard.py)."""
        return dashboard_service.dashboard(self.ctx, playbook=playbook)

    def weekly_report(
        self, week: str, *, playbook: str | None = None, summarize: bool = False
    ) -> WeeklyReport:
        """One ISO week's report (`2026-W47`): the dashboard's numbers against the week
        before, what was decided, what waits, what failed (opsloop/service/learn/reports.py).
        `summarize`: add the language model's paragraph when one is configured."""
        return reports.weekly_report(self.ctx, week, playbook=playbook, summarize=summarize)

    def report_email(self, report: WeeklyReport) -> RenderedReport:
        """The report as the email sends it: subject, text, HTML and the charts' PNGs."""
        from opsloop.service.learn import report_rendering

        return report_rendering.email(self.ctx, report)

    def report_text(self, report: WeeklyReport) -> str:
        """The report's plain-text email body (`opsloop report`)."""
        from opsloop.service.learn import report_rendering

        return report_rendering.text(self.ctx, report)

    def report_chart_images(self, report: WeeklyReport) -> dict[str, str]:
        """The report's charts as PNG `data:` URIs by chart id (the Reports page)."""
        from opsloop.service.learn import report_rendering

        return report_rendering.page_images(report)

    def last_ended_week(self) -> str:
        return reports.last_ended_week(self.ctx.clock())

    def sent_reports(self) -> list[SentReport]:
        """The weeks whose report went out by email, newest first."""
        return reports.sent_reports(self.ctx)

    def send_weekly_reports(self) -> int:
        """Email the last ended week's report to whoever has not had it (the hourly job)."""
        return reports.send_weekly_reports(self.ctx)

    def metrics_report(
        self,
        *,
        since: timedelta | None = None,
        playbook: str | None = None,
        by: By | None = None,
        baseline: Baseline | None = None,
        csat_event: str = metric_service.CSAT_EVENT,
        csat_field: str = metric_service.CSAT_FIELD,
    ) -> MetricsReport:
        """`metrics` plus ISO weeks (`by="week"`), each number against a baseline period, and
        customer satisfaction: what `GET /api/metrics` and `opsloop metrics` show."""
        return metric_service.report(
            self.ctx,
            since=since,
            playbook=playbook,
            by=by,
            baseline=baseline,
            csat_event=csat_event,
            csat_field=csat_field,
        )

    def backtest(
        self,
        *,
        playbook: str | None = None,
        version: int | None = None,
        source: str | None = None,
        file: str = "draft.yaml",
        since: str | datetime | timedelta = "90d",
        until: str | datetime | timedelta | None = None,
        actor: str = "api",
        save: bool = True,
        progress: Callable[[str, int, int | None], None] | None = None,
    ) -> BacktestRun:
        """Replay a saved playbook (`playbook`, optionally an older `version`) or a draft
        (`source`) over stored history, with no side effects; keep the report when `save`."""
        from opsloop.service.learn import backtesting  # Polars: loaded only when a backtest runs

        return backtesting.backtest(
            self.ctx,
            playbook=playbook,
            version=version,
            source=source,
            file=file,
            since=since,
            until=until,
            actor=actor,
            save=save,
            progress=progress,
        )

    def backtest_template(
        self,
        name: str,
        *,
        since: str | datetime | timedelta = "90d",
        until: str | datetime | timedelta | None = None,
        actor: str = "api",
        save: bool = True,
    ) -> BacktestRun:
        """`backtest` of a playbook template's text (as it would be installed) over stored
        history: what it would have decided here, before it is installed."""
        from opsloop.service.decide import playbook_templates

        text, file = playbook_templates.template_source(name)
        return self.backtest(
            source=text, file=file, since=since, until=until, actor=actor, save=save
        )

    def get_backtest(self, backtest_id: int) -> SavedBacktest:
        from opsloop.service.learn import backtesting

        return backtesting.get_backtest(self.ctx, backtest_id)

    def close_outcome_windows(self) -> int:
        return metric_service.close_outcome_windows(self.ctx)

    def train(
        self,
        playbook: str,
        *,
        actor: str,
        force: bool = False,
        step: Callable[[str], None] | None = None,
        split: Literal["time", "stratified"] | None = None,
        evaluate: Literal["auto", "holdout", "walk-forward"] | None = None,
    ) -> TrainResult:
        """Train the playbook's model from the ledger now: refused when the labelled rows are
        too few or of one class, skipped when they have not changed (unless `force`). The new
        version becomes champion only if its held-out score shows skill and it beats the
        current one on the same held-out rows; otherwise it runs in shadow as the challenger.
        `split`: hold out the latest rows (`time`) or a random share of each label's
        (`stratified`, for rows whose order is not time); None keeps the latest version's
        choice. `evaluate`: `walk-forward` adds a walk-forward evaluation, `holdout` leaves it
        out, `auto` (None) adds it when the history spans more than a few months."""
        return training.train(
            self.ctx,
            playbook,
            actor=actor,
            force=force,
            step=step,
            split=split,
            evaluate=evaluate,
        )

    def list_models(self, playbook: str) -> ModelListing | TextModelListing:
        """The playbook's model versions with status, metrics and training window."""
        return training.list_models(self.ctx, playbook)

    def retrain_due(self) -> list[TrainResult]:
        """Retrain the models whose playbook's `retrain` interval has passed (the schedule)."""
        return training.retrain_due(self.ctx, self._retrain_checked)

"""`opsloop demo`: load the simulated business into OpsLoop, then serve it with live events.

`prepare_demo` does everything but serving: the sinks up (a mail server and a chat/CRM
receiver, each on a free loopback port, standing in for the business's real ones), the service
built with its actions pointed at them, the built-in lead playbook applied, the history stored
(each event received when it occurred, with the customers' satisfaction answers after their
demos) and decided, a simulated reviewer settling the decisions older than a few days at the
time it would have (so the dashboard has weeks of success rate, override rate and time to
action to show) and the resulting actions delivered then, and a simulated salesperson marking
the follow-up tasks done a working day or so after they came (the dashboard's task completion
time). Before the lead reviews, the shop's playbooks run on its own history
(opsloop/demo/shop_playbooks.py): the win-back emails week by week, then restock, stock alerts
and slow movers with their latest run in the inbox. `run_demo` then serves the app (with
`/demo/outbox` showing what the sinks received), starts the workers and streams live events
(the leads' and the shop's, interleaved) until Ctrl-C or SIGTERM. It also makes sure the demo
has an owner account (created on the first run, with a new password each run) and an admin
API token, and prints both.
"""

from __future__ import annotations

import base64
import dataclasses
import heapq
import logging
import random
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from opsloop.builtin import builtin_playbook
from opsloop.core.decision_views import DecisionSummary
from opsloop.core.errors import OpsLoopError
from opsloop.core.events import validate_events
from opsloop.demo.reviewer import verdict
from opsloop.demo.shop import SHOP_DAYS, Shop
from opsloop.demo.shop_playbooks import run_shop_playbooks
from opsloop.demo.simulator import SOURCE, PlannedEvent, Simulator
from opsloop.demo.sinks import Outbox, SinkServer, SmtpSink, sink_router
from opsloop.service import OpsLoop
from opsloop.settings import Settings, WebhookEndpoint

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


PLAYBOOK = "lead-qualification"
ONBOARDING = "customer-onboarding"
REVIEW_AFTER = timedelta(days=3)
"""Decisions on triggers older than this were settled by the simulated reviewer."""
REVIEW_HOUR = 16
"""The simulated reviewer works the inbox at 16:00 UTC each working day."""
SALESPERSON = "sales@demo-business.example"
"""Marks the `task` actions' follow-up calls done (`_Salesperson`)."""
TASK_HOURS = (2.0, 40.0)
"""A follow-up call is made this many hours after its task came (drawn per lead), moved on
to the next working day's 10:00 when that falls on a weekend."""
TASKS_LEFT_OPEN = 0.1
"""The share of tasks the salesperson never gets to."""
SURVEYED = "demo.requested"
"""A lead that asked for a demo rates it (`csat.submitted`, 1 to 5) a few days later."""
RATINGS = (1, 2, 3, 4, 5)
RATING_WEIGHTS = (4, 7, 18, 41, 30)
BATCH = 1000
# A fixed secret: the demo's webhooks only ever travel over loopback to its own sink.
DEMO_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"opsloop-demo-only-webhook-secret").decode()


DEMO_OWNER = "owner@demo-business.example"
DEMO_TOKEN = "opsloop demo"


class DemoRefused(OpsLoopError):
    """The demo would write into a database that holds someone's real data."""


@dataclass(frozen=True, slots=True)
class DemoLogin:
    email: str
    password: str
    token: str


def demo_login(ops: OpsLoop) -> DemoLogin:
    """The demo's owner account, created on the first run and given a new password on each
    run, and a new admin API token (the previous run's is revoked). Only the demo prints
    credentials: it runs on its own database, and someone trying it needs them to sign in."""
    password = secrets.token_urlsafe(12)
    if any(user["email"] == DEMO_OWNER for user in ops.accounts.list_users()):
        ops.accounts.set_password(DEMO_OWNER, password, actor="demo")
    else:
        ops.accounts.create_user(DEMO_OWNER, password, "owner", actor="demo")
    for row in ops.accounts.list_tokens():
        if row["name"] == DEMO_TOKEN and row["status"] == "active":
            ops.accounts.revoke_token(row["id"], actor="demo")
    token = ops.accounts.create_token(DEMO_TOKEN, "admin", actor="demo").token
    return DemoLogin(DEMO_OWNER, password, token)


class DemoClock:
    """The service's clock: the real time, except while the demo replays its history, when
    `at` holds the simulated moment (reviews and deliveries then happen when they would have)."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self) -> datetime:
        return self.at if self.at is not None else utcnow()


@dataclass(frozen=True, slots=True)
class Loaded:
    leads: int
    events: int
    new_events: int
    decisions: int
    approved: int
    overridden: int
    pending: int
    seconds: float
    orders: int = 0
    """The shop's customer orders in the history (opsloop/demo/shop.py)."""
    win_back_sent: int = 0
    """Win-back emails the simulated owner approved (opsloop/demo/shop_playbooks.py)."""


@dataclass
class DemoBusiness:
    """The running parts of a prepared demo; `close()` stops them all."""

    ops: OpsLoop
    simulator: Simulator
    outbox: Outbox
    smtp: SmtpSink
    sinks: SinkServer
    history_start: datetime
    loaded: Loaded | None = None
    shop: Shop | None = None
    """The shop whose history was loaded; its live orders go on from there."""

    def close(self) -> None:
        self.ops.close()
        self.sinks.stop()
        self.smtp.stop()


def prepare_demo(
    settings: Settings,
    *,
    days: int,
    seed: int,
    console: Console,
    now: datetime | None = None,
) -> DemoBusiness:
    """Start the sinks and the service on the demo's data and load `days` days of history."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    clock = DemoClock()
    business = open_business(
        settings, seed=seed, history_start=now - timedelta(days=days), clock=clock
    )
    try:
        ops = business.ops
        _refuse_foreign_data(ops)
        ops.prepare()
        text, file = builtin_playbook(PLAYBOOK)
        ops.decide.apply_playbook(text, file, actor="demo")

        planned = business.simulator.planned_history(days, now)
        # The shop's orders go back further than the leads (shop.SHOP_DAYS at least).
        shop = business.shop = Shop(seed, now - timedelta(days=max(days, SHOP_DAYS)), now)
        planned = sorted(planned + survey_answers(planned, seed, now) + shop.history())
        triggers, new = _store_history(ops, planned, days, console)
        with console.status("Deciding…"):
            ops.run_jobs()
        try:
            with console.status("The shop's win-back emails and stock checks…"):
                win_back_sent = run_shop_playbooks(ops, shop, now, clock)
            _settle_old_decisions(ops, business.simulator, triggers, now, console, clock)
        finally:
            clock.at = None
        # Onboarding goes live now: the history's signups are the cohorts before it, and the
        # live stream's new customers get its sequence (docs/playbooks.md#sequences-steps).
        text, file = builtin_playbook(ONBOARDING)
        ops.decide.apply_playbook(text, file, actor="demo")
        ops.start()
        with console.status("Delivering the reviewed decisions' actions to the sinks…"):
            ops.run_jobs()
            _wait_for_deliveries(ops)
        ops.learn.close_outcome_windows()
        [row] = ops.learn.metrics(playbook=PLAYBOOK)
        business.loaded = Loaded(
            leads=sum(1 for e in planned if e.type == "lead.created"),
            events=len(planned),
            new_events=new,
            decisions=row["total"],
            approved=row["decisions"]["approved"],
            overridden=row["decisions"]["overridden"],
            pending=row["pending_reviews"],
            seconds=time.monotonic() - started,
            orders=sum(
                e.type == "order.placed" and e.subject.startswith("customer:") for e in planned
            ),
            win_back_sent=win_back_sent,
        )
    except BaseException:
        business.close()
        raise
    return business


def run_demo(
    settings: Settings, *, days: int, seed: int, events_per_minute: float, console: Console
) -> None:
    """Prepare the demo, then serve it on settings.host:settings.port until Ctrl-C."""
    import uvicorn

    from opsloop.gc_tuning import tune_for_serving
    from opsloop.web.app import create_app

    _check_port(settings.host, settings.port)
    console.print(
        f"Simulating {days} days of a small B2B business (seed {seed}) in "
        f"{escape(_where(settings))}…"
    )
    with _sigterm_as_ctrl_c():
        try:
            business = prepare_demo(settings, days=days, seed=seed, console=console)
        except KeyboardInterrupt:
            console.print("Stopped.")
            return
        ops = business.ops
        login = demo_login(ops)
        app = create_app(ops.settings, service=ops)
        # Only the outbox view: the sinks themselves listen on their own port.
        app.include_router(
            sink_router(business.outbox, webhook_secret=DEMO_WEBHOOK_SECRET, receivers=False)
        )
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=settings.host, port=settings.port, log_level="warning", access_log=False
            )
        )
        stream = LiveStream(
            ops, live_events(business, datetime.now(UTC)), per_minute=events_per_minute
        )
        try:
            ops.start()
            stream.start()
            tune_for_serving()
            _print_welcome(console, settings, business, events_per_minute, login)
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            console.print("Stopping the demo…")
            stream.stop()
            business.close()
    console.print(f"Stopped. The demo's data stays in {escape(_where(settings))}.")


def live_events(business: DemoBusiness, now: datetime) -> Iterator[dict[str, Any]]:
    """The live stream's events, unstamped: the leads' from `now` on and the shop's orders,
    purchases and deliveries from the end of its history on, interleaved by when they are
    planned, so both businesses move at their own pace while the stream fast-forwards."""
    timelines = [business.simulator.planned_live(now, since=business.history_start)]
    if business.shop is not None:
        timelines.append(business.shop.live())
    for event in heapq.merge(*timelines):
        yield event.as_dict(stamped=False)


class LiveStream:
    """Sends the demo's live events (`live_events`) through `ops.ingest.body`, `per_minute` a
    minute, in a background thread. Events an earlier run already sent are skipped without
    waiting."""

    def __init__(self, ops: OpsLoop, events: Iterator[dict[str, Any]], *, per_minute: float):
        self.ops = ops
        self.events = events
        self.interval = 60.0 / per_minute if per_minute > 0 else None
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-live-stream", daemon=True)

    def start(self) -> None:
        if self.interval is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        assert self.interval is not None
        for event in self.events:
            if self._stop.is_set():
                return
            try:
                ingested = self.ops.ingest.body(orjson.dumps(event), source=SOURCE)
            except Exception:
                log.exception("the demo's live stream could not store an event; going on")
            else:
                if ingested.accepted[0].status == "duplicate":
                    continue
                self.sent += 1
            if self._stop.wait(self.interval):
                return


# --- preparing -------------------------------------------------------------------------------


def open_business(
    settings: Settings,
    *,
    seed: int,
    history_start: datetime,
    clock: Callable[[], datetime] = utcnow,
) -> DemoBusiness:
    """The sinks started and the service built with its actions pointed at them; `clock` is
    the service's (the flywheel runs on a simulated one)."""
    outbox = Outbox()
    smtp = SmtpSink(outbox)
    smtp.start()
    sinks = SinkServer(sink_router(outbox, webhook_secret=DEMO_WEBHOOK_SECRET))
    try:
        sinks.start()
        demo_settings = settings.model_copy(
            update={
                "smtp_host": smtp.host,
                "smtp_port": smtp.port,
                "smtp_security": "none",
                "smtp_username": None,
                "smtp_password": None,
                "smtp_from": "hello@demo-business.example",
                # The stock alerts' chat messages (playbooks/stock-alerts.yaml name no channel).
                "notify_url": f"{sinks.url}/demo/sink/chat",
                "notify_channels": {"sales": f"{sinks.url}/demo/sink/chat"},
                "webhook_secret": SecretStr(DEMO_WEBHOOK_SECRET),
                "webhook_endpoints": {"crm": WebhookEndpoint(url=f"{sinks.url}/demo/sink/webhook")},
            }
        )
        ops = OpsLoop(demo_settings, clock=clock)
    except BaseException:
        sinks.stop()
        smtp.stop()
        raise
    return DemoBusiness(ops, Simulator(seed), outbox, smtp, sinks, history_start)


def _refuse_foreign_data(ops: OpsLoop) -> None:
    """Demo events must never mix with real ones: refuse a database that holds events but is
    not the demo's (a demo database may also hold what the user sent it while trying it)."""
    if ops.settings.auto_migrate:
        ops.migrate()
    sources = _event_counts_by_source(ops)
    if not sources or SOURCE in sources:
        return
    found = ", ".join(f"{count:,} from {source!r}" for source, count in sorted(sources.items()))
    hint = (
        "unset OPSLOOP_DATABASE_URL and pass --data-dir"
        if ops.settings.database_url
        else "pass --data-dir"
    )
    raise DemoRefused(
        f"{_where(ops.settings)} already holds events that are not the demo's ({found}). The "
        f"demo only runs on a database of its own, so it never mixes with real data: {hint} "
        "with a new folder, e.g. `opsloop --data-dir ./opsloop-demo demo`."
    )


def _event_counts_by_source(ops: OpsLoop) -> dict[str, int]:
    return ops.ingest.events_by_source()


def _store_history(
    ops: OpsLoop, planned: list[PlannedEvent], days: int, console: Console
) -> tuple[dict[int, datetime], int]:
    """Store the history in batches; return the trigger events' times by id and how many
    events were new (0 when the demo ran on this database before)."""
    triggers: dict[int, datetime] = {}
    new = 0
    received = ops.now()
    with _progress(console) as progress:
        task = progress.add_task(f"Loading {days} days of history", total=len(planned))
        for start in range(0, len(planned), BATCH):
            chunk = planned[start : start + BATCH]
            batch = [
                # Received when it occurred, as a live webhook would have been: time to
                # action is measured from receipt.
                dataclasses.replace(e, received_at=min(e.occurred_at, received))
                for e in validate_events(
                    [e.as_dict() for e in chunk], source=SOURCE, received_at=received
                )
            ]
            for event, accepted in zip(chunk, ops.ingest.store_events(batch), strict=True):
                new += accepted.status == "created"
                if event.type in ("lead.created", "demo.requested"):
                    triggers[accepted.id] = event.at
            progress.advance(task, len(chunk))
    return triggers, new


def survey_answers(planned: list[PlannedEvent], seed: int, now: datetime) -> list[PlannedEvent]:
    """Each lead that asked for a demo rates it 1 to 5 one to four days later (drawn per lead,
    so every run of a seed gives the same answers): the customer satisfaction the dashboard
    shows."""
    answers = []
    for event in planned:
        if event.type != SURVEYED:
            continue
        rng = random.Random(f"{seed}:csat:{event.subject}")
        at = event.at + timedelta(days=rng.uniform(1, 4))
        rating = rng.choices(RATINGS, RATING_WEIGHTS)[0]
        if at < now:
            key = f"demo:{event.subject}:csat"
            answers.append(
                PlannedEvent(at, key, "csat.submitted", event.subject, {"rating": rating})
            )
    return answers


def review_time(received: datetime) -> datetime:
    """When the simulated reviewer sees a decision: the next 16:00 UTC of a working day."""
    day = received.astimezone(UTC).replace(hour=REVIEW_HOUR, minute=0, second=0, microsecond=0)
    if day <= received:
        day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _settle_old_decisions(
    ops: OpsLoop,
    simulator: Simulator,
    triggers: dict[int, datetime],
    now: datetime,
    console: Console,
    clock: DemoClock,
) -> int:
    """The simulated reviewer: approve when the playbook agrees with the ground truth,
    otherwise override with the right option, each working day at 16:00 (a minute an
    approval, three an override), the actions delivered right after. Recent decisions stay
    pending for the user, and so do decisions on events the user sent."""
    pending: list[DecisionSummary] = []
    before: int | None = None
    while True:
        page = ops.decide.list_decisions(
            status="pending", playbook=PLAYBOOK, limit=500, before_id=before
        )
        pending.extend(page)
        if len(page) < 500:
            break
        before = page[-1]["id"]
    cutoff = now - REVIEW_AFTER
    sessions: dict[datetime, list[tuple[DecisionSummary, float]]] = {}
    for decision in sorted(pending, key=lambda d: int(d["id"])):
        at = _demo_trigger_time(ops, triggers, decision["event_id"])
        if at is not None and at < cutoff:
            truth = simulator.ground_truth(decision["subject"])
            sessions.setdefault(review_time(at), []).append((decision, truth))
    sales = _Salesperson(ops, simulator.seed, clock)
    with _progress(console) as progress:
        task = progress.add_task(
            "Simulated reviewer at work", total=sum(len(s) for s in sessions.values())
        )
        for start in sorted(sessions):
            sales.work_until(start)
            clock.at = start
            for decision, propensity in sessions[start]:
                request = verdict(decision["choice"], propensity)
                clock.at += timedelta(minutes=1 if request.verdict == "approve" else 3)
                ops.review.verdict(decision["id"], request)
                progress.advance(task)
            ops.run_jobs()  # the session's actions go out now, not when the demo starts
            sales.take_new_tasks()
        sales.work_until(now)
    return sum(len(s) for s in sessions.values())


class _Salesperson:
    """Makes the follow-up calls the `task` actions ask for, at the simulated time each is
    done, so the tasks' created → done times are the dashboard's task completion time. The
    clock only moves forward: calls due before a review session are made before it."""

    def __init__(self, ops: OpsLoop, seed: int, clock: DemoClock) -> None:
        self.ops, self.seed, self.clock = ops, seed, clock
        self.seen: set[int] = set()
        self.calls: list[tuple[datetime, int]] = []

    def take_new_tasks(self) -> None:
        for row in self.ops.deliver.list_tasks(status="open", limit=1_000_000):
            if row["id"] in self.seen:
                continue
            self.seen.add(row["id"])
            rng = random.Random(f"{self.seed}:task:{row['subject']}:{row['title']}")
            if rng.random() < TASKS_LEFT_OPEN:
                continue
            done = _working_time(row["created_at"] + timedelta(hours=rng.uniform(*TASK_HOURS)))
            # A task an earlier run of the demo left open is not done in the past now.
            heapq.heappush(self.calls, (max(done, self.clock()), row["id"]))

    def work_until(self, moment: datetime) -> None:
        while self.calls and self.calls[0][0] <= moment:
            done, task_id = heapq.heappop(self.calls)
            self.clock.at = done
            self.ops.deliver.complete_task(task_id, by=SALESPERSON)


def _working_time(at: datetime) -> datetime:
    """`at`, or the next working day's 10:00 UTC when it falls on a weekend."""
    if at.weekday() < 5:
        return at
    day = at.replace(hour=10, minute=0, second=0, microsecond=0)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _wait_for_deliveries(ops: OpsLoop, timeout: float = 120.0) -> None:
    """Until no action waits for its first attempt or is being sent (retries may remain)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(ops.deliver.list_actions(status=s, limit=1) for s in ("pending", "delivering")):
            return
        time.sleep(0.05)
    log.warning("the demo's actions are still being delivered after %.0f s", timeout)


def _demo_trigger_time(
    ops: OpsLoop, triggers: dict[int, datetime], event_id: int
) -> datetime | None:
    """When the demo's triggering event occurred; None for an event the user sent."""
    if event_id in triggers:
        return triggers[event_id]
    event = ops.ingest.get_event(event_id)  # e.g. a live event from an earlier run
    return event["occurred_at"] if event["source"] == SOURCE else None


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


# --- serving ---------------------------------------------------------------------------------


def _check_port(host: str, port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise DemoRefused(
                f"cannot listen on {host}:{port} ({exc.strerror}); is another server running? "
                "Stop it or pass --port."
            ) from None


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """A `kill` stops the demo as cleanly as Ctrl-C (uvicorn re-raises it after its shutdown)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _where(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url.split("@")[-1]
    return str(settings.data_dir)


def _print_welcome(
    console: Console,
    settings: Settings,
    business: DemoBusiness,
    events_per_minute: float,
    login: DemoLogin,
) -> None:
    loaded = business.loaded
    assert loaded is not None
    url = f"http://{settings.host}:{settings.port}"
    cli = _program()
    if settings.data_dir != Path("opsloop-data") and not settings.database_url:
        cli += f" --data-dir {settings.data_dir}"
    pending = business.ops.decide.list_decisions(status="pending", playbook=PLAYBOOK, limit=1)
    example = str(pending[0]["id"]) if pending else "ID"
    if loaded.new_events == loaded.events:
        stored = "all new"
    elif loaded.new_events == 0:
        stored = "all stored by an earlier run"
    else:
        stored = f"{loaded.new_events:,} new, the rest stored by an earlier run"
    totals = business.outbox.totals()
    console.print()
    console.print(f"[bold green]OpsLoop demo on {url}[/bold green]")
    console.print(
        f"Loaded {loaded.leads:,} leads and {loaded.events:,} events ({stored}) in "
        f"{loaded.seconds:.1f} s. The {PLAYBOOK} playbook made {loaded.decisions:,} decisions: a "
        f"simulated reviewer approved {loaded.approved:,} and overrode {loaded.overridden:,}, and "
        f"{loaded.pending:,} wait for you."
    )
    if loaded.orders:
        console.print(
            f"The shop took {loaded.orders:,} orders; its win-back test sent "
            f"{loaded.win_back_sent:,} emails with three subject lines (/playbooks/win-back/"
            "experiments), and the inbox holds its reorder, stock alert and slow mover proposals.",
            soft_wrap=True,
        )
    if totals["emails"] or totals["chats"]:
        console.print(
            f"All actions sent {totals['emails']:,} emails and {totals['chats']:,} chat "
            "messages to the demo's own mail server and chat."
        )
    if events_per_minute > 0:
        console.print(
            f"New events keep arriving, about {events_per_minute:g} a minute: leads, and the "
            "shop's orders taking its stock down."
        )
    # The dashboard sends a visitor to /login and back, so this one address is enough.
    console.print(
        f"\nOpen [bold]{url}/dashboard[/bold] and sign in as [bold]{login.email}[/bold] with the "
        f"password [bold]{escape(login.password)}[/bold] (new on each run of the demo).",
        soft_wrap=True,
    )
    console.print(
        "An admin API token for curl (shown once; a new one each run):\n"
        f"  [cyan]export OPSLOOP_TOKEN={login.token}[/cyan]",
        soft_wrap=True,
    )
    console.print("\nTry, in another terminal:")
    for command, why in (
        (f"{cli} decisions --status pending", "what waits for you"),
        (f"{cli} decisions {example}", "one decision, every scorecard line explained"),
        (f"{cli} review {example} --approve", "approve it; its actions run at once"),
        (f"{cli} experiments win-back", "the subject-line test: sends and orders per variant"),
        (
            f'curl -H "Authorization: Bearer $OPSLOOP_TOKEN" {url}/api/metrics',
            "success rate, override rate, time to action",
        ),
        (f"curl {url}/demo/outbox", "the emails and chat messages OpsLoop sent"),
    ):
        console.print(f"  [cyan]{escape(command)}[/cyan]  [dim]# {why}[/dim]", soft_wrap=True)
    console.print("\nCtrl-C stops the demo.")


def _program() -> str:
    """How the user started OpsLoop (`.venv/bin/opsloop` or `opsloop`), to echo it back."""
    invoked = sys.argv[0] if sys.argv else ""
    return invoked if Path(invoked).name == "opsloop" and " " not in invoked else "opsloop"

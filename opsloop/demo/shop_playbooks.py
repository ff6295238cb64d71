"""The shop's decisions in `opsloop demo`: win-back emails tested week by week, and the stock
playbooks live with their latest run in the inbox.

The win-back playbook (playbooks/win-back.yaml) runs every Monday of the shop's history on the
demo's clock: its decisions choose a subject line by Thompson sampling on the outcomes so far,
the simulated owner approves them at 16:00 (all but the last few days', left for the user), the
emails go to the demo's mail server, and the shop's hidden ground truth (`Shop.win_back`) says
which customers order again and when; each such order is stored when its moment comes, so the
sampling only ever learns from what already happened. The experiment page then shows the
variants with their sends and orders.

Restock, stock alerts and slow movers go live at the end, each just before its latest due time
and with that run made, so the inbox holds their reorder proposals, alerts and tasks, each explaining
its forecast or its numbers. Templates that are not shipped are skipped.
"""

from __future__ import annotations

import dataclasses
import heapq
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from opsloop.builtin import builtin_playbook
from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import NotFound
from opsloop.core.events import validate_events
from opsloop.core.schedules import Schedule, parse_schedule
from opsloop.demo.shop import Shop
from opsloop.demo.simulator import SOURCE, PlannedEvent
from opsloop.service import OpsLoop

if TYPE_CHECKING:
    from opsloop.demo.run import DemoClock

WIN_BACK = "win-back"
STOCK_PLAYBOOKS = ("restock", "stock-alerts", "slow-movers")
OWNER = "shop-owner@demo-business.example"
"""The simulated owner who approves the win-back emails."""
OWNER_HOUR = 16
LEAVE_PENDING = timedelta(days=3)
"""The win-back decisions of runs this close to the end of the history wait for the user; the
owner approves the others at 16:00 on the day of their run."""


def run_shop_playbooks(ops: OpsLoop, shop: Shop, now: datetime, clock: DemoClock) -> int:
    """Replay the win-back weeks, then make the stock playbooks' latest runs; return how many
    win-back emails the simulated owner approved."""
    # A playbook an earlier run of the demo applied keeps running on the workers, by the real
    # clock: going back in time to apply it again would claim due times that run never made.
    applied = {playbook["name"] for playbook in ops.decide.list_playbooks()}
    sent = 0 if WIN_BACK in applied else _win_back_weeks(ops, shop, now, clock)
    latest: list[tuple[datetime, str, str]] = []
    for name in STOCK_PLAYBOOKS:
        if name in applied:
            continue
        try:
            text, file = builtin_playbook(name)
        except NotFound:
            continue
        latest.append((_schedule(ops, text, file).latest(now), text, file))
    # Each goes live just before its latest due time, in the order of those times: making one
    # run never claims an earlier due time of a playbook that went live before it.
    for due, text, file in sorted(latest):
        clock.at = due - timedelta(seconds=1)
        ops.decide.apply_playbook(text, file, actor="demo")
        ops.decide.queue_due_schedules()  # the run before is skipped: the schedule starts here
        clock.at = due + timedelta(minutes=1)
        ops.decide.queue_due_schedules()
        ops.run_jobs()
    return sent


def _win_back_weeks(ops: OpsLoop, shop: Shop, now: datetime, clock: DemoClock) -> int:
    try:
        text, file = builtin_playbook(WIN_BACK)
    except NotFound:
        return 0
    schedule = _schedule(ops, text, file)
    # Nobody has been quiet for 60 days before the history is 60 days old.
    first = schedule.upcoming(shop.start + timedelta(days=60), 1)[0]
    runs = [first] if first <= now else []
    while runs and (following := schedule.upcoming(runs[-1], 1)[0]) <= now:
        runs.append(following)
    clock.at = first - timedelta(seconds=1)
    ops.decide.apply_playbook(text, file, actor="demo")
    ops.decide.queue_due_schedules()  # a new schedule starts with its next due time
    replies: list[PlannedEvent] = []
    sent = 0
    for due in runs:
        clock.at = due + timedelta(minutes=1)
        _store_due(ops, replies, clock.at)
        ops.learn.close_outcome_windows()
        ops.decide.queue_due_schedules()
        ops.run_jobs()
        if due >= now - LEAVE_PENDING:
            continue  # for the user
        clock.at = due.replace(hour=OWNER_HOUR, minute=0, second=0, microsecond=0)
        _store_due(ops, replies, clock.at)
        for decision in ops.decide.list_decisions(
            status="pending", playbook=WIN_BACK, limit=100_000
        ):
            if not due <= decision["created_at"] < due + timedelta(hours=1):
                continue  # another run's, left for the user by an earlier run of the demo
            clock.at += timedelta(seconds=20)
            ops.review.verdict(decision["id"], ReviewRequest(verdict="approve", reviewer=OWNER))
            detail = ops.decide.decision_detail(decision["id"])
            chosen = detail["explanation"].get("variants") or [{}]
            reply = shop.win_back(decision["subject"], chosen[0].get("variant"), clock.at)
            if reply is not None:
                heapq.heappush(replies, reply)
            sent += 1
        ops.run_jobs()  # the emails go out now
    clock.at = now
    _store_due(ops, replies, now)
    ops.learn.close_outcome_windows()
    return sent


def _schedule(ops: OpsLoop, text: str, file: str) -> Schedule:
    trigger = ops.decide.validate_playbook(text, file).trigger
    assert trigger.schedule is not None, f"{file} runs on a schedule"
    return parse_schedule(trigger.schedule, trigger.timezone or ops.settings.timezone)


def _store_due(ops: OpsLoop, planned: list[PlannedEvent], until: datetime) -> None:
    """Store the planned events (a heap) that happened by `until`, each received when it
    occurred."""
    due: list[PlannedEvent] = []
    while planned and planned[0].at <= until:
        due.append(heapq.heappop(planned))
    if not due:
        return
    events = validate_events([e.as_dict() for e in due], source=SOURCE, received_at=until)
    ops.ingest.store_events(
        [dataclasses.replace(e, received_at=min(e.occurred_at, until)) for e in events]
    )

"""The decisions of events just stored, waited for up to a timeout (`POST /api/events?wait=
decision`), as an n8n webhook → score → respond workflow answers with its result.

Playbooks that need no language model decide inside the ingest transaction, so their decisions
exist as soon as the events do. One that asks the model decides in a job after the commit
(service/decide/llm_decisions.py); the caller may wait for it, up to its timeout, and is told
which playbooks are still deciding when the time runs out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

from opsloop.reasoning.decide import triggers
from opsloop.service import reading
from opsloop.service.context import Context
from opsloop.service.decide.deciding import needs_llm, triage_key
from opsloop.service.decide.views import EventDecisions
from opsloop.store import decisions as decision_store
from opsloop.store import events as event_store

FIRST_LOOK_SECONDS = 0.02
"""The first pause between looks; each pause doubles, up to `LONGEST_LOOK_SECONDS`."""
LONGEST_LOOK_SECONDS = 0.25


def decisions_of(ctx: Context, event_ids: Collection[int]) -> dict[int, EventDecisions]:
    """Each event's decisions now, and the playbooks still deciding on it."""
    wanted = sorted(set(event_ids))
    active = ctx.catalog.active()
    asking = [playbook for playbook in active.values() if needs_llm(playbook)]
    with ctx.db.read() as conn:
        found = [reading.summary(d) for d in decision_store.for_events(conn, wanted)]
        # Only a playbook that asks the language model can still be deciding.
        stored = event_store.get_events(conn, wanted) if asking else {}
    answer: dict[int, EventDecisions] = {i: {"decisions": [], "pending": []} for i in wanted}
    for decision in found:
        answer[decision["event_id"]]["decisions"].append(decision)
    decided = {(d["event_id"], d["playbook"]) for d in found}
    expected = {
        (event.id, playbook.name): triage_key(playbook.name, event.subject)
        for event in stored.values()
        for playbook in asking
        if triggers(playbook.compiled, event.type, event.subject)
        and (event.id, playbook.name) not in decided
    }
    running = ctx.runtime.waiting(set(expected.values())) if expected else set()
    for (event_id, playbook), key in sorted(expected.items()):
        if key in running:
            answer[event_id]["pending"].append(playbook)
    return answer


async def await_decisions(
    ctx: Context, event_ids: Collection[int], *, timeout: float
) -> dict[int, EventDecisions]:
    """`decisions_of`, once no playbook is still deciding or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    pause = FIRST_LOOK_SECONDS
    while True:
        found = await asyncio.to_thread(decisions_of, ctx, event_ids)
        left = deadline - time.monotonic()
        if left <= 0 or not any(answer["pending"] for answer in found.values()):
            return found
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, LONGEST_LOOK_SECONDS)

"""Guardrails, property-tested: Hypothesis generates playbooks (every action kind, `sensitive`
marks, guardrail expressions, rules, modes, autonomy sampling) and interleaves ingests, job
runs, single and bulk reviews, overrides, retries, cancels, failing deliveries, mode changes,
changed options re-applied and time passing, on the real service with real SMTP and HTTP
sinks. After every step, and again at the end of each scenario, no sensitive action may have
reached the outside world or the ledger's delivered actions without a person's approval of
that option, given before it ran (tests/guardrail_world.py says exactly what is checked).

Scenarios share one service and database per test, each with fresh playbook names and
subjects, so thousands of action cases fit in seconds. The scenarios come from a fixed seed, so
CI and every laptop run the same ones in the same time; `OPSLOOP_GUARDRAIL_SEED=<n>` explores
others, `OPSLOOP_GUARDRAIL_EXAMPLES=<n>` runs more of them, and bench/guardrail_properties.py
runs many more and prints the counts. A failure prints the shrunk scenario and a
`@reproduce_failure` blob.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, settings

from opsloop.core.playbooks import ACTION_KINDS, GUARDED_KINDS
from tests.conftest import Clock, OpsFactory
from tests.guardrail_scenarios import KINDS, MONEY_OR_DELETION
from tests.guardrail_world import World, explore
from tests.sinks import HttpSink, SmtpSink

settings.register_profile(
    "opsloop-guardrails",
    deadline=None,  # a scenario runs hundreds of database transactions and deliveries
    database=None,  # no .hypothesis directory in the tree
    print_blob=True,  # a failure prints @reproduce_failure(...) to replay it exactly
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # No `explain` phase: it traces every line the service runs, far too slow for scenarios.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
PROFILE = settings.get_profile("opsloop-guardrails")

# Scenarios per run, and the action cases they must add up to at least, so the test cannot
# quietly shrink. SQLite runs the full count; PostgreSQL, slower per transaction, a smaller
# run of the same property on other scenarios.
SEED = int(os.environ.get("OPSLOOP_GUARDRAIL_SEED", "20261205"))
SQLITE_EXAMPLES = int(os.environ.get("OPSLOOP_GUARDRAIL_EXAMPLES", "40"))
MIN_CASES = 10_000
POSTGRES_EXAMPLES = 10
# The suite's own run must reach its volume and variety; a run exploring other seeds or
# sizes by hand checks the property only.
EXPLORING = any(
    name in os.environ for name in ("OPSLOOP_GUARDRAIL_SEED", "OPSLOOP_GUARDRAIL_EXAMPLES")
)


def run_scenarios(
    make_ops: OpsFactory,
    url: str,
    sinks: tuple[HttpSink, SmtpSink],
    clock: Clock,
    *,
    examples: int,
    seed: int,
) -> Counter[str]:
    http_sink, smtp_sink = sinks
    ops = make_ops(
        url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        outbox_max_attempts=3,  # failing deliveries reach the dead letters, and get retried
    )
    world = World(ops, http_sink, smtp_sink, clock)
    explore(world, settings(PROFILE, max_examples=examples), seed=seed)
    print(f"guardrail property on {ops.db.backend}: {dict(sorted(world.counts.items()))}")
    return world.counts


EXERCISED = (
    "sensitive cases held in auto",
    "sensitive cases run after approval",
    "plain cases run",
    "approve accepted",
    "override accepted",
    "bulk reviews",
    "ledger deliveries that needed a yes",
)


def assert_exercised(counts: Counter[str], *, cases: int, needed: tuple[str, ...]) -> None:
    """The generator must keep producing what the property is about: sensitive actions held
    back in `auto`, sensitive actions run after a person's approval or override (some in
    bulk), and plain ones run at once; and enough action cases."""
    assert counts["action cases"] >= cases, counts
    for count in needed:
        assert counts[count] > 0, f"no {count}: {counts}"


def test_the_generator_knows_every_action_kind_and_which_are_sensitive() -> None:
    assert set(KINDS) == set(ACTION_KINDS)
    assert MONEY_OR_DELETION == GUARDED_KINDS


# A passing run takes well under a minute; a failing one also shrinks its counterexample,
# which Hypothesis allows up to five minutes.
SHRINKING_TIMEOUT = pytest.mark.timeout(600)


@SHRINKING_TIMEOUT
def test_no_sensitive_action_runs_without_a_persons_prior_approval_on_sqlite(
    make_ops: OpsFactory,
    sqlite_url: str,
    http_sink: HttpSink,
    smtp_sink: SmtpSink,
    clock: Clock,
) -> None:
    counts = run_scenarios(
        make_ops, sqlite_url, (http_sink, smtp_sink), clock, examples=SQLITE_EXAMPLES, seed=SEED
    )
    if not EXPLORING:
        assert_exercised(counts, cases=MIN_CASES, needed=EXERCISED)


@SHRINKING_TIMEOUT
def test_no_sensitive_action_runs_without_a_persons_prior_approval_on_postgresql(
    make_ops: OpsFactory,
    pg_url: str,
    http_sink: HttpSink,
    smtp_sink: SmtpSink,
    clock: Clock,
) -> None:
    counts = run_scenarios(
        make_ops, pg_url, (http_sink, smtp_sink), clock, examples=POSTGRES_EXAMPLES, seed=SEED + 1
    )
    if not EXPLORING:
        assert_exercised(counts, cases=1_000, needed=EXERCISED[:4])

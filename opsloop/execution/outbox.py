"""Outbox policy: how long to wait before the next attempt, and when to give up.

The delivery use case (`service.delivering`) holds the transactions; this module holds the
rules, so they can be read and tested on their own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from opsloop.core.errors import DeliveryError

# Kinds OpsLoop carries out itself, inside the database transaction that records them: they
# happen exactly once by construction.
LOCAL_KINDS = frozenset({"update_traits", "task"})


@dataclass(frozen=True, slots=True)
class Retry:
    delay_seconds: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))],
    never below a tenth of the step so a retry is not immediate."""
    step = min(cap, base * 2 ** max(attempt - 1, 0))
    return (rng or random).uniform(step / 10, step)


def after_failure(
    error: DeliveryError, *, attempts: int, max_attempts: int, base: float, cap: float
) -> Retry | GiveUp:
    if not error.retryable:
        # Said so that the Retry button beside it makes sense: a person who fixes the cause
        # (the SMTP password, the address) retries it by hand.
        return GiveUp(
            f"{error} (not retried by itself: it fails the same way until the cause is fixed)"
        )
    if attempts >= max_attempts:
        return GiveUp(f"{error} (gave up after {attempts} attempts)")
    return Retry(backoff(attempts, base=base, cap=cap))

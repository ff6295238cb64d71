"""What a message experiment's report says (`ops.learn.experiments`): the shape the JSON API,
the web page and `opsloop experiments` share."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict


class VariantReport(TypedDict):
    name: str
    changes: dict[str, str]
    """The fields the variant replaces (subject, body, html, text), as written."""
    sends: int
    """Actions that sent it (dead-lettered ones excluded)."""
    resolved: int
    """Sends whose outcome is known: a success, or the window closed without one."""
    successes: int
    rate: float | None
    """successes / resolved; None before any outcome."""
    low: float
    high: float
    """The 95% credible interval of the success rate (Beta posterior, uniform prior)."""
    probability_best: float


class EndedExperiment(TypedDict):
    winner: str
    by: str
    at: str


class ExperimentReport(TypedDict):
    playbook: str
    option: str
    action: int
    """The action's position in the option's `actions`."""
    kind: str
    variants: list[VariantReport]
    leader: str
    expected_loss: float
    """What keeping the leader now would cost, on average, in success rate."""
    threshold: float
    """The expected loss under which the leader is called the winner."""
    winner: str | None
    """The leader once the expected loss is below the threshold; None: no winner yet."""
    verdict: str
    """The standing in words."""
    ended: EndedExperiment | None
    """Set once a person ended the experiment: only `winner` is sent since."""
    generated_at: datetime

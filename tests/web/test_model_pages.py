"""The model page of a playbook: who is champion and why, the held-out score with its interval,
the notes in words and the walk-forward figures beside the hold-out; owners train from it.
Through the app, signed in as the people who use it."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Clock
from tests.learning.synthetic import SCORING, plan, store_history
from tests.people import OWNER, VIEWER
from tests.web.test_playbook_pages import AppFor, Browse, app_for, browse, text_of

__all__ = ["app_for", "browse"]  # fixtures used here


def test_the_page_says_why_a_model_without_skill_is_no_champion(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    ops = app_for(SCORING)
    store_history(ops, plan(clock.now - timedelta(days=40), 300, "noise", seed=51))
    ops.learn.train("scoring", actor="ana")

    viewer = browse(ops, VIEWER)
    page = viewer.get("/playbooks/scoring/models")
    assert page.status_code == 200
    words = text_of(page.text.split('data-testid="challenger"')[1].split("</article>")[0])
    assert "Version 1: challenger" in words
    assert "no skill shown yet: ROC AUC" in words
    assert "(95% interval" in words
    assert "skill not shown: no-skill score 0.500 (chance)" in words
    assert "no skill shown: ROC AUC" in words, "the report's note"
    assert "60 rows" in words
    assert "/models/train" not in page.text, "a viewer cannot train"
    assert 'href="/playbooks/scoring/models"' in viewer.get("/playbooks/scoring").text
    assert viewer.get("/playbooks/nope/models").status_code == 404


def test_an_owner_trains_with_walk_forward_and_sees_it_beside_the_hold_out(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    ops = app_for(SCORING)
    store_history(ops, plan(clock.now - timedelta(days=40), 600, "informative", seed=52))
    owner = browse(ops, OWNER)
    trained = owner.post("/playbooks/scoring/models/train", {"evaluate": "walk-forward"})
    assert trained.status_code == 303
    page = owner.get(trained.headers["location"])
    words = text_of(page.text)
    assert "version 1 is the new champion: there was no champion, and it shows skill" in words
    champion = text_of(page.text.split('data-testid="champion"')[1].split("</article>")[0])
    assert "skill shown" in champion
    assert "trained on everything before each week and scored it: ROC AUC" in champion
    assert "Walk-forward by week" in champion
    assert "test 120 rows" in champion

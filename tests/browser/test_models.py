"""The model page in a browser: an owner trains from it with walk-forward and reads, beside the
hold-out, why the version is champion, its interval, the warnings and the walk-forward table;
a phone-width screen scrolls nothing sideways but the tables in their cards."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sideways
from tests.browser.test_playbooks import sign_in_as_owner
from tests.conftest import LiveServer
from tests.learning.synthetic import SCORING, plan, store_history

pytestmark = pytest.mark.browser

Shoot = Callable[[Any, str], Path]


def test_an_owner_trains_and_reads_why_the_model_is_champion(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    ops = live_app.ops
    ops.decide.apply_playbook(SCORING, "test.yaml", actor="test")
    store_history(ops, plan(datetime.now(UTC) - timedelta(days=40), 400, "informative", seed=61))
    sign_in_as_owner(page, live_app, "/playbooks/scoring")
    page.get_by_role("link", name="Trained models").click()
    page.wait_for_url("**/playbooks/scoring/models")
    expect(page.get_by_text("No versions yet.")).to_be_visible()

    page.get_by_label("Evaluation").select_option("walk-forward")
    page.get_by_role("button", name="Train").click()
    expect(page.get_by_test_id("trained")).to_contain_text("version 1 is the new champion")
    champion = page.get_by_test_id("champion")
    expect(champion.get_by_test_id("why")).to_contain_text("it shows skill: ROC AUC")
    expect(champion.get_by_test_id("skill")).to_contain_text("shown")
    expect(champion.get_by_test_id("walk-forward")).to_contain_text(
        "trained on everything before each week and scored it"
    )
    expect(champion.get_by_test_id("walk-forward-periods")).to_be_visible()
    shoot(page, "model-page")

    page.set_viewport_size({"width": 390, "height": 800})
    overflow = sideways(page)
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at 390 px"
    shoot(page, "model-page-phone")

"""The experiments page, its JSON route and `opsloop experiments`: the verdict in words, each
variant's figures, and an owner ending an experiment (readers cannot)."""

from __future__ import annotations

import json
import re

from opsloop.service import OpsLoop
from tests.conftest import Clock
from tests.people import OWNER, VIEWER
from tests.service.test_experiments import PLAYBOOK, emails, lead, send
from tests.test_cli_replay_and_cancel import cli_database, run
from tests.web.test_playbook_pages import AppFor, Browse, app_for, browse, text_of

__all__ = ["app_for", "browse", "cli_database"]  # fixtures used here


def converted(ops: OpsLoop, clock: Clock, count: int) -> None:
    """`count` leads; those sent the offer buy; the windows close."""
    send(ops, *(lead(i) for i in range(count)))
    buyers = [s for s, r in emails(ops).items() if r["variant"] == "offer"]
    send(ops, *({"type": "purchase", "subject": s} for s in buyers))
    clock.advance(days=8)
    ops.learn.close_outcome_windows()


def test_page_and_api_say_how_sure_and_an_owner_ends_it(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    ops = app_for(PLAYBOOK)
    viewer = browse(ops, VIEWER)
    assert 'href="/playbooks/welcome/experiments"' in viewer.get("/playbooks/welcome").text
    page = viewer.get("/playbooks/welcome/experiments")
    assert page.status_code == 200
    assert "No winner yet: no outcome has come in for any variant." in text_of(page.text)
    assert 'data-testid="end-form"' not in page.text  # readers do not end experiments
    refused = viewer.post(
        "/playbooks/welcome/experiments/end", {"option": "send", "action": "0", "keep": "plain"}
    )
    assert refused.status_code in (302, 303, 403)

    converted(ops, clock, 30)
    [report] = viewer.get("/api/playbooks/welcome/experiments").json()
    assert report["winner"] == "offer"
    assert report["ended"] is None
    words = text_of(viewer.get("/playbooks/welcome/experiments").text)
    assert "'offer' is the winner: it is best with probability 100%" in words
    assert re.search(r"offer \d+ \d+ \d+ 100\.0% \(\d+\.\d–\d+\.\d%\) 100%", words), words

    owner = browse(ops, OWNER)
    page = owner.get("/playbooks/welcome/experiments")
    assert 'data-testid="end-form"' in page.text
    wrong = owner.post(
        "/playbooks/welcome/experiments/end", {"option": "send", "action": "0", "keep": "nope"}
    )
    assert wrong.status_code == 409
    assert "no variant &#39;nope&#39;" in wrong.text
    done = owner.post(
        "/playbooks/welcome/experiments/end", {"option": "send", "action": "0", "keep": "offer"}
    )
    assert done.status_code == 303
    words = text_of(owner.get("/playbooks/welcome/experiments").text)
    assert "Ended by olga@example.com: only 'offer' is sent now." in words
    assert viewer.get("/playbooks/nope/experiments").status_code == 404


def test_cli_shows_the_report_and_ends_with_keep(
    make_ops: object, cli_database: str, clock: Clock
) -> None:
    ops = make_ops(cli_database, playbooks=[PLAYBOOK])  # type: ignore[operator]
    code, out = run("experiments", "welcome")
    assert code == 0, out
    assert "No winner yet: no outcome has come in for any variant." in out
    converted(ops, clock, 20)
    code, out = run("experiments", "welcome", "--json")
    assert code == 0
    assert json.loads(out)[0]["leader"] == "offer"
    code, out = run("experiments", "welcome", "--keep", "plain")
    assert code == 0, out
    assert "only 'plain' is sent now" in out
    code, out = run("experiments", "welcome", "--keep", "offer")
    assert code != 0
    assert "ended by" in out

"""The Sources page over real HTTP: each ingest endpoint with its full URL and examples that run
as written, what each source sent, and the quarantine, where only an owner replays an item."""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, OpsFactory, Serve, lead_playbook
from tests.people import OWNER, REVIEWER, VIEWER, SignIn, add_people

SECRET = "a shop secret"
SOURCES = {
    "shop": {"secret": SECRET},
    "typeform": {
        "secret": SECRET,
        "signature_header": "X-Hub-Signature-256",
        "type": "form.submitted",
        "subject": "'lead:' + lower(email)",
    },
    "backoffice": {"secret": SECRET, "signed": "timestamp"},
}
UNSIGNED = {"shop": {"allow_unsigned": True}, "typeform": {"allow_unsigned": True}}
FORM = b'{"email": "Ana@Example.com", "answers": [1, 2]}'


@pytest.fixture
def site(make_ops: OpsFactory, sqlite_url: str, serve: Serve) -> LiveServer:
    ops = make_ops(sqlite_url, playbooks=[lead_playbook()], use_clock=False)
    add_people(ops)
    return serve(ops)


@pytest.fixture
def open_site(make_ops: OpsFactory, sqlite_url: str, serve: Serve) -> LiveServer:
    """Sources that take unsigned deliveries, without mappings: bodies that are not OpsLoop
    events are refused and kept."""
    ops = make_ops(sqlite_url, playbooks=[lead_playbook()], use_clock=False, sources=UNSIGNED)
    add_people(ops)
    return serve(ops)


def examples(page: str) -> list[str]:
    found = re.findall(
        r'<pre class="adm-code" data-testid="example"><code>(.*?)</code></pre>', page, re.S
    )
    return [html.unescape(code) for code in found]


def items(page: str) -> list[str]:
    return re.findall(r'<article class="card adm-item".*?</article>', page, re.S)


def test_a_new_installation_shows_where_to_send_and_empty_states(
    site: LiveServer, signed: SignIn
) -> None:
    viewer, _ = signed(site.url, VIEWER)
    page = viewer.get("/sources")

    assert page.status_code == 200
    text = page.text
    assert f"{site.url}/api/events" in text
    assert f"{site.url}/hooks/&lt;name&gt;" in text
    assert "an API token of scope review or admin" in text
    assert "No events yet." in text
    assert "Nothing is held." in text
    assert 'href="/sources" aria-current="page"' in text
    assert 'href="/settings"' not in text  # owners only
    assert len(examples(text)) == 2  # one event, a batch
    assert "A name nobody declared answers 404 and nothing is kept." in text


def test_the_examples_on_the_page_work_as_written(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve, tmp_path: Path, signed: SignIn
) -> None:
    tools = [tool for tool in ("bash", "curl", "openssl") if shutil.which(tool) is None]
    if tools:
        reason = f"the examples need {', '.join(tools)}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI installs them")
        print(f"skipped: {reason}")
        pytest.skip(reason)
    ops = make_ops(sqlite_url, use_clock=False, sources=SOURCES)
    add_people(ops)
    site = serve(ops)
    token = ops.accounts.create_token("curl", "review", actor="tests").token
    viewer, _ = signed(site.url, VIEWER)
    page = viewer.get("/sources").text
    assert "X-Hub-Signature-256" in page
    assert SECRET not in page  # named by its variable, never shown
    assert "OPSLOOP_SOURCES__SHOP__SECRET" in page
    (tmp_path / "payload.json").write_bytes(FORM)

    answers = []
    for code in examples(page):
        script = re.sub(r"^SECRET=.*$", f"SECRET={shlex.quote(SECRET)}", code, flags=re.M)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env={**os.environ, "OPSLOOP_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, (code, done.stderr)
        answers.append(json.loads(done.stdout))
    assert len(answers) == 5  # one event, a batch, backoffice (timestamped), shop, typeform
    assert all(
        answer.get("status") == "created" or answer.get("created") == 2 for answer in answers
    ), answers

    counts = {a.source: a.events for a in ops.ingest.source_activity()}
    assert counts == {"api": 3, "backoffice": 1, "shop": 1, "typeform": 1}
    [form] = ops.ingest.list_events(type="form.submitted")
    assert form["subject"] == "lead:ana@example.com"
    page = viewer.get("/sources").text
    assert '<a href="#webhooks-shop"><code>shop</code></a>' in page
    assert "<code>form.submitted</code> 1" in page
    assert "No events yet." not in page


def test_the_quarantine_shows_the_reason_and_the_body_escaped(
    open_site: LiveServer, signed: SignIn
) -> None:
    site = open_site
    body = b'{"type": "note.added", "subject": "customer:1", "payload": {"text": "<script>alert(1)</script>"}, "oops": 1}'
    refused = httpx.post(f"{site.url}/hooks/shop", content=body, timeout=10)
    assert refused.status_code == 422
    reviewer, _ = signed(site.url, REVIEWER)

    page = reviewer.get("/sources").text
    [item] = items(page)
    assert "from <code>shop</code>" in item
    assert "oops: unknown field" in item
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in item
    assert "<script>alert" not in page
    assert "An owner can replay this item once its source is fixed." in item
    assert "<button" not in item


def test_an_owner_replays_an_item_once_the_source_is_fixed(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve, signed: SignIn
) -> None:
    before = make_ops(sqlite_url, use_clock=False, sources=UNSIGNED)
    add_people(before)
    refused = serve(before)
    answer = httpx.post(f"{refused.url}/hooks/typeform", content=FORM, timeout=10)
    assert answer.status_code == 422
    item_id = answer.json()["quarantine_id"]

    # The owner maps the source and restarts OpsLoop.
    fixed = serve(
        make_ops(
            sqlite_url,
            use_clock=False,
            sources={"typeform": SOURCES["typeform"] | {"secret": None, "allow_unsigned": True}},
        )
    )
    owner, csrf = signed(fixed.url, OWNER)
    page = owner.get("/sources").text
    assert f'action="/sources/quarantine/{item_id}/replay"' in page

    done = owner.post(f"/sources/quarantine/{item_id}/replay", data={"csrf_token": csrf})

    assert (done.status_code, done.headers["location"]) == (
        303,
        f"/sources?quarantine=all#item-{item_id}",
    )
    [event] = fixed.ops.ingest.list_events(type="form.submitted")
    [item] = items(owner.get("/sources?quarantine=all").text)
    assert 'data-status="replayed"' in item
    assert f'stored as\n    <a href="/api/events/{event["id"]}">event {event["id"]}</a>' in item
    assert "by olga@example.com" in item
    assert "<button" not in item
    held = owner.get("/sources").text
    assert "Nothing is held." in held
    assert "<code>typeform</code>" in held  # in what each source has sent
    again = owner.post(f"/sources/quarantine/{item_id}/replay", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert f"Quarantined item {item_id} is already replayed." in again.text


def test_a_replay_refused_again_shows_the_new_reason_in_place(
    open_site: LiveServer, signed: SignIn
) -> None:
    site = open_site
    answer = httpx.post(f"{site.url}/hooks/typeform", content=FORM, timeout=10)
    item_id = answer.json()["quarantine_id"]
    owner, csrf = signed(site.url, OWNER)

    fragment = owner.post(
        f"/sources/quarantine/{item_id}/replay",
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )

    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert f'id="item-{item_id}"' in fragment.text
    assert 'data-status="held"' in fragment.text
    assert "was refused again: type: is required; subject: is required" in fragment.text
    assert "Replay</button>" in fragment.text  # try again after the next fix
    assert site.ops.ingest.quarantine_counts() == {
        "held": 1
    }  # the replay itself quarantines nothing


def test_only_an_owner_may_replay(open_site: LiveServer, signed: SignIn) -> None:
    site = open_site
    answer = httpx.post(f"{site.url}/hooks/typeform", content=FORM, timeout=10)
    item_id = answer.json()["quarantine_id"]
    for person in (VIEWER, REVIEWER):
        client, csrf = signed(site.url, person)
        refused = client.post(f"/sources/quarantine/{item_id}/replay", data={"csrf_token": csrf})
        assert refused.status_code == 403, person
        assert "needs the owner role" in refused.text
    assert site.ops.ingest.quarantine_items()[0]["replays"] == []


def test_what_cannot_be_replayed_says_why(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve, signed: SignIn
) -> None:
    ops = make_ops(sqlite_url, use_clock=False, sources=SOURCES)
    add_people(ops)
    site = serve(ops)
    unsigned = httpx.post(
        f"{site.url}/hooks/shop", content=b'{"type": "a.b", "subject": "c:d"}', timeout=10
    )
    assert unsigned.status_code == 401
    item_id = unsigned.json()["quarantine_id"]
    owner, csrf = signed(site.url, OWNER)

    [item] = items(owner.get("/sources").text)
    assert "Cannot be replayed: it was refused for its signature" in item
    assert "<button" not in item
    refused = owner.post(f"/sources/quarantine/{item_id}/replay", data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert "cannot be replayed: it was refused for its signature" in refused.text
    missing = owner.post("/sources/quarantine/999/replay", data={"csrf_token": csrf})
    assert missing.status_code == 404
    assert "No quarantined item 999." in missing.text

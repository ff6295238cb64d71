"""The playbook form through the test client, signed in through the real /login form: a playbook
created with the form and applied, edited to version 2, saved unchanged without a new version;
the shipped playbooks read into the rendered form and back; problems next to their fields, as
you type and without JavaScript; Add and Remove without JavaScript; kept parts; owners only."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from opsloop.core.playbooks import parse_playbook
from opsloop.store import audit as audit_store
from tests.conftest import LEAD_PLAYBOOK, lead_playbook
from tests.people import OWNER, REVIEWER, VIEWER
from tests.web import test_playbook_pages as pages
from tests.web.test_playbook_form_yaml import NEW, NEW_YAML, ROOT
from tests.web.test_playbook_pages import LEAD, ROUTING, TRIAGE, AppFor, Browse, Browser, text_of

# The fixtures of the playbooks pages' tests, used here by name.
app_for = pages.app_for
browse = pages.browse

SAVE = "/playbooks/_form/save"
VALIDATE = "/playbooks/_form/validate"
ONBOARDING = (ROOT / "playbooks" / "customer-onboarding.yaml").read_text(encoding="utf-8")
SHOPPERS = (ROOT / "examples" / "shopper-intent.yaml").read_text(encoding="utf-8")


class FormFields(HTMLParser):
    """The fields of the page's form as a browser submits them (the first newline of a textarea
    is not part of its value; a select without a selected option sends its first)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.inside = False
        self.textarea: str | None = None
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "form" and found.get("id") == "pf-form":
            self.inside = True
        if not self.inside:
            return
        name = found.get("name", "")
        if tag == "input" and found.get("type") in ("text", "hidden"):
            self.fields[name] = found.get("value", "")
        elif tag == "input" and found.get("type") == "checkbox" and "checked" in found:
            self.fields[name] = found.get("value", "on")
        elif tag == "textarea":
            self.textarea, self.fields[name] = name, ""
        elif tag == "select":
            self.select = name
        elif (
            tag == "option"
            and self.select is not None
            and ("selected" in found or self.select not in self.fields)
        ):
            self.fields[self.select] = found.get("value", "")

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.fields[self.textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self.textarea is not None:
            self.fields[self.textarea] = self.fields[self.textarea].removeprefix("\n")
            self.textarea = None
        elif tag == "select":
            self.select = None
        elif tag == "form":
            self.inside = False


def form_fields(page: str) -> dict[str, str]:
    parser = FormFields()
    parser.feed(page)
    parser.fields.pop("csrf_token", None)
    return parser.fields


def preview(page: str) -> str:
    """The YAML the form shows it will save, without its line numbers."""
    code = page.split('data-testid="preview"><code>')[1].split("</code>")[0]
    return html.unescape(re.sub(r'<span class="pb-ln[^"]*"[^>]*>\d+</span>', "", code))


def slot(page: str, target: str) -> str:
    """The text shown next to a field, row or section."""
    found = re.search(rf'<p [^>]*id="e-{re.escape(target)}"[^>]*>(.*?)</p>', page, re.S)
    assert found, f"no problem slot for {target}"
    return html.unescape(found.group(1)).strip()


def test_an_owner_creates_a_playbook_with_the_form_and_it_is_applied(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for()
    owner = browse(ops, OWNER)
    page = owner.get("/playbooks/_new/form")
    assert page.status_code == 200
    assert '<a href="/playbooks" aria-current="page">Playbooks</a>' in page.text
    starter = form_fields(page.text)
    assert starter["name"] == "my-playbook"
    assert starter["trigger-events"] == "lead.created"
    assert starter["features-0-kind"] == "count"
    assert 'data-testid="valid"' in page.text, "the starter is checked as the page loads"

    check = owner.htmx(VALIDATE, {**NEW, "editing": ""})
    assert check.status_code == 200
    assert "No problems: welcome is ready to save." in text_of(check.text)
    assert preview(check.text) == NEW_YAML, "the YAML it will save is shown"

    saved = owner.post(SAVE, {**NEW, "editing": ""})
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/playbooks/welcome?saved=1"
    record = ops.decide.get_playbook("welcome")
    assert record["source"] == NEW_YAML
    assert (record["version"], record["mode"]) == (1, "recommend")
    assert (record["versions"][0]["file"], record["versions"][0]["created_by"]) == (
        "web form",
        OWNER.email,
    )
    with ops.ctx.db.read() as conn:
        [entry] = audit_store.trail(conn, "playbook", "welcome")
    assert (entry["verb"], entry["actor"]) == ("playbook.version_created", OWNER.email)
    assert "Saved as version 1." in text_of(owner.get(saved.headers["location"]).text)


def test_editing_with_the_form_saves_version_2_and_an_unchanged_form_saves_nothing(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(lead_playbook())
    owner = browse(ops, OWNER)
    page = owner.get(f"/playbooks/{LEAD}/form")
    assert page.status_code == 200
    words = text_of(page.text)
    assert "Edit lead-qualification with the form" in words
    assert "The playbook is in recommend mode: saving keeps it there." in words
    assert 'data-testid="kept"' not in page.text, "the built-in playbook is all common shapes"
    fields = form_fields(page.text)
    assert fields["editing"] == LEAD
    assert fields["rules-0-when"] == "score >= 60"
    assert fields["options-1-actions-0-body"].startswith("Hi {{ entity.first_name or 'there' }},\n")
    assert fields["header"].startswith("# Lead qualification:")

    same = owner.post(SAVE, fields)
    assert same.headers["location"] == f"/playbooks/{LEAD}?saved=1&unchanged=true"
    assert ops.decide.get_playbook(LEAD)["version"] == 1

    saved = owner.post(SAVE, {**fields, "rules-0-when": "score >= 40", "scorecard-5-points": "-20"})
    assert saved.headers["location"] == f"/playbooks/{LEAD}?saved=2"
    record = ops.decide.get_playbook(LEAD)
    assert record["version"] == 2
    playbook = parse_playbook(record["source"] or "")[0]
    assert playbook.rules[0].when == "score >= 40"
    assert playbook.scorecard[5].points == "-20"
    assert (record["source"] or "").startswith(LEAD_PLAYBOOK.read_text().split("\nname:")[0])
    assert "Saved as version 2." in text_of(owner.get(saved.headers["location"]).text)


@pytest.mark.parametrize(
    "text",
    [lead_playbook(), ONBOARDING, SHOPPERS, TRIAGE, ROUTING],
    ids=["lead-qualification", "customer-onboarding", "shopper-intent", "triage", "routing"],
)
def test_a_playbook_read_into_the_rendered_form_comes_back_the_same(
    app_for: AppFor, browse: Browse, text: str
) -> None:
    ops = app_for(text)
    name = parse_playbook(text)[0].name
    owner = browse(ops, OWNER)
    fields = form_fields(owner.get(f"/playbooks/{name}/form").text)
    check = owner.htmx(VALIDATE, fields)
    assert check.status_code == 200, text_of(check.text)
    assert f"No problems: {name} is ready to save." in text_of(check.text)
    assert parse_playbook(preview(check.text))[0] == parse_playbook(text)[0]
    saved = owner.post(SAVE, fields)
    assert saved.headers["location"] == f"/playbooks/{name}?saved=1&unchanged=true"


def test_problems_are_shown_next_to_their_field_as_you_type_and_after_saving(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(lead_playbook())
    owner = browse(ops, OWNER)
    fields = form_fields(owner.get(f"/playbooks/{LEAD}/form").text)
    typo = {**fields, "scorecard-0-when": "vists_7d >= 5", "options-0-actions-1-due_in": "tomorrow"}

    # The shape first: the due time is no duration.
    check = owner.htmx(VALIDATE, typo)
    assert check.status_code == 422
    assert '<li data-for="options-0-actions-1-due_in"' in check.text
    assert "1 problem to fix before saving: options.hot.actions[1].due_in:" in text_of(check.text)
    check = owner.htmx(VALIDATE, {**typo, "options-0-actions-1-due_in": "1d"})
    [item] = re.findall(r'<li data-for="([^"]+)" data-line="(\d+)">', check.text)
    assert item[0] == "scorecard-0-when"
    assert "scorecard[0].when: unknown name 'vists_7d'; did you mean 'visits_7d'?" in text_of(
        check.text
    )
    marked = re.search(r'<span class="pb-ln pf-bad-line" id="pf-line-(\d+)">', check.text)
    assert marked, "the line of the YAML is marked"
    assert marked.group(1) == item[1]

    # Without JavaScript: the form again, the problem next to the field, nothing saved.
    refused = owner.post(SAVE, {**typo, "options-0-actions-1-due_in": "1d"})
    assert refused.status_code == 422
    assert (
        slot(refused.text, "scorecard-0-when")
        == "unknown name 'vists_7d'; did you mean 'visits_7d'?"
    )
    field = refused.text.split('id="f-scorecard-0-when"')[1].split(">")[0]
    assert 'value="vists_7d &gt;= 5"' in field, "the text is kept for fixing"
    assert 'aria-invalid="true"' in field
    assert slot(refused.text, "scorecard-1-when") == ""
    assert ops.decide.get_playbook(LEAD)["version"] == 1

    # What the form itself refuses: two options of one name, at the second one's name.
    twice = owner.htmx(VALIDATE, {**fields, "options-1-name": "hot"})
    assert twice.status_code == 422
    assert '<li data-for="options-1-name">' in twice.text
    assert "Option hot, name: another option is named hot: give each its own name" in text_of(
        twice.text
    )


def test_rows_are_added_and_removed_without_javascript(app_for: AppFor, browse: Browse) -> None:
    ops = app_for(lead_playbook())
    owner = browse(ops, OWNER)
    fields = form_fields(owner.get(f"/playbooks/{LEAD}/form").text)
    assert "scorecard-6-when" not in fields

    added = owner.post(SAVE, {**fields, "op": "add:scorecard"})
    assert added.status_code == 200
    with_line = form_fields(added.text)
    assert with_line["scorecard-6-when"] == ""
    assert with_line["options-0-actions-1-title"] == fields["options-0-actions-1-title"]

    action = owner.post(SAVE, {**with_line, "op": "add:options-1-actions"})
    with_action = form_fields(action.text)
    assert with_action["options-1-actions-1-kind"] == "email"
    removed = owner.post(SAVE, {**with_action, "op": "remove:options-0-actions-0"})
    left = form_fields(removed.text)
    assert "options-0-actions-0-kind" not in left
    assert left["options-0-actions-1-kind"] == "task"
    # Enter in a field: the form is checked again, never saved.
    entered = owner.post(SAVE, {**left, "op": "check"})
    assert entered.status_code == 200
    assert ops.decide.get_playbook(LEAD)["version"] == 1

    # The blank rows are left out; the removed notify goes.
    saved = owner.post(SAVE, left)
    assert saved.headers["location"] == f"/playbooks/{LEAD}?saved=2"
    hot = parse_playbook(ops.decide.get_playbook(LEAD)["source"] or "")[0].options["hot"]
    assert [action.kind for action in hot.actions] == ["task"]


def test_what_the_form_cannot_edit_is_listed_and_kept_when_saving(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(ONBOARDING)
    owner = browse(ops, OWNER)
    page = owner.get("/playbooks/customer-onboarding/form")
    kept = text_of(page.text.split('data-testid="kept"')[1].split("</div>")[0])
    assert "A review deadline: review" in kept
    assert "Option onboard: stop_when, steps" in kept
    assert "Kept as written (the form cannot edit it): stop_when, steps." in text_of(page.text)
    fields = form_fields(page.text)
    saved = owner.post(SAVE, {**fields, "options-0-label": "Welcome series"})
    assert saved.headers["location"] == "/playbooks/customer-onboarding?saved=2"
    before, after = (
        parse_playbook(ONBOARDING)[0],
        parse_playbook(ops.decide.get_playbook("customer-onboarding")["source"] or "")[0],
    )
    assert after.options["onboard"].label == "Welcome series"
    assert after.options["onboard"].steps == before.options["onboard"].steps
    assert after.review == before.review


def test_the_form_is_linked_from_the_playbook_pages_for_owners_only(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(lead_playbook())
    owner, viewer = browse(ops, OWNER), browse(ops, VIEWER)
    assert 'href="/playbooks/_new/form"' in owner.get("/playbooks").text
    assert f'href="/playbooks/{LEAD}/form"' in owner.get(f"/playbooks/{LEAD}").text
    assert "New playbook with the form" in text_of(owner.get("/playbooks").text)
    assert "Edit with the form" in text_of(owner.get(f"/playbooks/{LEAD}").text)
    assert "/playbooks/_new/form" not in viewer.get("/playbooks").text
    assert f"/playbooks/{LEAD}/form" not in viewer.get(f"/playbooks/{LEAD}").text


def test_with_no_playbook_the_list_offers_the_form(app_for: AppFor, browse: Browse) -> None:
    empty = browse(app_for(), OWNER).get("/playbooks").text
    assert "Fill in the form: fields and buttons for the trigger" in text_of(empty)
    assert 'href="/playbooks/_new/form"' in empty.split('data-testid="empty"')[1]


def test_only_owners_use_the_form_and_unknown_names_are_not_found(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(lead_playbook())
    reviewer: Browser = browse(ops, REVIEWER)
    fields = {**NEW, "editing": ""}
    for answer in (
        reviewer.get("/playbooks/_new/form"),
        reviewer.get(f"/playbooks/{LEAD}/form"),
        reviewer.htmx(VALIDATE, fields),
        reviewer.post(SAVE, fields),
    ):
        assert answer.status_code == 403
    owner = browse(ops, OWNER)
    forged = owner.client.post(SAVE, data=fields)
    assert forged.status_code == 403
    for name in ("nope", "Bad_Name", "x" * 81, "_templates", "..%2f"):
        answer = owner.get(f"/playbooks/{name}/form")
        assert answer.status_code == 404, name
    assert "There is no playbook named “nope”." in text_of(owner.get("/playbooks/nope/form").text)
    assert ops.decide.list_playbooks()[0]["version"] == 1
    assert "welcome" not in {p["name"] for p in ops.decide.list_playbooks()}

"""The language model adapter against a local OpenAI-compatible server on loopback: what is
sent (only the named fields), retries, timeouts, answers that break the contract, the cache,
the ledger's tokens and cost, and a key that never leaks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.core.errors import Conflict, InvalidInput
from opsloop.reasoning.llm_client import (
    Fields,
    LanguageModel,
    LLMError,
    LLMNotConfigured,
    select_fields,
)
from opsloop.service import OpsLoop
from opsloop.service.decide import llm_setup as llm_service
from opsloop.settings import LLMSettings, Settings
from tests.conftest import OpsFactory
from tests.fake_llm import COMPLETION_TOKENS, PROMPT_TOKENS, SERVED_MODEL, Answer, FakeOpenAI
from tests.sinks import free_port

LABELS = ["billing", "bug", "other"]
SECRET_KEY = "sk-test-9f8e7d6c5b4a39281706"

LlmFactory = Callable[..., tuple[OpsLoop, LanguageModel]]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def make_llm(make_ops: OpsFactory, sqlite_url: str, server: FakeOpenAI) -> Iterator[LlmFactory]:
    """An OpsLoop on SQLite whose model is the fake server, and the model from its service;
    keyword arguments override the `llm` settings."""
    models: list[LanguageModel] = []

    def factory(url: str | None = None, **llm: Any) -> tuple[OpsLoop, LanguageModel]:
        settings = {"url": server.url, "model": "tiny", "max_retries": 2, **llm}
        ops = make_ops(url or sqlite_url, llm=settings)
        model = llm_service.language_model(ops.ctx)
        models.append(model)
        return ops, model

    yield factory
    for model in models:
        model.close()


def calls(ops: OpsLoop) -> list[dict[str, Any]]:
    """The LLM ledger, oldest first."""
    return list(reversed(llm_service.recent_calls(ops.ctx)))


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    else:
        yield str(value)


# --- classification --------------------------------------------------------------------------


def test_classify_returns_an_offered_label_and_books_tokens_and_cost(
    make_llm: LlmFactory, server: FakeOpenAI, database_url: str
) -> None:
    ops, llm = make_llm(database_url, input_price_per_million=2.0, output_price_per_million=8.0)
    result = llm.classify("I was charged twice, please fix my billing", LABELS)
    assert (result.label, result.confidence, result.reason) == ("billing", 0.82, "mentions billing")

    [request] = server.requests
    assert request.body["model"] == "tiny"
    assert request.body["temperature"] == 0
    assert request.response_format == "json_schema"
    schema = request.body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["label"]["enum"] == LABELS
    assert set(schema["required"]) == {"label", "confidence", "reason"}

    [row] = calls(ops)
    expected_cost = (PROMPT_TOKENS * 2.0 + COMPLETION_TOKENS * 8.0) / 1_000_000
    assert row["purpose"] == "classify"
    assert row["model"] == "tiny"
    assert row["status"] == "ok"
    assert row["cached"] is False
    assert row["error"] is None
    assert (row["prompt_tokens"], row["completion_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert row["cost"] == pytest.approx(expected_cost)
    assert row["latency_ms"] > 0
    assert len(row["request_hash"]) == 64
    assert result.call.cost == pytest.approx(expected_cost)


def test_a_repeated_call_is_answered_from_the_cache(
    make_llm: LlmFactory, server: FakeOpenAI, database_url: str
) -> None:
    ops, llm = make_llm(database_url, input_price_per_million=2.0, output_price_per_million=8.0)
    first = llm.classify("the app crashes on login: a bug", LABELS)
    second = llm.classify("the app crashes on login: a bug", LABELS)

    assert len(server.requests) == 1, "the second identical call never reached the model"
    assert second.label == first.label == "bug"
    assert (second.confidence, second.reason) == (first.confidence, first.reason)
    first_row, second_row = calls(ops)
    assert first_row["request_hash"] == second_row["request_hash"]
    assert (first_row["cached"], second_row["cached"]) == (False, True)
    assert second_row["status"] == "ok"
    assert (second_row["prompt_tokens"], second_row["completion_tokens"]) == (0, 0)
    assert second_row["cost"] == 0
    assert second.call.cached

    llm.classify("the app crashes on login: a bug", ["bug", "other"])
    assert len(server.requests) == 2, "other labels are another question"


def test_with_the_cache_off_every_call_asks_the_model(
    make_llm: LlmFactory, server: FakeOpenAI
) -> None:
    ops, llm = make_llm(cache=False)
    llm.classify("a bug", LABELS)
    llm.classify("a bug", LABELS)
    assert len(server.requests) == 2
    assert [row["cached"] for row in calls(ops)] == [False, False]


def test_an_answer_outside_the_labels_is_an_error_not_a_default(
    make_llm: LlmFactory, server: FakeOpenAI
) -> None:
    ops, llm = make_llm(input_price_per_million=1.0, output_price_per_million=1.0)
    server.default = Answer(content='{"label": "spam", "confidence": 0.9, "reason": "ads"}')
    with pytest.raises(LLMError, match=r"label 'spam', which is not one of billing, bug, other"):
        llm.classify("BUY NOW", LABELS)
    [row] = calls(ops)
    assert row["status"] == "failed"
    assert "spam" in row["error"]
    assert row["prompt_tokens"] == PROMPT_TOKENS, "a refused answer still cost tokens"
    assert row["cost"] == pytest.approx((PROMPT_TOKENS + COMPLETION_TOKENS) / 1_000_000)

    with pytest.raises(LLMError):
        llm.classify("BUY NOW", LABELS)
    assert len(server.requests) == 2, "an invalid answer is never cached"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("I think it is billing.", "not a JSON object"),
        ('["billing"]', "not a JSON object"),
        ('{"label": "billing"}', "confidence None"),
        ('{"label": "billing", "confidence": 85, "reason": "x"}', "confidence 85"),
        ("", "not a JSON object"),
    ],
)
def test_an_answer_that_breaks_the_shape_is_an_error(
    make_llm: LlmFactory, server: FakeOpenAI, content: str, problem: str
) -> None:
    _, llm = make_llm()
    server.default = Answer(content=content)
    with pytest.raises(LLMError, match=problem) as caught:
        llm.classify("charged twice", LABELS)
    assert caught.value.retryable is False


def test_a_server_without_json_schema_is_asked_for_a_json_object_instead(
    make_llm: LlmFactory, server: FakeOpenAI
) -> None:
    _, llm = make_llm()
    server.refuse_json_schema = True
    fenced = '```json\n{"label": "Billing", "confidence": 0.7, "reason": "money"}\n```'
    server.default = Answer(content=fenced)
    result = llm.classify("charged twice", LABELS)
    assert result.label == "billing", "labels match regardless of case; the offered one is kept"
    assert [r.response_format for r in server.requests] == ["json_schema", "json_object"]

    llm.classify("charged three times", LABELS)
    assert server.requests[-1].response_format == "json_object", "the refusal is remembered"


def test_plain_text_is_the_last_resort_and_the_object_is_found_in_prose(
    make_llm: LlmFactory, server: FakeOpenAI
) -> None:
    _, llm = make_llm()
    server.then(Answer(status=400), Answer(status=400))
    server.default = Answer(
        content='Sure! {"label": "other", "confidence": 0.5, "reason": "unclear"} Hope it helps.'
    )
    assert llm.classify("hello", LABELS).label == "other"
    assert [r.response_format for r in server.requests] == ["json_schema", "json_object", None]
    system = server.requests[-1].body["messages"][0]["content"]
    assert '"label"' in system
    assert '["billing", "bug", "other"]' in system


@pytest.mark.parametrize(
    "labels", [["only"], ["a", "A"], ["a", ""], "billing"], ids=["one", "dup", "empty", "str"]
)
def test_labels_are_checked_before_anything_is_sent(
    make_llm: LlmFactory, server: FakeOpenAI, labels: Any
) -> None:
    _, llm = make_llm()
    with pytest.raises(InvalidInput, match="labels"):
        llm.classify("text", labels)
    assert server.requests == []


# --- privacy ---------------------------------------------------------------------------------

CONTEXT = {
    "subject": "customer:ana@example.com",
    "event": {
        "type": "ticket.opened",
        "payload": {"message": "My invoice is wrong", "card": "4111 1111 1111 1111"},
    },
    "entity": {"company": "Acme Roasters", "email": "ana@example.com", "vip": True},
    "days_since_signup": 41,
}
NOT_NAMED = ["ana@example.com", "4111 1111 1111 1111", "card", "email", "ticket.opened", "41"]


def test_only_the_named_fields_are_sent(make_llm: LlmFactory, server: FakeOpenAI) -> None:
    _, llm = make_llm()
    names = ["event.payload.message", "entity.company", "entity.phone"]
    fields = select_fields(CONTEXT, names)
    assert fields.missing == ("entity.phone",)

    llm.classify("Please look at my invoice", LABELS, fields=fields)
    llm.draft_reply("Please look at my invoice", context_fields=fields, tone="warm")
    llm.summarize(fields)

    sent = {"event.payload.message": "My invoice is wrong", "entity.company": "Acme Roasters"}
    classify, draft, summary = server.requests
    assert classify.user_content == {"text": "Please look at my invoice", "fields": sent}
    assert draft.user_content == {"message": "Please look at my invoice", "context": sent}
    assert summary.user_content == {"fields": sent}
    for request in server.requests:
        body = " ".join(strings_in(request.body))
        leaked = [value for value in NOT_NAMED if value in body]
        assert not leaked, f"sent without being named: {leaked}"


def test_fields_can_only_come_from_select_fields(make_llm: LlmFactory, server: FakeOpenAI) -> None:
    _, llm = make_llm()
    with pytest.raises(TypeError, match="select_fields"):
        llm.classify("text", LABELS, fields=CONTEXT)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="select_fields"):
        Fields(dict(CONTEXT), ())
    assert server.requests == []


def test_selected_fields_are_a_copy_and_do_not_show_their_values() -> None:
    data = {"entity": {"tags": ["vip"]}}
    fields = select_fields(data, "entity.tags")
    data["entity"]["tags"].append("card 4111")
    assert dict(fields) == {"entity.tags": ["vip"]}
    assert "vip" not in repr(fields)


# --- drafts and summaries --------------------------------------------------------------------


def test_a_draft_and_a_summary_are_text_booked_by_purpose(
    make_llm: LlmFactory, server: FakeOpenAI
) -> None:
    ops, llm = make_llm()
    fields = select_fields(CONTEXT, ["entity.company"])
    draft = llm.draft_reply("Where is my order?", context_fields=fields, tone="warm")
    summary = llm.summarize("A long thread about a late order and a refund request.")
    assert draft.text.startswith("Thanks for writing")
    assert summary.text
    assert "Tone: warm." in server.requests[0].body["messages"][0]["content"]
    assert all(r.response_format is None for r in server.requests)
    assert [row["purpose"] for row in calls(ops)] == ["draft", "summarize"]


def test_the_decision_a_call_was_made_for_is_booked(
    make_llm: LlmFactory, server: FakeOpenAI
) -> None:
    ops, llm = make_llm()
    llm.summarize("text", decision_id=None)
    assert calls(ops)[0]["decision_id"] is None
    assert llm_service.recent_calls(ops.ctx, decision_id=12345) == []


# --- retries and timeouts --------------------------------------------------------------------


def test_a_rate_limited_call_is_retried_then_succeeds(
    make_llm: LlmFactory, server: FakeOpenAI
) -> None:
    ops, llm = make_llm()
    server.then(Answer(status=429))
    assert llm.classify("a bug", LABELS).label == "bug"
    assert len(server.requests) == 2
    [row] = calls(ops)
    assert row["status"] == "ok"


def test_a_server_error_that_persists_fails_after_the_configured_attempts(
    make_llm: LlmFactory, server: FakeOpenAI
) -> None:
    ops, llm = make_llm(max_retries=2)
    server.default = Answer(status=500)
    with pytest.raises(LLMError, match=r"answered HTTP 500 after 3 attempts") as caught:
        llm.classify("a bug", LABELS)
    assert caught.value.retryable
    assert len(server.requests) == 3
    [row] = calls(ops)
    assert row["status"] == "failed"
    assert "HTTP 500" in row["error"]
    assert row["prompt_tokens"] is None


def test_a_timeout_becomes_a_clear_error(make_llm: LlmFactory, server: FakeOpenAI) -> None:
    ops, llm = make_llm(timeout_seconds=0.3, max_retries=0)
    server.default = Answer(delay=5)
    with pytest.raises(LLMError) as caught:
        llm.classify("a bug", LABELS)
    message = str(caught.value)
    assert f"the language model at {server.url} did not answer within 0.3 s" in message
    assert "OPSLOOP_LLM__TIMEOUT_SECONDS" in message
    assert caught.value.retryable
    assert calls(ops)[0]["status"] == "failed"


def test_an_unknown_model_names_the_settings_to_check(
    make_llm: LlmFactory, server: FakeOpenAI
) -> None:
    _, llm = make_llm()
    server.default = Answer(status=404)
    with pytest.raises(LLMError, match="OPSLOOP_LLM__MODEL") as caught:
        llm.summarize("text")
    assert not caught.value.retryable
    assert len(server.requests) == 1, "a 404 is not retried"


# --- configuration and secrets ---------------------------------------------------------------


def test_without_a_model_the_error_names_the_settings_to_set(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url)
    with pytest.raises(LLMNotConfigured) as caught:
        llm_service.language_model(ops.ctx, needed_by="playbook support-triage")
    message = str(caught.value)
    assert isinstance(caught.value, Conflict)
    assert message.startswith("playbook support-triage needs a language model and none is")
    for needle in ("OPSLOOP_LLM__URL", "OPSLOOP_LLM__MODEL", "http://localhost:11434/v1"):
        assert needle in message
    assert not llm_service.is_configured(ops.ctx)

    check = ops.decide.check_llm()
    assert not check.ok
    assert check.error is not None
    assert "OPSLOOP_LLM__URL" in check.error


def test_a_half_configured_model_names_only_what_is_missing() -> None:
    settings = LLMSettings(url="http://localhost:11434/v1/")
    with pytest.raises(LLMNotConfigured, match=r"set OPSLOOP_LLM__MODEL \(") as caught:
        LanguageModel(settings, ledger=None)  # type: ignore[arg-type]
    assert "OPSLOOP_LLM__URL and" not in str(caught.value)
    assert settings.url == "http://localhost:11434/v1"


def test_the_api_key_is_sent_but_never_logged_or_shown(
    make_llm: LlmFactory, server: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ops, llm = make_llm(api_key=SECRET_KEY)
    server.api_key = SECRET_KEY
    llm.classify("a bug", LABELS)
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET_KEY}"

    server.api_key = "sk-the-right-one"
    with pytest.raises(LLMError, match="refused the API key") as caught:
        llm.classify("another bug", LABELS)
    assert not caught.value.retryable
    server.default = Answer(status=503)
    with pytest.raises(LLMError):
        llm.classify("a third bug", LABELS)

    assert SECRET_KEY not in str(caught.value)
    assert SECRET_KEY not in caplog.text
    assert "LLM classify failed" in caplog.text, "failures are logged, without the key"
    assert all(SECRET_KEY not in (row["error"] or "") for row in calls(ops))
    assert SECRET_KEY not in repr(ops.settings)
    assert SECRET_KEY not in repr(ops.decide.check_llm())


def test_llm_settings_come_from_variables_and_the_key_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "key").write_text(SECRET_KEY + "\n")
    monkeypatch.setenv("OPSLOOP_LLM__URL", "http://localhost:8000/v1")
    monkeypatch.setenv("OPSLOOP_LLM__MODEL", "Qwen/Qwen2.5-7B-Instruct")
    monkeypatch.setenv("OPSLOOP_LLM__TIMEOUT_SECONDS", "12.5")
    monkeypatch.setenv("OPSLOOP_LLM__API_KEY_FILE", str(tmp_path / "key"))
    settings = Settings()
    assert settings.llm.url == "http://localhost:8000/v1"
    assert settings.llm.model == "Qwen/Qwen2.5-7B-Instruct"
    assert settings.llm.timeout_seconds == 12.5
    assert (settings.llm.max_retries, settings.llm.cache) == (2, True)
    assert settings.llm.api_key is not None
    assert settings.llm.api_key.get_secret_value() == SECRET_KEY
    assert SECRET_KEY not in repr(settings)


def test_a_placeholder_llm_key_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSLOOP_ENVIRONMENT", "production")
    monkeypatch.setenv("OPSLOOP_LLM__API_KEY", "changeme")
    with pytest.raises(ValueError, match=r"llm\.api_key is a placeholder"):
        Settings()


@pytest.mark.parametrize("key", list(LLMSettings.model_fields))
def test_every_llm_setting_is_documented(key: str) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    assert f"| `{key}` | `OPSLOOP_LLM__{key.upper()}` |" in text


# --- connection test and command line --------------------------------------------------------


def test_the_connection_test_reports_the_model_and_latency(
    make_llm: LlmFactory, server: FakeOpenAI
) -> None:
    ops, _ = make_llm()
    check = ops.decide.check_llm()
    assert check.ok
    assert (check.url, check.model, check.served_model) == (server.url, "tiny", SERVED_MODEL)
    assert check.latency_ms is not None
    assert check.latency_ms > 0
    assert calls(ops)[0]["purpose"] == "test"

    server.default = Answer(status=503)
    check = ops.decide.check_llm()
    assert not check.ok
    assert len(server.requests) == 2, "the connection test does not retry"
    assert check.error is not None
    assert "HTTP 503" in check.error


def test_the_connection_test_says_when_nothing_listens(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    ops = make_ops(sqlite_url, llm={"url": url, "model": "tiny"})
    check = ops.decide.check_llm()
    assert not check.ok
    assert check.error is not None
    assert check.error.startswith(f"cannot reach the language model at {url}")


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: FakeOpenAI) -> FakeOpenAI:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPSLOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("OPSLOOP_LLM__URL", server.url)
    monkeypatch.setenv("OPSLOOP_LLM__MODEL", "tiny")
    monkeypatch.setenv("COLUMNS", "200")
    return server


def test_opsloop_llm_test_and_classify(cli_env: FakeOpenAI) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["llm", "test"])
    assert result.exit_code == 0, result.output
    assert f"OK {SERVED_MODEL} at {cli_env.url} answered in" in result.output

    args = ["llm", "classify", "my card was charged twice: billing", "-l", "billing", "-l", "bug"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "billing" in result.output
    assert "0.82" in result.output

    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert (answer["label"], answer["cached"]) == ("billing", True)


def test_opsloop_llm_explains_what_is_wrong(
    cli_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    cli_env.default = Answer(content='{"label": "spam", "confidence": 1, "reason": "x"}')
    result = runner.invoke(app, ["llm", "classify", "hi", "-l", "billing", "-l", "bug"])
    assert result.exit_code == 1
    assert "not one of billing, bug" in result.output.replace("\n", " ")

    monkeypatch.delenv("OPSLOOP_LLM__URL")
    for args in (["llm", "test"], ["llm", "classify", "hi", "-l", "a", "-l", "b"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert "OPSLOOP_LLM__URL" in result.output.replace("\n", "")

"""Language models: classify, draft and summarize through any OpenAI-compatible endpoint.

What a model sees is decided by the playbook, never by the code that calls the model: every
use takes its data as `Fields`, and the only way to make `Fields` is `select_fields(data,
names)` with the names the playbook lists. Nothing else from a decision's context is sent.

Every call is booked in a ledger (the `LLMLedger` port; `opsloop.store.llm_calls` keeps it in the
database): one row per call, with tokens, cost, latency and whether the response cache
answered. The cache key is a SHA-256 of (model, messages, JSON schema, temperature).

Errors, added to the tree in `opsloop.core.errors`:

    OpsLoopError
    ├── Conflict
    │   └── LLMNotConfigured   something needs a language model and none is set up
    └── LLMError               unreachable, refused, too slow, or an answer that breaks the
                               contract (a label not offered); `retryable` says whether trying
                               again later can help
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, TypeVar

from opsloop.core.errors import Conflict, FieldError, InvalidInput, Unavailable
from opsloop.core.llm_calls import LLMCall, Purpose
from opsloop.settings import LLMSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    import openai

    from opsloop.reasoning.llm_tools import ToolTurn

log = logging.getLogger(__name__)

T = TypeVar("T")

JsonMode = Literal["json_schema", "json_object", "text"]
# Structured-output support differs between servers; each mode is tried once, best first.
JSON_MODES: tuple[JsonMode, ...] = ("json_schema", "json_object", "text")

CLASSIFY_TEMPERATURE = 0.0
DRAFT_TEMPERATURE = 0.4
SUMMARY_TEMPERATURE = 0.2

# The OpenAI client insists on a key; local servers (Ollama, llama.cpp) ignore this one.
NO_KEY = "no-key"


# --- errors ----------------------------------------------------------------------------------


class LLMError(Unavailable):
    """The model could not be used for this call. The message never holds the API key."""


class LLMNotConfigured(Conflict):
    """A language model is needed and the settings do not name one."""

    def __init__(self, missing: Sequence[str] = ("url", "model"), *, needed_by: str = "") -> None:
        self.missing = tuple(missing)
        variables = " and ".join(f"OPSLOOP_LLM__{name.upper()}" for name in self.missing)
        what = (
            f"{needed_by} needs a language model and none is configured"
            if needed_by
            else "no language model is configured"
        )
        super().__init__(
            f"{what}: set {variables} "
            "(plus OPSLOOP_LLM__API_KEY if the server wants a key), or the [llm] table of "
            "opsloop.toml. For Ollama on this machine: "
            "OPSLOOP_LLM__URL=http://localhost:11434/v1 OPSLOOP_LLM__MODEL=llama3.2 "
            "(see docs/llm.md)"
        )


# --- what the model may see --------------------------------------------------------------------

_SELECTED = object()


class Fields(Mapping[str, Any]):
    """The named values a model may see. Made only by `select_fields`, so what is sent is
    always what a playbook listed; the values are copies, so later changes to the source
    data cannot leak in."""

    __slots__ = ("_values", "missing")

    def __init__(
        self, values: dict[str, Any], missing: tuple[str, ...], *, _key: object = None
    ) -> None:
        if _key is not _SELECTED:
            raise TypeError("Fields are made by select_fields(data, names), never directly")
        self._values = values
        self.missing = missing
        """Names that had no value in the data; they are not sent."""

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        # Names only: the values are often personal data and end up in logs via repr.
        return f"Fields({', '.join(self._values)})"


def select_fields(data: Mapping[str, Any], names: Iterable[str] | str) -> Fields:
    """The values at `names` in `data`, and nothing else. A name is a dotted path
    (`event.payload.message`, `entity.company`); a name with no value (or `null`) is left out
    and listed in `Fields.missing`."""
    if isinstance(names, str):
        names = [names]
    values: dict[str, Any] = {}
    missing: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.strip(" ."):
            raise InvalidInput.single("fields", f"{name!r} is not a field name")
        value = _lookup(data, name)
        if value is None:
            missing.append(name)
        else:
            values[name] = json.loads(_dumps(value))
    return Fields(values, tuple(missing), _key=_SELECTED)


def _lookup(data: Mapping[str, Any], name: str) -> Any:
    if name in data:
        return data[name]
    value: Any = data
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _checked(fields: Fields | None, argument: str) -> dict[str, Any]:
    if fields is None:
        return {}
    if not isinstance(fields, Fields):
        raise TypeError(f"{argument}: pass select_fields(data, names), not a {type(fields)}")
    return dict(fields)


# --- results and the ledger port ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Classification:
    label: str
    """Always one of the labels offered."""
    confidence: float
    """The model's own estimate, 0 to 1; not calibrated."""
    reason: str
    call: LLMCall


@dataclass(frozen=True, slots=True)
class Draft:
    text: str
    """A suggestion for a person to edit and send; never sent as is."""
    call: LLMCall


@dataclass(frozen=True, slots=True)
class Summary:
    text: str
    call: LLMCall


@dataclass(frozen=True, slots=True)
class Ping:
    served_model: str
    """The model name the server reported (may be more specific than the configured one)."""
    latency_ms: float
    call: LLMCall


class LLMLedger(Protocol):
    """Where the adapter keeps its books. Each method is its own unit of work (the model is
    never called inside a database transaction) and may be called from several threads."""

    def record_call(self, call: LLMCall) -> None:
        """Append one row for one call, whatever its outcome."""

    def get_cached(self, request_hash: str) -> dict[str, Any] | None:
        """The response stored under this hash, or None."""

    def put_cached(self, request_hash: str, model: str, response: dict[str, Any]) -> None:
        """Store a validated response; a hash already stored is left as it is (two identical
        calls can race)."""


def request_hash(
    model: str, messages: list[dict[str, str]], schema: dict[str, Any] | None, temperature: float
) -> str:
    """The cache key: the same question to the same model gets the same answer."""
    canonical = json.dumps(
        {"model": model, "messages": messages, "schema": schema, "temperature": temperature},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- the adapter -------------------------------------------------------------------------------

_CLASSIFY_PROMPT = """\
You classify text for a small business's workflow.
Answer with one JSON object and nothing else:
{{"label": one of {labels}, "confidence": a number from 0 to 1, "reason": one short sentence}}
The user message is JSON: "text" is what to classify, "fields" (when present) is context."""

_DRAFT_PROMPT = """\
You draft replies for a small business. A person will read, edit and send your draft.
Write only the reply's text: no subject line, no notes to the person.
Use only facts from the message and the context; do not promise refunds, discounts, dates or
anything else the context does not state.
Tone: {tone}.
The user message is JSON: "message" is what to answer, "context" is what you may use."""

_SUMMARY_PROMPT = """\
You summarize for a busy small-business owner in at most {max_words} words.
Plain sentences, no preamble, only facts present in the input.
The user message is JSON: "text" or "fields" is what to summarize."""


@dataclass(frozen=True, slots=True)
class _Reply:
    content: str
    prompt_tokens: int | None
    completion_tokens: int | None
    served_model: str


class LanguageModel:
    """An OpenAI-compatible chat model with a ledger. Thread-safe; `close()` when done."""

    def __init__(self, settings: LLMSettings, ledger: LLMLedger, *, needed_by: str = "") -> None:
        missing = [name for name in ("url", "model") if not getattr(settings, name)]
        if missing or settings.url is None or settings.model is None:
            raise LLMNotConfigured(missing, needed_by=needed_by)
        import openai  # lazily: a second of start-up for commands that never use a model

        self.settings = settings
        self.url: str = settings.url
        self.model: str = settings.model
        self._ledger = ledger
        self._secret = settings.api_key.get_secret_value() if settings.api_key else ""
        self._client = openai.OpenAI(
            base_url=self.url,
            api_key=self._secret or NO_KEY,
            timeout=settings.timeout_seconds,
            max_retries=settings.max_retries,
        )
        self._json_mode = 0  # index in JSON_MODES of the best mode this server accepted

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the three uses ----------------------------------------------------------------------

    def classify(
        self,
        text: str,
        labels: Sequence[str],
        *,
        fields: Fields | None = None,
        instructions: str | None = None,
        decision_id: int | None = None,
    ) -> Classification:
        """Pick one of `labels` for `text`, with a confidence and a short reason. An answer
        outside the labels is an `LLMError`, never replaced by a default."""
        allowed = _check_labels(labels)
        user: dict[str, Any] = {"text": text}
        context = _checked(fields, "fields")
        if context:
            user["fields"] = context
        system = _CLASSIFY_PROMPT.format(labels=_dumps(allowed))
        result, call = self._complete(
            "classify",
            _messages(system, user, instructions),
            temperature=CLASSIFY_TEMPERATURE,
            schema=_classification_schema(allowed),
            parse=lambda content: _parse_classification(content, allowed),
            decision_id=decision_id,
        )
        label, confidence, reason = result
        return Classification(label, confidence, reason, call)

    def draft_reply(
        self,
        message: str,
        *,
        context_fields: Fields,
        tone: str = "friendly, brief and professional",
        instructions: str | None = None,
        decision_id: int | None = None,
    ) -> Draft:
        """A draft answer to `message` for a person to finalize."""
        user = {"message": message, "context": _checked(context_fields, "context_fields")}
        system = _DRAFT_PROMPT.format(tone=tone.strip() or "professional")
        text, call = self._complete(
            "draft",
            _messages(system, user, instructions),
            temperature=DRAFT_TEMPERATURE,
            schema=None,
            parse=_text_answer,
            decision_id=decision_id,
        )
        return Draft(text, call)

    def summarize(
        self,
        source: str | Fields,
        *,
        max_words: int = 60,
        instructions: str | None = None,
        decision_id: int | None = None,
    ) -> Summary:
        """A short summary of a text or of named fields."""
        user: dict[str, Any] = (
            {"text": source} if isinstance(source, str) else {"fields": _checked(source, "source")}
        )
        system = _SUMMARY_PROMPT.format(max_words=max_words)
        text, call = self._complete(
            "summarize",
            _messages(system, user, instructions),
            temperature=SUMMARY_TEMPERATURE,
            schema=None,
            parse=_text_answer,
            decision_id=decision_id,
        )
        return Summary(text, call)

    def answer_from_passages(
        self, question: str, passages: Sequence[Mapping[str, Any]], *, abstain: str
    ) -> tuple[str, LLMCall]:
        """A short answer to `question` drawn only from `passages` (each with its number `n`,
        document, heading and text), every sentence ending with the [n] of its passage; or
        exactly `abstain` when they do not answer it. The caller checks the citations
        (opsloop/knowledge/answers.py): nothing here is trusted."""
        system = (
            "You answer questions for a small business from its own documents.\n"
            "Use only the numbered passages in the user message; never outside knowledge.\n"
            "Answer in at most four short sentences. End every sentence with the number of "
            "the passage it comes from in square brackets, like [2]; cite only numbers that "
            "are shown.\n"
            f"If the passages do not answer the question, reply exactly: {abstain}\n"
            'The user message is JSON: "question", and "passages" (n, document, heading, text).'
        )
        user = {"question": question, "passages": [dict(p) for p in passages]}
        return self._complete(
            "answer",
            _messages(system, user),
            temperature=CLASSIFY_TEMPERATURE,
            schema=None,
            parse=_text_answer,
            decision_id=None,
        )

    def ping(self) -> Ping:
        """One tiny request, no retries and no cache: is the model there, and how fast?"""
        messages = [{"role": "user", "content": "Reply with the single word OK."}]
        digest = request_hash(self.model, messages, None, CLASSIFY_TEMPERATURE)
        started = time.perf_counter()
        try:
            reply = self._chat(
                messages,
                temperature=CLASSIFY_TEMPERATURE,
                schema=None,
                client=self._client.with_options(max_retries=0),
            )
        except LLMError as exc:
            self._book("test", digest, started, None, error=str(exc))
            raise
        call = self._book("test", digest, started, None, reply=reply)
        return Ping(reply.served_model, call.latency_ms, call)

    def plan(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ToolTurn:
        """One round of function calling (opsloop/reasoning/llm_tools.py): the model answers
        `messages` with the tools it wants run, or with its final text. Booked as purpose
        `chat`; never cached, since the tools' answers change with the ledger."""
        import openai

        from opsloop.reasoning.llm_tools import ToolTurn, tool_calls_of

        digest = request_hash(self.model, messages, {"tools": tools}, CLASSIFY_TEMPERATURE)
        started = time.perf_counter()
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                tools=tools,  # type: ignore[arg-type]
                temperature=CLASSIFY_TEMPERATURE,
            )
        except openai.OpenAIError as exc:
            error = self._error(exc, attempts=self._client.max_retries + 1)
            self._book("chat", digest, started, None, error=str(error))
            raise error from None
        reply = _reply(response, self.model)
        choices = getattr(response, "choices", None) or []
        calls = tool_calls_of(getattr(choices[0], "message", None) if choices else None)
        call = self._book("chat", digest, started, None, reply=reply)
        return ToolTurn(text=reply.content.strip(), tool_calls=calls, call=call)

    # --- one call, booked --------------------------------------------------------------------

    def _complete(
        self,
        purpose: Purpose,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        schema: dict[str, Any] | None,
        parse: Callable[[str], T],
        decision_id: int | None,
    ) -> tuple[T, LLMCall]:
        digest = request_hash(self.model, messages, schema, temperature)
        started = time.perf_counter()
        if self.settings.cache:
            hit = self._ledger.get_cached(digest)
            if hit is not None:
                try:
                    result = parse(str(hit.get("content", "")))
                except LLMError:
                    pass  # stored by an older, laxer parser: ask the model again
                else:
                    return result, self._book(purpose, digest, started, decision_id, cached=True)
        reply: _Reply | None = None
        try:
            reply = self._chat(messages, temperature=temperature, schema=schema)
            result = parse(reply.content)
        except LLMError as exc:
            self._book(purpose, digest, started, decision_id, reply=reply, error=str(exc))
            raise
        if self.settings.cache:
            self._ledger.put_cached(
                digest,
                self.model,
                {
                    "content": reply.content,
                    "served_model": reply.served_model,
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                },
            )
        return result, self._book(purpose, digest, started, decision_id, reply=reply)

    def _book(
        self,
        purpose: Purpose,
        digest: str,
        started: float,
        decision_id: int | None,
        *,
        reply: _Reply | None = None,
        cached: bool = False,
        error: str | None = None,
    ) -> LLMCall:
        # A cache hit consumed no tokens; a failed call may have (an answer that broke the
        # contract still cost money).
        prompt = 0 if cached else reply.prompt_tokens if reply else None
        completion = 0 if cached else reply.completion_tokens if reply else None
        call = LLMCall(
            purpose=purpose,
            model=self.model,
            request_hash=digest,
            cached=cached,
            status="failed" if error else "ok",
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            error=error,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=self._cost(prompt, completion),
            decision_id=decision_id,
        )
        self._ledger.record_call(call)
        extra = {"llm_purpose": purpose, "llm_model": self.model, "decision_id": decision_id}
        # Info, not warning: the caller gets the error and decides what it means.
        if error:
            log.info("LLM %s failed: %s", purpose, error, extra=extra)
        else:
            log.info(
                "LLM %s: %s in %.0f ms%s",
                purpose,
                self.model,
                call.latency_ms,
                " (cached)" if cached else "",
                extra=extra,
            )
        return call

    def _cost(self, prompt: int | None, completion: int | None) -> float | None:
        prices = (self.settings.input_price_per_million, self.settings.output_price_per_million)
        if prices == (None, None) or prompt is None or completion is None:
            return None
        return (prompt * (prices[0] or 0.0) + completion * (prices[1] or 0.0)) / 1_000_000

    # --- the wire ----------------------------------------------------------------------------

    def _chat(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        schema: dict[str, Any] | None,
        client: openai.OpenAI | None = None,
    ) -> _Reply:
        import openai

        client = client or self._client
        modes = JSON_MODES[self._json_mode :] if schema is not None else ("text",)
        for index, mode in enumerate(modes):
            request: dict[str, Any] = {
                "model": self.model,
                "messages": messages,
                "temperature": temperature,
            }
            if mode == "json_schema":
                request["response_format"] = {"type": "json_schema", "json_schema": schema}
            elif mode == "json_object":
                request["response_format"] = {"type": "json_object"}
            try:
                response = client.chat.completions.create(**request)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if "response_format" in request and index + 1 < len(modes):
                    # Older or smaller servers refuse structured output; the prompt spells
                    # out the JSON shape, so a plainer mode still works.
                    log.info(
                        "%s refused response_format %s; trying %s", self.url, mode, modes[index + 1]
                    )
                    continue
                raise self._error(exc, attempts=1) from None
            except openai.OpenAIError as exc:
                raise self._error(exc, attempts=client.max_retries + 1) from None
            if schema is not None:
                self._json_mode = JSON_MODES.index(mode)
            return _reply(response, self.model)
        raise AssertionError("unreachable: the last mode either answers or raises")

    def _error(self, exc: openai.OpenAIError, *, attempts: int) -> LLMError:
        import openai

        where = f"the language model at {self.url}"
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        retryable = False
        if isinstance(exc, openai.APITimeoutError):
            timeout = self.settings.timeout_seconds
            message = (
                f"{where} did not answer within {timeout:g} s ({tries}); "
                "raise OPSLOOP_LLM__TIMEOUT_SECONDS for a slow model or check the server"
            )
            retryable = True
        elif isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            message = (
                f"cannot reach {where} ({tries}): {cause}; is the server running and "
                "OPSLOOP_LLM__URL right?"
            )
            retryable = True
        elif isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            # The server's own words are left out: some echo part of the key.
            message = (
                f"{where} refused the API key (HTTP {exc.status_code}); check OPSLOOP_LLM__API_KEY"
            )
        elif isinstance(exc, openai.NotFoundError):
            message = (
                f"{where} answered 404 for model {self.model!r}: {_detail(exc)}; check "
                "OPSLOOP_LLM__MODEL, and that OPSLOOP_LLM__URL ends with the API's base path "
                "(usually /v1)"
            )
        elif isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            retryable = status in (408, 409, 429) or status >= 500
            after = f" after {tries}" if retryable else ""
            message = f"{where} answered HTTP {status}{after}: {_detail(exc)}"
        else:
            message = f"{where} failed: {exc}"
        return LLMError(self._redact(message), retryable=retryable)

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text


# --- helpers -----------------------------------------------------------------------------------


def _messages(
    system: str, user: dict[str, Any], instructions: str | None = None
) -> list[dict[str, str]]:
    """The system prompt (with the playbook's own `instructions` after it) and the user's
    fields as JSON."""
    if instructions:
        system += "\n\n" + instructions.strip()
    return [{"role": "system", "content": system}, {"role": "user", "content": _dumps(user)}]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _reply(response: Any, model: str) -> _Reply:
    choices = getattr(response, "choices", None) or []
    message = getattr(choices[0], "message", None) if choices else None
    usage = getattr(response, "usage", None)
    return _Reply(
        content=getattr(message, "content", None) or "",
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        served_model=getattr(response, "model", None) or model,
    )


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        text = inner.get("message") if isinstance(inner, dict) else inner
        if text:
            return _clip(str(text))
    return _clip(exc.response.text or exc.response.reason_phrase)


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_labels(labels: Sequence[str]) -> list[str]:
    if isinstance(labels, str):
        raise InvalidInput.single("labels", "give a list of labels, not one string")
    allowed = [label.strip() if isinstance(label, str) else "" for label in labels]
    errors = [FieldError("labels", "give at least two labels")] if len(allowed) < 2 else []
    if "" in allowed:
        errors.append(FieldError("labels", "a label is empty or not text"))
    if len({label.casefold() for label in allowed}) < len(allowed):
        errors.append(FieldError("labels", "labels must differ (ignoring case)"))
    if errors:
        raise InvalidInput(errors)
    return allowed


def _classification_schema(labels: list[str]) -> dict[str, Any]:
    return {
        "name": "classification",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": labels},
                "confidence": {"type": "number", "description": "from 0 to 1"},
                "reason": {"type": "string", "description": "one short sentence"},
            },
            "required": ["label", "confidence", "reason"],
            "additionalProperties": False,
        },
    }


def _parse_classification(content: str, labels: list[str]) -> tuple[str, float, str]:
    data = _json_object(content)
    by_case = {label.casefold(): label for label in labels}
    label = data.get("label")
    if not isinstance(label, str) or label.strip().casefold() not in by_case:
        raise LLMError(
            f"the model answered label {label!r}, which is not one of {', '.join(labels)}",
            retryable=False,
        )
    confidence = data.get("confidence")
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not 0 <= confidence <= 1
    ):
        raise LLMError(
            f"the model answered confidence {confidence!r}; expected a number from 0 to 1",
            retryable=False,
        )
    reason = data.get("reason")
    return by_case[label.strip().casefold()], float(confidence), _clip(str(reason or ""), 500)


_FENCE = re.compile(r"^```[a-zA-Z]*\s*(.*?)\s*```$", re.S)


def _json_object(content: str) -> dict[str, Any]:
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    data: Any = None
    try:
        data = json.loads(text)
    except ValueError:
        # Plain-text mode: small models wrap the object in a sentence.
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                data = json.loads(text[start : end + 1])
            except ValueError:
                data = None
    if not isinstance(data, dict):
        raise LLMError(
            f"the model's answer is not a JSON object: {_clip(content, 200)!r}", retryable=False
        )
    return data


def _text_answer(content: str) -> str:
    text = content.strip()
    if not text:
        raise LLMError("the model answered with no text", retryable=True)
    return text

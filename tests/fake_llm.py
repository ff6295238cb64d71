"""A local OpenAI-compatible server for tests: `POST /v1/chat/completions` on a free loopback
port, recording every request it receives and answering as it is told (rate limits, errors,
slowness, refusing structured output, a given answer)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.sinks import free_port

SERVED_MODEL = "fake-model-2026-01"
PROMPT_TOKENS = 120
COMPLETION_TOKENS = 30


@dataclass
class Answer:
    """How to answer one request. `content=None` gives the default answer: for a request with
    a JSON schema, the first offered label that appears in the text (else the first label)."""

    status: int = 200
    content: str | None = None
    delay: float = 0.0
    tool_calls: list[tuple[str, dict[str, Any]]] | None = None
    """Answer with these function calls (name, arguments) instead of text, as a model offered
    `tools` does."""


@dataclass
class ChatRequest:
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def user_content(self) -> Any:
        """The user message, parsed as JSON (OpsLoop sends its inputs as a JSON object)."""
        [user] = [m for m in self.body["messages"] if m["role"] == "user"]
        return json.loads(user["content"])

    @property
    def response_format(self) -> str | None:
        return (self.body.get("response_format") or {}).get("type")


@dataclass
class FakeOpenAI:
    port: int = field(default_factory=free_port)
    requests: list[ChatRequest] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)
    """Answers for the next requests, in order; then `default` for every one after."""
    default: Answer = field(default_factory=Answer)
    refuse_json_schema: bool = False
    api_key: str | None = None
    """When set, any other bearer token gets a 401 that echoes it (as OpenAI does)."""

    def __post_init__(self) -> None:
        fake = self
        self._lock = threading.Lock()
        self._stopping = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                request = ChatRequest({k.lower(): v for k, v in self.headers.items()}, body)
                with fake._lock:
                    fake.requests.append(request)
                    answer = fake.script.pop(0) if fake.script else fake.default
                status, reply = fake._answer(self.path, request, answer)
                if answer.delay:
                    fake._stopping.wait(answer.delay)
                payload = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    if status != 200:
                        # Keep the client's retry pauses short.
                        self.send_header("retry-after-ms", "10")
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def then(self, *answers: Answer) -> None:
        with self._lock:
            self.script.extend(answers)

    def _answer(self, path: str, request: ChatRequest, answer: Answer) -> tuple[int, Any]:
        if path != "/v1/chat/completions":
            return 404, _error(f"no route {path}", "not_found")
        presented = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key is not None and presented != self.api_key:
            return 401, _error(f"Incorrect API key provided: {presented}", "invalid_api_key")
        if self.refuse_json_schema and request.response_format == "json_schema":
            return 400, _error("response_format json_schema is not supported", "invalid_request")
        if answer.status != 200:
            return answer.status, _error(f"failing on purpose with {answer.status}", "test")
        content: str | None
        if answer.tool_calls:
            content = answer.content
            message: dict[str, Any] = {
                "role": "assistant",
                "content": content,
                "tool_calls": [
                    {
                        "id": f"call_{len(self.requests)}_{index}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(arguments)},
                    }
                    for index, (name, arguments) in enumerate(answer.tool_calls)
                ],
            }
        else:
            content = answer.content if answer.content is not None else _default_content(request)
            message = {"role": "assistant", "content": content}
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": 1767225600,
            "model": SERVED_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if answer.tool_calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
            },
        }


def _default_content(request: ChatRequest) -> str:
    schema = (request.body.get("response_format") or {}).get("json_schema")
    if not schema:
        return "Thanks for writing; we are looking into it and will reply today."
    labels = schema["schema"]["properties"]["label"]["enum"]
    text = str(request.user_content.get("text", "")).lower()
    label = next((label for label in labels if label.lower() in text), labels[0])
    return json.dumps({"label": label, "confidence": 0.82, "reason": f"mentions {label}"})


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}

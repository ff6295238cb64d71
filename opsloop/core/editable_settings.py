"""The settings an owner can change on the Settings page, in groups, and how each is entered.
Environment variables and opsloop.toml still win over what is saved (opsloop/service/
live_settings.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ENV_PREFIX = "OPSLOOP_"

Group = Literal["smtp", "chat", "llm", "general"]
GROUPS: tuple[Group, ...] = ("smtp", "chat", "llm", "general")


@dataclass(frozen=True, slots=True)
class Editable:
    key: str
    """The setting's name, `group.key` inside a group of settings (`llm.url`)."""
    group: Group
    label: str
    secret: bool = False
    kind: Literal["text", "number", "choice", "channels"] = "text"
    choices: tuple[str, ...] = ()
    hint: str = ""

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.key.replace(".", "__").upper()

    @property
    def field(self) -> str:
        """The form field's name."""
        return self.key.replace(".", "__")


EDITABLE: tuple[Editable, ...] = (
    Editable("smtp_host", "smtp", "Server", hint="e.g. smtp.example.com"),
    Editable("smtp_port", "smtp", "Port", kind="number", hint="587 for STARTTLS, 465 for TLS"),
    Editable(
        "smtp_security", "smtp", "Security", kind="choice", choices=("none", "starttls", "tls")
    ),
    Editable("smtp_username", "smtp", "User name", hint="empty: no login"),
    Editable("smtp_password", "smtp", "Password", secret=True),
    Editable("smtp_from", "smtp", "From", hint="the From: of every email, e.g. Ana <ana@shop.pt>"),
    Editable(
        "notify_url",
        "chat",
        "Default chat webhook",
        secret=True,
        hint="a Slack-compatible incoming-webhook URL, for notify actions that name no channel",
    ),
    Editable(
        "notify_channels",
        "chat",
        "Named chat channels",
        secret=True,
        kind="channels",
        hint="one per line: name = incoming-webhook URL",
    ),
    Editable("llm.url", "llm", "API base URL", hint="e.g. http://localhost:11434/v1 (Ollama)"),
    Editable("llm.model", "llm", "Model", hint="e.g. llama3.1:8b or gpt-4o-mini"),
    Editable("llm.api_key", "llm", "API key", secret=True, hint="local servers usually need none"),
    Editable("llm.timeout_seconds", "llm", "Timeout (seconds)", kind="number"),
    Editable(
        "llm.input_price_per_million", "llm", "Price per million prompt tokens", kind="number"
    ),
    Editable(
        "llm.output_price_per_million",
        "llm",
        "Price per million completion tokens",
        kind="number",
    ),
    Editable(
        "public_url",
        "general",
        "Public address",
        hint="where people open OpsLoop, for links in emails, e.g. https://ops.example.com",
    ),
    Editable("timezone", "general", "Time zone", hint="e.g. Europe/Berlin; schedules run by it"),
)
BY_KEY = {editable.key: editable for editable in EDITABLE}
BY_FIELD = {editable.field: editable for editable in EDITABLE}

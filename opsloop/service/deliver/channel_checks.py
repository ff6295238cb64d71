"""Is there somewhere for an action to go? Said before it matters — when a playbook is applied
and before a decision is approved — rather than found later as a retrying delivery. Each
problem names the setting that fixes it."""

from __future__ import annotations

from typing import Any

from opsloop.settings import Settings

_DEFAULT_SMTP = ("localhost", 25)


def unconfigured(settings: Settings, action: Any) -> str | None:
    """What stops `action` (a playbook action spec) from being delivered, or None."""
    kind = getattr(action, "kind", "")
    if kind == "email":
        if (settings.smtp_host, settings.smtp_port) == _DEFAULT_SMTP and not settings.smtp_username:
            return (
                "email goes to a mail server at localhost:25, the default: set the mail server "
                "under Settings → Email (or OPSLOOP_SMTP_HOST, OPSLOOP_SMTP_PORT …) unless one "
                "runs there"
            )
        return None
    if kind == "notify":
        channel, url = getattr(action, "channel", None), getattr(action, "url", None)
        if url:
            return None
        if channel:
            if channel in settings.notify_channels:
                return None
            known = ", ".join(sorted(settings.notify_channels)) or "none yet"
            return (
                f"chat channel {channel!r} is not configured (known: {known}): add it under "
                "Settings → Webhooks and chat (or OPSLOOP_NOTIFY_CHANNELS)"
            )
        if settings.notify_url:
            return None
        return (
            "no chat webhook: set the default chat webhook under Settings → Webhooks and chat "
            "(or OPSLOOP_NOTIFY_URL)"
        )
    endpoint = getattr(action, "endpoint", None)
    if endpoint and endpoint not in settings.webhook_endpoints:
        return (
            f"webhook endpoint {endpoint!r} is not configured: add it to OPSLOOP_WEBHOOK_ENDPOINTS"
        )
    return None


def playbook_warnings(settings: Settings, options: dict[str, Any]) -> list[str]:
    """Each distinct channel problem of a playbook's options, naming where it is used."""
    found: dict[str, list[str]] = {}
    for name, option in options.items():
        for action in option.all_actions():
            problem = unconfigured(settings, action)
            if problem is not None:
                found.setdefault(problem, []).append(name)
    return [
        f"{problem} (used by option {', '.join(sorted(set(names)))})"
        for problem, names in found.items()
    ]

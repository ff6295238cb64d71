"""The decide stage as the edges see it: events → decisions: playbooks and their versions, the
decisions made, the language model. `OpsLoop.decide` is one of these, on the service's context;
every method is one use case."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.core.decision_views import DecisionDetail, DecisionSummary
from opsloop.core.llm_calls import ModelUsage
from opsloop.core.playbooks import Playbook
from opsloop.core.yaml_source import read_text
from opsloop.service import reading
from opsloop.service.context import Context
from opsloop.service.decide import awaiting, playbook_templates, playbooks
from opsloop.service.decide.playbooks import Applied
from opsloop.service.decide.views import (
    EventDecisions,
    PlaybookDetail,
    PlaybookSummary,
    PlaybookVersion,
    TemplateDetail,
    TemplateSummary,
)

if TYPE_CHECKING:
    from opsloop.reasoning.llm_client import Classification
    from opsloop.service.decide.llm_setup import ConnectionCheck


class Decide:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def validate_playbook(self, text: str, file: str) -> Playbook:
        configured = bool(self.ctx.settings.llm.url and self.ctx.settings.llm.model)
        return playbooks.load_playbook(text, file, llm_configured=configured)[0]

    def apply_playbook(self, text: str, file: str, *, actor: str) -> Applied:
        return playbooks.apply_playbook(self.ctx, text, file, actor=actor)

    def apply_playbook_file(self, path: Path, *, actor: str) -> Applied:
        return playbooks.apply_playbook(self.ctx, read_text(path), str(path), actor=actor)

    def channel_warnings(self, name: str) -> list[str]:
        """What the active playbook's actions need that is not set up, naming each setting."""
        return playbooks.channel_warnings(self.ctx, name)

    def list_playbooks(self) -> list[PlaybookSummary]:
        return playbooks.list_playbooks(self.ctx)

    def get_playbook(self, name: str) -> PlaybookDetail:
        return playbooks.get_playbook(self.ctx, name)

    def get_playbook_version(self, name: str, version: int) -> PlaybookVersion:
        """One stored version with its source, for showing it or comparing two versions."""
        return playbooks.get_playbook_version(self.ctx, name, version)

    def list_templates(self) -> list[TemplateSummary]:
        """The built-in playbooks offered as templates: what each needs that is not set up,
        and whether it is installed (opsloop/service/decide/playbook_templates.py)."""
        return playbook_templates.list_templates(self.ctx)

    def get_template(self, name: str) -> TemplateDetail:
        """One template with the YAML it installs; NotFound for a name that is not one."""
        return playbook_templates.get_template(self.ctx, name)

    def install_template(self, name: str, *, actor: str) -> Applied:
        """Apply a template as a new playbook in recommend mode; Conflict when a playbook of
        its name exists, PlaybookInvalid when it needs a language model and none is set."""
        return playbook_templates.install_template(self.ctx, name, actor=actor)

    def queue_due_schedules(self) -> int:
        """Queue each scheduled playbook's latest due run by the service's clock, as the
        every-minute job does; `run_jobs` or a worker does the runs. For simulations that move
        the clock by hand (the demo). Returns how many runs were queued."""
        from opsloop.service.decide import schedules

        return schedules.claim_due(self.ctx)

    def list_decisions(self, **filters: Any) -> list[DecisionSummary]:
        return reading.list_decisions(self.ctx, **filters)

    async def await_decisions(
        self, event_ids: Collection[int], *, timeout: float
    ) -> dict[int, EventDecisions]:
        """Each event's decisions, once the playbooks that ask the language model have decided
        on it or `timeout` seconds have passed (`POST /api/events?wait=decision`)."""
        return await awaiting.await_decisions(self.ctx, event_ids, timeout=timeout)

    def decision_detail(self, decision_id: int) -> DecisionDetail:
        return reading.decision_detail(self.ctx, decision_id)

    def check_llm(self) -> ConnectionCheck:
        """One tiny request to the language model (no retries, no cache): model and latency,
        or what is wrong (opsloop/service/decide/llm_setup.py)."""
        from opsloop.service.decide import llm_setup  # the LLM client loads only when used

        return llm_setup.test_connection(self.ctx)

    def classify_text(
        self,
        text: str,
        labels: list[str],
        *,
        instructions: str | None = None,
        needed_by: str = "",
    ) -> Classification:
        """One of `labels` for `text`, as a playbook would ask the model (cached, booked)."""
        from opsloop.service.decide import llm_setup  # the LLM client loads only when used

        with llm_setup.language_model(self.ctx, needed_by=needed_by) as llm:
            return llm.classify(text, labels, instructions=instructions)

    def llm_usage(self) -> dict[str, ModelUsage]:
        """Per model: calls, cache hits, failures, tokens and cost, from the LLM call ledger."""
        from opsloop.service.decide import llm_setup  # the LLM client loads only when used

        return llm_setup.usage(self.ctx)

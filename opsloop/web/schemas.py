"""Request shapes of the JSON API (responses are documented in docs/api.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Literal["approve", "override", "reject"]
    option: str | None = Field(
        default=None, description="For `override`: the option to run instead."
    )
    reason: str | None = Field(default=None, description="Required for `override` and `reject`.")
    draft: str | None = Field(
        default=None,
        max_length=20000,
        description="The reply as you finalized it, for an option that sends `{{ draft }}`; "
        "default: the AI-prepared draft as it stands.",
    )
    reviewer: str | None = Field(
        default=None,
        max_length=200,
        description="Who is reviewing; default: the signed-in person or `token:NAME`.",
    )


class ActorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: str | None = Field(
        default=None,
        max_length=200,
        description="Who does it; default: the signed-in person or `token:NAME`.",
    )


class StopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="Why: kept in the audit trail.")
    playbook: str | None = Field(
        default=None, description="`POST /api/sequences/stop` only: that playbook's sequences."
    )
    subject: str | None = Field(
        default=None,
        max_length=300,
        description="`POST /api/sequences/stop` only: that subject's sequences (`customer:42`).",
    )
    actor: str | None = Field(
        default=None,
        max_length=200,
        description="Who does it; default: the signed-in person or `token:NAME`.",
    )


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: str | None = Field(
        max_length=200, description="Who does it now (an email or a team); null: nobody."
    )
    actor: str | None = Field(
        default=None,
        max_length=200,
        description="Who reassigns it; default: the signed-in person or `token:NAME`.",
    )

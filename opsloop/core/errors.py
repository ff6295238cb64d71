"""The exception tree every layer raises; the edges (HTTP, CLI) turn these into messages.

OpsLoopError
├── InvalidInput          bad signal or request; carries one FieldError per problem
│   └── TooLarge          the body is over the configured size limit
├── PlaybookInvalid       a playbook failed validation; carries file:line:field problems
├── Unauthorized          no valid session or API token, a wrong password, or a webhook's
│                         signature is missing or wrong
├── Forbidden             signed in, but the role or the token's scope does not allow this
├── RateLimited           too many attempts (failed sign-ins); `retry_after` says when to try again
├── NotFound              a named thing does not exist
├── Conflict              the request clashes with current state (review of a settled decision)
│   └── LLMNotConfigured  a language model is needed and none is configured (reasoning/llm_client.py)
├── Unavailable           a service outside OpsLoop failed; `retryable` says if trying again can help
│   └── LLMError          the language model could not answer usefully (reasoning/llm_client.py)
└── DeliveryError         an action could not be delivered; `retryable` says if trying again can help
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self


class OpsLoopError(Exception):
    """Root of every error OpsLoop raises on purpose."""

    quarantine_id: int | None = None
    """Set when the input that caused the error was kept in quarantine."""


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidInput(OpsLoopError):
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))

    @classmethod
    def single(cls, field: str, message: str) -> Self:
        return cls([FieldError(field, message)])


@dataclass(frozen=True, slots=True)
class PlaybookProblem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class PlaybookInvalid(OpsLoopError):
    def __init__(self, problems: list[PlaybookProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class TooLarge(InvalidInput):
    pass


class Unauthorized(OpsLoopError):
    def __init__(self, message: str, *, challenge: str | None = None) -> None:
        self.challenge = challenge
        """The `WWW-Authenticate` scheme to answer with (`Bearer`), if any."""
        super().__init__(message)


class Forbidden(OpsLoopError):
    pass


class RateLimited(OpsLoopError):
    def __init__(self, message: str, *, retry_after: int) -> None:
        self.retry_after = retry_after
        """Seconds until trying again can succeed."""
        super().__init__(message)


class NotFound(OpsLoopError):
    pass


class Conflict(OpsLoopError):
    pass


class Unavailable(OpsLoopError):
    def __init__(self, message: str, *, retryable: bool) -> None:
        self.retryable = retryable
        super().__init__(message)


class DeliveryError(OpsLoopError):
    def __init__(self, message: str, *, retryable: bool) -> None:
        self.retryable = retryable
        super().__init__(message)

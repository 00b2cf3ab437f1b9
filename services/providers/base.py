"""What every code-writing provider hands back, so generation treats them alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable


class PartKind(StrEnum):
    TEXT = "text"
    EXECUTABLE_CODE = "executable_code"
    CODE_EXECUTION_RESULT = "code_execution_result"


@dataclass(frozen=True)
class ResponsePart:
    kind: PartKind
    content: str


@dataclass
class Attempt:
    """One HTTP call to the provider; kept so a failed generation can be debugged."""

    number: int
    duration_seconds: float
    http_status: int | None = None
    error: str | None = None
    # What the provider says it understood, and the parts of the prompt its code leaves out.
    interpretation: dict[str, Any] = field(default_factory=dict)
    ignored_requirements: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "number": self.number,
            "durationSeconds": round(self.duration_seconds, 4),
            "httpStatus": self.http_status,
            "error": self.error,
        }


@dataclass
class ProviderResult:
    """The outcome of asking a provider once (retries included).

    `error` is set when no usable answer came back (provider fault, blocked prompt,
    timeout); `parts` may still hold whatever was received.
    """

    provider: str
    model: str
    parts: list[ResponsePart] = field(default_factory=list)
    raw_response: str | None = None
    tokens_used: int = 0  # input + output, over every attempt that got an answer
    input_tokens: int = 0
    output_tokens: int = 0
    # The answer stopped at the model's output limit (finish_reason "length", stop_reason
    # "max_tokens", finishReason MAX_TOKENS): code in it may be cut short.
    truncated: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None
    # What the provider says it understood, and the parts of the prompt its code leaves out.
    interpretation: dict[str, Any] = field(default_factory=dict)
    ignored_requirements: list[str] = field(default_factory=list)

    def count_tokens(self, input_tokens: int, output_tokens: int) -> None:
        """Add one answer's usage (retried answers cost tokens too)."""
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.tokens_used += input_tokens + output_tokens


@dataclass(frozen=True)
class Turn:
    """One message of a conversation with a model: ours ("user") or its answer ("assistant")."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class Refinement:
    """What a refinement starts from: the strategy's current code and parameters, the prompt
    that made it, and the user's instruction."""

    code: str
    parameters: dict[str, Any]
    prompt: str
    instruction: str


class CodeProvider(Protocol):
    name: str
    model: str

    async def generate(self, prompt: str) -> ProviderResult: ...


@runtime_checkable
class ChatProvider(Protocol):
    """A model one can talk to: generation, repair and refinement are all conversations,
    whose messages services/providers/prompting.py writes."""

    name: str
    model: str

    async def generate(self, prompt: str) -> ProviderResult: ...

    async def converse(self, turns: Sequence[Turn]) -> ProviderResult: ...


@runtime_checkable
class RefiningProvider(Protocol):
    """A provider that is no model but can still change code it wrote (the templates)."""

    name: str
    model: str

    async def generate(self, prompt: str) -> ProviderResult: ...

    async def refine(self, refinement: Refinement) -> ProviderResult: ...

"""The configured models, and the one rule that picks the provider for a request.

A model's id is "<provider>:<model>" (e.g. "openai:llama3.1:8b"): unique even when two
providers serve the same model name. Requests may also name just the model when only one
provider serves it. The API (generateStrategy, models) and the CLI (generate --model,
models) all go through `select` and `models`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.errors import BadInput
from services.providers.base import CodeProvider


def model_id(provider: str, model: str) -> str:
    return f"{provider}:{model}"


@dataclass(frozen=True)
class ModelChoice:
    id: str
    provider: str
    model: str
    is_default: bool


class ProviderRegistry:
    """Providers in order of preference; the default is `default` (an id or model name) when
    given, else the first."""

    def __init__(self, providers: Sequence[CodeProvider], default: str | None = None) -> None:
        if not providers:
            raise ValueError("at least one provider is needed")
        ids = [model_id(p.name, p.model) for p in providers]
        if len(set(ids)) != len(ids):
            raise ValueError(f"the same model is configured twice: {ids}")
        self._providers = list(providers)
        self._by_id = dict(zip(ids, providers, strict=True))
        self.default = self._providers[0]
        if default:
            found = self._find(default)
            if found is None:
                raise ValueError(
                    f"DEFAULT_MODEL={default!r} is not a configured model; "
                    f"configured: {', '.join(ids)}"
                )
            self.default = found

    @property
    def providers(self) -> list[CodeProvider]:
        return list(self._providers)

    def models(self) -> list[ModelChoice]:
        return [
            ModelChoice(model_id(p.name, p.model), p.name, p.model, p is self.default)
            for p in self._providers
        ]

    def select(self, model: str | None) -> CodeProvider:
        """The provider for a request's `model` (an id or a model name); None: the default."""
        if model is None:
            return self.default
        wanted = model.strip()
        found = self._find(wanted) if wanted else None
        if found is None:
            known = ", ".join(self._by_id)
            raise BadInput(f"model {model!r} is not configured; choose one of: {known}")
        return found

    def _find(self, wanted: str) -> CodeProvider | None:
        if wanted in self._by_id:
            return self._by_id[wanted]
        named = [p for p in self._providers if p.model == wanted]
        return named[0] if len(named) == 1 else None

    async def aclose(self) -> None:
        for provider in self._providers:
            aclose: Any = getattr(provider, "aclose", None)
            if aclose is not None:
                await aclose()

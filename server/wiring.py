"""Builds the long-lived service objects from settings, once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.settings import Settings
from services.accounts import RecentUsers, TokenSigner
from services.execution import StrategyRunner
from services.generation import Generator
from services.providers.base import CodeProvider
from services.rate_limits import RateLimit, RateLimits
from services.sandbox import Sandbox, SandboxSettings


@dataclass
class Services:
    settings: Settings
    signer: TokenSigner
    generator: Generator
    runner: StrategyRunner
    limits: RateLimits
    recent_users: RecentUsers = field(default_factory=RecentUsers)

    async def aclose(self) -> None:
        # Cancelled generations are still writing their FAILURE logs: let them, while the
        # database is open.
        await self.generator.drain()
        aclose: Any = getattr(self.generator.provider, "aclose", None)
        if aclose is not None:
            await aclose()
        await self.runner.sandbox.close()


def build_provider(settings: Settings) -> CodeProvider:
    if settings.gemini_api_key:
        from services.providers.gemini import GeminiProvider

        return GeminiProvider(
            api_key=settings.gemini_api_key,
            model=settings.gemini_model,
            base_url=settings.gemini_base_url,
            timeout_seconds=settings.gemini_timeout_seconds,
            max_attempts=settings.gemini_max_attempts,
            retry_base_seconds=settings.gemini_retry_base_seconds,
        )
    from services.templates import TemplateProvider

    return TemplateProvider()


def build_sandbox(settings: Settings) -> Sandbox:
    return Sandbox(
        SandboxSettings(
            max_concurrent_jobs=settings.sandbox_max_concurrent_jobs,
            max_queue=settings.sandbox_max_queue,
            max_running_per_owner=settings.sandbox_max_running_per_user,
            max_queued_per_owner=settings.sandbox_max_queued_per_user,
            memory_limit_mb=settings.sandbox_memory_mb,
            allow_unisolated=settings.sandbox_allow_unisolated,
        )
    )


def build_limits(settings: Settings) -> RateLimits:
    return RateLimits.from_specs(
        generate=settings.rate_limit_generate,
        execute=settings.rate_limit_execute,
        login=settings.rate_limit_login,
        auth_by_address=settings.rate_limit_auth_by_address,
        redis_url=settings.redis_url,
    )


def build_runner(
    settings: Settings, sandbox: Sandbox | None = None, rate_limit: RateLimit | None = None
) -> StrategyRunner:
    return StrategyRunner(
        sandbox or build_sandbox(settings),
        signal_timeout_seconds=settings.run_timeout_seconds,
        backtest_timeout_seconds=settings.backtest_timeout_seconds,
        rate_limit=rate_limit,
    )


def build_generator(
    settings: Settings,
    provider: CodeProvider,
    runner: StrategyRunner,
    rate_limit: RateLimit | None = None,
) -> Generator:
    if not settings.generation_trial_run:
        return Generator(provider, rate_limit)
    # In memory even with REDIS_URL: the budget guards this process' CPU, not a user quota.
    budget = RateLimit(settings.generation_trial_run_limit, scope="generation trial runs")
    return Generator(provider, rate_limit, trial_run=runner.trial_run, trial_budget=budget)


def build_services(
    settings: Settings, provider: CodeProvider | None = None, sandbox: Sandbox | None = None
) -> Services:
    limits = build_limits(settings)
    runner = build_runner(settings, sandbox, limits.execute)
    return Services(
        settings=settings,
        signer=TokenSigner(settings.resolved_secret_key(), settings.token_ttl_seconds),
        generator=build_generator(
            settings, provider or build_provider(settings), runner, limits.generate
        ),
        runner=runner,
        limits=limits,
    )

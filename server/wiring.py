"""Builds the long-lived service objects from settings, once per process."""

from __future__ import annotations

from pathlib import Path

from server.settings import Settings
from services.accounts import TokenSigner
from services.code_analysis import CodeAnalyser, UserCodeChecks
from services.container import Services
from services.datasets import DatasetLimits
from services.execution import StrategyRunner
from services.generation import Generator
from services.jobs import InProcessJobs, JobBackend, JobRules, load_job_modules, parse_modules
from services.optimization import Optimizer
from services.persisted_queries import (
    DocumentStore,
    MemoryDocumentStore,
    PersistedOperations,
    RedisDocumentStore,
    load_manifest,
    read_operations,
)
from services.providers.base import CodeProvider
from services.providers.pricing import Price, PriceTable
from services.providers.registry import ProviderRegistry
from services.providers.templates import TemplateProvider
from services.rate_limits import RateLimit, RateLimits
from services.sandbox import Sandbox, SandboxSettings


def build_providers(settings: Settings) -> ProviderRegistry:
    """Every configured model, in the default's order of preference (Settings.configured_models)."""
    built: dict[str, CodeProvider] = {}
    if settings.gemini_api_key:
        from services.providers.gemini import GeminiProvider

        built["gemini"] = GeminiProvider(
            api_key=settings.gemini_api_key,
            model=settings.gemini_model,
            base_url=settings.gemini_base_url,
            timeout_seconds=settings.gemini_timeout_seconds,
            max_attempts=settings.gemini_max_attempts,
            retry_base_seconds=settings.gemini_retry_base_seconds,
        )
    if settings.openai_api_key or settings.openai_base_url:
        from services.providers.openai_compat import OpenAIProvider

        built["openai"] = OpenAIProvider(
            api_key=settings.openai_api_key,
            model=settings.openai_model,
            base_url=settings.openai_base_url,
            timeout_seconds=settings.openai_timeout_seconds,
            max_attempts=settings.openai_max_attempts,
            retry_base_seconds=settings.openai_retry_base_seconds,
        )
    if settings.anthropic_api_key:
        from services.providers.anthropic_claude import AnthropicProvider

        built["anthropic"] = AnthropicProvider(
            api_key=settings.anthropic_api_key,
            model=settings.anthropic_model,
            base_url=settings.anthropic_base_url,
            max_tokens=settings.anthropic_max_tokens,
            timeout_seconds=settings.anthropic_timeout_seconds,
            max_attempts=settings.anthropic_max_attempts,
            retry_base_seconds=settings.anthropic_retry_base_seconds,
        )
    built["template"] = TemplateProvider()
    ordered = [built[provider] for provider, _ in settings.configured_models()]
    return ProviderRegistry(ordered, default=settings.default_model.strip() or None)


def build_prices(settings: Settings) -> PriceTable:
    return PriceTable(
        {model: Price(p.input, p.output) for model, p in settings.model_prices.items()}
    )


def build_sandbox(settings: Settings) -> Sandbox:
    return Sandbox(
        SandboxSettings(
            max_concurrent_jobs=settings.sandbox_max_concurrent_jobs,
            max_queue=settings.sandbox_max_queue,
            max_running_per_owner=settings.sandbox_max_running_per_user,
            max_queued_per_owner=settings.sandbox_max_queued_per_user,
            memory_limit_mb=settings.sandbox_memory_mb,
            allow_unisolated=settings.sandbox_allow_unisolated,
            host_uid=settings.sandbox_host_uid,
            lookahead_check_pct=settings.lookahead_check_pct,
        )
    )


def build_limits(settings: Settings) -> RateLimits:
    return RateLimits.from_specs(
        generate=settings.rate_limit_generate,
        execute=settings.rate_limit_execute,
        login=settings.rate_limit_login,
        auth_by_address=settings.rate_limit_auth_by_address,
        code_validation=f"{settings.code_validation_kib_per_minute}/minute",
        redis_url=settings.redis_url,
        redis_timeout=settings.redis_timeout_seconds,
        redis_retry_after=settings.redis_retry_seconds,
    )


def build_analyser(settings: Settings) -> CodeAnalyser:
    """The worker pool that parses untrusted code."""
    return CodeAnalyser(
        workers=settings.code_analysis_workers,
        timeout_seconds=settings.code_analysis_timeout_seconds,
        memory_mb=settings.code_analysis_memory_mb,
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
    providers: ProviderRegistry | CodeProvider,
    runner: StrategyRunner,
    analyser: CodeAnalyser,
    rate_limit: RateLimit | None = None,
) -> Generator:
    prices = build_prices(settings)
    repairs = settings.generation_repair_rounds
    time_limit = settings.generation_timeout_seconds
    if not settings.generation_trial_run:
        return Generator(
            providers,
            analyser,
            rate_limit,
            prices=prices,
            repair_rounds=repairs,
            time_limit_seconds=time_limit,
        )
    # In memory even with REDIS_URL: the budget guards this process' CPU, not a user quota.
    budget = RateLimit(settings.generation_trial_run_limit, scope="generation trial runs")
    return Generator(
        providers,
        analyser,
        rate_limit,
        trial_run=runner.trial_run,
        trial_budget=budget,
        prices=prices,
        repair_rounds=repairs,
        time_limit_seconds=time_limit,
    )


OPERATIONS_DIR = Path(__file__).resolve().parent.parent / "docs" / "operations"


def build_persisted(settings: Settings) -> PersistedOperations:
    """APQ's store (Redis with REDIS_URL, so every process knows a registered hash) and the
    trusted manifest: docs/operations' operations and PERSISTED_OPERATIONS_MANIFESTS."""
    store: DocumentStore = (
        RedisDocumentStore(
            settings.redis_url,
            timeout=settings.redis_timeout_seconds,
            retry_after=settings.redis_retry_seconds,
        )
        if settings.redis_url
        else MemoryDocumentStore()
    )
    manifest = read_operations(OPERATIONS_DIR)
    for path in settings.manifest_paths:
        manifest.update(load_manifest(path))
    return PersistedOperations(store, manifest, trusted_only=settings.persisted_operations_only)


def job_rules(settings: Settings) -> JobRules:
    return JobRules(
        max_running_per_user=settings.job_max_running_per_user,
        heartbeat_seconds=settings.job_heartbeat_seconds,
        stale_seconds=settings.job_stale_seconds,
    )


def build_jobs(settings: Settings, runner: StrategyRunner) -> JobBackend:
    """Where jobs run: queued to workers (services/job_queue.py) or in this process."""
    load_job_modules(parse_modules(settings.job_modules))
    if settings.uses_job_queue:
        from services.job_queue import QueueKeys, QueueSubmitter

        return QueueSubmitter(
            settings.redis_url, job_rules(settings), QueueKeys(settings.job_queue_name)
        )
    return InProcessJobs(runner, job_rules(settings), max_running=settings.job_concurrency)


def build_optimizer(settings: Settings, runner: StrategyRunner, jobs: JobBackend) -> Optimizer:
    """Optimisations submitted to `jobs` (the API's and the CLI's way in)."""
    return Optimizer(
        runner.sandbox,
        jobs,
        max_trials=settings.optimization_max_trials,
        trial_timeout_seconds=settings.backtest_timeout_seconds,
    )


def build_services(
    settings: Settings,
    provider: ProviderRegistry | CodeProvider | None = None,
    sandbox: Sandbox | None = None,
    analyser: CodeAnalyser | None = None,
) -> Services:
    """`provider`, when given (tests), replaces the configured models."""
    limits = build_limits(settings)
    runner = build_runner(settings, sandbox, limits.execute)
    analyser = analyser or build_analyser(settings)
    jobs = build_jobs(settings, runner)
    return Services(
        signer=TokenSigner(settings.resolved_secret_key(), settings.token_ttl_seconds),
        generator=build_generator(
            settings, provider or build_providers(settings), runner, analyser, limits.generate
        ),
        runner=runner,
        limits=limits,
        analyser=analyser,
        code_checks=UserCodeChecks(
            analyser, limits.code_validation, settings.max_request_code_bytes
        ),
        persisted=build_persisted(settings),
        dataset_limits=build_dataset_limits(settings),
        optimizer=build_optimizer(settings, runner, jobs),
        jobs=jobs,
    )


def build_dataset_limits(settings: Settings) -> DatasetLimits:
    return DatasetLimits(
        max_csv_bytes=settings.max_dataset_bytes,
        max_bars=settings.max_dataset_bars,
        max_datasets_per_user=settings.max_datasets_per_user,
        max_stored_bytes_per_user=settings.max_dataset_storage_bytes_per_user,
    )

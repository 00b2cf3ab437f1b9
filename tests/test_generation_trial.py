"""The trial run of generated code when it cannot or may not run, on real sandboxes.

The cases where the code itself fails its trial go through the API in test_gemini_generation.py.
Here: the budget of trial runs is spent; a one-slot sandbox is saturated by a job that spins, so
the trial is refused (busy) or waits in the queue until the generation is cancelled as at
shutdown. In every case the generation is stored, with a warning saying why it went untried.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from models import GeneratedStrategy, GenerationStatus, StrategyGenerationLog, StrategyStatus
from services import accounts, telemetry
from services.execution import StrategyRunner, sandbox_owner
from services.generation import (
    TRIAL_INTERRUPTED,
    TRIAL_OVER_BUDGET,
    GenerationRequest,
    Generator,
)
from services.providers.templates import TemplateProvider
from services.rate_limits import RateLimit
from services.samples import load_sample
from services.sandbox import Sandbox, SandboxSettings
from tests.support.api import PASSWORD, shared_analyser
from tests.support.strategy_code import SPIN
from tests.support.waiting import until


async def occupy(sandbox: Sandbox, owner: str = "") -> asyncio.Task[object]:
    """A job of `owner` that holds the sandbox's only slot for up to 20 s."""
    hog = asyncio.create_task(
        sandbox.run_signal(SPIN, load_sample("trending_daily"), {}, timeout_seconds=20, owner=owner)
    )
    await until(lambda: gauge("sandbox_jobs_running") >= 1, "the spinning job to start")
    return hog


def gauge(name: str) -> float:
    return telemetry.REGISTRY.get_sample_value(name) or 0.0


async def release(hog: asyncio.Task[object]) -> None:
    hog.cancel()
    await asyncio.gather(hog, return_exceptions=True)


@pytest.fixture
async def one_slot() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxSettings(max_concurrent_jobs=1, max_queue=1)) as running:
        yield running


async def new_user() -> accounts.User:
    return await accounts.register(f"trial-{uuid.uuid4().hex[:10]}@example.com", PASSWORD)


async def test_generations_past_the_budget_go_untried_with_a_warning(
    database: str, sandbox: Sandbox
) -> None:
    tried: list[str] = []
    runner = StrategyRunner(sandbox)

    async def trial_run(user: accounts.User, code: str, parameters: dict[str, object]) -> list[str]:
        tried.append(code)
        return await runner.trial_run(user, code, parameters)

    budget = RateLimit("2/minute", scope="generation trial runs")
    generator = Generator(
        TemplateProvider(), shared_analyser(), trial_run=trial_run, trial_budget=budget
    )
    user = await new_user()
    outcomes = [
        await generator.generate(user, GenerationRequest(f"RSI scalping {n}")) for n in range(3)
    ]
    assert len(tried) == 2
    strategies = [outcome.strategy for outcome in outcomes if outcome.strategy is not None]
    assert [outcome.log.status for outcome in outcomes] == [GenerationStatus.SUCCESS] * 3
    assert [strategy.status for strategy in strategies] == [StrategyStatus.VALIDATED] * 3
    untried = [TRIAL_OVER_BUDGET in s.validation_results["warnings"] for s in strategies]
    assert untried == [False, False, True]


async def test_a_busy_sandbox_skips_the_trial_and_says_so(database: str, one_slot: Sandbox) -> None:
    generator = Generator(
        TemplateProvider(), shared_analyser(), trial_run=StrategyRunner(one_slot).trial_run
    )
    hog = await occupy(one_slot)
    waiting = asyncio.create_task(one_slot.run_signal(SPIN, load_sample("trending_daily"), {}))
    try:
        await until(lambda: gauge("sandbox_jobs_queued") >= 1, "the queue to fill")
        outcome = await generator.generate(await new_user(), GenerationRequest("RSI scalping"))
    finally:
        await release(waiting)
        await release(hog)
    assert outcome.log.status is GenerationStatus.SUCCESS
    assert outcome.strategy is not None
    assert outcome.strategy.status is StrategyStatus.VALIDATED
    report = outcome.strategy.validation_results
    assert report["valid"] is True
    skipped = [w for w in report["warnings"] if w.startswith("Trial run skipped:")]
    assert skipped and "the sandbox is busy" in skipped[0], report


async def test_a_generation_cancelled_during_its_trial_is_still_stored(
    database: str, one_slot: Sandbox
) -> None:
    """What uvicorn does past the grace period: the answer is kept, marked as untried."""
    generator = Generator(
        TemplateProvider(), shared_analyser(), trial_run=StrategyRunner(one_slot).trial_run
    )
    user = await new_user()
    hog = await occupy(one_slot)
    try:
        task = asyncio.create_task(generator.generate(user, GenerationRequest("MACD momentum")))
        await until(lambda: gauge("sandbox_jobs_queued") >= 1, "the trial to queue")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await release(hog)
    [log] = await StrategyGenerationLog.filter(user=user)
    [strategy] = await GeneratedStrategy.filter(user=user)
    assert log.status is GenerationStatus.SUCCESS
    assert log.strategy_id == strategy.id  # type: ignore[attr-defined]
    assert TRIAL_INTERRUPTED in strategy.validation_results["warnings"]
    assert log.processing_time_seconds > 0


async def test_a_trial_run_is_scheduled_for_the_user_who_generated(database: str) -> None:
    """One user holds the only slot and has a job waiting, their own cap: their generation's
    trial is refused, while another user's trial is accepted and runs before that job."""
    settings = SandboxSettings(max_concurrent_jobs=1, max_queue=4, max_queued_per_owner=1)
    async with Sandbox(settings) as box:
        generator = Generator(
            TemplateProvider(), shared_analyser(), trial_run=StrategyRunner(box).trial_run
        )
        hogger, other = await new_user(), await new_user()
        hog = await occupy(box, sandbox_owner(hogger))
        waiting = asyncio.create_task(
            box.run_signal(
                SPIN,
                load_sample("trending_daily"),
                {},
                timeout_seconds=20,
                owner=sandbox_owner(hogger),
            )
        )
        try:
            await until(lambda: box.scheduler.queued == 1, "the hogger's second job to wait")
            refused = await generator.generate(hogger, GenerationRequest("RSI scalping"))
            generating = asyncio.create_task(
                generator.generate(other, GenerationRequest("MACD momentum"))
            )
            await until(lambda: box.scheduler.queued == 2, "the other user's trial to wait")
            await release(hog)
            outcome = await generating
            assert not waiting.done()  # the trial ran first, round robin
        finally:
            await release(waiting)
            await release(hog)
    assert refused.strategy is not None and outcome.strategy is not None
    skipped = [w for w in refused.strategy.validation_results["warnings"] if "Trial run" in w]
    assert len(skipped) == 1 and "your limit" in skipped[0], skipped
    warnings = outcome.strategy.validation_results["warnings"]
    assert not [w for w in warnings if "Trial run" in w], warnings
    assert outcome.strategy.status is StrategyStatus.VALIDATED

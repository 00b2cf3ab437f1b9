"""One user filling the sandbox slows only themselves: per-owner caps on running and waiting
jobs, slots handed round robin between owners, a global queue bound only as a backstop.

On a real one-slot sandbox: a job that spins holds the slot, the others queue behind it, and
the order in which they then run (one at a time) is asserted, never their timings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from server.settings import Settings
from server.wiring import build_sandbox
from services import telemetry
from services.errors import BadInput, ServiceError
from services.providers.templates import TemplateProvider
from services.sandbox import Sandbox, SandboxBusy, SandboxSettings
from services.sandbox.warmup import sample_bars
from tests.support.api import call_graphql, error_codes, make_client, register_user
from tests.support.strategy_code import SPIN, SPIN_STORABLE
from tests.support.waiting import until

BARS = sample_bars(50)
LABELLED = """
def execute_strategy(market_data, strategy_params):
    return {"action": "hold", "confidence": 0.0, "reason": strategy_params["label"]}
"""


@pytest.fixture
async def one_slot() -> AsyncIterator[Sandbox]:
    """One slot; each owner may have 2 jobs waiting, all owners together 5."""
    settings = SandboxSettings(max_concurrent_jobs=1, max_queue=5, max_queued_per_owner=2)
    async with Sandbox(settings) as box:
        yield box


async def occupy(box: Sandbox, owner: str) -> asyncio.Task[Any]:
    """A job of `owner` that holds the only slot until cancelled."""
    hog = asyncio.create_task(box.run_signal(SPIN, BARS, {}, timeout_seconds=30, owner=owner))
    await until(lambda: box.scheduler.running == 1, "the spinning job to start")
    return hog


async def release(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class Queue:
    """Labelled jobs queued one after the other; `finished` lists labels as they end."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.finished: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def add(self, owner: str, label: str) -> asyncio.Task[None]:
        async def job() -> None:
            signal = await self.box.run_signal(LABELLED, BARS, {"label": label}, owner=owner)
            self.finished.append(signal["reason"])

        queued = self.box.scheduler.queued
        task = asyncio.create_task(job())
        self.tasks.append(task)
        await until(lambda: self.box.scheduler.queued == queued + 1, f"{label} to queue")
        return task

    async def all_done(self) -> None:
        await asyncio.gather(*self.tasks)


async def test_slots_go_round_robin_between_owners(one_slot: Sandbox) -> None:
    """Not one FIFO: after a's job, b and c (served least recently) come before a again."""
    hog = await occupy(one_slot, "a")
    queue = Queue(one_slot)
    for owner, label in [("a", "a1"), ("a", "a2"), ("b", "b1"), ("b", "b2"), ("c", "c1")]:
        await queue.add(owner, label)
    await release(hog)
    await queue.all_done()
    assert queue.finished == ["b1", "c1", "a1", "b2", "a2"]


async def test_an_owner_at_their_cap_is_refused_and_only_they_are(one_slot: Sandbox) -> None:
    hog = await occupy(one_slot, "a")
    queue = Queue(one_slot)
    await queue.add("a", "a1")
    await queue.add("a", "a2")
    with pytest.raises(SandboxBusy) as refused:
        await one_slot.run_signal(LABELLED, BARS, {"label": "a3"}, owner="a")
    assert refused.value.extensions == {"code": "RATE_LIMITED", "retryAfterSeconds": 1}
    assert isinstance(refused.value, ServiceError) and not isinstance(refused.value, BadInput)
    assert "your limit" in refused.value.message
    await queue.add("b", "b1")  # another owner is accepted while a is at their cap...
    await release(hog)
    await queue.all_done()
    assert queue.finished == ["b1", "a1", "a2"]  # ...and runs next


async def test_the_global_queue_bound_is_a_backstop_for_many_owners(one_slot: Sandbox) -> None:
    hog = await occupy(one_slot, "a")
    queue = Queue(one_slot)
    for owner, label in [("a", "a1"), ("a", "a2"), ("b", "b1"), ("b", "b2"), ("c", "c1")]:
        await queue.add(owner, label)
    with pytest.raises(SandboxBusy) as refused:
        await one_slot.run_signal(LABELLED, BARS, {"label": "d1"}, owner="d")
    assert "the sandbox is busy" in refused.value.message
    await release(hog)
    await queue.all_done()
    assert sorted(queue.finished) == ["a1", "a2", "b1", "b2", "c1"]


def test_by_default_one_owner_cannot_fill_the_global_queue() -> None:
    default = SandboxSettings(max_concurrent_jobs=2, max_queue=32)
    assert (default.running_per_owner, default.queued_per_owner) == (1, 8)
    for slots, bound in [(1, 2), (2, 8), (4, 32), (8, 1000), (64, 10_000)]:
        settings = SandboxSettings(max_concurrent_jobs=slots, max_queue=bound)
        assert 1 <= settings.queued_per_owner < bound
        assert settings.running_per_owner == max(1, slots - 1)
    assert SandboxSettings(max_concurrent_jobs=1, max_queue=0).queued_per_owner == 0


async def test_by_default_one_slot_stays_free_for_other_owners() -> None:
    """a's second job waits although a slot is free: b's job takes it at once."""
    async with Sandbox(SandboxSettings(max_concurrent_jobs=2, max_queue=8)) as box:
        hog = await occupy(box, "a")
        waiting = asyncio.create_task(box.run_signal(SPIN, BARS, {}, owner="a"))
        await until(lambda: box.scheduler.queued == 1, "a's second job to wait")
        assert box.scheduler.running == 1
        signal = await box.run_signal(LABELLED, BARS, {"label": "b1"}, owner="b")
        assert signal["reason"] == "b1"
        assert not waiting.done()
        await release(waiting)
        await release(hog)


async def test_a_running_cap_of_every_slot_lets_one_owner_use_them_all() -> None:
    settings = SandboxSettings(max_concurrent_jobs=2, max_queue=8, max_running_per_owner=2)
    async with Sandbox(settings) as box:
        first = await occupy(box, "a")
        second = asyncio.create_task(box.run_signal(SPIN, BARS, {}, timeout_seconds=30, owner="a"))
        await until(lambda: box.scheduler.running == 2, "a's second job to run")
        assert box.scheduler.owner_counts("a") == (2, 0)
        await release(second)
        await release(first)


async def test_a_cancelled_waiting_job_leaves_the_queue_and_never_runs(one_slot: Sandbox) -> None:
    queued_before = telemetry.REGISTRY.get_sample_value("sandbox_jobs_queued") or 0.0
    hog = await occupy(one_slot, "a")
    queue = Queue(one_slot)
    await queue.add("a", "a1")
    gone = await queue.add("a", "a2")
    assert telemetry.REGISTRY.get_sample_value("sandbox_jobs_queued") == queued_before + 2
    await release(gone)
    assert one_slot.scheduler.queued == 1
    assert one_slot.scheduler.owner_counts("a") == (1, 1)
    assert telemetry.REGISTRY.get_sample_value("sandbox_jobs_queued") == queued_before + 1
    queue.tasks.remove(gone)
    await queue.add("a", "a3")  # the place it held is free again
    await release(hog)
    await queue.all_done()
    assert queue.finished == ["a1", "a3"]
    assert one_slot.scheduler.owner_counts("a") == (0, 0)
    assert telemetry.REGISTRY.get_sample_value("sandbox_jobs_queued") == queued_before


RUN = """mutation($id: UUID!, $data: MarketDataInput!) {
  runStrategy(id: $id, marketData: $data) { action reason } }"""
GENERATE = """mutation($p: String!) { generateStrategy(input: {prompt: $p}) { strategy { id } } }"""
UPDATE = """mutation($id: UUID!, $code: String!) {
  updateStrategy(id: $id, input: {generatedCode: $code}) { id status } }"""


async def stored_strategy(http: httpx.AsyncClient, token: str, code: str | None = None) -> str:
    body = await call_graphql(http, GENERATE, {"p": "SMA 5/20 crossover"}, token)
    strategy_id = str(body["data"]["generateStrategy"]["strategy"]["id"])
    if code is not None:
        body = await call_graphql(http, UPDATE, {"id": strategy_id, "code": code}, token)
        assert "errors" not in body, body
    return strategy_id


async def test_one_user_flooding_run_strategy_does_not_lock_out_another(
    database: str, settings: Settings
) -> None:
    """The reviewer's attack, scaled down: one slot; user a sends more concurrent runStrategy
    calls of a 1-second strategy than the whole queue holds. a is refused at their own cap
    (1 running + 2 waiting, the defaults for SANDBOX_MAX_QUEUE=8); b is answered."""
    settings = settings.model_copy(
        update={"sandbox_max_concurrent_jobs": 1, "sandbox_max_queue": 8, "run_timeout_seconds": 1}
    )
    async with (
        Sandbox(SandboxSettings(max_concurrent_jobs=1, max_queue=8)) as box,
        make_client(settings, TemplateProvider(), sandbox=box) as http,
    ):
        token_a, _ = await register_user(http)
        token_b, _ = await register_user(http)
        spin = await stored_strategy(http, token_a, SPIN_STORABLE)
        quick = await stored_strategy(http, token_b)
        data = {key: values[:50] for key, values in BARS.as_columns().items()}

        async def run(token: str, strategy_id: str) -> dict[str, Any]:
            return await call_graphql(http, RUN, {"id": strategy_id, "data": data}, token)

        flood = [asyncio.create_task(run(token_a, spin)) for _ in range(10)]
        await until(
            lambda: any(t.done() and error_codes(t.result()) == ["RATE_LIMITED"] for t in flood),
            "a's calls to be refused",
        )
        answer = await run(token_b, quick)
        assert "errors" not in answer, answer
        assert answer["data"]["runStrategy"]["action"] in ("BUY", "SELL", "HOLD")
        outcomes = [error_codes(body) for body in await asyncio.gather(*flood)]
    assert outcomes.count(["RATE_LIMITED"]) == 7, outcomes
    assert outcomes.count(["STRATEGY_ERROR"]) == 3, outcomes  # run to the 1-second timeout


def test_the_per_user_caps_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_MAX_RUNNING_PER_USER", "1")
    monkeypatch.setenv("SANDBOX_MAX_QUEUED_PER_USER", "3")
    configured = build_sandbox(Settings(_env_file=None)).settings  # type: ignore[call-arg]
    assert (configured.running_per_owner, configured.queued_per_owner) == (1, 3)
    monkeypatch.delenv("SANDBOX_MAX_RUNNING_PER_USER")
    monkeypatch.delenv("SANDBOX_MAX_QUEUED_PER_USER")
    derived = build_sandbox(Settings(_env_file=None)).settings  # type: ignore[call-arg]
    assert (derived.running_per_owner, derived.queued_per_owner) == (1, 8)

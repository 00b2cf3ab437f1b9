"""Issue 14's target with a real optimisation: two `python -m server worker` processes take
an optimisation's job and batches over Redis; the worker running the job is killed with
SIGKILL midway, and the other finishes it with every trial stored and counted once."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from bench.backtest_engine import execute_strategy as sma_cross
from models import (
    GeneratedStrategy,
    Job,
    JobStatus,
    Optimization,
    OptimizationStatus,
    OptimizationTrial,
    StrategyStatus,
    User,
)
from services.job_queue import QueueKeys, QueueSubmitter
from services.optimization import FINISHED, Optimizer, OptimizeRequest, ParameterRange
from services.samples import synthetic_bars
from services.sandbox import Sandbox
from tests.support.worker_process import WorkerProcess
from tests.test_job_workers import RULES, cluster_env, started  # noqa: F401 (fixture)

pytestmark = pytest.mark.process


async def test_a_worker_killed_mid_optimization_loses_no_trial(
    database: str,
    redis_url: str,
    sandbox: Sandbox,
    tmp_path: Path,
    started: list,  # noqa: F811
) -> None:
    env = cluster_env(database, redis_url, tmp_path)
    workers = [WorkerProcess(tmp_path, **env), WorkerProcess(tmp_path, **env)]
    started.extend(workers)
    await asyncio.gather(*(asyncio.to_thread(worker.start) for worker in workers))
    submitter = QueueSubmitter(redis_url, RULES, QueueKeys(env["JOB_QUEUE_NAME"]))
    user = await User.create(email=f"wopt-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
    strategy = await GeneratedStrategy.create(
        user_id=user.id,
        name="SMA",
        original_prompt="sma",
        generated_code="from typing import Any\n\n" + inspect.getsource(sma_cross),
        status=StrategyStatus.VALIDATED,
        parameters={"fast": 10, "slow": 30},
    )
    ranges = [
        ParameterRange("fast", min=2, max=41, step=1),
        ParameterRange("slow", values=[50, 60]),
    ]
    request = OptimizeRequest(
        parameters=ranges, market_data=synthetic_bars("trending", 3000, seed=5)
    )
    try:
        queued = await Optimizer(sandbox, submitter).optimize(user, strategy.id, request)
        deadline = time.monotonic() + 120
        while await OptimizationTrial.filter(optimization_id=queued.id).count() < 10:
            assert time.monotonic() < deadline, "no trials stored"
            await asyncio.sleep(0.05)
        job = await Job.get(id=queued.id)
        (victim,) = [w for w in workers if job.worker and job.worker.endswith(f":{w.pid}")]
        os.kill(victim.pid, signal.SIGKILL)
        row = await Optimization.get(id=queued.id)
        while row.status not in FINISHED:
            assert time.monotonic() < deadline + 120, "the other worker did not finish it"
            await asyncio.sleep(0.1)
            row = await Optimization.get(id=queued.id)
    finally:
        await submitter.aclose()
    assert row.status is OptimizationStatus.SUCCEEDED, row.error_message
    trials = await OptimizationTrial.filter(optimization_id=row.id).order_by("number")
    assert [t.number for t in trials] == list(range(80))
    assert row.trials_done == row.trials_total == 80
    job = await Job.get(id=queued.id)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2

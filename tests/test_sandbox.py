"""The sandbox's API: honest strategies, typed errors, backtests with progress, limits on
concurrency, a fork server that dies, the start-up probe and the refusal to run unisolated."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from services.backtesting import BacktestOptions
from services.errors import BadInput, ServiceError
from services.sandbox import (
    ExecutionTimeout,
    InvalidStrategyOutput,
    OutputTooLarge,
    Sandbox,
    SandboxBusy,
    SandboxSettings,
    SandboxUnavailable,
    StrategyRuntimeError,
)
from services.sandbox.warmup import sample_bars
from tests.support.strategy_code import SPIN
from tests.support.waiting import until

BARS = sample_bars(200)
LONG_BARS = sample_bars(2000)

CROSSOVER = """
import numpy as np
import pandas as pd

DEFAULT_PARAMS = {"fast": 5, "slow": 20}

def execute_strategy(market_data, strategy_params):
    close = pd.Series(market_data["close"])
    if len(close) < strategy_params.get("slow", 20):
        return {"action": "hold", "confidence": 0.0, "reason": "warming up"}
    fast = close.rolling(strategy_params.get("fast", 5)).mean().iloc[-1]
    slow = close.rolling(strategy_params.get("slow", 20)).mean().iloc[-1]
    action = "buy" if fast > slow else "sell"
    return {
        "action": action,
        "confidence": float(min(1.0, abs(fast - slow) / slow * 50)),
        "reason": f"fast {fast:.2f} vs slow {slow:.2f}",
        "metadata": {"fast": np.float64(fast), "slow": slow},
    }
"""

FAILS_AT_BAR_57 = """
def execute_strategy(market_data, strategy_params):
    n = len(market_data["close"])
    if n == 58:
        return n / 0
    return {"action": "hold", "confidence": 0.0}
"""

INVALID_AT_BAR_30 = """
def execute_strategy(market_data, strategy_params):
    if len(market_data["close"]) > 30:
        return {"action": "buy", "confidence": 2.0}
    return {"action": "hold", "confidence": 0.0}
"""

BUSY_LOOP = """
def execute_strategy(market_data, strategy_params):
    total = 0
    for i in range(strategy_params.get("n", 4_000_000)):
        total += i
    return {"action": "hold", "confidence": 0.0, "reason": str(total)}
"""

LEGIT_KITCHEN_SINK = (
    Path(__file__).parent / "sandbox_samples" / "kitchen_sink_strategy.txt"
).read_text()


@pytest_asyncio.fixture(scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxSettings(memory_limit_mb=256)) as box:
        yield box


def _descendants(pid: int) -> set[int]:
    """Host pids below `pid` (the fork server's tree, jobs included)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


# --- probe and refusal -------------------------------------------------------------------------


async def test_probe_reports_the_active_layers(sandbox: Sandbox) -> None:
    probe = sandbox.probe
    assert probe is not None and probe.isolated
    assert probe.seccomp and probe.rlimits and probe.python_guards
    assert "seccomp" in probe.layers and "rlimits" in probe.layers
    if shutil.which("bwrap"):
        assert probe.namespaces == "bwrap"
        assert probe.network_isolated
        assert probe.user_id != 0
    assert probe.summary().startswith("layers=")


async def test_refuses_to_run_without_seccomp_or_namespaces() -> None:
    box = Sandbox(SandboxSettings(namespaces="none", seccomp=False))
    with pytest.raises(SandboxUnavailable) as caught:
        await box.start()
    assert caught.value.extensions["code"] == "INTERNAL"
    assert "allow_unisolated" in caught.value.message
    assert not isinstance(caught.value, BadInput)
    with pytest.raises(SandboxUnavailable):
        await box.run_signal(CROSSOVER, BARS, {})
    await box.close()


async def test_allow_unisolated_runs_with_what_is_left() -> None:
    settings = SandboxSettings(namespaces="none", seccomp=False, allow_unisolated=True)
    async with Sandbox(settings) as box:
        assert box.probe is not None and not box.probe.isolated
        assert (await box.run_signal(CROSSOVER, BARS, {}))["action"] in ("buy", "sell")


# --- honest strategies ---------------------------------------------------------------------------


async def test_signal_is_normalised(sandbox: Sandbox) -> None:
    signal_ = await sandbox.run_signal(CROSSOVER, BARS, {"fast": 5, "slow": 20})
    assert signal_["action"] in ("buy", "sell")
    assert 0.0 <= signal_["confidence"] <= 1.0
    assert signal_["reason"].startswith("fast ")
    assert isinstance(signal_["metadata"]["fast"], float)


async def test_a_broad_honest_strategy_is_not_mistaken_for_an_attack(sandbox: Sandbox) -> None:
    """numpy/pandas paths beyond the warm-up must not trip the seccomp filter."""
    signal_ = await sandbox.run_signal(LEGIT_KITCHEN_SINK, BARS, {})
    assert signal_["action"] in ("buy", "sell", "hold")
    assert signal_["metadata"]["pairs"] == 10
    result = await sandbox.run_backtest(LEGIT_KITCHEN_SINK, BARS, {}, BacktestOptions())
    assert result.bars == len(BARS)


async def test_round_trip_is_fast(sandbox: Sandbox) -> None:
    code = 'def execute_strategy(m, p):\n    return {"action": "hold", "confidence": 0.0}\n'
    timings = []
    for _ in range(15):
        began = time.perf_counter()
        await sandbox.run_signal(code, BARS, {})
        timings.append(time.perf_counter() - began)
    assert statistics.median(timings) < 0.1  # ~10 ms here; generous for loaded CI machines


async def test_trial_run_lists_problems(sandbox: Sandbox) -> None:
    assert await sandbox.trial_run(CROSSOVER, BARS, {}) == []
    problems = await sandbox.trial_run(FAILS_AT_BAR_57.replace("58", "200"), BARS, {})
    assert problems == ["ZeroDivisionError: division by zero (line 5)"]
    assert await sandbox.trial_run("def execute_strategy(:\n", BARS, {}) != []


async def test_syntax_error_and_missing_entrypoint(sandbox: Sandbox) -> None:
    with pytest.raises(StrategyRuntimeError) as caught:
        await sandbox.run_signal("x = 1\ndef execute_strategy(:\n", BARS, {})
    assert caught.value.extensions["reason"] == "SYNTAX_ERROR"
    assert caught.value.extensions["line"] == 2
    with pytest.raises(StrategyRuntimeError) as caught:
        await sandbox.run_signal("def strategy(m, p):\n    return None\n", BARS, {})
    assert caught.value.extensions["reason"] == "NO_ENTRYPOINT"


async def test_runtime_error_names_type_message_and_line(sandbox: Sandbox) -> None:
    code = "def execute_strategy(m, p):\n    x = {}\n    return x['missing']\n"
    with pytest.raises(StrategyRuntimeError) as caught:
        await sandbox.run_signal(code, BARS, {})
    assert caught.value.message == "KeyError: 'missing' (line 3)"
    assert caught.value.extensions["exceptionType"] == "KeyError"
    assert caught.value.extensions["code"] == "STRATEGY_ERROR"


# --- backtests ------------------------------------------------------------------------------


async def test_backtest_runs_in_the_child_and_reports_progress(sandbox: Sandbox) -> None:
    seen: list[tuple[int, int]] = []
    result = await sandbox.run_backtest(
        CROSSOVER,
        LONG_BARS,
        {"fast": 5, "slow": 20},
        BacktestOptions(),
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert result.bars == 2000
    assert result.stats.num_trades > 0
    assert len(result.equity) == 2000
    # About a hundred reports whatever the length: every 20 bars of 2,000.
    assert seen == [(done, 2000) for done in range(20, 2001, 20)]


async def test_backtest_error_names_line_and_bar(sandbox: Sandbox) -> None:
    with pytest.raises(StrategyRuntimeError) as caught:
        await sandbox.run_backtest(FAILS_AT_BAR_57, BARS, {}, BacktestOptions())
    assert caught.value.extensions["barIndex"] == 57
    assert caught.value.extensions["line"] == 5
    assert caught.value.message == "ZeroDivisionError: division by zero (line 5, bar 57)"


async def test_backtest_invalid_signal_names_bar(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidStrategyOutput) as caught:
        await sandbox.run_backtest(INVALID_AT_BAR_30, BARS, {}, BacktestOptions())
    assert caught.value.extensions["barIndex"] == 30
    assert "confidence" in caught.value.message


async def test_backtest_timeout_and_bad_options(sandbox: Sandbox) -> None:
    with pytest.raises(ExecutionTimeout):
        await sandbox.run_backtest(SPIN, BARS, {}, BacktestOptions(), timeout_seconds=0.5)
    with pytest.raises(BadInput) as caught:
        await sandbox.run_backtest(CROSSOVER, BARS, {}, BacktestOptions(initial_cash=-1))
    assert caught.value.extensions["reason"] == "INVALID_OPTIONS"


LONG_REASONS = """
def execute_strategy(market_data, strategy_params):
    return {"action": "buy", "confidence": 1.0, "reason": str(len(market_data["close"])) * 300}
"""


async def test_result_bytes_are_capped() -> None:
    """A backtest's cap grows with the bars (its signal stream does), by a fixed amount."""
    async with Sandbox(SandboxSettings(max_output_bytes=4096)) as box:
        result = await box.run_backtest(CROSSOVER, LONG_BARS, {}, BacktestOptions())
        assert result.stats.num_trades > 0
        with pytest.raises(OutputTooLarge) as caught:
            await box.run_backtest(LONG_REASONS, LONG_BARS, {}, BacktestOptions())
        assert caught.value.extensions["reason"] == "OUTPUT_TOO_LARGE"
        assert f"the limit is {4096 + 64 * len(LONG_BARS)}" in caught.value.message
        assert (await box.run_signal(CROSSOVER, BARS, {}))["action"] in ("buy", "sell")


# --- processes, concurrency and the event loop ----------------------------------------------


async def test_timeout_leaves_no_process_behind(sandbox: Sandbox) -> None:
    root = sandbox.fork_server_pid
    assert root is not None
    before = _descendants(root)
    with pytest.raises(ExecutionTimeout):
        await sandbox.run_signal(SPIN, BARS, {}, timeout_seconds=0.3)
    assert _descendants(root) == before


async def test_event_loop_keeps_running_during_a_job(sandbox: Sandbox) -> None:
    """The loop serves other work while a job spins: ten turns of it complete before the job
    (which runs to its 3 s limit) ends. Blocked, none would."""
    job = asyncio.create_task(sandbox.run_signal(SPIN, BARS, {}, timeout_seconds=3))
    await until(lambda: sandbox.scheduler.running >= 1, "the job to start")
    for _ in range(10):
        await asyncio.sleep(0.01)
    assert not job.done()
    with pytest.raises(ExecutionTimeout):
        await job


async def test_queue_bound_raises_busy() -> None:
    settings = SandboxSettings(max_concurrent_jobs=1, max_queue=1)
    async with Sandbox(settings) as box:
        first = asyncio.create_task(box.run_signal(SPIN, BARS, {}, timeout_seconds=0.5))
        second = asyncio.create_task(box.run_signal(SPIN, BARS, {}, timeout_seconds=0.5))
        await until(lambda: box.scheduler.queued == 1, "the second job to wait")
        with pytest.raises(SandboxBusy) as caught:
            await box.run_signal(CROSSOVER, BARS, {})
        assert caught.value.extensions == {"code": "RATE_LIMITED", "retryAfterSeconds": 1}
        assert isinstance(caught.value, ServiceError) and not isinstance(caught.value, BadInput)
        for task in (first, second):
            with pytest.raises(ExecutionTimeout):
                await task
        assert (await box.run_signal(CROSSOVER, BARS, {}))["action"] in ("buy", "sell")


async def test_concurrent_jobs_do_not_mix_results(sandbox: Sandbox) -> None:
    code = (
        "def execute_strategy(m, p):\n"
        "    return {'action': 'hold', 'confidence': 0.0, 'reason': str(p['k'])}\n"
    )
    # Three owners, as each may have only 2 running and 8 waiting (the defaults for 2 slots).
    jobs = (sandbox.run_signal(code, BARS, {"k": k}, owner=f"user{k % 3}") for k in range(12))
    results = await asyncio.gather(*jobs)
    assert [r["reason"] for r in results] == [str(k) for k in range(12)]


async def test_dead_fork_server_is_restarted_transparently() -> None:
    async with Sandbox() as box:
        first = box.fork_server_pid
        assert first is not None
        os.killpg(first, signal.SIGKILL)
        await asyncio.sleep(0.05)
        assert (await box.run_signal(CROSSOVER, BARS, {}))["action"] in ("buy", "sell")
        assert box.restarts == 1
        assert box.fork_server_pid not in (None, first)


async def test_fork_server_dying_mid_job_retries_the_job() -> None:
    async with Sandbox() as box:
        busy = box.run_signal(BUSY_LOOP, BARS, {"n": 20_000_000}, timeout_seconds=10)
        job = asyncio.create_task(busy)
        await asyncio.sleep(0.1)
        pid = box.fork_server_pid
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        assert (await job)["action"] == "hold"
        assert box.restarts == 1


PROJECT_ROOT = str(Path(__file__).resolve().parents[1])
SERVER_SCRIPT = """
import asyncio
from services.sandbox import Sandbox
from services.sandbox.warmup import sample_bars

async def main():
    box = Sandbox()
    await box.start()
    print(box.fork_server_pid, flush=True)
    code = "def execute_strategy(m, p):\\n    while True:\\n        pass\\n"
    await box.run_signal(code, sample_bars(50), {}, timeout_seconds=60)

asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


async def test_server_death_takes_fork_server_and_jobs_with_it() -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER_SCRIPT, cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE
    )
    assert server.stdout is not None
    zygote = int(await asyncio.wait_for(server.stdout.readline(), 60))
    for _ in range(100):  # until the spinning job exists
        if len(_descendants(zygote)) >= 3:
            break
        await asyncio.sleep(0.05)
    tree = _descendants(zygote) | {zygote}
    server.kill()
    await server.wait()
    for _ in range(100):
        if not any(_alive(pid) for pid in tree):
            break
        await asyncio.sleep(0.05)
    assert not any(_alive(pid) for pid in tree)


async def test_close_kills_running_jobs() -> None:
    box = Sandbox()
    await box.start()
    root = box.fork_server_pid
    assert root is not None
    job = asyncio.create_task(box.run_signal(SPIN, BARS, {}, timeout_seconds=30))
    await asyncio.sleep(0.1)
    assert len(_descendants(root)) >= 2
    await box.close()
    with pytest.raises((SandboxUnavailable, ExecutionTimeout)):
        await job
    assert _descendants(root) == set()

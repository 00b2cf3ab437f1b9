"""The job bench/jobs.py times: a grid optimisation of the SMA crossover, one sandboxed
backtest per parameter pair, run as tasks (loaded by workers through JOB_MODULES).

`bench.optimize` reads `<BENCH_JOB_DIR>/<job id>/spec.json` ({"bars": 10000, "trials": 200})
and fans the grid out as `bench.trial` tasks; each task stores its metrics once, in a file
named by its parameters (created only if absent), as an optimisation's trials are stored.
"""

from __future__ import annotations

import inspect
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.backtest_engine import CASH, COMMISSION, execute_strategy
from services.backtesting import BacktestOptions
from services.job_control import JobControl
from services.jobs import register_job, register_task
from services.market_data import Bars
from services.samples import synthetic_bars

CODE = "from typing import Any\n\n" + inspect.getsource(execute_strategy)


def job_dir(job_id: object) -> Path:
    return Path(os.environ["BENCH_JOB_DIR"]) / str(job_id)


def grid(trials: int) -> list[dict[str, int]]:
    """`trials` (fast, slow) pairs: fast 5.., slow 30.. in steps of 5."""
    pairs = [{"fast": fast, "slow": slow} for fast in range(5, 45) for slow in range(30, 330, 5)]
    return pairs[:trials]


@lru_cache(maxsize=4)
def bars_of(count: int) -> Bars:
    return synthetic_bars("trending", count, seed=7)


@register_job("bench.optimize")
async def optimize(control: JobControl) -> None:
    spec = json.loads((job_dir(control.job_id) / "spec.json").read_text())
    payloads = [{"bars": spec["bars"], **pair} for pair in grid(spec["trials"])]
    await control.run_tasks("bench.trial", payloads)
    await control.report_progress({"trialsDone": len(payloads), "trialsTotal": len(payloads)})


@register_task("bench.trial")
async def trial(payload: dict[str, Any], control: JobControl) -> None:
    params = {"fast": payload["fast"], "slow": payload["slow"]}
    result = await control.runner.sandbox.run_backtest(
        CODE,
        bars_of(payload["bars"]),
        params,
        BacktestOptions(initial_cash=CASH, commission_pct=COMMISSION * 100),
        timeout_seconds=300,
        owner=str(control.user_id),
        check_look_ahead=False,
    )
    path = job_dir(control.job_id) / f"trial-{params['fast']}-{params['slow']}.json"
    try:  # stored once, however often the task runs
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, json.dumps(result["metrics"]).encode())
    os.close(fd)

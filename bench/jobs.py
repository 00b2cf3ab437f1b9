"""Jobs benchmark: a grid optimisation (bench/job_kinds.py: `--trials` sandboxed backtests of
an SMA crossover over `--bars` bars, fanned out as tasks) run three ways, alternated, for
`--rounds` rounds in one run:

  * in-process: the embedded backend (InProcessJobs) in this process, one sandbox slot;
  * queue, one worker: `python -m server worker` with one sandbox slot, this process
    submitting through the queue (QueueSubmitter), as the API does;
  * queue, two workers: two such workers (each a one-core machine's worth of sandbox).

Prints the median wall time (submit to SUCCEEDED) and its spread for each, and two ratios
beside their targets: one worker over two (at least 1.6x: the queue spreads one job over
machines), and queue (one worker) over in-process (under 5% added). Every run must store
every trial once, with the same metrics in every way.

Usage: .venv/bin/python bench/jobs.py [--trials 200] [--bars 10000] [--rounds 3]
Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0); SQLite in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import add_json_option, results_for, span  # noqa: E402

SPEEDUP_TARGET = 1.6
OVERHEAD_TARGET = 1.05


async def main_async(args: argparse.Namespace) -> int:
    os.environ["BENCH_JOB_DIR"] = str(args.workdir)
    from tortoise import Tortoise

    import bench.job_kinds  # noqa: F401  (registers bench.optimize and bench.trial)
    from models import Job, JobStatus, User
    from server.db import migrate, serving_config
    from services.execution import StrategyRunner
    from services.job_queue import QueueKeys, QueueSubmitter
    from services.jobs import InProcessJobs, JobRules
    from services.sandbox import Sandbox, SandboxSettings
    from tests.support.worker_process import WorkerProcess

    database = f"sqlite://{args.workdir / 'bench.sqlite3'}"
    await migrate(database)
    await Tortoise.init(config=serving_config(database))
    user = await User.create(email="bench@example.com", password_hash="x")
    rules = JobRules(max_running_per_user=4, heartbeat_seconds=1.0, stale_seconds=10.0)
    one, two = f"bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
    common = {
        "DATABASE_URL": database,
        "REDIS_URL": args.redis_url,
        "JOB_MODULES": "bench.job_kinds",
        "BENCH_JOB_DIR": str(args.workdir),
        "SANDBOX_MAX_CONCURRENT_JOBS": "1",
        "SANDBOX_MAX_RUNNING_PER_USER": "1",
        "SECRET_KEY": "bench-jobs-secret-key-0123456789-0123456789",
        "LOG_LEVEL": "warning",
    }
    workers = [
        WorkerProcess(args.workdir, **common, JOB_QUEUE_NAME=one),
        WorkerProcess(args.workdir, **common, JOB_QUEUE_NAME=two),
        WorkerProcess(args.workdir, **common, JOB_QUEUE_NAME=two),
    ]
    sandbox = Sandbox(SandboxSettings(max_concurrent_jobs=1, max_running_per_owner=1))
    inprocess = InProcessJobs(StrategyRunner(sandbox), rules, poll_seconds=0.05)
    queues = {
        "one worker": QueueSubmitter(args.redis_url, rules, QueueKeys(one)),
        "two workers": QueueSubmitter(args.redis_url, rules, QueueKeys(two)),
    }
    ways = {"in-process": inprocess, **queues}
    times: dict[str, list[float]] = {way: [] for way in ways}
    outcomes: dict[str, dict[str, str]] = {}
    try:
        await sandbox.start()
        for worker in workers:
            await asyncio.to_thread(worker.start)

        async def run(way: str, trials: int) -> float:
            job_id = uuid.uuid4()
            folder = args.workdir / str(job_id)
            folder.mkdir()
            (folder / "spec.json").write_text(json.dumps({"bars": args.bars, "trials": trials}))
            # The in-process backend takes every queued job of the database: it runs only
            # while its own are measured.
            if way == "in-process":
                await inprocess.start()
            began = time.perf_counter()
            await ways[way].submit("bench.optimize", job_id, user.id)
            while True:
                job = await Job.get(id=job_id)
                if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
                    break
                await asyncio.sleep(0.02)
            took = time.perf_counter() - began
            if way == "in-process":
                await inprocess.aclose()
            if job.status != JobStatus.SUCCEEDED:
                raise SystemExit(f"{way}: the job ended {job.status}: {job.error}")
            stored = {path.name: path.read_text() for path in folder.glob("trial-*")}
            if len(stored) != trials:
                raise SystemExit(f"{way}: {len(stored)} trials stored, not {trials}")
            outcomes[way] = stored
            return took

        for way in ways:  # untimed: fork servers page in, connections open
            await run(way, min(10, args.trials))
        for round_number in range(args.rounds):
            order = list(ways) if round_number % 2 == 0 else list(reversed(ways))
            for way in order:
                times[way].append(await run(way, args.trials))
                print(f"round {round_number + 1}: {way:12s} {times[way][-1]:.2f} s", flush=True)
    finally:
        for submitter in queues.values():
            await submitter.aclose()
        await inprocess.aclose()
        await sandbox.close()
        for worker in workers:
            await asyncio.to_thread(worker.stop)
        await Tortoise.close_connections()

    same = len({json.dumps(stored, sort_keys=True) for stored in outcomes.values()}) == 1
    medians = {way: statistics.median(values) for way, values in times.items()}
    speedup = medians["one worker"] / medians["two workers"]
    overhead = medians["one worker"] / medians["in-process"]
    speedups = [a / b for a, b in zip(times["one worker"], times["two workers"], strict=True)]
    overheads = [a / b for a, b in zip(times["one worker"], times["in-process"], strict=True)]
    print(f"\n{args.trials} trials, SMA crossover over {args.bars:,} bars, {args.rounds} rounds")
    results = results_for(args)
    for way, values in times.items():
        print(f"{way:12s} median {medians[way]:.2f} s ({span(values, '{:.2f}', ' s')})")
        results.add(
            f"optimisation of {args.trials} trials ({args.bars:,} bars), {way}",
            f"{medians[way]:.2f} s",
            span(values, "{:.2f}", " s"),
        )
    print(f"one worker / two workers: {speedup:.2f}x (target >= {SPEEDUP_TARGET}x)")
    print(f"queue (one worker) / in-process: {overhead:.3f}x (target < {OVERHEAD_TARGET}x)")
    print(f"every way stored every trial with the same metrics: {same}")
    results.add(
        "two workers' speed-up over one (one sandbox slot each)",
        f"{speedup:.2f}x",
        span(speedups, "{:.2f}", "x"),
        f">= {SPEEDUP_TARGET}x",
        speedup >= SPEEDUP_TARGET,
    )
    results.add(
        "the queue's time over in-process (one slot each)",
        f"{overhead:.3f}x",
        span(overheads, "{:.3f}", "x"),
        f"< {OVERHEAD_TARGET}x",
        overhead < OVERHEAD_TARGET,
    )
    results.write()
    return 0 if same and speedup >= SPEEDUP_TARGET and overhead < OVERHEAD_TARGET else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    add_json_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as workdir:
        args.workdir = Path(workdir)
        return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())

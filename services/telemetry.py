"""Prometheus metrics of the whole process, in one registry of ours (served on /metrics).

One module-level registry, so the endpoint and the tests read the same numbers whichever app
instance recorded them. Every label has a small, fixed set of values: never a raw URL, a user,
a prompt or an id.

Several worker processes (WORKERS > 1) each count only what they serve, and a scrape reaches
one of them: with PROMETHEUS_MULTIPROC_DIR set (before start, to an empty directory shared by
the workers), prometheus_client keeps the values in files there and /metrics sums them all.
"""

from __future__ import annotations

import os
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# Read by prometheus_client when imported, as here: values live in files from then on.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# Generations take from milliseconds (templates) to minutes (a slow model with retries).
SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
# Requests (server.observability) and sandbox jobs: milliseconds; backtests up to minutes.
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

GRAPHQL_OPERATIONS = Counter(
    "graphql_operations_total",
    "GraphQL operations executed, by type (query, mutation, subscription; unknown when the "
    "document could not be parsed).",
    ["operation_type"],
    registry=REGISTRY,
)
GRAPHQL_ERRORS = Counter(
    "graphql_errors_total",
    "GraphQL errors returned to clients, by contract code (extensions.code).",
    ["code"],
    registry=REGISTRY,
)

GENERATIONS = Counter(
    "strategy_generations_total",
    "Finished (logged) strategy generations, by status (success, partial, failure) and provider.",
    ["status", "provider"],
    registry=REGISTRY,
)
GENERATION_DURATION = Histogram(
    "strategy_generation_duration_seconds",
    "Processing time of a generation (provider call, extraction, validation), by provider.",
    ["provider"],
    buckets=SLOW_BUCKETS,
    registry=REGISTRY,
)
GENERATION_TOKENS = Counter(
    "strategy_generation_tokens_total",
    "Tokens the provider reported using, by provider.",
    ["provider"],
    registry=REGISTRY,
)
GENERATIONS_IN_FLIGHT = Gauge(
    "strategy_generations_in_flight",
    "Generations running now.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)

SANDBOX_JOBS = Counter(
    "sandbox_jobs_total",
    "Sandbox jobs by kind (run, backtest, lookahead, trial_run) and outcome (ok, timeout, "
    "memory_limit, sandbox_violation, runtime_error, invalid_output, output_too_large, busy, "
    "unavailable, cancelled, error).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
SANDBOX_JOB_DURATION = Histogram(
    "sandbox_job_duration_seconds",
    "Time of a sandbox job, queueing included, by kind.",
    ["kind"],
    buckets=FAST_BUCKETS,
    registry=REGISTRY,
)
SANDBOX_KILLS = Counter(
    "sandbox_kills_total",
    "Strategy processes killed, by kind and reason (timeout: wall clock; cpu_limit, "
    "memory_limit, seccomp: by the kernel; output_limit, protocol_violation: for what they "
    "sent; cancelled: the request went away; signal: any other fatal signal).",
    ["kind", "reason"],
    registry=REGISTRY,
)
SANDBOX_JOBS_RUNNING = Gauge(
    "sandbox_jobs_running",
    "Sandbox jobs holding a slot now.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
SANDBOX_JOBS_QUEUED = Gauge(
    "sandbox_jobs_queued",
    "Sandbox jobs waiting for a slot now.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)

JOBS = Counter(
    "jobs_total",
    "Finished jobs (long work: optimisations...), by kind and status (succeeded, failed, "
    "cancelled).",
    ["kind", "status"],
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "job_duration_seconds",
    "Time a job ran, from its claim to its end, by kind.",
    ["kind"],
    buckets=(*SLOW_BUCKETS, 600, 1800, 3600),
    registry=REGISTRY,
)
JOBS_RUNNING = Gauge(
    "jobs_running",
    "Jobs this process (server or worker) runs now.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
JOBS_QUEUED = Gauge(
    "jobs_queued",
    "Jobs waiting to run (queue depth), as this process last counted them in the database.",
    multiprocess_mode="max",
    registry=REGISTRY,
)
JOB_WORKERS = Gauge(
    "job_workers",
    "Queue workers alive (`python -m server worker`), as this process last counted them.",
    multiprocess_mode="max",
    registry=REGISTRY,
)


def record_job(kind: str, status: str, seconds: float) -> None:
    JOBS.labels(kind, status).inc()
    JOB_DURATION.labels(kind).observe(seconds)


def record_graphql_error(code: str) -> None:
    GRAPHQL_ERRORS.labels(code).inc()


def record_generation(status: str, provider: str, tokens: int, seconds: float) -> None:
    GENERATIONS.labels(status, provider).inc()
    GENERATION_DURATION.labels(provider).observe(seconds)
    if tokens > 0:
        GENERATION_TOKENS.labels(provider).inc(tokens)


def record_sandbox_kill(kind: str, reason: str) -> None:
    SANDBOX_KILLS.labels(kind, reason).inc()


def exposition() -> tuple[bytes, str]:
    """The registry in Prometheus' text format, with its content type; in multiprocess mode,
    every process' values summed (the process collectors then have nothing to say)."""
    if not MULTIPROCESS_DIR:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    forget_dead_processes(MULTIPROCESS_DIR)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=MULTIPROCESS_DIR)
    return generate_latest(merged), CONTENT_TYPE_LATEST


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w*_(\d+)\.db")


def forget_dead_processes(directory: str) -> None:
    """Drops the live gauges (in progress, in flight, running, queued) of workers that are gone,
    killed ones too, which never got to say so: else they count forever."""
    pids = {
        int(match.group(1))
        for name in os.listdir(directory)
        if (match := _LIVE_GAUGE_FILE.fullmatch(name))
    }
    for pid in pids:
        if not _is_running(pid):
            mark_process_dead(pid, directory)


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True

"""Prometheus metrics of the whole process, in one registry of ours (served on /metrics).

One module-level registry, so the endpoint and the tests read the same numbers whichever app
instance recorded them. Every label has a small, fixed set of values: never a raw URL, a user,
a prompt or an id.

Several worker processes (WORKERS > 1) each count only what they serve, and a scrape reaches
one of them: with PROMETHEUS_MULTIPROC_DIR set (before start, to an empty directory shared by
the workers), prometheus_client keeps the values in files there and /metrics sums them all.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

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

from services.errors import ServiceError
from services.sandbox.errors import SandboxBusy, SandboxUnavailable, StrategySandboxError

# Read by prometheus_client when imported, as here: values live in files from then on.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# Generations take from milliseconds (templates) to minutes (a slow model with retries).
SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
# Requests and sandbox jobs: mostly milliseconds, backtests up to a minute or so.
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, matched route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by method and route.",
    ["method", "route"],
    buckets=FAST_BUCKETS,
    registry=REGISTRY,
)
HTTP_IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "HTTP requests being answered now.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)

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
    "Sandbox jobs by kind (run, backtest, trial_run) and outcome (ok, timeout, memory_limit, "
    "sandbox_violation, runtime_error, invalid_output, output_too_large, busy, unavailable, "
    "cancelled, error).",
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


def method_label(method: str) -> str:
    """Clients may send any token as a method: only the usual ones get a label of their own."""
    return method if method in HTTP_METHODS else "OTHER"


def record_http(method: str, route: str, status: int, seconds: float) -> None:
    method = method_label(method)
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


def record_graphql_error(code: str) -> None:
    GRAPHQL_ERRORS.labels(code).inc()


def record_generation(status: str, provider: str, tokens: int, seconds: float) -> None:
    GENERATIONS.labels(status, provider).inc()
    GENERATION_DURATION.labels(provider).observe(seconds)
    if tokens > 0:
        GENERATION_TOKENS.labels(provider).inc(tokens)


def sandbox_outcome(error: BaseException | None) -> str:
    """The outcome label of a job that ended with `error` (None: it returned a value)."""
    if error is None:
        return "ok"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    if isinstance(error, StrategySandboxError):
        # The class's reason, not the instance's: the classes are a fixed set.
        return type(error).reason.lower()
    if isinstance(error, SandboxBusy):
        return "busy"
    if isinstance(error, SandboxUnavailable):
        return "unavailable"
    if isinstance(error, ServiceError):
        return error.code.lower()
    return "error"


@contextmanager
def sandbox_job(kind: str) -> Iterator[None]:
    """Count the job run inside the block by its outcome, and time it."""
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        SANDBOX_JOBS.labels(kind, sandbox_outcome(error)).inc()
        SANDBOX_JOB_DURATION.labels(kind).observe(time.perf_counter() - started)


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

"""`python -m server worker`: a process that takes jobs and tasks from the queue
(services/job_queue.py) and runs them on its own sandbox, on any machine sharing the
database and Redis. It serves a tiny HTTP endpoint on WORKER_PORT: /healthz (alive),
/readyz (200 when it can take jobs: Redis, database and sandbox answer and it is not
stopping; 503 otherwise) and /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal

from tortoise import Tortoise

from server.db import DatabaseBounds, serving_config
from server.settings import Settings
from server.wiring import build_runner, build_sandbox, job_rules
from services import telemetry
from services.job_queue import JobWorker, QueueKeys
from services.jobs import load_job_modules, parse_modules, worker_name
from services.sandbox import SandboxUnavailable

log = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop taking messages and give running jobs back."""
    load_job_modules(parse_modules(settings.job_modules))
    bounds = DatabaseBounds.from_settings(settings)
    await Tortoise.init(config=serving_config(settings.database_url, bounds))
    sandbox = build_sandbox(settings)
    runner = build_runner(settings, sandbox)
    try:
        await sandbox.start()
        # As in the API server: a fork server that dies while idle is restarted within a
        # second or so, so the worker's /readyz and its next trial find it up.
        sandbox.watch()
    except SandboxUnavailable as exc:  # /readyz says so; the worker takes nothing meanwhile
        log.error("this worker cannot run strategies: %s", exc.message)
    worker = JobWorker(
        settings.redis_url,
        runner,
        job_rules(settings),
        name=worker_name(),
        job_concurrency=settings.job_concurrency,
        keys=QueueKeys(settings.job_queue_name),
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    health = await serve_health(worker, settings.host, settings.worker_port)
    try:
        if sandbox.unavailable is None:
            await worker.start()
        await stopping.wait()
        log.info("worker %s stopping", worker.name)
    finally:
        if health is not None:
            health.close()
        await worker.stop()
        await sandbox.close()
        await Tortoise.close_connections()


async def serve_health(worker: JobWorker, host: str, port: int) -> asyncio.Server | None:
    """GET /healthz, /readyz and /metrics over plain HTTP/1.0; port 0 serves nothing."""
    if not port:
        return None

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()).strip():
                    pass  # headers: not needed
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else ""
            if path == "/healthz":
                status, body, kind = 200, b'{"status":"ok"}', "application/json"
            elif path == "/readyz":
                checks = await worker.ready()
                status = 200 if checks["ready"] else 503
                body, kind = json.dumps(checks).encode(), "application/json"
            elif path == "/metrics":
                body, kind = telemetry.exposition()
                status = 200
            else:
                status, body, kind = 404, b'{"error":"not found"}', "application/json"
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            head = (
                f"HTTP/1.0 {status} {reason}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except Exception:
            log.debug("health request failed", exc_info=True)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(answer, host, port)
    log.info("worker health on http://%s:%d/readyz", host, port)
    return server

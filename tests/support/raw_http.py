"""HTTP/1.1 by hand, for what httpx hides: a body refused before it was all sent, a client
that sends headers or a body slowly, many connections at once, a status as the server wrote it.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any


def request_head(
    method: str, path: str, port: int, length: int | None = None, token: str | None = None
) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    if length is not None:
        head += ["Content-Type: application/json", f"Content-Length: {length}"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode()


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one answer on a Connection: close connection; status 0
    when the server cut the connection without one."""
    try:
        status_line = await reader.readline()
        status = int(status_line.split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, await reader.read()
    except (ConnectionError, IndexError, ValueError):
        return 0, {}, b""


async def post(
    port: int, body: bytes, token: str | None = None, path: str = "/graphql"
) -> tuple[int, dict[str, str], bytes]:
    """POST `body` on a fresh connection, in 256 KiB pieces; the answer even when the server
    answered (and stopped reading) before the body was all sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_head("POST", path, port, len(body), token))
        for start in range(0, len(body), 256 * 1024):
            writer.write(body[start : start + 256 * 1024])
            await writer.drain()
    except ConnectionError:
        pass
    try:
        return await read_answer(reader)
    finally:
        writer.close()


def error_codes_of(body: bytes) -> list[str]:
    try:
        errors: list[dict[str, Any]] = json.loads(body).get("errors") or []
    except (ValueError, AttributeError):
        return []
    return [error.get("extensions", {}).get("code", "") for error in errors]


class HealthPoller:
    """GET /healthz every `interval` seconds on one keep-alive connection until `running`
    is cleared: each answer's latency in seconds, and how many were not 200."""

    def __init__(self, port: int, interval: float = 0.05) -> None:
        self.port = port
        self.interval = interval
        self.latencies: list[float] = []
        self.failures = 0
        self.running = True

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode()
        try:
            while self.running:
                started = time.perf_counter()
                writer.write(head)
                status = int((await reader.readline()).split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.latencies.append(time.perf_counter() - started)
                self.failures += status != 200
                await asyncio.sleep(self.interval)
        finally:
            writer.close()


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid`, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")

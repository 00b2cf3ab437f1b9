"""A small graphql-transport-ws client for tests, over a real WebSocket (the `websockets` package).

The protocol (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md): the client
sends connection_init (its payload carries credentials) and waits for connection_ack; then
each `subscribe` (with an id) is answered by `next` messages and ends with `complete` or a
single `error`. Pings are answered with pongs.

    async with GraphQLWS.connect(live_url, {"Authorization": f"Bearer {token}"}) as ws:
        outcome = await ws.collect("subscription { ... }", {"x": 1})
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")
TIMEOUT = 30.0


@dataclass
class Outcome:
    """What one operation received: `next` payloads, then how it ended."""

    payloads: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] | None = None  # the `error` message's payload
    ended: str = ""  # "complete" or "error"

    @property
    def data(self) -> list[Any]:
        """Each `next` payload's data for the subscription's single root field."""
        return [next(iter(p["data"].values())) if p.get("data") else None for p in self.payloads]

    @property
    def all_errors(self) -> list[dict[str, Any]]:
        """The `error` message's errors and those of the `next` payloads alike."""
        errors = list(self.errors or [])
        for payload in self.payloads:
            errors.extend(payload.get("errors", []))
        return errors

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.all_errors]


class GraphQLWS:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._ids = 0
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        base_url: str,
        payload: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        init: bool = True,
    ) -> AsyncIterator[GraphQLWS]:
        """Open /graphql of `base_url` (http://...) and, unless `init` is False, handshake."""
        url = "ws" + base_url.removeprefix("http") + "/graphql"
        async with connect(
            url,
            subprotocols=[PROTOCOL],
            additional_headers=dict(headers or {}),
            max_size=None,
            proxy=None,
            open_timeout=TIMEOUT,
        ) as socket:
            assert socket.subprotocol == PROTOCOL
            client = cls(socket)
            client._reader = asyncio.create_task(client._read())
            try:
                if init:
                    await client.init(payload)
                yield client
            finally:
                client._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await client._reader

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def init(self, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = dict(payload)
        await self.send(message)
        ack = await asyncio.wait_for(self._queue("").get(), TIMEOUT)
        assert ack["type"] == "connection_ack", ack
        return ack

    async def subscribe(self, query: str, variables: Mapping[str, Any] | None = None) -> str:
        """Start an operation; its id."""
        self._ids += 1
        operation_id = str(self._ids)
        self._queue(operation_id)
        await self.send(
            {
                "id": operation_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": dict(variables or {})},
            }
        )
        return operation_id

    async def receive(self, operation_id: str) -> dict[str, Any]:
        """The operation's next message (next, error or complete), within TIMEOUT."""
        return await asyncio.wait_for(self._queue(operation_id).get(), TIMEOUT)

    async def complete(self, operation_id: str) -> None:
        """Unsubscribe."""
        await self.send({"id": operation_id, "type": "complete"})

    async def finish(self, operation_id: str) -> Outcome:
        """Read the operation's messages until it ends."""
        outcome = Outcome()
        while True:
            message = await self.receive(operation_id)
            kind = message["type"]
            if kind == "next":
                outcome.payloads.append(message["payload"])
            elif kind in ("error", "complete"):
                outcome.ended = kind
                if kind == "error":
                    outcome.errors = message["payload"]
                return outcome
            else:
                raise AssertionError(f"unexpected message {message}")

    async def collect(self, query: str, variables: Mapping[str, Any] | None = None) -> Outcome:
        return await self.finish(await self.subscribe(query, variables))

    def _queue(self, operation_id: str) -> asyncio.Queue[dict[str, Any]]:
        return self._queues.setdefault(operation_id, asyncio.Queue())

    async def _read(self) -> None:
        """Route each message to its operation's queue ("" for the connection's own)."""
        try:
            async for raw in self.socket:
                message = json.loads(raw)
                if message["type"] == "ping":
                    await self.send({"type": "pong"})
                elif message["type"] != "pong":
                    self._queue(message.get("id", "")).put_nowait(message)
        except ConnectionClosed:
            pass

"""Tortoise's asyncpg client with bounds, and outages reported once (services/outages.py).

A frozen PostgreSQL otherwise holds each request as long as it stays frozen: asyncpg waits
for a pooled connection without limit and for a new one 60 s. Here the wait for a pooled
connection (and its release) is bounded by `pool_timeout`, each statement by
`command_timeout`, and connecting by `timeout` (server/db.py sets all three from settings).
A failure to reach the database becomes ServiceUnavailable (SERVICE_UNAVAILABLE); the first
success after an outage logs its end.

Named as Tortoise's `engine` (it loads this module's `client_class`).
"""

from __future__ import annotations

import inspect
from typing import Any

import asyncpg
from asyncpg.pool import PoolAcquireContext
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionContext, TransactionContextPooled

from services.outages import DATABASE, DATABASE_FAILURES, OUTAGES, database_unavailable


class BoundedPool(asyncpg.Pool):
    """Every acquire (Tortoise's plain queries and its transactions alike) waits at most
    `acquire_timeout` seconds; asyncpg then bounds the release by the same time."""

    acquire_timeout: float | None = None

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


# asyncpg.create_pool's defaults, for building the Pool subclass as it would build a Pool.
_POOL_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(asyncpg.create_pool).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
}


class _ReportsOutages:
    async def _translate_exceptions(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = await super()._translate_exceptions(func, *args, **kwargs)  # type: ignore[misc]
        except DATABASE_FAILURES as exc:
            raise database_unavailable(exc) from exc
        OUTAGES.answered(DATABASE)
        return result


class _BoundedTransaction(_ReportsOutages, TransactionWrapper):
    pass


class _TransactionContext(TransactionContextPooled):
    async def __aenter__(self) -> Any:
        try:
            return await super().__aenter__()
        except DATABASE_FAILURES as exc:  # no pooled connection in time, or none at all
            raise database_unavailable(exc) from exc


class BoundedAsyncpgClient(_ReportsOutages, AsyncpgDBClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.pool_timeout: float | None = kwargs.pop("pool_timeout", None)
        super().__init__(*args, **kwargs)

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        pool = BoundedPool(None, **{**_POOL_DEFAULTS, **kwargs})
        pool.acquire_timeout = self.pool_timeout
        return await pool

    def _in_transaction(self) -> TransactionContext:
        return _TransactionContext(_BoundedTransaction(self), self._pool_init_lock)


client_class = BoundedAsyncpgClient

"""Fair sharing of the sandbox's slots between owners (users), so that one user who fills the
sandbox slows only themselves.

Each owner has a FIFO of waiting jobs. When a slot frees, it goes to the waiting owner with the
fewest jobs running, ties broken by who was served least recently (then by who queued first):
round robin per owner, not one FIFO for everybody. An owner alone may use every free slot up to
`max_running_per_owner`; below the slot count (the default, services/sandbox/settings.py), the
slots left over serve the other owners at once. Each owner may have `max_queued_per_owner`
jobs waiting; past that only they get `SandboxBusy`. `max_queue` bounds the waiting jobs of
all owners together, as a memory backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from services import telemetry
from services.sandbox.errors import SandboxBusy


@dataclass
class _Owner:
    running: int = 0
    waiting: deque[tuple[int, asyncio.Future[None]]] = field(default_factory=deque)
    last_served: int = 0  # sequence number of the owner's latest grant, 0: never (or idle)


class FairScheduler:
    """`async with scheduler.slot(owner):` holds one of `slots` slots for the block."""

    def __init__(
        self, slots: int, max_running_per_owner: int, max_queued_per_owner: int, max_queue: int
    ) -> None:
        self.slots = slots
        self.max_running_per_owner = max_running_per_owner
        self.max_queued_per_owner = max_queued_per_owner
        self.max_queue = max_queue
        self._free = slots
        self._queued = 0
        self._owners: dict[str, _Owner] = {}
        self._sequence = itertools.count(1)

    @property
    def running(self) -> int:
        return self.slots - self._free

    @property
    def queued(self) -> int:
        return self._queued

    def owner_counts(self, owner: str) -> tuple[int, int]:
        """(running, waiting) jobs of `owner`."""
        state = self._owners.get(owner)
        return (state.running, len(state.waiting)) if state else (0, 0)

    @contextlib.asynccontextmanager
    async def slot(self, owner: str) -> AsyncIterator[None]:
        await self._acquire(owner)
        try:
            yield
        finally:
            self._release(owner)

    async def _acquire(self, owner: str) -> None:
        state = self._owners.setdefault(owner, _Owner())
        if self._free > 0 and state.running < self.max_running_per_owner and not state.waiting:
            self._grant(owner, state)
            return
        if len(state.waiting) >= self.max_queued_per_owner:
            self._forget_if_idle(owner, state)
            raise SandboxBusy(
                f"you already have {state.running} sandbox job(s) running and "
                f"{len(state.waiting)} waiting, your limit; retry when one has ended",
                retry_after_seconds=1,
            )
        if self._queued >= self.max_queue:
            self._forget_if_idle(owner, state)
            raise SandboxBusy(  # no counts: they would tell about other users' work
                "the sandbox is busy: too many jobs are waiting; retry shortly",
                retry_after_seconds=1,
            )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (next(self._sequence), future)
        state.waiting.append(entry)
        self._queued += 1
        telemetry.SANDBOX_JOBS_QUEUED.inc()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                self._release(owner)  # granted, but the caller went away before using it
            else:
                self._unqueue(owner, state, entry)
            raise

    def _grant(self, owner: str, state: _Owner) -> None:
        self._free -= 1
        state.running += 1
        state.last_served = next(self._sequence)
        telemetry.SANDBOX_JOBS_RUNNING.inc()

    def _release(self, owner: str) -> None:
        state = self._owners[owner]
        self._free += 1
        state.running -= 1
        telemetry.SANDBOX_JOBS_RUNNING.dec()
        self._forget_if_idle(owner, state)
        self._dispatch()

    def _unqueue(self, owner: str, state: _Owner, entry: tuple[int, asyncio.Future[None]]) -> None:
        """A waiting job was cancelled (client gone, shutdown): it leaves the queue at once."""
        with contextlib.suppress(ValueError):  # already dropped by _dispatch
            state.waiting.remove(entry)
            self._queued -= 1
            telemetry.SANDBOX_JOBS_QUEUED.dec()
        self._forget_if_idle(owner, state)

    def _forget_if_idle(self, owner: str, state: _Owner) -> None:
        """Owners with nothing running or waiting are dropped: the table stays small, and a
        returning owner is served like a newcomer."""
        if state.running == 0 and not state.waiting and self._owners.get(owner) is state:
            del self._owners[owner]

    def _next_owner(self) -> tuple[str, _Owner] | None:
        eligible = [
            (state.running, state.last_served, state.waiting[0][0], owner)
            for owner, state in self._owners.items()
            if state.waiting and state.running < self.max_running_per_owner
        ]
        if not eligible:
            return None
        owner = min(eligible)[3]
        return owner, self._owners[owner]

    def _dispatch(self) -> None:
        """Hand free slots to waiting jobs, fairest first."""
        while self._free > 0 and (chosen := self._next_owner()) is not None:
            owner, state = chosen
            _, future = state.waiting.popleft()
            self._queued -= 1
            telemetry.SANDBOX_JOBS_QUEUED.dec()
            if future.done():  # cancelled while waiting; its task will find it gone
                self._forget_if_idle(owner, state)
                continue
            self._grant(owner, state)
            future.set_result(None)

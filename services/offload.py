"""Where the server runs its own CPU-heavy work, so the event loop keeps serving meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


async def run_off_loop(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run trusted `function` away from the event loop and await its result.

    A worker thread: the loop thread gets the GIL back at least every switch interval (5 ms;
    the backtest engine also hands it over every 1,024 bars), which bench/backtest.py
    measures as loop lateness during a 100,000-bar backtest. The one place to change if this
    work should move to a process pool.
    """
    return await asyncio.to_thread(function, *args, **kwargs)

"""What a sandbox may do and what the start-up probe found: its settings and ProbeResult."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from services.code_rules import DEFAULT_LOOKBACK
from services.sandbox import launcher

_MB = 1024 * 1024


@dataclass(frozen=True)
class SandboxSettings:
    """Limits and layer choices. The defaults are the production ones."""

    max_concurrent_jobs: int = max(1, os.cpu_count() or 1)
    max_queue: int = 32  # waiting jobs of all owners together: a memory backstop
    # Per owner (user); None derives them: all slots but one, so one always stays for the
    # other owners (README, Benchmarks: bench/sandbox_fairness.py), and a quarter of
    # max_queue, at most 4 per slot, so that one owner alone never reaches max_queue.
    max_running_per_owner: int | None = None
    max_queued_per_owner: int | None = None
    memory_limit_mb: int = 512  # address space a job may add to the fork server's own
    max_output_bytes: int = 1 * _MB
    recursion_limit: int = 1000
    progress_every: int = 500  # bars between progress reports at most
    trial_run_timeout_seconds: float = 2.0
    # The look-ahead check after each backtest (services/lookahead.py) calls the strategy at
    # most this percent as often as the backtest did (at least 40 times); 0: no check.
    lookahead_check_pct: float = 2.0
    # The look-back window (services/backtesting.py, `lookback_for`): the most recent bars a
    # strategy sees, unless it declares `LOOKBACK = N` (at most lookback_max_bars).
    lookback_bars: int = DEFAULT_LOOKBACK
    lookback_max_bars: int = 10_000
    start_timeout_seconds: float = 60.0
    namespaces: str = "auto"  # "auto", "bwrap", "unshare" or "none"
    seccomp: bool = True
    landlock: bool = True
    allow_unisolated: bool = False  # run with neither seccomp nor namespaces (dev only)
    python_guards: bool = True  # False only in tests that prove the OS layers alone hold
    python: str = field(default_factory=lambda: sys.executable)
    # The host uid (and gid) of the fork server and jobs when the server runs as root.
    host_uid: int = launcher.DEFAULT_HOST_UID

    def __post_init__(self) -> None:
        if self.namespaces not in ("auto", "bwrap", "unshare", "none"):
            raise ValueError(f"namespaces must be auto, bwrap, unshare or none: {self.namespaces}")
        for name in ("max_concurrent_jobs", "memory_limit_mb", "max_output_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.lookback_bars < 1 or self.lookback_max_bars < 1:
            raise ValueError("lookback_bars and lookback_max_bars must be at least 1")
        if not 0 <= self.lookahead_check_pct <= 100:
            raise ValueError("lookahead_check_pct must be in [0, 100]")
        if self.max_queue < 0 or self.recursion_limit < 50 or self.progress_every < 1:
            raise ValueError("max_queue >= 0, recursion_limit >= 50 and progress_every >= 1")
        if not 0 < self.host_uid < 2**32 - 1:
            raise ValueError(f"host_uid must be in [1, 4294967294]: {self.host_uid}")
        if self.max_running_per_owner is not None and self.max_running_per_owner < 1:
            raise ValueError("max_running_per_owner must be at least 1")
        if self.max_queued_per_owner is not None and self.max_queued_per_owner < 0:
            raise ValueError("max_queued_per_owner must be at least 0")

    @property
    def running_per_owner(self) -> int:
        """Slots one owner may hold at once: by default all but one, so that a newcomer never
        waits for another owner's jobs to end, however long (backtests) they are."""
        if self.max_running_per_owner is None:
            return max(1, self.max_concurrent_jobs - 1)
        return min(self.max_running_per_owner, self.max_concurrent_jobs)

    @property
    def queued_per_owner(self) -> int:
        """Jobs one owner may have waiting at once."""
        if self.max_queued_per_owner is not None:
            return self.max_queued_per_owner
        return max(min(1, self.max_queue), min(4 * self.max_concurrent_jobs, self.max_queue // 4))


@dataclass(frozen=True)
class ProbeResult:
    """Which isolation layers are active for this sandbox, as measured at start-up."""

    namespaces: str  # "bwrap", "unshare" or "none"
    seccomp: bool
    landlock_abi: int  # 0 when Landlock is not applied
    rlimits: bool
    python_guards: bool
    network_isolated: bool
    user_id: int  # the fork server's uid as it sees itself
    host_uid: int  # the fork server's uid on the host, read from /proc (-1: unknown)
    fork_server_ms: float  # spawn to ready, warm-up included
    warmup_ms: float
    problems: tuple[str, ...] = ()
    fork_server_seccomp: bool = False  # the fork server's own filter (jobs add theirs)

    @property
    def isolated(self) -> bool:
        """Seccomp or namespaces: the minimum the runner accepts without allow_unisolated."""
        return self.seccomp or self.namespaces != "none"

    @property
    def layers(self) -> tuple[str, ...]:
        active = []
        if self.python_guards:
            active.append("python-guards")
        if self.rlimits:
            active.append("rlimits")
        if self.seccomp:
            active.append("seccomp")
        if self.landlock_abi:
            active.append(f"landlock-v{self.landlock_abi}")
        if self.namespaces != "none":
            active.append(f"namespaces:{self.namespaces}")
        return tuple(active)

    def summary(self) -> str:
        text = (
            f"layers={','.join(self.layers)} network_isolated={self.network_isolated} "
            f"uid={self.user_id} host_uid={self.host_uid} "
            f"fork_server_seccomp={self.fork_server_seccomp} "
            f"fork_server_ms={self.fork_server_ms:.0f} "
            f"warmup_ms={self.warmup_ms:.0f}"
        )
        if self.problems:
            text += " problems=" + "; ".join(self.problems)
        return text

"""Isolated execution of untrusted strategy code: see docs/sandbox.md.

`Sandbox` (an async object: `start`, `run_signal`, `run_backtest`, `trial_run`, `close`)
runs each job in a fresh process forked from a warm fork server and confined by seccomp,
rlimits, Landlock and namespaces; errors are the typed ones in `services.sandbox.errors`.
"""

from services.sandbox.errors import (
    ExecutionTimeout,
    ForkServerDown,
    InvalidStrategyOutput,
    MemoryLimitExceeded,
    OutputTooLarge,
    SandboxBusy,
    SandboxUnavailable,
    SandboxViolation,
    StrategyRuntimeError,
    StrategySandboxError,
)
from services.sandbox.sandbox import Sandbox
from services.sandbox.settings import ProbeResult, SandboxSettings

__all__ = [
    "ExecutionTimeout",
    "ForkServerDown",
    "InvalidStrategyOutput",
    "MemoryLimitExceeded",
    "OutputTooLarge",
    "ProbeResult",
    "Sandbox",
    "SandboxBusy",
    "SandboxSettings",
    "SandboxUnavailable",
    "SandboxViolation",
    "StrategyRuntimeError",
    "StrategySandboxError",
]

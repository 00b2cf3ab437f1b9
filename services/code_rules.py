"""The contract every strategy's code follows: one source for the prompt, validator and sandbox."""

from __future__ import annotations

ENTRYPOINT = "execute_strategy"
ENTRYPOINT_ARGS = ("market_data", "strategy_params")
DEFAULT_PARAMS_NAME = "DEFAULT_PARAMS"

# Top-level modules strategy code may import. The sandbox hands out nothing else.
ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {"math", "statistics", "numpy", "pandas", "typing", "collections", "itertools", "functools"}
)

ACTIONS = ("buy", "sell", "hold")

MAX_CODE_BYTES = 64 * 1024
MAX_CODE_LINES = 2000
MAX_NESTING_DEPTH = 12

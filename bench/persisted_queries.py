"""Persisted-query cost (issue 16): what the PersistedQueries extension adds to an operation.

In process, the real schema, a small query (`{ sampleDatasets }`, no database), alternated:
  * a plain document with the extension (every request pays its check) vs the same schema
    without it;
  * the same query named by hash alone (the memory store; what Apollo's link sends once the
    server knows it) vs sent as text.
Prints CPU microseconds per operation (process time: this process' own work, steadier than
wall time on a shared machine): median of the rounds and their spread.

Usage: .venv/bin/python bench/persisted_queries.py [--rounds 15] [--operations 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import Results, add_json_option, results_for, span
from schema import make_schema
from schema.persisted_queries import PersistedQueries
from services.persisted_queries import (
    MemoryDocumentStore,
    PersistedOperations,
    document_hash,
)

QUERY = "{ sampleDatasets }"


async def per_operation(
    schema: Any, query: str | None, extensions: Any, context: Any, n: int
) -> float:
    started = time.process_time()
    for _ in range(n):
        result = await schema.execute(query, context_value=context, operation_extensions=extensions)
        assert not result.errors, result.errors
    return (time.process_time() - started) / n * 1e6


async def main(rounds: int, operations: int, results: Results) -> None:
    persisted = PersistedOperations(MemoryDocumentStore())
    await persisted.register(document_hash(QUERY), QUERY)
    context = SimpleNamespace(
        services=SimpleNamespace(
            persisted=persisted, code_checks=SimpleNamespace(per_operation_bytes=256 * 1024)
        )
    )
    with_extension = make_schema()
    without = make_schema()
    without.extensions = [e for e in without.extensions if e is not PersistedQueries]
    by_hash = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(QUERY)}}
    cases = {
        "plain text, with the extension": (with_extension, QUERY, None),
        "plain text, without it": (without, QUERY, None),
        "by hash alone (memory store)": (with_extension, None, by_hash),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (schema, query, extensions) in cases.items():
            times[name].append(await per_operation(schema, query, extensions, context, operations))
    for name, values in times.items():
        print(
            f"{name:34} median {statistics.median(values):7.1f} us of CPU/op "
            f"(spread {min(values):.1f} to {max(values):.1f}, {rounds} rounds)"
        )
    plain = statistics.median(times["plain text, without it"])
    reference = f"the schema without the extension: {plain:.1f} us"
    for name in ("plain text, with the extension", "by hash alone (memory store)"):
        values = times[name]
        results.add(
            f"persisted queries: `{{ sampleDatasets }}` in process, {name}, CPU per operation",
            f"{statistics.median(values):.1f} us",
            span(values, unit=" us"),
            reference,
        )
    results.write()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--operations", type=int, default=3000)
    add_json_option(parser)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.operations, results_for(args)))

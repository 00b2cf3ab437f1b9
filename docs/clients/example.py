"""The main flows through the generated Python client, against a running server.

From this folder (see docs/clients.md):

    ariadne-codegen client --config codegen.toml     # writes strategy_api_client/ here
    python example.py http://127.0.0.1:8000/graphql  # registers a new user (a random address)
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

from strategy_api_client import (
    BacktestInput,
    Client,
    GenerateStrategyInput,
    GraphQLClientGraphQLMultiError,
)


async def main(url: str, email: str, password: str) -> dict[str, Any]:
    async with Client(url=url) as anonymous:
        registered = await anonymous.register(email=email, password=password)
        token = registered.registration.token

    # The token goes in a header over HTTP and in connection_init over the WebSocket.
    auth = {"Authorization": f"Bearer {token}"}
    ws_url = url.replace("http", "ws", 1)  # http://host/graphql -> ws://host/graphql
    async with Client(url=url, headers=auth, ws_url=ws_url, ws_connection_init_payload=auth) as api:
        result = await api.generate_strategy(
            input=GenerateStrategyInput(prompt="SMA crossover 10/30, 2% stop loss, 4% take profit")
        )
        strategy = result.generate_strategy.strategy  # None if the generation failed
        if strategy is None:
            raise SystemExit(result.generate_strategy.generation_log.error_message)

        listed = await api.strategies(page_size=10)  # left-out variables: the server's defaults
        stats = await api.generation_stats()  # allUsers: false, the last 30 days

        # A backtest over a subscription: progress events; the last one carries the result.
        metrics: dict[str, Any] = {}
        async for event in api.backtest_strategy_progress(
            id=strategy.id, input=BacktestInput(sample="trending_daily", commission_pct=0.1)
        ):
            progress = event.backtest_strategy_progress
            print(f"{progress.bars_done}/{progress.total_bars} bars", file=sys.stderr)
            if progress.result is not None:
                metrics = progress.result.metrics

        error_code = None
        try:
            await api.strategies(page_size=0)
        except GraphQLClientGraphQLMultiError as exc:
            error_code = exc.errors[0].extensions["code"]  # BAD_USER_INPUT: branch on codes

    return {
        "strategy_id": strategy.id,
        "listed": [item.id for item in listed.strategies.items],
        "generations": stats.generation_stats.total_generations,
        "total_return_pct": metrics["totalReturnPct"],
        "error_code": error_code,
    }


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/graphql"
    email = f"example-{uuid.uuid4().hex[:10]}@example.com"
    print(asyncio.run(main(url, email, password="correct horse battery")))

#!/usr/bin/env bash
# `make cluster`: the multi-machine set-up on one machine (docs/scaling.md): the API and two
# queue workers against this machine's PostgreSQL and Redis. Ctrl-C (or SIGTERM) stops all.
#
#   DATABASE_URL  default postgres://postgres@127.0.0.1:5432/strategies (created if missing)
#   REDIS_URL     default redis://127.0.0.1:6379/0
#   PORT          the API's, default 8000; the workers' health on WORKER_PORT 8001 and 8002
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/strategies}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export JOB_BACKEND=queue
PORT="${PORT:-8000}"
WORKER_PORT="${WORKER_PORT:-8001}"
# Every process must sign tokens with the same key: made once here when unset.
export SECRET_KEY="${SECRET_KEY:-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(48))')}"

"$PY" - <<'PYTHON'
# Create the database if it is missing (the server never creates databases).
import asyncio, os
import asyncpg

url = os.environ["DATABASE_URL"]
if url.startswith(("postgres://", "postgresql://")):
    base, name = url.split("?", 1)[0].rsplit("/", 1)

    async def ensure() -> None:
        admin = await asyncpg.connect(base.replace("postgres://", "postgresql://", 1) + "/postgres")
        try:
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await admin.execute(f'CREATE DATABASE "{name}"')
                print(f"created database {name}")
        finally:
            await admin.close()

    asyncio.run(ensure())
PYTHON
"$PY" -m server migrate

pids=()
stop() {
  trap - INT TERM EXIT
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

PORT="$PORT" "$PY" -m server & pids+=($!)
WORKER_PORT="$WORKER_PORT" "$PY" -m server worker & pids+=($!)
WORKER_PORT="$((WORKER_PORT + 1))" "$PY" -m server worker & pids+=($!)
echo "API on http://127.0.0.1:$PORT/graphql; workers' /readyz on :$WORKER_PORT and :$((WORKER_PORT + 1))"
wait -n "${pids[@]}"

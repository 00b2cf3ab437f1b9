"""What every vendor stand-in shares: a scripted HTTP server on 127.0.0.1 that the real SDK is
pointed at (its base URL), so providers are tested offline with nothing of the SDK mocked.

It runs uvicorn in a background thread (own event loop), so sync tests, async tests and
other processes (via the CLI) can all talk to it over real HTTP. Each request to the vendor's
endpoint consumes the next scripted step; with an empty script the default step is used.
A vendor module (gemini_standin, openai_standin, anthropic_standin) subclasses HttpStandin
with its routes and its error shapes, and offers builders for its answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import socket
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# A valid strategy, as a model would write it: every stand-in's default answer carries it.
DEFAULT_CODE = """\
DEFAULT_PARAMS = {"fast_period": 5, "slow_period": 20, "stop_loss_pct": 0.02}


def _sma(values, period):
    return sum(values[-period:]) / period


def execute_strategy(market_data, strategy_params):
    params = {**DEFAULT_PARAMS, **(strategy_params or {})}
    closes = market_data.get("close", [])
    fast, slow = int(params["fast_period"]), int(params["slow_period"])
    metadata = {"indicators": {}, "stop_loss_price": None, "take_profit_price": None,
                "risk_level": "medium"}
    if len(closes) < slow + 1:
        return {"action": "hold", "confidence": 0.0, "reason": "Not enough data",
                "metadata": metadata}
    fast_now, slow_now = _sma(closes, fast), _sma(closes, slow)
    fast_prev, slow_prev = _sma(closes[:-1], fast), _sma(closes[:-1], slow)
    metadata["indicators"] = {"fast_sma": fast_now, "slow_sma": slow_now}
    price = closes[-1]
    if fast_prev <= slow_prev and fast_now > slow_now:
        metadata["stop_loss_price"] = price * (1 - params["stop_loss_pct"])
        return {"action": "buy", "confidence": 0.7, "reason": "Fast SMA crossed above slow SMA",
                "metadata": metadata}
    if fast_prev >= slow_prev and fast_now < slow_now:
        return {"action": "sell", "confidence": 0.7, "reason": "Fast SMA crossed below slow SMA",
                "metadata": metadata}
    return {"action": "hold", "confidence": 0.5, "reason": "No crossover", "metadata": metadata}
"""


class ReceivedRequest(NamedTuple):
    """What the stand-in saw; headers are lower-cased."""

    path: str
    body: Any
    headers: dict[str, str]

    @property
    def api_key(self) -> str | None:
        """The key however the vendor's SDK sends it (Google, Anthropic, or a bearer token)."""
        for header in ("x-goog-api-key", "x-api-key"):
            if header in self.headers:
                return self.headers[header]
        bearer = self.headers.get("authorization", "")
        return bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None


@dataclass(frozen=True)
class Reply:
    """A fixed HTTP answer, optionally delayed; also usable directly as a step."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=UTF-8"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    def reply_to(self, request: ReceivedRequest, standin: HttpStandin) -> Reply:
        return self


class Step(Protocol):
    def reply_to(self, request: ReceivedRequest, standin: HttpStandin) -> Reply: ...


@dataclass(frozen=True)
class KeyCheck:
    """Answers like the vendor does for a bad key; otherwise hands over to `then`."""

    expected: str | None = None
    then: Step | None = None

    def reply_to(self, request: ReceivedRequest, standin: HttpStandin) -> Reply:
        if self.expected is not None and request.api_key == self.expected:
            return (self.then or standin.default_step).reply_to(request, standin)
        return standin.invalid_key_reply()


def json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body=json.dumps(payload).encode(), headers=headers or {})


def non_json(body: str = "<html>oops</html>", status: int = 200) -> Reply:
    return Reply(status=status, body=body.encode(), content_type="text/html; charset=utf-8")


def with_delay(reply: Reply, seconds: float) -> Reply:
    return replace(reply, delay=seconds)


class HttpStandin:
    """The vendor's generation endpoint on 127.0.0.1, scripted per request.

    `expected_api_key`, when set, makes every request with another key fail like the vendor.
    Subclasses set `vendor` and `endpoint` (a regex over the POSTed path) and say how the
    vendor answers a bad key, an unknown path, and a normal request (`default_answer`).
    """

    vendor = "HTTP"
    endpoint: re.Pattern[str] = re.compile(r"^$")

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        expected_api_key: str | None = None,
        latency: float = 0.0,
    ) -> None:
        self.host = host
        self.expected_api_key = expected_api_key
        self._port = port
        self._lock = threading.Lock()
        self._queue: deque[Step] = deque()
        self._default: Step = self.default_answer()
        self._latency = latency
        self._requests: list[ReceivedRequest] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._socket: socket.socket | None = None

    # --- the vendor's shapes (subclasses) ---

    def default_answer(self) -> Step:
        raise NotImplementedError

    def invalid_key_reply(self) -> Reply:
        raise NotImplementedError

    def not_found_reply(self, path: str) -> Reply:
        return json_reply({"error": {"message": f"Not found: {path}"}}, 404)

    def render(self, request: Request, match: re.Match[str] | None, reply: Reply) -> Response:
        """The HTTP response for `reply` (a vendor may reshape it, e.g. as a stream)."""
        return Response(
            reply.body,
            status_code=reply.status,
            media_type=reply.content_type,
            headers=reply.headers,
        )

    def key_from_query(self, request: Request) -> str | None:
        return None

    # --- scripting (thread-safe) ---

    def script(self, *steps: Step) -> Self:
        with self._lock:
            self._queue.extend(steps)
        return self

    def set_default(self, step: Step) -> None:
        with self._lock:
            self._default = step

    def set_latency(self, seconds: float) -> None:
        """Extra delay before every answer, on top of a step's own delay."""
        with self._lock:
            self._latency = seconds

    def reset(self) -> None:
        """Back to a fresh state, so one server can serve many tests."""
        with self._lock:
            self._queue.clear()
            self._default = self.default_answer()
            self._latency = 0.0
            self._requests.clear()
            self.expected_api_key = None

    @property
    def default_step(self) -> Step:
        with self._lock:
            return self._default

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A snapshot of the requests received so far."""
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the stand-in is not started")
        return int(self._socket.getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- lifecycle ---

    def start(self) -> Self:
        if self._thread is not None:
            return self
        self._socket = self._bind()
        self._server = self._make_server()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run_in_thread,
            args=(ready,),
            name=f"{self.vendor.lower()}-standin",
            daemon=True,
        )
        self._thread.start()
        if not ready.wait(10) or not self._server.started:
            self.stop()
            raise RuntimeError(f"the {self.vendor} stand-in did not start")
        return self

    def stop(self) -> None:
        server, thread, loop, stopping = self._server, self._thread, self._loop, self._stopping
        if server is not None:
            server.should_exit = True
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may close in between
                loop.call_soon_threadsafe(stopping.set)  # wake up hanging answers
        if thread is not None:
            thread.join(15)
            if thread.is_alive():
                raise RuntimeError(f"the {self.vendor} stand-in did not stop")
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._loop = self._stopping = self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (CLI mode; uvicorn handles signals)."""
        self._socket = self._bind()
        print(f"{self.vendor} stand-in listening on {self.base_url}", flush=True)
        self._server = self._make_server()
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._serve())

    def _bind(self) -> socket.socket:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then (else 40 ms delayed ACKs)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.set_inheritable(True)
        return sock

    def _make_server(self) -> uvicorn.Server:
        app = Starlette(
            routes=[
                Route("/healthz", self._health, methods=["GET"]),
                Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )
        config = uvicorn.Config(
            app,
            loop="asyncio",
            http="httptools",
            lifespan="off",
            log_config=None,  # never reconfigure the host process's logging
            log_level="warning",
            access_log=False,
            backlog=1024,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=2,
        )
        return uvicorn.Server(config)

    def _run_in_thread(self, ready: threading.Event) -> None:
        async def watch_startup() -> None:
            assert self._server is not None
            while not self._server.started and not self._server.should_exit:  # noqa: ASYNC110
                await asyncio.sleep(0.005)  # uvicorn exposes a flag, not an event
            ready.set()

        async def main() -> None:
            watcher = asyncio.create_task(watch_startup())
            try:
                await self._serve()
            finally:
                ready.set()
                watcher.cancel()

        asyncio.run(main())

    async def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        await self._server.serve(sockets=[self._socket])

    # --- request handling ---

    async def _health(self, request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        query_key = self.key_from_query(request)
        if query_key is not None and "x-goog-api-key" not in headers:
            headers["x-goog-api-key"] = query_key
        received = ReceivedRequest(path, body, headers)
        match = self.endpoint.match(path) if request.method == "POST" else None
        with self._lock:
            self._requests.append(received)
            latency = self._latency
            if match is None:
                step: Step = self.not_found_reply(path)
            elif self.expected_api_key is not None and received.api_key != self.expected_api_key:
                step = self.invalid_key_reply()
            else:
                step = self._queue.popleft() if self._queue else self._default
        reply = step.reply_to(received, self)
        await self._sleep(latency + reply.delay)
        return self.render(request, match, reply)

    async def _sleep(self, seconds: float) -> None:
        """Sleep that ends early when the stand-in stops, so shutdown never waits on a hang."""
        if seconds <= 0:
            return
        if self._stopping is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def serve_main(standin_class: type[HttpStandin], argv: list[str] | None = None) -> None:
    """`python -m tests.support.<vendor>_standin --port 8765 --latency 0.05` (benchmarks)."""
    parser = argparse.ArgumentParser(description=f"Serve a stand-in {standin_class.vendor} API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--api-key", default=None, help="reject requests with any other key")
    args = parser.parse_args(argv)
    standin_class(args.host, args.port, args.api_key, args.latency).serve_forever()

"""A scriptable stand-in for Gemini's REST API, so the real SDK can be tested offline.

It runs uvicorn in a background thread (own event loop), so sync tests, async tests and
other processes (via the CLI) can all talk to it over real HTTP. Each request consumes the
next scripted step; with an empty script the default step (a valid code answer) is used.

    with GeminiStandin() as standin:
        standin.script(error(429, "quota"), code_answer(CODE))
        client = genai.Client(api_key="k", http_options=HttpOptions(base_url=standin.base_url))

CLI (for benchmarks): python -m tests.support.gemini_standin --port 8765 --latency 0.05
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
from typing import Any, Literal, NamedTuple, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DEFAULT_MODEL_VERSION = "gemini-2.5-pro"

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

_STATUS_TEXT = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MODEL_PATH = re.compile(
    r"^/(?P<version>v1(?:alpha|beta)?)/(?:tuned)?models/(?P<model>[^/:]+)"
    r":(?P<method>generateContent|streamGenerateContent)$"
)


class ReceivedRequest(NamedTuple):
    """What the stand-in saw; headers are lower-cased."""

    path: str
    body: Any
    headers: dict[str, str]

    @property
    def api_key(self) -> str | None:
        return self.headers.get("x-goog-api-key")


@dataclass(frozen=True)
class Reply:
    """A fixed HTTP answer, optionally delayed; also usable directly as a step."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=UTF-8"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    def reply_to(self, request: ReceivedRequest, standin: GeminiStandin) -> Reply:
        return self


class Step(Protocol):
    def reply_to(self, request: ReceivedRequest, standin: GeminiStandin) -> Reply: ...


@dataclass(frozen=True)
class KeyCheck:
    """Answers like Google does for a bad key; otherwise hands over to `then`."""

    expected: str | None = None
    then: Step | None = None

    def reply_to(self, request: ReceivedRequest, standin: GeminiStandin) -> Reply:
        if self.expected is not None and request.api_key == self.expected:
            return (self.then or standin.default_step).reply_to(request, standin)
        return _invalid_key_reply()


# --- step builders ------------------------------------------------------------------------


def _json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body=json.dumps(payload).encode(), headers=headers or {})


def _usage(prompt: int, candidates: int) -> dict[str, int]:
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates,
    }


def answer_payload(
    parts: list[dict[str, Any]],
    tokens: tuple[int, int] = (120, 480),
    finish_reason: str = "STOP",
    model_version: str = DEFAULT_MODEL_VERSION,
) -> dict[str, Any]:
    """The JSON body of a successful generateContent call holding `parts`."""
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": _usage(*tokens),
        "modelVersion": model_version,
        "responseId": "standin-response",
    }


def code_answer(
    code: str = DEFAULT_CODE,
    in_: Literal["executable", "text", "both"] = "executable",
    tokens: tuple[int, int] = (120, 480),
    output: str = "{'action': 'hold', 'confidence': 0.0}\n",
    text_code: str | None = None,
    model_version: str = DEFAULT_MODEL_VERSION,
) -> Reply:
    """A model answer carrying `code` as the code-execution tool or a fenced block would.

    `text_code` puts different code in the fenced block of a "both" answer.
    """
    parts: list[dict[str, Any]] = []
    if in_ in ("text", "both"):
        fenced = text_code if text_code is not None else code
        parts.append({"text": f"Here is the strategy:\n\n```python\n{fenced}\n```\n"})
    else:
        parts.append({"text": "I'll write the strategy and test it on synthetic data."})
    if in_ in ("executable", "both"):
        parts.append({"executableCode": {"language": "PYTHON", "code": code}})
        parts.append({"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": output}})
        parts.append({"text": "The strategy ran on the synthetic series without errors."})
    return _json_reply(answer_payload(parts, tokens, model_version=model_version))


def text_answer(text: str, tokens: tuple[int, int] = (120, 40)) -> Reply:
    return _json_reply(answer_payload([{"text": text}], tokens))


def json_answer(payload: Any, status: int = 200) -> Reply:
    """Any JSON body, for shapes the other builders don't cover."""
    return _json_reply(payload, status)


def error(
    status: int,
    message: str = "",
    status_text: str | None = None,
    retry_after: float | None = None,
    retry_delay: str | None = None,
) -> Reply:
    """Google's error envelope; `retry_delay` ("2s") adds a RetryInfo detail like 429s carry."""
    status_text = status_text or _STATUS_TEXT.get(status, "UNKNOWN")
    body: dict[str, Any] = {
        "code": status,
        "message": message or f"Stand-in {status_text}",
        "status": status_text,
    }
    if retry_delay is not None:
        body["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        ]
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return _json_reply({"error": body}, status, headers)


def blocked(reason: str = "SAFETY", tokens: tuple[int, int] = (15, 0)) -> Reply:
    """The prompt itself was refused: promptFeedback and no candidates."""
    return _json_reply(
        {"promptFeedback": {"blockReason": reason}, "usageMetadata": _usage(*tokens)}
    )


def blocked_candidate(reason: str = "SAFETY", tokens: tuple[int, int] = (15, 0)) -> Reply:
    """The answer was withheld: a candidate with a blocking finishReason and no content."""
    return _json_reply(
        {
            "candidates": [{"finishReason": reason, "index": 0}],
            "usageMetadata": _usage(*tokens),
            "modelVersion": DEFAULT_MODEL_VERSION,
        }
    )


def empty_answer() -> Reply:
    return _json_reply({"candidates": [], "usageMetadata": _usage(10, 0)})


def non_json(body: str = "<html>oops</html>", status: int = 200) -> Reply:
    return Reply(status=status, body=body.encode(), content_type="text/html; charset=utf-8")


def hang(seconds: float, then: Reply | None = None) -> Reply:
    """Answer (with `then`, default a code answer) only after `seconds`."""
    return replace(then or code_answer(), delay=seconds)


def invalid_key(expected: str | None = None, then: Step | None = None) -> KeyCheck:
    """400 "API key not valid" unless the request carries `expected` (None: always 400)."""
    return KeyCheck(expected, then)


def _invalid_key_reply() -> Reply:
    return _json_reply(
        {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            }
        },
        400,
    )


def _not_found(path: str) -> Reply:
    message = f"Method not found: {path}"
    return _json_reply({"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}, 404)


# --- the server ---------------------------------------------------------------------------


class GeminiStandin:
    """Gemini's generateContent endpoint on 127.0.0.1, scripted per request.

    `expected_api_key`, when set, makes every request with another key fail like Google does.
    """

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
        self._default: Step = code_answer()
        self._latency = latency
        self._requests: list[ReceivedRequest] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._socket: socket.socket | None = None

    # --- scripting (thread-safe) ---

    def script(self, *steps: Step) -> GeminiStandin:
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
            self._default = code_answer()
            self._latency = 0.0
            self._requests.clear()
            self.expected_api_key = None

    @property
    def default_step(self) -> Step:
        with self._lock:
            return self._default

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A snapshot of the generateContent-style requests received so far."""
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

    def start(self) -> GeminiStandin:
        if self._thread is not None:
            return self
        self._socket = self._bind()
        self._server = self._make_server()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run_in_thread, args=(ready,), name="gemini-standin", daemon=True
        )
        self._thread.start()
        if not ready.wait(10) or not self._server.started:
            self.stop()
            raise RuntimeError("the Gemini stand-in did not start")
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
                raise RuntimeError("the Gemini stand-in did not stop")
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._loop = self._stopping = self._socket = None

    def __enter__(self) -> GeminiStandin:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (CLI mode; uvicorn handles signals)."""
        self._socket = self._bind()
        self._server = self._make_server()
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
        if "x-goog-api-key" not in headers and "key" in request.query_params:
            headers["x-goog-api-key"] = request.query_params["key"]
        received = ReceivedRequest(path, body, headers)
        match = _MODEL_PATH.match(path) if request.method == "POST" else None
        with self._lock:
            self._requests.append(received)
            latency = self._latency
            if match is None:
                step: Step = _not_found(path)
            elif self.expected_api_key is not None and received.api_key != self.expected_api_key:
                step = _invalid_key_reply()
            else:
                step = self._queue.popleft() if self._queue else self._default
        reply = step.reply_to(received, self)
        await self._sleep(latency + reply.delay)
        if match is not None and match["method"] == "streamGenerateContent" and reply.status == 200:
            return self._as_stream(reply, sse=request.query_params.get("alt") == "sse")
        return Response(
            reply.body,
            status_code=reply.status,
            media_type=reply.content_type,
            headers=reply.headers,
        )

    @staticmethod
    def _as_stream(reply: Reply, sse: bool) -> Response:
        """The whole answer as a single chunk: enough for clients that stream."""
        if not reply.content_type.startswith("application/json"):
            return Response(reply.body, media_type=reply.content_type)
        if sse:
            return Response(b"data: " + reply.body + b"\r\n\r\n", media_type="text/event-stream")
        return Response(b"[" + reply.body + b"]", media_type=reply.content_type)

    async def _sleep(self, seconds: float) -> None:
        """Sleep that ends early when the stand-in stops, so shutdown never waits on a hang."""
        if seconds <= 0:
            return
        if self._stopping is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a stand-in Gemini API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--api-key", default=None, help="reject requests with any other key")
    args = parser.parse_args(argv)
    standin = GeminiStandin(args.host, args.port, args.api_key, args.latency)
    # Bind first so the printed URL is right even with --port 0.
    standin._socket = standin._bind()
    print(f"Gemini stand-in listening on {standin.base_url}", flush=True)
    standin._server = standin._make_server()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(standin._serve())


if __name__ == "__main__":
    main()

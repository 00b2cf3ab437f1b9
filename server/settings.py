"""Configuration from environment variables (and an optional `.env`), nothing else."""

from __future__ import annotations

import ipaddress
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.code_rules import DEFAULT_LOOKBACK

DATA_DIR = Path("data")
ORIGIN_PATTERN = re.compile(
    r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?$"
)
RATE_LIMIT_PATTERN = re.compile(r"^\s*\d+\s*/\s*(\d+\s*)?(second|minute|hour|day)s?\s*$", re.I)


class ModelPrice(BaseModel):
    """USD per million tokens, as in MODEL_PRICES='{"my-model": {"input": 0.5, "output": 1.5}}'."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    database_url: str = f"sqlite://{DATA_DIR}/strategies.sqlite3"
    secret_key: str = ""
    token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)

    gemini_api_key: str = ""
    gemini_model: str = "gemini-2.5-pro"
    gemini_base_url: str = ""
    gemini_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    gemini_max_attempts: int = Field(default=3, ge=1, le=10)
    gemini_retry_base_seconds: float = Field(default=1.0, ge=0, le=60)

    # Any server speaking OpenAI's chat completions: OpenAI itself, or a local one (Ollama,
    # vLLM, llama.cpp's server) through OPENAI_BASE_URL, which then needs no key.
    openai_api_key: str = ""
    openai_base_url: str = ""
    openai_model: str = "gpt-4.1"
    openai_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    openai_max_attempts: int = Field(default=3, ge=1, le=10)
    openai_retry_base_seconds: float = Field(default=1.0, ge=0, le=60)

    anthropic_api_key: str = ""
    anthropic_base_url: str = ""
    anthropic_model: str = "claude-sonnet-4-6"
    anthropic_max_tokens: int = Field(default=8192, ge=256, le=128_000)
    anthropic_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    anthropic_max_attempts: int = Field(default=3, ge=1, le=10)
    anthropic_retry_base_seconds: float = Field(default=1.0, ge=0, le=60)

    # A model id ("openai:gpt-4.1") or model name; unset: the first configured of Gemini,
    # OpenAI-compatible, Anthropic, templates.
    default_model: str = ""
    # Overrides and additions to services/providers/pricing.py's list prices.
    model_prices: dict[str, ModelPrice] = Field(default_factory=dict)

    rate_limit_generate: str = "10/minute"
    rate_limit_execute: str = "120/minute"
    rate_limit_login: str = "10/minute"
    rate_limit_auth_by_address: str = "30/minute"
    redis_url: str = ""
    # How long a request waits on Redis before counting its limits in this process instead
    # (services/rate_limits.py); Redis is retried after REDIS_RETRY_SECONDS.
    redis_timeout_seconds: float = Field(default=0.25, gt=0, le=30)
    redis_retry_seconds: float = Field(default=5.0, gt=0, le=300)
    # PostgreSQL bounds (server/postgres_client.py): connecting, waiting for a pooled
    # connection, and each statement. Past them a request gets SERVICE_UNAVAILABLE.
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    database_query_timeout_seconds: float = Field(default=15.0, gt=0, le=3600)
    # Unset: SQLite applies pending migrations at start-up, PostgreSQL refuses to start
    # until `python -m server migrate` has run (or this is true).
    migrate_on_start: bool | None = None
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDR networks,
    # comma-separated). Empty: nobody's, so a client cannot pick the address it is limited by.
    trusted_proxies: str = ""
    # Web pages on these origins may call the API (CORS, and WebSockets): exact origins such as
    # https://app.example.com or http://localhost:5173, comma-separated; empty: same origin only.
    cors_allow_origins: str = ""
    # Trusted documents: run only the operations of docs/operations and of these manifests
    # (JSON files of hash -> document, comma-separated paths); refuse every other document.
    persisted_operations_only: bool = False
    persisted_operations_manifests: str = ""
    # Static checks of code a user sends (validateCode, updateStrategy): a budget per user in
    # KiB of code per minute, and a cap on the code one request carries over all its fields.
    code_validation_kib_per_minute: int = Field(default=1024, ge=64, le=1_000_000)
    max_request_code_bytes: int = Field(default=256 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)
    # Parsing untrusted code happens in worker processes (services/code_analysis.py): how
    # many, how long one analysis may take before it is refused, and each worker's memory.
    code_analysis_workers: int = Field(default=2, ge=1, le=64)
    code_analysis_timeout_seconds: float = Field(default=1.0, gt=0, le=60)
    code_analysis_memory_mb: int = Field(default=512, ge=128, le=65_536)

    graphql_introspection: bool = True
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Request bodies (server/body_limit.py): without a valid token (register, login) a small
    # cap; from LARGE_REQUEST_BYTES on a body is decoded off the event loop and holds one of
    # MAX_LARGE_REQUESTS slots (the excess waits LARGE_REQUEST_WAIT_SECONDS, then gets a
    # retryable SERVICE_UNAVAILABLE); a list in the variables longer than
    # MAX_VARIABLE_LIST_LENGTH is refused before GraphQL reads it; the whole body must
    # arrive within BODY_TIMEOUT_SECONDS.
    max_anonymous_request_bytes: int = Field(default=64 * 1024, ge=1024)
    large_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_large_requests: int = Field(default=2, ge=1, le=1024)
    large_request_wait_seconds: float = Field(default=2.0, ge=0, le=300)
    max_variable_list_length: int = Field(default=100_000, ge=1000)
    body_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Datasets (uploadDataset): the CSV one upload may carry (a signed-in user's request may
    # be this large, beyond MAX_REQUEST_BYTES), the bars one dataset may hold, and per user,
    # how many datasets and how many stored (compressed) bytes in all.
    max_dataset_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    max_dataset_bars: int = Field(default=1_000_000, ge=100, le=10_000_000)
    max_datasets_per_user: int = Field(default=100, ge=1, le=100_000)
    max_dataset_storage_bytes_per_user: int = Field(default=512 * 1024 * 1024, ge=1024)

    sandbox_max_concurrent_jobs: int = Field(default=2, ge=1, le=64)
    sandbox_max_queue: int = Field(default=32, ge=0, le=10_000)
    # Per user; unset derives them (services/sandbox/settings.py, SandboxSettings): all slots
    # but one (one stays for the others), and min(4 x slots, SANDBOX_MAX_QUEUE / 4) waiting,
    # so one user never fills the queue.
    sandbox_max_running_per_user: int | None = Field(default=None, ge=1, le=64)
    sandbox_max_queued_per_user: int | None = Field(default=None, ge=0, le=10_000)
    sandbox_memory_mb: int = Field(default=512, ge=64, le=65_536)
    sandbox_allow_unisolated: bool = False
    # Host uid (and gid) of the sandbox when the server runs as root; never 0. The default
    # is services.sandbox.launcher.DEFAULT_HOST_UID (tests/test_sandbox_privileges.py).
    sandbox_host_uid: int = Field(default=2_000_000_000, ge=1, le=4_294_967_294)
    # The look-ahead check after every backtest (services/lookahead.py) calls the strategy
    # at most this percent as often as the backtest (at least 40 times); 0 turns it off.
    lookahead_check_pct: float = Field(default=2.0, ge=0, le=100)
    # A strategy sees the most recent LOOKBACK_BARS bars (its own `LOOKBACK = N` instead,
    # at most LOOKBACK_MAX_BARS), so a bar costs the same however long the history.
    lookback_bars: int = Field(default=DEFAULT_LOOKBACK, ge=1, le=1_000_000)
    lookback_max_bars: int = Field(default=10_000, ge=1, le=1_000_000)
    run_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    backtest_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    # The most trials one optimisation search (one walk-forward fold) may ask for (maxTrials).
    optimization_max_trials: int = Field(default=1_000, ge=1, le=100_000)
    # Generated code runs once on sample data before it is called SUCCESS: one sandbox job
    # (~10 ms of CPU) per generation, at most GENERATION_TRIAL_RUN_LIMIT per process; the
    # generations beyond it are stored untried, with a warning. Unbounded, bench/load.py's
    # ~40 generations/s on 2 cores slowed runStrategy 2-3x (README, Benchmarks).
    generation_trial_run: bool = True
    generation_trial_run_limit: str = "5/second"
    # A model's code that fails the checks goes back to it with the errors, this many times at
    # most (0: never); all rounds of one generation or refinement within the time limit.
    generation_repair_rounds: int = Field(default=2, ge=0, le=10)
    generation_timeout_seconds: float = Field(default=300.0, gt=0, le=3600)

    # Long work as jobs (services/jobs.py, docs/scaling.md). auto: on queue workers when
    # REDIS_URL is set, else in this process; inprocess or queue force one.
    job_backend: Literal["auto", "inprocess", "queue"] = "auto"
    # Extra modules whose import registers job and task handlers (comma-separated).
    job_modules: str = ""
    # Jobs one user may have running at once, over all processes and workers.
    job_max_running_per_user: int = Field(default=2, ge=1, le=1000)
    # Jobs one process (the server in-process, or a worker) runs at once.
    job_concurrency: int = Field(default=4, ge=1, le=1000)
    # A running job's process refreshes its heartbeat this often and sees cancellations
    # then; a job whose heartbeat is older than JOB_STALE_SECONDS is taken again.
    job_heartbeat_seconds: float = Field(default=1.0, gt=0, le=60)
    job_stale_seconds: float = Field(default=10.0, gt=0, le=3600)
    # Prefix of the queue's Redis keys: deployments sharing one Redis need different names.
    job_queue_name: str = Field(default="strategies", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    # A worker's (`python -m server worker`) health endpoint: /healthz, /readyz, /metrics on
    # HOST:WORKER_PORT; 0 serves none.
    worker_port: int = Field(default=8001, ge=0, le=65535)

    log_level: str = "info"
    # Server processes; more than one wants REDIS_URL, or each keeps its own rate limits.
    workers: int = Field(default=1, ge=1, le=64)
    log_format: Literal["json", "text"] = "json"
    metrics_enabled: bool = True
    metrics_token: str = ""  # when set, /metrics wants 'Authorization: Bearer <token>'
    # Below the usual 30 s kill timeout (Kubernetes), so FAILURE logs land before SIGKILL.
    shutdown_grace_seconds: float = Field(default=25.0, ge=0, le=3600)
    # Slow clients (server/connections.py): each request's headers within this time, and at
    # most this many open connections per process (lowered to fit the descriptor limit).
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    # From SIGTERM, /readyz answers 503; the server keeps serving this long before it stops
    # accepting connections, so a load balancer polling /readyz moves traffic away first.
    shutdown_drain_seconds: float = Field(default=0.0, ge=0, le=300)

    @field_validator(
        "rate_limit_generate",
        "rate_limit_execute",
        "rate_limit_login",
        "rate_limit_auth_by_address",
        "generation_trial_run_limit",
    )
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        if not RATE_LIMIT_PATTERN.match(value):
            raise ValueError("expected '<count>/<period>', e.g. '10/minute' or '100/hour'")
        return value.strip()

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        entries = [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
        for entry in entries:
            if not ORIGIN_PATTERN.match(entry):
                raise ValueError(
                    f"{entry!r} is not an origin: scheme://host[:port], such as "
                    "https://app.example.com or http://localhost:5173 (no path, no wildcard)"
                )
        return ",".join(entries)

    @model_validator(mode="after")
    def _job_heartbeat_below_stale(self) -> Settings:
        if self.job_stale_seconds <= 2 * self.job_heartbeat_seconds:
            raise ValueError("JOB_STALE_SECONDS must exceed twice JOB_HEARTBEAT_SECONDS")
        return self

    @property
    def uses_job_queue(self) -> bool:
        """Jobs go to queue workers (JOB_BACKEND=queue, or auto with REDIS_URL)."""
        if self.job_backend == "auto":
            return bool(self.redis_url)
        return self.job_backend == "queue"

    @model_validator(mode="after")
    def _job_queue_needs_redis(self) -> Settings:
        if self.job_backend == "queue" and not self.redis_url:
            raise ValueError("JOB_BACKEND=queue needs REDIS_URL")
        return self

    @property
    def manifest_paths(self) -> tuple[Path, ...]:
        entries = self.persisted_operations_manifests.split(",")
        return tuple(Path(item.strip()) for item in entries if item.strip())

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(self.cors_allow_origins.split(",")) if self.cors_allow_origins else ()

    @field_validator("persisted_operations_manifests")
    @classmethod
    def _manifests(cls, value: str) -> str:
        """Each file must be readable JSON whose every hash is its document's: checked here, so
        a bad manifest stops the start with one line naming it."""
        from services.errors import BadInput
        from services.persisted_queries import load_manifest

        entries = [item.strip() for item in value.split(",") if item.strip()]
        for entry in entries:
            try:
                load_manifest(Path(entry))
            except BadInput as exc:
                raise ValueError(str(exc)) from None
        return ",".join(entries)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_list(cls, value: str) -> str:
        entries = [item.strip() for item in value.split(",") if item.strip()]
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
                ) from None
        return ",".join(entries)

    @field_validator("gemini_base_url", "openai_base_url", "anthropic_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    def configured_models(self) -> list[tuple[str, str]]:
        """(provider, model) of every configured model, in the default's order of preference."""
        from services.providers.templates import TemplateProvider

        models = []
        if self.gemini_api_key:
            models.append(("gemini", self.gemini_model))
        if self.openai_api_key or self.openai_base_url:
            models.append(("openai", self.openai_model))
        if self.anthropic_api_key:
            models.append(("anthropic", self.anthropic_model))
        models.append((TemplateProvider.name, TemplateProvider.model))
        return models

    @model_validator(mode="after")
    def _default_model_is_configured(self) -> Settings:
        wanted = self.default_model.strip()
        if not wanted:
            return self
        models = self.configured_models()
        from services.providers.registry import model_id

        ids = [model_id(provider, model) for provider, model in models]
        if wanted not in ids and wanted not in [model for _, model in models]:
            raise ValueError(
                f"DEFAULT_MODEL={wanted!r} is not a configured model; configured: {', '.join(ids)}"
            )
        return self

    def resolved_secret_key(self) -> str:
        """A dev key is generated once and kept under ./data so tokens survive restarts."""
        if self.secret_key:
            return self.secret_key
        path = DATA_DIR / "secret_key"
        if path.exists():
            return path.read_text().strip()
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

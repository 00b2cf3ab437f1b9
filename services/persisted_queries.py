"""Persisted operations: Apollo's automatic persisted queries (APQ) and trusted documents.

A request may name its document by hash (`extensions.persistedQuery.sha256Hash`, version 1):
the server runs the document it holds under that hash, or answers PersistedQueryNotFound,
and the client (Apollo's persisted-query link) sends the hash again with the full text, which
is checked against the hash and kept. With `trusted_only` (PERSISTED_OPERATIONS_ONLY) only the
documents of a manifest (hash -> document, `operations_manifest` and the clients' builds) run,
whether named by hash or sent in full; nothing is registered.

Nothing here knows about HTTP or GraphQL execution: schema/persisted_queries.py calls it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    Node,
    OperationDefinitionNode,
    parse,
    print_ast,
)

from services.errors import BadInput, Forbidden, ServiceError
from services.outages import OUTAGES, REDIS

T = TypeVar("T")

APQ_VERSION = 1
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# Memory store bound: documents are kept only once they parsed and validated (MAX_TOKENS).
MEMORY_STORE_BYTES = 8 * 1024 * 1024
# Redis store: each entry lives this long after its last registration or use.
REDIS_TTL_SECONDS = 7 * 24 * 3600
REDIS_KEY_PREFIX = "strategy-generator:apq:"


class PersistedQueryNotFound(ServiceError):
    """Apollo's protocol: this exact message and code make the client resend with the text."""

    code = "PERSISTED_QUERY_NOT_FOUND"

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


class OperationNotTrusted(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "This server runs only trusted operations (PERSISTED_OPERATIONS_ONLY): the "
            "document is not in its manifest. Send a persisted operation's hash, or add the "
            "document to the manifest (docs/clients.md, Trusted documents)."
        )


def document_hash(document: str) -> str:
    """The key a client computes: SHA-256 of the document's UTF-8 text, lowercase hex."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


class DocumentStore(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, document: str) -> None: ...


@dataclass
class MemoryDocumentStore:
    """Least recently used documents, bounded by their total size: per process."""

    max_bytes: int = MEMORY_STORE_BYTES
    _entries: OrderedDict[str, str] = field(default_factory=OrderedDict)
    _bytes: int = 0

    async def get(self, key: str) -> str | None:
        document = self._entries.get(key)
        if document is not None:
            self._entries.move_to_end(key)
        return document

    async def put(self, key: str, document: str) -> None:
        size = len(document.encode("utf-8"))
        if size > self.max_bytes or key in self._entries:
            return
        self._entries[key] = document
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.encode("utf-8"))


class RedisDocumentStore:
    """Shared by every server process. Entries expire REDIS_TTL_SECONDS after their last use:
    a TTL, not a size cap, because Redis' own eviction depends on a maxmemory-policy we do not
    control, and an unused entry costs only one more round trip (PersistedQueryNotFound).

    As the rate limits do (services/rate_limits.py): when Redis fails or is slower than
    `timeout`, this process' memory store answers instead, and Redis is tried again after
    `retry_after`. A client then sees at worst one PersistedQueryNotFound more."""

    def __init__(
        self,
        redis_url: str,
        ttl_seconds: int = REDIS_TTL_SECONDS,
        *,
        timeout: float = 0.25,
        retry_after: float = 5.0,
    ) -> None:
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(
            redis_url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._ttl = ttl_seconds
        self.local = MemoryDocumentStore()
        self.timeout = timeout
        self.retry_after = retry_after
        self._skip_until = 0.0  # monotonic time before which Redis is not tried

    async def _shared(self, call: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        """(True, result) when Redis answered in time; (False, None) after recording why not."""
        from redis.exceptions import RedisError

        if time.monotonic() < self._skip_until:
            return False, None
        try:
            async with asyncio.timeout(self.timeout):
                result = await call()
        except (RedisError, TimeoutError, OSError) as exc:
            self._skip_until = time.monotonic() + self.retry_after
            OUTAGES.failed(REDIS, exc)
            return False, None
        OUTAGES.answered(REDIS)
        return True, result

    async def get(self, key: str) -> str | None:
        answered, document = await self._shared(
            lambda: self._redis.getex(REDIS_KEY_PREFIX + key, ex=self._ttl)
        )
        if not answered:
            return await self.local.get(key)
        return document if isinstance(document, str) else None

    async def put(self, key: str, document: str) -> None:
        answered, _ = await self._shared(
            lambda: self._redis.set(REDIS_KEY_PREFIX + key, document, ex=self._ttl)
        )
        if not answered:
            await self.local.put(key, document)

    async def aclose(self) -> None:
        await self._redis.aclose()


@dataclass(frozen=True)
class Resolved:
    """The document to run, and the hash to register it under once it validated (or None)."""

    document: str | None
    register_as: str | None = None


class PersistedOperations:
    def __init__(
        self,
        store: DocumentStore,
        manifest: Mapping[str, str] | None = None,
        *,
        trusted_only: bool = False,
    ) -> None:
        self.store = store
        self.manifest = dict(manifest or {})
        self.trusted_only = trusted_only

    def applies_to(self, extensions: Mapping[str, Any] | None) -> bool:
        """Whether `resolve` has anything to do: every request in trusted mode, else only
        those naming a persisted query."""
        return self.trusted_only or (extensions is not None and "persistedQuery" in extensions)

    async def resolve(self, query: str | None, extensions: Mapping[str, Any] | None) -> Resolved:
        """The document a request runs, or the protocol's refusal (ServiceError)."""
        wanted = _requested_hash(extensions)
        if wanted is None:
            if self.trusted_only and (query is None or document_hash(query) not in self.manifest):
                raise OperationNotTrusted()
            return Resolved(query)
        if query is not None:
            if document_hash(query) != wanted:
                raise BadInput("persistedQuery.sha256Hash is not the SHA-256 of the query")
            if self.trusted_only and wanted not in self.manifest:
                raise OperationNotTrusted()
            known = wanted in self.manifest
            return Resolved(query, None if known or self.trusted_only else wanted)
        if wanted in self.manifest:
            return Resolved(self.manifest[wanted])
        if self.trusted_only:
            raise OperationNotTrusted()
        document = await self.store.get(wanted)
        if document is None:
            raise PersistedQueryNotFound()
        return Resolved(document)

    async def register(self, key: str, document: str) -> None:
        await self.store.put(key, document)

    async def aclose(self) -> None:
        close = getattr(self.store, "aclose", None)
        if close is not None:
            await close()


def _requested_hash(extensions: Mapping[str, Any] | None) -> str | None:
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, Mapping) or persisted.get("version") != APQ_VERSION:
        raise BadInput(f"persistedQuery must be {{version: {APQ_VERSION}, sha256Hash}}")
    wanted = persisted.get("sha256Hash")
    if not isinstance(wanted, str) or not SHA256_HEX.match(wanted):
        raise BadInput("persistedQuery.sha256Hash must be 64 lowercase hex digits")
    return wanted


def operations_manifest(sources: Iterable[str]) -> dict[str, str]:
    """hash -> document for every operation of `sources` (.graphql texts): each operation
    printed with the fragments it uses, as one document, in source order."""
    definitions: list[Node] = []
    for text in sources:
        definitions.extend(parse(text).definitions)
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    manifest: dict[str, str] = {}
    for operation in definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        used = _fragments_used(operation, fragments)
        document = print_ast(DocumentNode(definitions=(operation, *used)))
        manifest[document_hash(document)] = document
    return manifest


def _fragments_used(
    node: Node, fragments: Mapping[str, FragmentDefinitionNode]
) -> list[FragmentDefinitionNode]:
    found: dict[str, FragmentDefinitionNode] = {}
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, FragmentSpreadNode):
            name = current.name.value
            if name not in found:
                if name not in fragments:
                    raise GraphQLError(f"Unknown fragment {name!r}")
                found[name] = fragments[name]
                pending.append(fragments[name])
            continue
        selection_set = getattr(current, "selection_set", None)
        if selection_set is not None:
            pending.extend(reversed(selection_set.selections))
    return list(found.values())


def read_operations(directory: Path) -> dict[str, str]:
    """The manifest of every operation under `directory` (*.graphql, read in name order)."""
    paths = sorted(directory.glob("*.graphql"))
    return operations_manifest(path.read_text(encoding="utf-8") for path in paths)


def load_manifest(path: Path) -> dict[str, str]:
    """A manifest file: a JSON object hash -> document, as `persisted-manifest` writes and
    graphql-codegen's client preset (persistedDocuments, sha256) emits. Every hash is checked."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read the manifest {path}: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: a manifest is a JSON object of hash -> document")
    for key, document in data.items():
        if not isinstance(document, str) or document_hash(document) != key:
            raise BadInput(f"{path}: {key!r} is not the SHA-256 of its document")
    return data

"""Per-request context: the caller (resolved lazily) and request-scoped DataLoaders.

Over a WebSocket one context serves the whole connection, which may stay open for hours: it
remembers nothing there, so each operation checks the token (and the account behind it, at
most `RecentUsers.ttl_seconds` old) and reads strategies afresh.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

import models
from services import accounts, strategies, versions
from services.container import Services
from services.errors import Unauthenticated

BEARER_PREFIX = "bearer "


@dataclass
class Context:
    services: Services
    authorization: str | None
    request: Any = None
    response: Any = None
    # A WebSocket's connection_init payload; strawberry sets it (see GraphQLApp.on_ws_connect).
    connection_params: dict[str, Any] | None = None
    _user: models.User | None = None
    _strategy_loaders: dict[uuid.UUID, DataLoader[uuid.UUID, models.GeneratedStrategy | None]] = (
        field(default_factory=dict)
    )
    _versions_loaders: dict[bool, DataLoader[uuid.UUID, list[models.StrategyVersion]]] = field(
        default_factory=dict
    )

    @property
    def client_address(self) -> str:
        """The peer address (uvicorn resolves X-Forwarded-For from trusted proxies only)."""
        client = getattr(self.request, "client", None)
        return str(client.host) if client is not None and client.host else "unknown"

    @property
    def lasts_a_connection(self) -> bool:
        return isinstance(self.request, WebSocket)

    async def require_user(self) -> models.User:
        if self._user is None or self.lasts_a_connection:
            header = (self.authorization or "").strip()
            if not header:
                raise Unauthenticated(
                    "Authentication required: send 'Authorization: Bearer <token>'"
                )
            if not header.lower().startswith(BEARER_PREFIX):
                raise Unauthenticated("Authorization header must be 'Bearer <token>'")
            token = header[len(BEARER_PREFIX) :].strip()
            user = await accounts.user_for_token(
                self.services.signer, token, self.services.recent_users
            )
            if self.lasts_a_connection:
                return user
            self._user = user
        return self._user

    def strategy_loader(
        self, owner_id: uuid.UUID
    ) -> DataLoader[uuid.UUID, models.GeneratedStrategy | None]:
        loader = self._strategy_loaders.get(owner_id)
        if loader is None:

            async def load(ids: list[uuid.UUID]) -> list[models.GeneratedStrategy | None]:
                return await strategies.strategies_by_id(owner_id, ids)

            loader = self._strategy_loaders[owner_id] = DataLoader(
                load_fn=load, cache=not self.lasts_a_connection
            )
        return loader

    def versions_loader(
        self, *, fresh: bool
    ) -> DataLoader[uuid.UUID, list[models.StrategyVersion]]:
        """Each strategy's versions, oldest first: one query for all the strategies a step of
        the operation asks about. `fresh` (mutations, whose fields add versions and store
        metrics one after another) reads anew each time; so does a WebSocket. Callers pass
        only strategies the caller may see (they were read owner-scoped)."""
        cache = not (fresh or self.lasts_a_connection)
        loader = self._versions_loaders.get(cache)
        if loader is None:
            loader = self._versions_loaders[cache] = DataLoader(
                load_fn=versions.versions_of, cache=cache
            )
        return loader

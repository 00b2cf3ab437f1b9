"""The in-process TCP server fixture that WebSocket and generated clients use."""

from __future__ import annotations

import uuid

import httpx

from tests.support.api import PASSWORD, REGISTER


async def test_live_url_serves_graphql_over_tcp(live_url: str) -> None:
    email = f"live-{uuid.uuid4().hex[:8]}@example.com"
    assert live_url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(base_url=live_url) as http:
        response = await http.post(
            "/graphql",
            json={
                "query": REGISTER,
                "variables": {"email": email, "password": PASSWORD},
            },
        )
    assert response.status_code == 200
    assert response.json()["data"]["register"]["user"]["email"] == email

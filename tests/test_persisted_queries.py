"""Persisted operations: Apollo's automatic persisted queries (hash first, the text on
PersistedQueryNotFound, over GET or POST, kept in memory or Redis), trusted documents
(PERSISTED_OPERATIONS_ONLY), and GET answers kept out of shared caches."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.settings import Settings
from server.wiring import OPERATIONS_DIR
from services.persisted_queries import (
    REDIS_KEY_PREFIX,
    REDIS_TTL_SECONDS,
    MemoryDocumentStore,
    document_hash,
    operations_manifest,
    read_operations,
)
from services.sandbox import Sandbox
from tests.support.api import PASSWORD, error_codes, make_client
from tests.support.live import serve_over_tcp
from tests.support.ws import GraphQLWS

JSON = {"Accept": "application/graphql-response+json, application/json;q=0.9"}
ROOT = Path(__file__).resolve().parent.parent


def persisted(key: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": key}}


async def by_hash(
    client: httpx.AsyncClient,
    key: str,
    token: str | None = None,
    operation_name: str | None = None,
    **params: Any,
) -> httpx.Response:
    """As Apollo's link with useGETForHashedQueries: GET, no `query`, JSON-encoded params."""
    headers = {**JSON, **({"Authorization": f"Bearer {token}"} if token else {})}
    query = {"extensions": json.dumps(persisted(key))}
    if operation_name:
        query["operationName"] = operation_name
    query.update({name: json.dumps(value) for name, value in params.items()})
    return await client.get("/graphql", params=query, headers=headers)


def manifest_document(operation: str) -> str:
    """The manifest's text of the operation named `operation` (docs/operations)."""
    for document in read_operations(OPERATIONS_DIR).values():
        if f" {operation}" in document.split("{", 1)[0].split("(", 1)[0]:
            return document
    raise AssertionError(f"no operation {operation} in docs/operations")


def unique_query() -> str:
    """A document no earlier test (nor a Redis left from one) has registered."""
    return f"query Datasets{uuid.uuid4().hex} {{ sampleDatasets }}"


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_apollo_round_trip_hash_then_text_then_hash_over_get(
    database: str, settings: Settings, sandbox: Sandbox, store: str, request: pytest.FixtureRequest
) -> None:
    if store == "redis":
        settings = settings.model_copy(update={"redis_url": request.getfixturevalue("redis_url")})
    query = unique_query()
    key = document_hash(query)
    name = query.split()[1]
    async with make_client(settings, sandbox=sandbox) as client:
        unknown = await by_hash(client, key, operation_name=name)  # Apollo names it
        assert unknown.status_code == 200
        assert unknown.json()["errors"] == [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
        sent = await client.post("/graphql", json={"query": query, "extensions": persisted(key)})
        assert "errors" not in sent.json() and sent.json()["data"]["sampleDatasets"]
        again = await by_hash(client, key)
        assert again.json() == sent.json()
    if store == "redis":  # another process (another app, its own services) knows the hash
        async with make_client(settings, sandbox=sandbox) as other:
            assert (await by_hash(other, key)).json() == sent.json()
        import redis.asyncio

        async with redis.asyncio.Redis.from_url(settings.redis_url) as shared:
            ttl = await shared.ttl(REDIS_KEY_PREFIX + key)
        assert REDIS_TTL_SECONDS - 60 < ttl <= REDIS_TTL_SECONDS  # 7 days after its last use


async def test_a_hash_that_is_not_the_texts_is_refused_and_nothing_is_kept(
    client: httpx.AsyncClient,
) -> None:
    query, other = unique_query(), unique_query()
    wrong = await client.post(
        "/graphql", json={"query": query, "extensions": persisted(document_hash(other))}
    )
    assert error_codes(wrong.json()) == ["BAD_USER_INPUT"]
    assert "SHA-256" in wrong.json()["errors"][0]["message"]
    assert error_codes((await by_hash(client, document_hash(other))).json()) == [
        "PERSISTED_QUERY_NOT_FOUND"
    ]


@pytest.mark.parametrize(
    "extension",
    [{"version": 2, "sha256Hash": "0" * 64}, {"version": 1, "sha256Hash": "XYZ"}, "yes"],
    ids=["version", "hash", "shape"],
)
async def test_a_malformed_persisted_query_is_bad_input(
    client: httpx.AsyncClient, extension: object
) -> None:
    answer = await client.post(
        "/graphql",
        json={"query": "{ sampleDatasets }", "extensions": {"persistedQuery": extension}},
    )
    assert answer.status_code == 200
    assert error_codes(answer.json()) == ["BAD_USER_INPUT"]


async def test_only_documents_that_validate_are_kept(client: httpx.AsyncClient) -> None:
    invalid = f"query Bad{uuid.uuid4().hex} {{ noSuchField }}"
    key = document_hash(invalid)
    answer = await client.post("/graphql", json={"query": invalid, "extensions": persisted(key)})
    assert error_codes(answer.json()) == ["BAD_USER_INPUT"]
    assert error_codes((await by_hash(client, key)).json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_docs_operations_run_by_hash_without_registering(
    client: httpx.AsyncClient, token: str
) -> None:
    me = manifest_document("Me")
    answer = await by_hash(client, document_hash(me), token)
    assert "errors" not in answer.json(), answer.json()
    assert answer.json()["data"]["me"]["email"]


async def test_mutations_never_run_over_get(client: httpx.AsyncClient) -> None:
    """Not as text, and not by the hash of a known mutation either."""
    login = manifest_document("Login")
    variables = {"email": "nobody@example.com", "password": "whatever password"}
    as_text = await client.get(
        "/graphql", params={"query": login, "variables": json.dumps(variables)}, headers=JSON
    )
    assert as_text.status_code == 400 and error_codes(as_text.json()) == ["BAD_USER_INPUT"]
    as_hash = await by_hash(client, document_hash(login), variables=variables)
    assert as_hash.status_code == 400 and error_codes(as_hash.json()) == ["BAD_USER_INPUT"]
    assert "mutations are not allowed" in as_hash.json()["errors"][0]["message"].lower()


async def test_authenticated_get_answers_are_private_and_never_stored(
    client: httpx.AsyncClient, token: str
) -> None:
    me = manifest_document("Me")
    mine = await client.get(
        "/graphql", params={"query": me}, headers={**JSON, "Authorization": f"Bearer {token}"}
    )
    assert mine.json()["data"]["me"]
    assert {v.strip() for v in mine.headers["cache-control"].split(",")} == {"private", "no-store"}
    anonymous = await client.get("/graphql", params={"query": "{ sampleDatasets }"}, headers=JSON)
    assert "authorization" in anonymous.headers["vary"].lower()
    assert "private" not in anonymous.headers.get("cache-control", "")


def test_the_memory_store_is_bounded_by_size() -> None:
    import asyncio

    async def fill() -> MemoryDocumentStore:
        store = MemoryDocumentStore(max_bytes=100)
        for index in range(10):
            await store.put(str(index), str(index) * 30)
        await store.get("7")  # recently used: kept over 8
        await store.put("10", "x" * 30)
        return store

    store = asyncio.run(fill())
    assert set(store._entries) == {"7", "9", "10"}


def trusted(settings: Settings, *manifests: Path) -> Settings:
    return settings.model_copy(
        update={
            "persisted_operations_only": True,
            "persisted_operations_manifests": ",".join(str(p) for p in manifests),
        }
    )


async def test_trusted_mode_runs_only_manifest_documents(
    database: str, settings: Settings, sandbox: Sandbox, tmp_path: Path
) -> None:
    client_build = "query ClientDatasets { sampleDatasets }"
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(json.dumps({document_hash(client_build): client_build}))
    async with make_client(trusted(settings, manifest), sandbox=sandbox) as client:
        email = f"user-{uuid.uuid4().hex[:10]}@example.com"
        variables = {"email": email, "password": PASSWORD}
        registered = await client.post(  # by hash alone
            "/graphql",
            json={
                "variables": variables,
                "extensions": persisted(document_hash(manifest_document("Register"))),
            },
        )
        assert registered.json()["data"]["registration"]["token"], registered.text
        logged_in = await client.post(  # as text
            "/graphql", json={"query": manifest_document("Login"), "variables": variables}
        )
        token = logged_in.json()["data"]["login"]["token"]
        me = await by_hash(client, document_hash(manifest_document("Me")), token)
        assert me.json()["data"]["me"]["email"] == email
        from_build = await by_hash(client, document_hash(client_build))
        assert from_build.json()["data"]["sampleDatasets"]

        for refused in (
            await client.post("/graphql", json={"query": "{ sampleDatasets }"}),
            await client.post(
                "/graphql",
                json={
                    "query": "{ sampleDatasets }",
                    "extensions": persisted(document_hash("{ sampleDatasets }")),
                },
            ),
            await by_hash(client, document_hash(unique_query())),
            await client.get(
                "/graphql", params={"query": "{ __schema { types { name } } }"}, headers=JSON
            ),
        ):
            assert error_codes(refused.json()) == ["FORBIDDEN"], refused.text
            assert "PERSISTED_OPERATIONS_ONLY" in refused.json()["errors"][0]["message"]
            assert refused.json()["data"] is None


async def test_trusted_mode_covers_websocket_operations(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    from server.app import create_app
    from server.wiring import build_services
    from tests.support.api import shared_analyser

    only = trusted(settings)
    app = create_app(only, build_services(only, None, sandbox, shared_analyser()))
    async with serve_over_tcp(app) as base, GraphQLWS.connect(base, {}) as ws:
        outcome = await ws.collect("query Mine { sampleDatasets }")
        assert outcome.codes == ["FORBIDDEN"], outcome
        listed = await ws.collect(manifest_document("SampleDatasets"))
        assert listed.codes == [] and listed.data and listed.data[0]


def test_an_unreadable_or_wrong_manifest_is_refused(tmp_path: Path) -> None:
    from pydantic import ValidationError

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"0" * 64: "{ sampleDatasets }"}))
    for path, reason in ((wrong, "is not the SHA-256"), (tmp_path / "missing.json", "cannot read")):
        with pytest.raises(ValidationError, match=reason):
            Settings(_env_file=None, persisted_operations_manifests=str(path))  # type: ignore[call-arg]


def test_the_manifest_holds_each_operation_with_the_fragments_it_uses() -> None:
    manifest = operations_manifest(
        [
            "fragment A on Query { sampleDatasets }\nfragment B on Query { ...A }\n"
            "query One { ...B }\nquery Two { sampleDatasets }"
        ]
    )
    documents = sorted(manifest.values())
    assert documents == [
        "query One {\n  ...B\n}\n\nfragment B on Query {\n  ...A\n}\n\n"
        "fragment A on Query {\n  sampleDatasets\n}",
        "query Two {\n  sampleDatasets\n}",
    ]
    assert all(document_hash(text) == key for key, text in manifest.items())


def test_the_cli_prints_the_manifest_of_docs_operations() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "persisted-manifest"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed == read_operations(OPERATIONS_DIR)
    names = {text.split("(")[0].split("{")[0].split()[1] for text in printed.values()}
    assert {"Login", "Register", "Me", "Strategies", "GenerateStrategyProgress"} <= names


async def test_without_redis_the_process_keeps_persisted_queries_itself(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    """Redis down (nothing listens there): the round trip still works, from this process'
    memory, as the rate limits fall back to per-process counts."""
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    query = unique_query()
    key = document_hash(query)
    async with make_client(down, sandbox=sandbox) as client:
        assert error_codes((await by_hash(client, key)).json()) == ["PERSISTED_QUERY_NOT_FOUND"]
        sent = await client.post("/graphql", json={"query": query, "extensions": persisted(key)})
        assert sent.json()["data"]["sampleDatasets"], sent.text
        assert (await by_hash(client, key)).json() == sent.json()

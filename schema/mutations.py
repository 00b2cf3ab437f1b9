from __future__ import annotations

import uuid
from typing import Any, cast

import strawberry

from schema.context import Context
from schema.types import (
    AuthPayload,
    GenerateStrategyInput,
    GenerateStrategyPayload,
    GenerationLog,
    Strategy,
    UpdateStrategyInput,
    User,
    ValidationResult,
)
from services import accounts, strategies
from services.generation import GenerationRequest
from services.strategies import StrategyChanges, check_code_size
from services.validation import validate_code

Info = strawberry.Info[Context, None]


def _auth_payload(info: Info, user: accounts.User) -> AuthPayload:
    return AuthPayload(
        token=info.context.services.signer.issue(user.id), user=User.from_model(user)
    )


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def register(self, info: Info, email: str, password: str) -> AuthPayload:
        return _auth_payload(info, await accounts.register(email, password))

    @strawberry.mutation
    async def login(self, info: Info, email: str, password: str) -> AuthPayload:
        return _auth_payload(info, await accounts.authenticate(email, password))

    @strawberry.mutation
    async def generate_strategy(
        self, info: Info, input: GenerateStrategyInput
    ) -> GenerateStrategyPayload:
        user = await info.context.require_user()
        outcome = await info.context.services.generator.generate(
            user,
            GenerationRequest(
                prompt=input.prompt,
                name=input.name,
                strategy_type=input.strategy_type,
                validate=input.validate_code is not False,
            ),
        )
        return GenerateStrategyPayload(
            strategy=Strategy.from_model(outcome.strategy) if outcome.strategy else None,
            generation_log=GenerationLog.from_model(outcome.log),
            processing_time_seconds=outcome.processing_time_seconds,
        )

    @strawberry.mutation
    async def update_strategy(
        self, info: Info, id: uuid.UUID, input: UpdateStrategyInput
    ) -> Strategy:
        user = await info.context.require_user()
        changes = StrategyChanges(
            name=input.name,
            description=input.description,
            generated_code=input.generated_code,
            strategy_type=input.strategy_type,
            status=input.status,
            parameters=cast("dict[str, Any] | None", input.parameters),  # checked in services
        )
        return Strategy.from_model(await strategies.update_strategy(user, id, changes))

    @strawberry.mutation
    async def delete_strategy(self, info: Info, id: uuid.UUID) -> bool:
        return await strategies.delete_strategy(await info.context.require_user(), id)

    @strawberry.mutation
    async def validate_code(self, info: Info, code: str) -> ValidationResult:
        await info.context.require_user()
        check_code_size(code)
        return ValidationResult.from_report(validate_code(code))

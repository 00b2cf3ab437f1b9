from __future__ import annotations

import uuid
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from schema.context import Context
from schema.datasets import DatasetMutations
from schema.generation_types import RefineStrategyInput
from schema.inputs import (
    BacktestInput,
    CreateStrategyInput,
    GenerateStrategyInput,
    MarketDataInput,
    UpdateStrategyInput,
)
from schema.optimization_types import OptimizationMutation
from schema.queries import ALL_USERS
from schema.types import (
    AuthPayload,
    BacktestResult,
    GenerateStrategyPayload,
    Signal,
    Strategy,
    User,
    ValidationResult,
)
from services import accounts, execution, strategies
from services.strategies import StrategyChanges

Info = strawberry.Info[Context, None]


def _auth_attempt(info: Info) -> accounts.AuthAttempt:
    return accounts.AuthAttempt(info.context.services.limits, info.context.client_address)


def _auth_payload(info: Info, user: accounts.User) -> AuthPayload:
    return AuthPayload(
        token=info.context.services.signer.issue(user.id), user=User.from_model(user)
    )


@strawberry.type
class Mutation(DatasetMutations, OptimizationMutation):
    @strawberry.mutation
    async def register(self, info: Info, email: str, password: str) -> AuthPayload:
        user = await accounts.register(email, password, attempt=_auth_attempt(info))
        return _auth_payload(info, user)

    @strawberry.mutation
    async def login(self, info: Info, email: str, password: str) -> AuthPayload:
        user = await accounts.authenticate(email, password, _auth_attempt(info))
        return _auth_payload(info, user)

    @strawberry.mutation
    async def generate_strategy(
        self, info: Info, input: GenerateStrategyInput
    ) -> GenerateStrategyPayload:
        user = await info.context.require_user()
        outcome = await info.context.services.generator.generate(
            user,
            input.to_request(),
        )
        return GenerateStrategyPayload.from_outcome(outcome)

    @strawberry.mutation(
        description="A model changes the strategy as the instruction asks: the new code, "
        "checked (and repaired) as a generation's, becomes the next version; a FAILURE leaves "
        "the strategy as it was and its log says why."
    )
    async def refine_strategy(
        self, info: Info, id: uuid.UUID, input: RefineStrategyInput
    ) -> GenerateStrategyPayload:
        user = await info.context.require_user()
        outcome = await info.context.services.generator.refine(user, id, input.to_request())
        return GenerateStrategyPayload.from_outcome(outcome)

    @strawberry.mutation(
        description="Store a strategy from code the user wrote, checked as generated code is."
    )
    async def create_strategy(self, info: Info, input: CreateStrategyInput) -> Strategy:
        user = await info.context.require_user()
        services = info.context.services

        async def trial_run(code: str, parameters: dict[str, Any]) -> list[str]:
            return await services.runner.trial_run(user, code, parameters, charged=True)

        created = await strategies.create_strategy(
            user, input.to_new_strategy(), code_checks=services.code_checks, trial_run=trial_run
        )
        return Strategy.from_model(created)

    @strawberry.mutation
    async def update_strategy(
        self,
        info: Info,
        id: uuid.UUID,
        input: UpdateStrategyInput,
        all_users: Annotated[bool, ALL_USERS] = False,
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
        updated = await strategies.update_strategy(
            user, id, changes, all_users, code_checks=info.context.services.code_checks
        )
        return Strategy.from_model(updated)

    @strawberry.mutation(
        description="Version `version`'s code and parameters become the next version, the "
        "code validated again; an unknown version is NOT_FOUND, the current one BAD_USER_INPUT."
    )
    async def revert_strategy(
        self,
        info: Info,
        id: uuid.UUID,
        version: int,
        all_users: Annotated[bool, ALL_USERS] = False,
    ) -> Strategy:
        user = await info.context.require_user()
        reverted = await strategies.revert_strategy(
            user, id, version, all_users, code_checks=info.context.services.code_checks
        )
        return Strategy.from_model(reverted)

    @strawberry.mutation
    async def delete_strategy(
        self, info: Info, id: uuid.UUID, all_users: Annotated[bool, ALL_USERS] = False
    ) -> bool:
        user = await info.context.require_user()
        return await strategies.delete_strategy(user, id, all_users)

    @strawberry.mutation
    async def validate_code(
        self,
        info: Info,
        code: str,
        smoke_test: Annotated[
            bool,
            strawberry.argument(
                description="Also run the code once in the sandbox on sample data "
                "(runtime errors, return shape)."
            ),
        ] = True,
    ) -> ValidationResult:
        user = await info.context.require_user()
        services = info.context.services
        report = await execution.validate_user_code(
            user, code, services.code_checks, services.runner, trial_run=smoke_test
        )
        return ValidationResult.from_report(report)

    @strawberry.mutation
    async def run_strategy(
        self,
        info: Info,
        id: uuid.UUID,
        market_data: MarketDataInput,
        parameters: JSON | None = None,
    ) -> Signal:
        user = await info.context.require_user()
        signal = await info.context.services.runner.run(
            user, id, market_data.to_columns(), cast("dict[str, Any] | None", parameters)
        )
        return Signal.from_dict(signal)

    @strawberry.mutation
    async def backtest_strategy(
        self, info: Info, id: uuid.UUID, input: BacktestInput
    ) -> BacktestResult:
        user = await info.context.require_user()
        outcome = await info.context.services.runner.backtest(user, id, input.to_request())
        return BacktestResult.from_outcome(outcome)

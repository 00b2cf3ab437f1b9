"""Owner-scoped reads and edits of strategies and generation logs.

Every lookup filters by owner, so another user's id behaves exactly like a missing one;
only staff who pass `all_users` (the admin view) reach every user's rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tortoise.expressions import RawSQL
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from models import (
    GeneratedStrategy,
    GenerationStatus,
    StrategyGenerationLog,
    StrategyStatus,
    StrategyType,
    User,
)
from services import versions
from services.code_analysis import UserCodeChecks
from services.errors import BadInput, Forbidden, NotFound
from services.validation import with_errors

MAX_PAGE_SIZE = 100
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
MAX_PARAMETERS_BYTES = 16 * 1024
PREVIEW_LINES = 10

T = TypeVar("T", bound=Model)
Item = TypeVar("Item")


@dataclass(frozen=True)
class Page(Generic[Item]):
    items: Sequence[Item]
    total_count: int
    page: int
    page_size: int

    @property
    def has_next_page(self) -> bool:
        return self.page * self.page_size < self.total_count

    @property
    def has_previous_page(self) -> bool:
        return self.page > 1


def check_paging(page: int, page_size: int) -> None:
    if page < 1:
        raise BadInput("page must be 1 or more")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadInput(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")


def _page_of(query: QuerySet[T], page: int, page_size: int) -> QuerySet[T]:
    """One query for the page and the total (a window count): lists are the hottest read,
    and on SQLite every extra query waits for the only connection."""
    check_paging(page, page_size)
    return (
        query.annotate(window_total=RawSQL("COUNT(*) OVER ()"))
        .order_by("-created_at", "-id")
        .offset((page - 1) * page_size)
        .limit(page_size)
    )


async def _total_past_the_end(query: QuerySet[T], page: int) -> int:
    """Past the last page (or nothing at all) the window saw no rows to count."""
    return 0 if page == 1 else await query.count()


async def paginate(query: QuerySet[T], page: int, page_size: int) -> Page[T]:
    items = await _page_of(query, page, page_size)
    if items:
        first: Any = items[0]
        total = int(first.window_total)
    else:
        total = await _total_past_the_end(query, page)
    return Page(items=items, total_count=total, page=page, page_size=page_size)


async def _paginate_rows(
    query: QuerySet[T], columns: Sequence[str], page: int, page_size: int
) -> Page[dict[str, Any]]:
    """As `paginate`, but each row a dict of `columns` only: for a list that shows a few
    fields, reading every column (the code, the validation report) and building model
    objects was most of the database's and the ORM's share of the request."""
    rows: list[dict[str, Any]] = await _page_of(query, page, page_size).values(
        *columns, "window_total"
    )
    totals = [row.pop("window_total") for row in rows]
    total = int(totals[0]) if rows else await _total_past_the_end(query, page)
    return Page(items=rows, total_count=total, page=page, page_size=page_size)


def code_preview(code: str, lines: int = PREVIEW_LINES) -> str:
    return "\n".join(code.splitlines()[:lines])


def owner_scope(user: User, all_users: bool) -> dict[str, Any]:
    """Filter rows to the caller's own, or, for staff who ask, to everyone's (the admin view)."""
    if not all_users:
        return {"user_id": user.id}
    if not user.is_staff:
        raise Forbidden("Only staff users can see every user's data (allUsers)")
    return {}


def _strategies_of(
    user: User,
    status: StrategyStatus | None,
    strategy_type: StrategyType | None,
    all_users: bool,
) -> QuerySet[GeneratedStrategy]:
    query = GeneratedStrategy.filter(**owner_scope(user, all_users))
    if status is not None:
        query = query.filter(status=status)
    if strategy_type is not None:
        query = query.filter(strategy_type=strategy_type)
    return query


async def list_strategies(
    user: User,
    *,
    status: StrategyStatus | None = None,
    strategy_type: StrategyType | None = None,
    page: int = 1,
    page_size: int = 20,
    all_users: bool = False,
) -> Page[GeneratedStrategy]:
    query = _strategies_of(user, status, strategy_type, all_users)
    return await paginate(query, page, page_size)


async def list_strategy_rows(
    user: User,
    columns: Sequence[str],
    *,
    status: StrategyStatus | None = None,
    strategy_type: StrategyType | None = None,
    page: int = 1,
    page_size: int = 20,
    all_users: bool = False,
) -> Page[dict[str, Any]]:
    """The same page as `list_strategies`, each row only the `columns` named (and `id`)."""
    query = _strategies_of(user, status, strategy_type, all_users)
    return await _paginate_rows(query, sorted({"id", *columns}), page, page_size)


async def get_strategy(
    user: User, strategy_id: uuid.UUID, all_users: bool = False
) -> GeneratedStrategy | None:
    return await GeneratedStrategy.get_or_none(id=strategy_id, **owner_scope(user, all_users))


async def require_strategy(
    user: User, strategy_id: uuid.UUID, all_users: bool = False
) -> GeneratedStrategy:
    strategy = await get_strategy(user, strategy_id, all_users)
    if strategy is None:
        raise NotFound(f"Strategy {strategy_id} not found")
    return strategy


async def owner_of(strategy_id: uuid.UUID) -> User:
    """Whose strategy this is, for an operator who names only the strategy (the CLI)."""
    strategy = await GeneratedStrategy.get_or_none(id=strategy_id).prefetch_related("user")
    if strategy is None:
        raise NotFound(f"Strategy {strategy_id} not found")
    owner: User = strategy.user
    return owner


def check_parameters(parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, dict):
        raise BadInput("parameters must be a JSON object")
    if len(json.dumps(parameters)) > MAX_PARAMETERS_BYTES:
        raise BadInput(f"parameters must be at most {MAX_PARAMETERS_BYTES} bytes of JSON")
    return parameters


@dataclass(frozen=True)
class StrategyChanges:
    """Fields to change; None means 'leave as it is'."""

    name: str | None = None
    description: str | None = None
    generated_code: str | None = None
    strategy_type: StrategyType | None = None
    status: StrategyStatus | None = None
    parameters: dict[str, Any] | None = None


def status_after_validation(
    valid: bool, requested: StrategyStatus | None, current: StrategyStatus
) -> StrategyStatus:
    """Invalid code always means ERROR; valid code keeps an ACTIVE/ARCHIVED strategy as it was."""
    if not valid:
        if requested in (StrategyStatus.VALIDATED, StrategyStatus.ACTIVE):
            raise BadInput(f"Cannot set status {requested.name}: the code does not validate")
        return StrategyStatus.ERROR
    if requested is not None:
        return requested
    if current in (StrategyStatus.ACTIVE, StrategyStatus.ARCHIVED):
        return current
    return StrategyStatus.VALIDATED


# What a person changes without making a version.
EDITED_FIELDS = ("name", "description", "strategy_type", "status", "updated_at")


async def save_edits(strategy: GeneratedStrategy) -> None:
    """Save only the fields edited by hand: a strategy read before a concurrent new version
    (or run, or backtest) never writes back its older code, version, metrics or counts."""
    await strategy.save(update_fields=EDITED_FIELDS)


@dataclass(frozen=True)
class CodeChange:
    """A person's change of code or parameters (an edit or a revert), to become a version."""

    code: str
    parameters: dict[str, Any]
    instruction: str  # versions.MANUAL_EDIT or versions.revert_instruction(n)
    requested_status: StrategyStatus | None


def _set_status_by_hand(strategy: GeneratedStrategy, requested: StrategyStatus) -> None:
    """A status asked for without new code: code that does not validate can only be archived."""
    if strategy.status is StrategyStatus.ERROR and requested is not StrategyStatus.ARCHIVED:
        raise BadInput(
            f"Cannot set status {requested.name}: the code does not validate; fix it first"
        )
    strategy.status = requested


async def update_strategy(
    user: User,
    strategy_id: uuid.UUID,
    changes: StrategyChanges,
    all_users: bool = False,
    *,
    code_checks: UserCodeChecks,
) -> GeneratedStrategy:
    """New code is checked through `code_checks`, charged to `user` (the caller). A change of
    code or parameters becomes the strategy's next version; code or parameters equal to the
    current ones are no change."""
    strategy = await require_strategy(user, strategy_id, all_users)
    if changes.status is StrategyStatus.ERROR:
        raise BadInput("Status ERROR is set by validation, not by hand")
    if changes.name is not None:
        name = changes.name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise BadInput(f"name must be 1 to {MAX_NAME_LENGTH} characters")
        strategy.name = name
    if changes.description is not None:
        if len(changes.description) > MAX_DESCRIPTION_LENGTH:
            raise BadInput(f"description must be at most {MAX_DESCRIPTION_LENGTH} characters")
        strategy.description = changes.description
    if changes.strategy_type is not None:
        strategy.strategy_type = changes.strategy_type
    parameters = strategy.parameters
    if changes.parameters is not None:
        parameters = check_parameters(changes.parameters)
    code = strategy.generated_code if changes.generated_code is None else changes.generated_code
    if code != strategy.generated_code or parameters != strategy.parameters:
        change = CodeChange(code, parameters, versions.MANUAL_EDIT, changes.status)
        await _store_version(user, strategy, change, code_checks)
        return strategy
    if changes.status is not None:
        _set_status_by_hand(strategy, changes.status)
    await save_edits(strategy)
    return strategy


async def revert_strategy(
    user: User,
    strategy_id: uuid.UUID,
    number: int,
    all_users: bool = False,
    *,
    code_checks: UserCodeChecks,
) -> GeneratedStrategy:
    """Version `number`'s code and parameters become the next version ("revert to N"); the
    code is checked again, as an edit is: the rules may have grown since it was stored."""
    strategy = await require_strategy(user, strategy_id, all_users)
    target = await versions.require_version(strategy, number)
    if number == strategy.version:
        raise BadInput(f"Version {number} is already the current version")
    change = CodeChange(
        target.generated_code, target.parameters, versions.revert_instruction(number), None
    )
    await _store_version(user, strategy, change, code_checks)
    return strategy


async def _store_version(
    user: User, strategy: GeneratedStrategy, change: CodeChange, code_checks: UserCodeChecks
) -> None:
    """A person's change of code or parameters: the code validated when it changed, the
    status following the verdict, then stored as the next version (authored by `user`)."""
    validation = strategy.validation_results
    if change.code != strategy.generated_code:
        report = (await code_checks.check(str(user.id), change.code)).report
        validation = report.as_dict()
        strategy.status = status_after_validation(
            report.valid, change.requested_status, strategy.status
        )
    elif change.requested_status is not None:
        _set_status_by_hand(strategy, change.requested_status)
    new = versions.NewVersion(
        code=change.code,
        parameters=change.parameters,
        validation=validation,
        instruction=change.instruction,
        author=user.email,
    )
    await versions.add_version(strategy, new)


@dataclass(frozen=True)
class NewStrategy:
    """A strategy whose code the user wrote (createStrategy)."""

    name: str
    generated_code: str
    description: str | None = None
    strategy_type: StrategyType | None = None
    parameters: dict[str, Any] | None = None
    validate: bool = True


# Runs code once in the sandbox on sample data; the problems found ([] when it works).
CodeCheck = Callable[[str, dict[str, Any]], Awaitable[list[str]]]


async def create_strategy(
    user: User,
    new: NewStrategy,
    *,
    code_checks: UserCodeChecks,
    trial_run: CodeCheck | None = None,
) -> GeneratedStrategy:
    """Store code the user wrote, judged as generated code is: the static checks (through
    `code_checks`, charged to `user`), then (when `validate`) one trial run on sample data;
    code failing either is stored with status ERROR, unchecked code as a DRAFT."""
    name = new.name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BadInput(f"name must be 1 to {MAX_NAME_LENGTH} characters")
    if new.description is not None and len(new.description) > MAX_DESCRIPTION_LENGTH:
        raise BadInput(f"description must be at most {MAX_DESCRIPTION_LENGTH} characters")
    if not new.generated_code.strip():
        raise BadInput("generatedCode must not be empty")
    given = None if new.parameters is None else check_parameters(new.parameters)
    analysis = await code_checks.check(str(user.id), new.generated_code)
    parameters = analysis.parameters if given is None else given
    report = analysis.report
    if new.validate and report.valid and trial_run is not None:
        report = with_errors(report, await trial_run(new.generated_code, parameters))
    if not report.valid:
        status = StrategyStatus.ERROR
    else:
        status = StrategyStatus.VALIDATED if new.validate else StrategyStatus.DRAFT
    description = analysis.description if new.description is None else new.description
    # The strategy and its version 1 land together (services/versions.py).
    async with in_transaction("default"):
        strategy = await GeneratedStrategy.create(
            user=user,
            name=name,
            description=description,
            original_prompt="",
            generated_code=new.generated_code,
            strategy_type=new.strategy_type or StrategyType.CUSTOM,
            status=status,
            validation_results=report.as_dict(),
            parameters=parameters,
        )
        await versions.record_first_version(
            strategy, instruction=versions.MANUAL_EDIT, author=user.email
        )
    return strategy


async def delete_strategy(user: User, strategy_id: uuid.UUID, all_users: bool = False) -> bool:
    deleted = await GeneratedStrategy.filter(
        id=strategy_id, **owner_scope(user, all_users)
    ).delete()
    if not deleted:
        raise NotFound(f"Strategy {strategy_id} not found")
    return True


async def list_generation_logs(
    user: User,
    *,
    status: GenerationStatus | None = None,
    page: int = 1,
    page_size: int = 20,
    all_users: bool = False,
) -> Page[StrategyGenerationLog]:
    query = StrategyGenerationLog.filter(**owner_scope(user, all_users))
    if status is not None:
        query = query.filter(status=status)
    return await paginate(query, page, page_size)


async def get_generation_log(
    user: User, log_id: uuid.UUID, all_users: bool = False
) -> StrategyGenerationLog | None:
    return await StrategyGenerationLog.get_or_none(id=log_id, **owner_scope(user, all_users))


async def strategies_by_id(
    user_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[GeneratedStrategy | None]:
    """Batch lookup for DataLoaders, in the order asked."""
    found = {s.id: s for s in await GeneratedStrategy.filter(user_id=user_id, id__in=list(ids))}
    return [found.get(i) for i in ids]

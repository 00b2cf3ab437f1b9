"""services/strategies.py functions only the CLI calls, tested in-process: tests/test_cli.py
covers them through the program (marked `process`), which `make mutation` leaves out.
"""

from __future__ import annotations

import uuid

import pytest

from models import GeneratedStrategy, User
from services import strategies
from services.errors import NotFound


async def test_owner_of_names_the_strategy_owner_or_says_it_is_missing(database: str) -> None:
    owner = await User.create(email=f"owner-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
    strategy = await GeneratedStrategy.create(
        user=owner, name="SMA", original_prompt="sma", generated_code="pass\n"
    )
    found = await strategies.owner_of(strategy.id)
    assert found.id == owner.id and found.email == owner.email
    missing = uuid.uuid4()
    with pytest.raises(NotFound, match=rf"^Strategy {missing} not found$"):
        await strategies.owner_of(missing)

"""Broken answers a model gives, one per kind of fault the repair loop must fix, each made
from the stand-ins' valid strategy (DEFAULT_CODE) by one mistake. Shared by
tests/test_repair_loop.py and bench/repair.py.

`phrase` is part of the error the checks report: a stand-in that answers with the fix only
when its request carries that phrase (`FixedWhenTold`) proves the error went back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.http_standin import DEFAULT_CODE, HttpStandin, ReceivedRequest, Reply, Step


@dataclass(frozen=True)
class BrokenAnswer:
    name: str
    code: str
    verdict: str  # GenerationAttempt.verdict of the round that gave it
    phrase: str  # in the error fed back to the model


def _broken(old: str, new: str) -> str:
    assert old in DEFAULT_CODE, old
    return DEFAULT_CODE.replace(old, new, 1)


BROKEN_ANSWERS = (
    BrokenAnswer(
        "syntax error",
        _broken("def _sma(values, period):", "def _sma(values, period)"),
        "syntax error",
        "Syntax error",
    ),
    BrokenAnswer(
        "missing function",
        _broken("def execute_strategy(", "def run_strategy("),
        "missing function",
        "No top-level function execute_strategy",
    ),
    BrokenAnswer(
        "runtime crash",
        _broken(
            '    fast, slow = int(params["fast_period"]), int(params["slow_period"])\n',
            '    fast, slow = int(params["fast_period"]), int(params["slow_period"])\n'
            "    fast = fast // (len(closes) - len(closes))\n",
        ),
        "trial run failed",
        "ZeroDivisionError",
    ),
    BrokenAnswer(
        "wrong return shape",
        _broken(
            '    return {"action": "hold", "confidence": 0.5, "reason": "No crossover", '
            '"metadata": metadata}',
            '    return {"action": "hold", "confidence": 0.5 * len(closes), '
            '"reason": "No crossover", "metadata": metadata}',
        ),
        "trial run failed",
        "confidence must be a number between 0 and 1",
    ),
    BrokenAnswer(
        "forbidden import",
        "import os\n\n" + DEFAULT_CODE,
        "invalid code",
        "Import of 'os' is not allowed",
    ),
)


@dataclass(frozen=True)
class FixedWhenTold:
    """Answers `fixed` when the request carries `phrase` (the error went back to the model),
    else `broken`: a model that repairs only what it is told about."""

    phrase: str
    fixed: Reply
    broken: Reply

    def reply_to(self, request: ReceivedRequest, standin: HttpStandin) -> Reply:
        told = self.phrase in json.dumps(request.body, ensure_ascii=False)
        return self.fixed if told else self.broken


def repairing(broken: BrokenAnswer, answer: Callable[[str], Reply], rounds: int = 3) -> list[Step]:
    """Steps for `rounds` requests: the broken answer, then the fix once told the error.
    `answer` builds a vendor's reply from code (e.g. openai_standin.code_answer)."""
    step = FixedWhenTold(broken.phrase, answer(DEFAULT_CODE), answer(broken.code))
    return [step] * rounds

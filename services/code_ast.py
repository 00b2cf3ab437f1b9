"""One parse per code text: extraction, validation, parameters and description all walk it."""

from __future__ import annotations

import ast
from functools import lru_cache


@lru_cache(maxsize=8)
def parse_module(code: str) -> ast.Module:
    """`ast.parse(code)`, remembered for the few texts in hand. Callers must not change the tree.

    A generation parsed the same text four times on the event loop; under load that was an
    eighth of the server's CPU. Few entries: a tree costs far more memory than its text.
    """
    return ast.parse(code)

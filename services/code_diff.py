"""Unified diffs of two code texts.

difflib's matcher is quadratic on some inputs: lines repeated often, yet just under its
"popular line" threshold, took 72 s for two 64 KiB texts. So diffs of stored code run in the
code-analysis workers, under their time bound (`CodeAnalyser.diff`), never on the event loop.
"""

from __future__ import annotations

import difflib


def unified_diff(before: str, after: str, from_label: str, to_label: str) -> str:
    """`before` -> `after` as a unified diff headed by the labels; "" when they are the same."""
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), fromfile=from_label, tofile=to_label, lineterm=""
    )
    text = "\n".join(lines)
    return text + "\n" if text else ""


def unified_diff_of(texts: tuple[str, str, str, str]) -> str:
    """`unified_diff` taking its arguments as one tuple (the worker pool passes one)."""
    return unified_diff(*texts)

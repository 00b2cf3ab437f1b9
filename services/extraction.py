"""Finding the strategy in a model's answer.

With the code-execution tool on, Gemini usually writes the function in `executableCode` parts
(often followed by a test harness that calls it on synthetic data); without it, the code sits
in fenced blocks of text. Executable parts win, the last block that defines the entrypoint wins
(the model's final version), and the harness is cut off so only the definitions are stored.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import replace
from typing import Any

from services.code_ast import parse_module
from services.code_rules import DEFAULT_PARAMS_NAME, ENTRYPOINT
from services.providers.base import PartKind, ProviderResult, ResponsePart

# Fences open at the start of a line (as in Markdown) and the quantifiers are possessive: a
# long run of backticks (a model can be asked for one) is then scanned once, not cubically.
_FENCE = re.compile(
    r"^[ \t]*+(?P<fence>`{3,}+|~{3,}+)[ \t]*+(?P<lang>[\w+-]*+)[^\n]*+\n"
    r"(?P<body>.*?)(?:\n[ \t]*(?P=fence)|\Z)",
    re.S | re.M,
)
# The line breaks Python's tokenizer counts (str.splitlines() also splits on \f, \x85, ...).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_DEFINES_ENTRYPOINT = re.compile(rf"^\s*def\s+{ENTRYPOINT}\s*\(", re.M)
_PYTHON_LANGS = {"", "python", "py", "python3"}


def fenced_blocks(text: str) -> list[str]:
    """Python (or untagged) fenced code blocks, in order."""
    return [
        m["body"].strip("\n") for m in _FENCE.finditer(text) if m["lang"].lower() in _PYTHON_LANGS
    ]


MAX_IGNORED_ITEMS = 20
MAX_IGNORED_CHARS = 300
MAX_INTERPRETATION_BYTES = 16 * 1024


def read_report(result: ProviderResult) -> ProviderResult:
    """`result` with the interpretation and ignored requirements a model wrote in its answer
    (the system instruction asks for a ```json block holding both); a provider that gave
    them itself (the template provider) keeps its own, and a missing or malformed block
    leaves them empty."""
    if result.interpretation or result.ignored_requirements:
        return result
    for part in reversed(result.parts):
        if part.kind is not PartKind.TEXT:
            continue
        for match in reversed(list(_FENCE.finditer(part.content))):
            if match["lang"].lower() != "json":
                continue
            report = _parse_report(match["body"])
            if report is not None:
                interpretation, ignored = report
                return replace(result, interpretation=interpretation, ignored_requirements=ignored)
    return result


def _parse_report(body: str) -> tuple[dict[str, Any], list[str]] | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # malformed, or nested past the parser's depth
        return None
    if not isinstance(data, dict):
        return None
    interpretation = data.get("interpretation")
    ignored = data.get("ignoredRequirements", [])
    if not isinstance(interpretation, dict) or not isinstance(ignored, list):
        return None
    if len(json.dumps(interpretation)) > MAX_INTERPRETATION_BYTES:
        interpretation = {"note": "The model's interpretation was too large to keep"}
    phrases = [str(item).strip()[:MAX_IGNORED_CHARS] for item in ignored if str(item).strip()]
    return interpretation, phrases[:MAX_IGNORED_ITEMS]


def extract_code(parts: list[ResponsePart]) -> str | None:
    """The strategy's source, or None when the answer holds no Python code at all."""
    executable = [
        p.content for p in parts if p.kind is PartKind.EXECUTABLE_CODE and p.content.strip()
    ]
    fenced = [
        block
        for p in parts
        if p.kind is PartKind.TEXT
        for block in fenced_blocks(p.content)
        if block.strip()
    ]
    for candidates in (executable, fenced):
        defining = [c for c in candidates if _DEFINES_ENTRYPOINT.search(c)]
        if defining:
            return strip_harness(defining[-1])
    # Code without the entrypoint still counts as code: validation will say what is missing.
    for candidates in (executable, fenced):
        if candidates:
            return max(candidates, key=len).strip("\n") + "\n"
    return None


def strip_harness(code: str) -> str:
    """Drop top-level statements after the entrypoint that merely exercise it.

    Keeps imports, definitions and assignments (constants such as DEFAULT_PARAMS); removes
    `print(...)`, bare calls and `if __name__ == "__main__":` blocks that follow the
    function. Code that does not parse is returned as it is, for validation to report.
    """
    try:
        tree = parse_module(code)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return code.strip("\n") + "\n"
    lines = _LINE_BREAK.split(code)  # numbered as the AST numbers them
    used_by_functions = {
        n.id
        for f in tree.body
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        for n in ast.walk(f)
        if isinstance(n, ast.Name)
    }
    seen_entrypoint = False
    cut: list[tuple[int, int]] = []
    kept_lines: set[int] = set()
    for node in tree.body:
        span = _lines_of(node)
        if isinstance(node, ast.FunctionDef) and node.name == ENTRYPOINT:
            seen_entrypoint = True
        elif seen_entrypoint and _is_harness(node, used_by_functions):
            cut.append(span)
            continue
        kept_lines.update(range(span[0], span[1] + 1))
    # `LIMIT = 5; print(LIMIT)`: a line shared with a kept statement stays whole.
    drop = {
        line
        for start, end in cut
        if kept_lines.isdisjoint(range(start, end + 1))
        for line in range(start, end + 1)
    }
    if not drop:
        return code.strip("\n") + "\n"
    kept = [text for number, text in enumerate(lines, start=1) if number not in drop]
    return "\n".join(kept).strip("\n") + "\n"


def _lines_of(node: ast.stmt) -> tuple[int, int]:
    """First and last line of a top-level statement, decorators included."""
    start = node.lineno
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        start = min([start, *(d.lineno for d in node.decorator_list)])
    return start, node.end_lineno or node.lineno


def _is_harness(node: ast.stmt, used_by_functions: set[str]) -> bool:
    if isinstance(node, ast.Expr):
        return not isinstance(node.value, ast.Constant)
    if isinstance(node, ast.If):
        test = node.test
        return (
            isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == "__name__"
        )
    if isinstance(node, ast.For | ast.While | ast.With):
        return True
    if isinstance(node, ast.Assign | ast.AnnAssign):
        # Sample data and `result = execute_strategy(sample, {})`: nothing the functions read.
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        return not names & used_by_functions and DEFAULT_PARAMS_NAME not in names
    return False

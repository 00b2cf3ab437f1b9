"""Properties of code extraction from model answers, checked on generated answers (hypothesis).

Model output is untrusted text: extraction must never raise, must prefer the code the model
ran (executable parts), must recover fenced code byte for byte, and cutting the test harness
must never break the code it keeps.
"""

from __future__ import annotations

import ast
import time
from collections import Counter

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.extraction import extract_code, fenced_blocks, strip_harness
from services.providers.base import PartKind, ResponsePart

FAST = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Characters Python does not treat as line breaks but str.splitlines() does, and line endings.
ODD_CHARACTERS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\r\t\x00\ud800"
any_text = st.text(st.characters(), max_size=200)
markdownish = st.lists(
    st.sampled_from(
        [
            "```",
            "```python\n",
            "~~~py\n",
            "```bash\n",
            "\n```\n",
            "````",
            "\n",
            " ",
            "`",
            "~",
            "text",
            "def execute_strategy(market_data, strategy_params):\n    return {}\n",
            "print(1)\n",
            *ODD_CHARACTERS,
        ]
    ),
    max_size=40,
).map("".join)
texts = st.one_of(any_text, markdownish)


# --- a grammar of model-written modules ----------------------------------------------------

NAMES = ("LIMIT", "WINDOW", "DEFAULT_PARAMS", "sample", "result", "data", "prices")
# Raw (unescaped) in string literals and comments: Python reads them as part of the line.
odd_strings = st.text(st.sampled_from("ab \x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\t"), max_size=6)
names_read = st.lists(st.sampled_from(NAMES), max_size=3, unique=True)


def function(keyword: str, name: str, reads: list[str]) -> str:
    used = " + ".join(["0", *(f"len(str({n}))" for n in reads)])
    return f"{keyword} {name}(market_data, strategy_params):\n    return {used}\n"


functions = st.one_of(
    st.tuples(
        st.sampled_from(("def", "async def")), st.sampled_from(("helper", "score")), names_read
    ).map(lambda t: function(*t)),
    names_read.map(lambda reads: "class Model:\n    size = " + " + ".join(["1", *reads]) + "\n"),
)
entrypoint = names_read.map(lambda reads: function("def", "execute_strategy", reads))
simple_statements = st.one_of(
    st.tuples(st.sampled_from(NAMES), st.integers(0, 99)).map(lambda t: f"{t[0]} = {t[1]}"),
    st.tuples(st.sampled_from(NAMES), odd_strings).map(lambda t: f'{t[0]} = "{t[1]}"'),
    st.sampled_from(NAMES).map(lambda n: f"{n}: int = 5"),
    st.sampled_from(NAMES).map(lambda n: f"{n} += 1"),
    st.sampled_from(NAMES).map(lambda n: f"print({n})"),
    st.just("result = execute_strategy(sample, {})"),
    st.just("execute_strategy({'close': [1.0]}, {})"),
    st.just("import math"),
    st.just("'a docstring'"),
    st.just("pass"),
)
compound_statements = st.sampled_from(
    (
        "for i in range(3):\n    print(i)",
        "if __name__ == '__main__':\n    print(execute_strategy({}, {}))\nelse:\n    pass",
        "with open('x') as f:\n    pass",
        "while False:\n    pass",
        "try:\n    import numpy\nexcept ImportError:\n    numpy = None",
    )
)
comments = odd_strings.map(lambda s: "# " + s)
top_level = st.one_of(
    st.lists(simple_statements, min_size=1, max_size=3).map("; ".join),
    compound_statements,
    functions,
    comments,
    st.just(""),
)


@st.composite
def modules(draw: st.DrawFn) -> str:
    before = draw(st.lists(top_level, max_size=4))
    helpers = draw(st.lists(functions, max_size=2))
    after = draw(st.lists(top_level, max_size=6))
    # Helpers before or after the entrypoint; they read names assigned in the harness.
    split = draw(st.integers(0, len(helpers)))
    chunks = [*before, *helpers[:split], draw(entrypoint), *helpers[split:], *after]
    newline = draw(st.sampled_from(("\n", "\r\n")))
    return newline.join(chunk.rstrip("\n").replace("\n", newline) for chunk in chunks) + newline


def parses(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def definitions(tree: ast.Module) -> list[str]:
    kinds = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    return [node.name for node in tree.body if isinstance(node, kinds)]


def assignments_read_by_functions(tree: ast.Module) -> Counter[str]:
    kinds = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    read = {
        n.id
        for f in tree.body
        if isinstance(f, kinds)
        for n in ast.walk(f)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    found: Counter[str] = Counter()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            if names & read:
                found[ast.dump(node)] += 1
    return found


# --- properties -----------------------------------------------------------------------------


@FAST
@given(texts)
def test_fenced_blocks_never_raise(text: str) -> None:
    blocks = fenced_blocks(text)
    assert all(isinstance(b, str) for b in blocks)


@FAST
@given(st.one_of(texts, modules()))
def test_strip_harness_never_raises_and_is_idempotent(code: str) -> None:
    once = strip_harness(code)
    assert strip_harness(once) == once


@FAST
@given(modules())
@example(
    "async def helper(m, p):\n    return LIMIT\ndef execute_strategy(m, p):\n    pass\nLIMIT = 5\n"
)
@example("def execute_strategy(m, p):\n    return LIMIT\nLIMIT = 5; print(LIMIT)\n")
def test_strip_harness_keeps_definitions_and_what_they_read(code: str) -> None:
    tree = parses(code)
    assert tree is not None, "the grammar only writes Python"
    cleaned = strip_harness(code)
    kept = parses(cleaned)
    assert kept is not None, f"the input parses, so the output must:\n{cleaned!r}"
    assert definitions(kept) == definitions(tree)
    missing = assignments_read_by_functions(tree) - Counter(
        ast.dump(n) for n in kept.body if isinstance(n, ast.Assign | ast.AnnAssign | ast.AugAssign)
    )
    assert not missing, (code, cleaned)


def test_strip_harness_cuts_something() -> None:
    """The properties above hold trivially for a no-op: check it does cut harnesses."""
    function = "def execute_strategy(market_data, strategy_params):\n    return 1\n"
    assert strip_harness(function + "print(2)\n") == function


parts = st.lists(
    st.builds(
        ResponsePart,
        st.sampled_from(PartKind),
        st.one_of(texts, modules(), modules().map(lambda m: f"Here:\n```python\n{m}```\n")),
    ),
    max_size=5,
)


def defines_entrypoint(code: str) -> bool:
    tree = parses(code)
    return tree is not None and "execute_strategy" in definitions(tree)


@FAST
@given(parts)
def test_executable_code_that_defines_the_entrypoint_wins(answer: list[ResponsePart]) -> None:
    result = extract_code(answer)
    executable = [p.content for p in answer if p.kind is PartKind.EXECUTABLE_CODE]
    if any(defines_entrypoint(code) for code in executable):
        assert result is not None
        assert result in {strip_harness(code) for code in executable}, result
    if result is not None:
        assert result.endswith("\n") and not result.startswith("\n")
    elif any(p.content.strip() for p in answer if p.kind is PartKind.EXECUTABLE_CODE):
        raise AssertionError("executable code was there, extraction found none")


fence_free = st.text(st.characters(exclude_characters="`~"), max_size=80)
# A body may hold backticks and tildes, just never a line that starts with a fence.
bodies = st.text(st.characters(), max_size=200).filter(
    lambda b: not any(line.lstrip(" \t").startswith(("```", "~~~")) for line in b.split("\n"))
)


@FAST
@given(
    fence_free,
    st.sampled_from(("```", "````", "~~~")),
    st.sampled_from(("", "python", "py", "python3", "Python", "PY")),
    bodies,
    fence_free,
)
def test_a_fenced_block_is_recovered_exactly(
    before: str, fence: str, language: str, body: str, after: str
) -> None:
    text = f"{before}\n{fence}{language}\n{body}\n{fence}\n{after}"
    assert fenced_blocks(text) == [body.strip("\n")]
    answer = [ResponsePart(PartKind.TEXT, text)]
    if body.strip():
        assert extract_code(answer) == strip_harness(body.strip("\n"))


def test_fences_are_found_in_linear_time() -> None:
    """A model can be asked to print a long run of backticks; that must not stall the server.

    The short runs come first: a cubic search takes seconds on them (and hours on the rest).
    """
    for text in ("`" * 3000, "~" * 3000, "`" * 200_000, "``` " * 50_000, "```\n" * 50_000):
        started = time.perf_counter()
        fenced_blocks(text)
        assert time.perf_counter() - started < 1, text[:10]

"""Finding the strategy code in a model's answer."""

from __future__ import annotations

import json

from services.extraction import (
    MAX_IGNORED_CHARS,
    MAX_IGNORED_ITEMS,
    extract_code,
    fenced_blocks,
    read_report,
    strip_harness,
)
from services.providers.base import PartKind, ProviderResult, ResponsePart

FUNCTION = (
    "def execute_strategy(market_data, strategy_params):\n"
    "    return {'action': 'hold', 'confidence': 0.0, 'reason': '', 'metadata': {}}"
)


def text(content: str) -> ResponsePart:
    return ResponsePart(PartKind.TEXT, content)


def executable(content: str) -> ResponsePart:
    return ResponsePart(PartKind.EXECUTABLE_CODE, content)


def test_fenced_blocks_of_python_or_no_language() -> None:
    answer = (
        "Intro\n```python\na = 1\n```\nthen\n```\nb = 2\n```\n"
        "and shell\n```bash\nrm -rf /\n```\n~~~py\nc = 3\n~~~\n"
    )
    assert fenced_blocks(answer) == ["a = 1", "b = 2", "c = 3"]


def test_unterminated_fence_runs_to_the_end() -> None:
    assert fenced_blocks("```python\nx = 1\ny = 2") == ["x = 1\ny = 2"]


def test_executable_code_beats_fenced_text() -> None:
    parts = [text(f"```python\n{FUNCTION}  # text\n```"), executable(FUNCTION + "  # exec")]
    code = extract_code(parts)
    assert code is not None and code.endswith("# exec\n")


def test_the_block_that_defines_the_entrypoint_wins() -> None:
    parts = [
        executable("import numpy as np\ndata = np.arange(10)"),
        executable(FUNCTION),
        executable("print(execute_strategy({'close': [1]}, {}))"),
    ]
    assert extract_code(parts) == FUNCTION + "\n"


def test_the_last_defining_block_wins() -> None:
    first = FUNCTION.replace("0.0", "0.1")
    parts = [text(f"```python\n{first}\n```\nFixed:\n```python\n{FUNCTION}\n```")]
    assert extract_code(parts) == FUNCTION + "\n"


def test_code_without_the_entrypoint_is_still_code() -> None:
    parts = [text("```python\nx = 1\n```"), text("```python\ny = [1, 2, 3]\n```")]
    assert extract_code(parts) == "y = [1, 2, 3]\n"


def test_no_code_at_all() -> None:
    assert extract_code([text("Sorry, I can't do that.")]) is None
    assert extract_code([executable("   ")]) is None
    assert extract_code([]) is None


def test_harness_after_the_function_is_removed() -> None:
    code = (
        "import math\n"
        "DEFAULT_PARAMS = {'n': 3}\n"
        "def helper(x):\n    return x\n"
        f"{FUNCTION}\n"
        "LIMIT = 5\n"
        "def later_helper():\n    return LIMIT\n"
        "sample = {'close': [1.0, 2.0]}\n"
        "result = execute_strategy(sample, {})\n"
        "print(result)\n"
        "for i in range(3):\n    print(i)\n"
        "if __name__ == '__main__':\n    print('main')\n"
    )
    cleaned = strip_harness(code)
    assert "print" not in cleaned and "sample" not in cleaned and "__main__" not in cleaned
    assert "LIMIT = 5" in cleaned, "constants the functions read are kept"
    assert "def later_helper" in cleaned and "DEFAULT_PARAMS" in cleaned


def test_broken_code_is_left_for_validation() -> None:
    assert strip_harness("def execute_strategy(:\n  pass\nprint(1)") == (
        "def execute_strategy(:\n  pass\nprint(1)\n"
    )


def test_a_models_report_is_bounded_data() -> None:
    """The ```json report a model is asked for is parsed, never run, and kept within bounds;
    a malformed one is no report at all."""

    def answer(report: str) -> ProviderResult:
        text = f"```json\n{report}\n```\n```python\ndef execute_strategy(m, p):\n    pass\n```"
        return ProviderResult("gemini", "m", parts=[ResponsePart(PartKind.TEXT, text)])

    big = json.dumps(
        {
            "interpretation": {"indicators": ["x" * 20_000]},
            "ignoredRequirements": ["y" * 1000] * 50 + [12],
        }
    )
    result = read_report(answer(big))
    assert len(result.ignored_requirements) == MAX_IGNORED_ITEMS
    assert all(len(item) == MAX_IGNORED_CHARS for item in result.ignored_requirements)
    assert "indicators" not in result.interpretation and result.interpretation["note"]
    for malformed in ("[1, 2]", "{no", '{"interpretation": 3}', '{"ignoredRequirements": []}'):
        empty = read_report(answer(malformed))
        assert (empty.interpretation, empty.ignored_requirements) == ({}, [])

"""Wire formats between the server, the fork server (zygote) and a job process.

Child -> parent frames are JSON, never pickle: the child runs hostile code, so what it sends
is parsed as plain data, size-capped and re-validated. Parent -> child input is trusted (the
server wrote it) and may be pickled.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

FRAME_HEADER = struct.Struct(">I")
# The fd number a job's result pipe always has inside the job process.
RESULT_FD = 3

# Frame types, child -> parent.
PROGRESS = "progress"
OK = "ok"
ERROR = "error"

# Error kinds a job reports in an ERROR frame.
KIND_RUNTIME = "runtime"
KIND_SYNTAX = "syntax"
KIND_RECURSION = "recursion"
KIND_MEMORY = "memory"
KIND_VIOLATION = "violation"
KIND_INVALID_OUTPUT = "invalid_output"
KIND_OUTPUT_TOO_LARGE = "output_too_large"
KIND_NO_ENTRYPOINT = "no_entrypoint"
KIND_INTERNAL = "internal"


def _to_json(value: object) -> object:
    """numpy values become plain numbers and lists; anything else is refused."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_frame(message: dict[str, Any]) -> bytes:
    """Length-prefixed compact JSON, so the reader can enforce a byte cap before parsing."""
    body = json.dumps(message, separators=(",", ":"), default=_to_json).encode()
    return FRAME_HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    """Parse one frame body; raises ValueError for anything that is not a JSON object."""
    try:
        message = json.loads(body)
    except RecursionError as exc:  # a hostile child can nest arrays past the parser's limit
        raise ValueError("frame nested too deeply") from exc
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ValueError("frame is not an object with a type")
    return message

"""The isolated process that runs jq programs and risky regular expressions for `isolation`.

Run as a script (`python -I worker.py MAX_TEXT MAX_BYTES`), with an empty environment, so that a
jq program that crashes (a C stack overflow aborts jq), loops or allocates without end takes
down only this process. It reads one JSON request per line on stdin and writes one JSON answer
per line on stdout: `{"ok": result}` or `{"error": message}`. It imports nothing from yaml2dag.
"""

from __future__ import annotations

import json
import re
import resource
import sys
from typing import Any

_COMPILED: dict[str, Any] = {}


def _limit_resources(max_bytes: int) -> None:
    """Cap this process's memory and forbid writing files; never forks, so no process limit is needed."""
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _jq(program: str, text: str) -> list[Any]:
    import jq

    compiled = _COMPILED.get(program)
    if compiled is None:
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        compiled = _COMPILED[program] = jq.compile(program)
    return list(compiled.input_text(text).all())


def _spans(pattern: str, text: str) -> list[list[int]]:
    return [[match.start(), match.end()] for match in re.compile(pattern).finditer(text)]


def _sub(pattern: str, replacement: str, text: str) -> str:
    return re.compile(pattern).sub(replacement, text)


def handle(request: dict[str, Any]) -> Any:
    """The result of one request (`jq`, `spans` or `sub`)."""
    operation = request["op"]
    if operation == "jq":
        return _jq(request["program"], request["input"])
    if operation == "spans":
        return _spans(request["pattern"], request["text"])
    if operation == "sub":
        return _sub(request["pattern"], request["replacement"], request["text"])
    raise ValueError(f"unknown operation {operation!r}")


def main() -> None:
    """Serve requests until stdin closes."""
    max_text, max_bytes = int(sys.argv[1]), int(sys.argv[2])
    _limit_resources(max_bytes)
    for line in sys.stdin.buffer:
        try:
            answer = json.dumps({"ok": handle(json.loads(line))})
        except MemoryError:
            answer = json.dumps({"error": "out of memory"})
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller as a message
            answer = json.dumps({"error": f"{exc}"})
        if len(answer) > max_text + 64:
            answer = json.dumps({"error": f"the result is too large (more than {max_text:,} characters)"})
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

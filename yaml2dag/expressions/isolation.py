"""Run jq programs and risky regular expressions in a separate, resource-limited process.

jq aborts the whole process on a C stack overflow (`def f: 1 + f; f`), and neither jq nor
Python's `re` can be interrupted, so both run in one long-lived worker process (`worker.py`)
started with an empty environment, a memory cap (`WORKER_MEMORY`) and no right to write files.
Each request has a wall-clock budget (`limits.ISOLATED_SECONDS`); a worker that overruns it,
crashes or runs out of memory is killed, the caller gets a `RenderError`, and the next request
starts a fresh worker.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from yaml2dag.errors import RenderError
from yaml2dag.expressions import limits

#: Address space of the worker process: 1 GiB.
WORKER_MEMORY = 1024 * 1024 * 1024
_WORKER_SCRIPT = Path(__file__).with_name("worker.py")


class IsolationError(RenderError):
    """The worker overran its time budget, crashed or ran out of memory."""


class _Worker:
    """One worker process, used by one caller at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(  # noqa: S603 - our own script, run by this interpreter
                [sys.executable, "-I", str(_WORKER_SCRIPT), str(limits.MAX_TEXT), str(WORKER_MEMORY)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={},
                cwd="/",
                close_fds=True,
                start_new_session=True,
            )
        return self.process

    def stop(self) -> None:
        """Kill the worker (it is restarted on the next request)."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()

    def call(self, request: dict[str, Any], what: str) -> Any:
        """Send `request`, wait at most `ISOLATED_SECONDS` for the answer; `RenderError` on any failure."""
        with self.lock:
            process = self._start()
            assert process.stdin is not None and process.stdout is not None
            deadline = time.monotonic() + limits.ISOLATED_SECONDS
            try:
                process.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
                process.stdin.flush()
                line = _read_line(process.stdout.fileno(), deadline)
            except TimeoutError:
                self.stop()
                raise IsolationError(f"{what} took more than {limits.ISOLATED_SECONDS:g} seconds") from None
            except (BrokenPipeError, EOFError):
                self.stop()
                raise IsolationError(f"{what} crashed or ran out of memory") from None
            answer = json.loads(line)
            if "error" in answer:
                raise RenderError(str(answer["error"]))
            return answer["ok"]


def _read_line(fd: int, deadline: float) -> bytes:
    """One line from `fd`; `TimeoutError` past `deadline`, `EOFError` when the worker is gone."""
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            return b"".join(chunks)


_WORKER = _Worker()
atexit.register(_WORKER.stop)


def run_jq(program: str, text: str) -> list[Any]:
    """Every result of the jq `program` on the JSON `text`."""
    result: list[Any] = _WORKER.call({"op": "jq", "program": program, "input": text}, "the jq program")
    return result


def regex_spans(pattern: str, text: str) -> list[tuple[int, int]]:
    """`(start, end)` of every match of `pattern` in `text`, as `re.finditer` finds them."""
    spans = _WORKER.call({"op": "spans", "pattern": pattern, "text": text}, "the regular expression")
    return [(start, end) for start, end in spans]


def regex_sub(pattern: str, replacement: str, text: str) -> str:
    """`re.sub(pattern, replacement, text)` (a Python replacement string)."""
    return str(
        _WORKER.call(
            {"op": "sub", "pattern": pattern, "replacement": replacement, "text": text}, "the regular expression"
        )
    )


def stop_worker() -> None:
    """Stop the worker process (tests use it; the next request starts a new one)."""
    with _WORKER.lock:
        _WORKER.stop()

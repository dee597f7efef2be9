"""Process and container output split into lines of bounded size (scripts' runners, Docker Run).

A program printing one huge line (64 MB without a newline) must not cost the worker that much memory:
a line is held up to `MAX_LINE_BYTES`, then cut, and the rest of it skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

MAX_LINE_BYTES = 1024 * 1024


class LineSplitter:
    """Split a byte stream into decoded lines, holding at most `MAX_LINE_BYTES` of one line in memory."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> Iterator[str]:
        """The complete lines `data` finishes (a line over the limit is cut and its rest skipped)."""
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            if not self._skipping:
                room = MAX_LINE_BYTES - len(self._pending)
                self._pending += piece[:room]
                if len(piece) > room:
                    yield _decode(self._pending) + " [line cut at 1 MiB]"
                    self._pending.clear()
                    self._skipping = True
            if end < 0:
                return
            if self._skipping:
                self._skipping = False
            else:
                yield _decode(self._pending)
                self._pending.clear()
            start = end + 1

    def flush(self) -> Iterator[str]:
        """The last line, when the stream did not end with a newline."""
        if self._pending and not self._skipping:
            yield _decode(self._pending)
        self._pending.clear()


def _decode(raw: bytes | bytearray) -> str:
    return bytes(raw).rstrip(b"\r").decode("utf-8", errors="replace")

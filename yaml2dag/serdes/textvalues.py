"""Row values as text, the way Kestra's text writers (IonToCsv, IonToExcel) print them.

Kestra's `AbstractTextWriter.convert`: instants print in UTC, zoned date-times in `timeZoneId`,
dates, times and date-times with their Java patterns, booleans as `true`/`false`, doubles as
Java prints them (`1.0`, `1.0E10`), maps and lists as Java's `toString` (`{a=1}`, `[1, 2]`).
"""

from __future__ import annotations

import base64
import codecs
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from yaml2dag.serdes import SerdesError
from yaml2dag.serdes.javatime import format_value


@dataclass(frozen=True)
class TextFormats:
    """Kestra's `dateFormat`, `timeFormat`, `dateTimeFormat` and `timeZoneId` (None: the system zone)."""

    date_format: str = "yyyy-MM-dd"
    time_format: str = "HH:mm:ss[XXX]"
    datetime_format: str = "yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]"
    time_zone: str | None = None

    def zone(self) -> dt.tzinfo | None:
        """The `timeZoneId` as a tzinfo (None: the system's local zone)."""
        if self.time_zone is None:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if self.time_zone in ("Z", "UTC"):
            return dt.UTC
        try:
            return ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SerdesError(
                f"unknown timeZoneId `{self.time_zone}` (use an IANA name such as Europe/Paris)"
            ) from None

    def check(self) -> None:
        """Refuse a bad pattern or zone before any row is converted."""
        self.zone()
        probe = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        format_value(self.date_format, probe.date())
        format_value(self.time_format, probe.time())
        format_value(self.datetime_format, probe)


class TextConverter:
    """Turns one row value into the text a CSV field or an Excel string cell holds."""

    def __init__(self, formats: TextFormats) -> None:
        formats.check()
        self._formats = formats
        self._zone = formats.zone()

    def __call__(self, value: Any) -> str | None:
        """The text of `value` (None stays None: an empty field)."""
        if value is None or type(value) is str:
            return value
        from yaml2dag.expressions.values import java_double, java_string

        if isinstance(value, str):
            return str(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | Decimal):
            return str(value)
        if isinstance(value, float):
            return java_double(value)
        if isinstance(value, dt.datetime):
            offset = value.utcoffset()
            if offset is None or offset == dt.timedelta(0):
                value = value.replace(tzinfo=dt.UTC)
            else:
                value = value.astimezone(self._zone)
            return format_value(self._formats.datetime_format, value)
        if isinstance(value, dt.date):
            return format_value(self._formats.date_format, value)
        if isinstance(value, dt.time):
            return format_value(self._formats.time_format, value)
        if isinstance(value, bytes):
            return base64.b64encode(value).decode("ascii")
        return java_string(value)


def check_charset(name: str) -> str:
    """The Python codec of a Java charset name (`UTF-8`, `ISO-8859-1`, `windows-1252`…), or a SerdesError."""
    try:
        return codecs.lookup(name.strip()).name
    except (LookupError, AttributeError):
        raise SerdesError(f"unknown charset `{name}` (use a name such as UTF-8, ISO-8859-1, windows-1252)") from None

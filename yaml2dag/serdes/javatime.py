"""Java `DateTimeFormatter` patterns (`yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]`), for formatting and parsing.

Kestra's serdes tasks take their date properties (`dateFormat`, `timeFormat`, `dateTimeFormat`,
`datetimeFormat`) as Java patterns. The letters supported are `y u M d H h m s S a X x Z E`,
quoted literals (`'T'`, `''`) and optional sections (`[...]`, printed when their fields exist,
optional when parsing). Any other letter is refused with a `SerdesError` naming it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from yaml2dag.serdes import SerdesError

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_LETTERS = set("yuMdHhmsSaXxZE")


@dataclass(frozen=True)
class _Token:
    kind: str  # "literal", "field" or "optional"
    text: str = ""
    children: tuple[_Token, ...] = ()


def _tokens(pattern: str, start: int = 0, nested: bool = False) -> tuple[tuple[_Token, ...], int]:
    out: list[_Token] = []
    index = start
    while index < len(pattern):
        char = pattern[index]
        if char == "[":
            children, index = _tokens(pattern, index + 1, nested=True)
            out.append(_Token("optional", children=children))
            continue
        if char == "]":
            if not nested:
                raise SerdesError(f"date pattern `{pattern}`: `]` without `[`")
            return tuple(out), index + 1
        if char == "'":
            end = pattern.find("'", index + 1)
            if end < 0:
                raise SerdesError(f"date pattern `{pattern}`: unterminated quote")
            out.append(_Token("literal", pattern[index + 1 : end] if end > index + 1 else "'"))
            index = end + 1
            continue
        if char.isalpha():
            if char not in _LETTERS:
                raise SerdesError(f"date pattern `{pattern}`: letter `{char}` is not supported by yaml2dag yet")
            end = index
            while end < len(pattern) and pattern[end] == char:
                end += 1
            out.append(_Token("field", pattern[index:end]))
            index = end
            continue
        out.append(_Token("literal", char))
        index += 1
    if nested:
        raise SerdesError(f"date pattern `{pattern}`: `[` without `]`")
    return tuple(out), index


@lru_cache(maxsize=64)
def _parsed(pattern: str) -> tuple[_Token, ...]:
    return _tokens(pattern)[0]


def _offset(value: dt.date | dt.time, width: int, letter: str) -> str | None:
    offset = value.utcoffset() if isinstance(value, dt.datetime | dt.time) else None
    if offset is None:
        return None
    total = int(offset.total_seconds()) // 60
    if total == 0 and letter in "X":
        return "Z"
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    if letter == "Z":
        return f"{sign}{hours:02d}{minutes:02d}"
    if width == 1:
        return f"{sign}{hours:02d}" + (f"{minutes:02d}" if minutes else "")
    if width == 2:
        return f"{sign}{hours:02d}{minutes:02d}"
    return f"{sign}{hours:02d}:{minutes:02d}"


def _year(value: dt.date, width: int) -> str:
    """`y`/`u`: the year, its last two digits for a width of 2."""
    return f"{value.year % 100:02d}" if width == 2 else f"{value.year:0{width}d}"


def _month(value: dt.date, width: int) -> str:
    """`M`: the month as a number, or its English name (full from width 4, else abbreviated)."""
    if width >= 4:
        return _MONTHS[value.month - 1]
    return _MONTHS[value.month - 1][:3] if width == 3 else f"{value.month:0{width}d}"


def _weekday(value: dt.date, width: int) -> str:
    """`E`: the English day name (full from width 4, else abbreviated)."""
    return _DAYS[value.weekday()] if width >= 4 else _DAYS[value.weekday()][:3]


#: Pattern letters of date fields → their text for a date.
_DATE_FIELDS: dict[str, Callable[[dt.date, int], str]] = {
    "y": _year,
    "u": _year,
    "M": _month,
    "d": lambda value, width: f"{value.day:0{width}d}",
    "E": _weekday,
}
#: Pattern letters of time fields → their text for a datetime or a time.
_TIME_FIELDS: dict[str, Callable[[dt.datetime | dt.time, int], str]] = {
    "H": lambda value, width: f"{value.hour:0{width}d}",
    "h": lambda value, width: f"{(value.hour % 12) or 12:0{width}d}",
    "m": lambda value, width: f"{value.minute:0{width}d}",
    "s": lambda value, width: f"{value.second:0{width}d}",
    "S": lambda value, width: f"{value.microsecond:06d}{'0' * 3}"[:width],
    "a": lambda value, width: "AM" if value.hour < 12 else "PM",
}


def _field(token: str, value: dt.date | dt.time) -> str | None:
    """The text of one pattern field for `value`, or None when `value` does not have that field."""
    letter, width = token[0], len(token)
    date_field = _DATE_FIELDS.get(letter)
    if date_field is not None:
        return date_field(value, width) if isinstance(value, dt.date) else None
    if not isinstance(value, dt.datetime | dt.time):
        return None
    time_field = _TIME_FIELDS.get(letter)
    if time_field is not None:
        return time_field(value, width)
    return _offset(value, width, letter)


def _format(tokens: tuple[_Token, ...], value: dt.date | dt.time, optional: bool) -> str | None:
    out = []
    for token in tokens:
        if token.kind == "literal":
            out.append(token.text)
        elif token.kind == "optional":
            out.append(_format(token.children, value, True) or "")
        else:
            text = _field(token.text, value)
            if text is None:
                if optional:
                    return None
                raise SerdesError(f"cannot format {value!r} with `{token.text}`: the value has no such field")
            out.append(text)
    return "".join(out)


def format_value(pattern: str, value: dt.date | dt.time) -> str:
    """`value` formatted with the Java pattern."""
    return _format(_parsed(pattern), value, False) or ""


_REGEX = {
    "y": r"(?P<year>[+-]?\d{4,9})",
    "u": r"(?P<year>[+-]?\d{4,9})",
    "d": r"(?P<day>\d{1,2})",
    "H": r"(?P<hour>\d{1,2})",
    "h": r"(?P<hour12>\d{1,2})",
    "m": r"(?P<minute>\d{1,2})",
    "s": r"(?P<second>\d{1,2})",
    "S": r"(?P<fraction>\d{1,9})",
    "a": r"(?P<ampm>AM|PM|am|pm)",
    "E": r"(?:[A-Za-z]+)",
}


def _regex(tokens: tuple[_Token, ...]) -> str:
    out = []
    for token in tokens:
        if token.kind == "literal":
            out.append(re.escape(token.text))
        elif token.kind == "optional":
            out.append(f"(?:{_regex(token.children)})?")
        else:
            letter, width = token.text[0], len(token.text)
            if letter in "yu" and width == 2:
                out.append(r"(?P<year2>\d{2})")
            elif letter == "M":
                out.append(r"(?P<monthname>[A-Za-z]+)" if width >= 3 else r"(?P<month>\d{1,2})")
            elif letter in "XxZ":
                out.append(r"(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)")
            elif letter in "dHhms" and width == 2:
                out.append(_REGEX[letter].replace(r"\d{1,2}", r"\d{2}"))
            elif letter == "S":
                out.append(rf"(?P<fraction>\d{{{width}}})" if width < 6 else _REGEX["S"])
            else:
                out.append(_REGEX[letter])
    return "".join(out)


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(_regex(_parsed(pattern)) + r"\Z")
    except re.error as exc:
        raise SerdesError(f"date pattern `{pattern}` repeats a field: {exc}") from None


@dataclass(frozen=True)
class Parsed:
    """What a pattern read from a text: the date, the time and the offset found (each may be None)."""

    date: dt.date | None
    time: dt.time | None
    offset: dt.timezone | None


def parse(pattern: str, text: str) -> Parsed | None:
    """Read `text` with the Java pattern; None when it does not match."""
    match = _compiled(pattern).match(text.strip())
    if match is None:
        return None
    found = {key: value for key, value in match.groupdict().items() if value is not None}
    try:
        date = None
        if "year" in found or "year2" in found:
            year = int(found["year"]) if "year" in found else 2000 + int(found["year2"])
            if "monthname" in found:
                month = next(
                    i for i, name in enumerate(_MONTHS, 1) if name.lower().startswith(found["monthname"].lower())
                )
            else:
                month = int(found.get("month", 1))
            date = dt.date(year, month, int(found.get("day", 1)))
        time = None
        if "hour" in found or "hour12" in found:
            hour = int(found["hour"]) if "hour" in found else int(found["hour12"]) % 12
            if found.get("ampm", "").upper() == "PM":
                hour += 12
            micro = int((found.get("fraction", "") + "000000")[:6])
            time = dt.time(hour, int(found.get("minute", 0)), int(found.get("second", 0)), micro)
    except (ValueError, StopIteration):
        return None
    offset = None
    if "offset" in found:
        text_offset = found["offset"]
        if text_offset == "Z":
            offset = dt.UTC
        else:
            digits = text_offset[1:].replace(":", "")
            delta = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            offset = dt.timezone(-delta if text_offset[0] == "-" else delta)
    return Parsed(date, time, offset)

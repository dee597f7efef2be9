"""Kestra's date filters (`date`, `dateAdd`, `timestamp*`) and `now()`, with Java `DateTimeFormatter` patterns.

Patterns are formatted and parsed in English (en_US), like a Kestra server with the default
locale; the default time zone is UTC (the zone of Kestra's official images).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from yaml2dag.errors import RenderError
from yaml2dag.expressions.values import format_instant, is_number, type_name

DEFAULT_ZONE = "UTC"

NAMED_PATTERNS = {
    "iso": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_milli": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
    "iso_sec": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "sql": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "sql_milli": "yyyy-MM-dd HH:mm:ss.SSS",
    "sql_sec": "yyyy-MM-dd HH:mm:ss",
    # Java's localized styles for en_US (Java 21 CLDR data: a narrow no-break space before AM/PM).
    "short": "M/d/yy, h:mm\u202fa",
    "medium": "MMM d, y, h:mm:ss\u202fa",
    "long": "MMMM d, y 'at' h:mm:ss\u202fa z",
    "full": "EEEE, MMMM d, y 'at' h:mm:ss\u202fa zzzz",
}

_MONTHS = [calendar.month_name[index] for index in range(1, 13)]
_DAYS = [calendar.day_name[index] for index in range(7)]
_PATTERN_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.DOTALL)
_CHRONO_UNITS = {
    "NANOS": dt.timedelta(microseconds=0.001),
    "MICROS": dt.timedelta(microseconds=1),
    "MILLIS": dt.timedelta(milliseconds=1),
    "SECONDS": dt.timedelta(seconds=1),
    "MINUTES": dt.timedelta(minutes=1),
    "HOURS": dt.timedelta(hours=1),
    "HALF_DAYS": dt.timedelta(hours=12),
}
_CALENDAR_UNITS = {
    "DAYS": 1,
    "WEEKS": 7,
    "MONTHS": 1,
    "YEARS": 12,
    "DECADES": 120,
    "CENTURIES": 1200,
    "MILLENNIA": 12000,
}


# --- zones -------------------------------------------------------------------------------------


def zone(name: Any) -> dt.tzinfo:
    """Java's `ZoneId.of`: a region (`Europe/Paris`), `UTC`/`Z`, or an offset (`+02:00`)."""
    if name is None:
        name = DEFAULT_ZONE
    text = str(name)
    if text in ("Z", "UTC", "GMT", "UT"):
        return dt.UTC
    match = re.fullmatch(r"(?:UTC|GMT|UT)?([+-])(\d{1,2})(?::?(\d{2}))?", text)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        offset = dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))
        return dt.timezone(sign * offset)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise RenderError(f"Unknown time-zone ID: {text}") from None


def _zone_id(value: dt.datetime) -> str:
    key = getattr(value.tzinfo, "key", None)
    if key:
        return str(key)
    return "UTC" if value.tzinfo is dt.UTC else _offset(value, "X", 3)


# --- formatting --------------------------------------------------------------------------------


def _offset(value: dt.datetime, letter: str, width: int) -> str:
    """Java's offset letters: X (Z for zero), x, Z, O — `width` is how many times the letter repeats."""
    total = int((value.utcoffset() or dt.timedelta(0)).total_seconds())
    sign = "-" if total < 0 else "+"
    hours, minutes = abs(total) // 3600, abs(total) % 3600 // 60
    if letter == "O":
        if total == 0:
            return "GMT"
        return (
            f"GMT{sign}{hours:02d}:{minutes:02d}"
            if width == 4
            else f"GMT{sign}{hours}" + (f":{minutes:02d}" if minutes else "")
        )
    if letter == "Z":
        if width <= 3:
            return f"{sign}{hours:02d}{minutes:02d}"
        if width == 4:
            return "GMT" if total == 0 else f"GMT{sign}{hours:02d}:{minutes:02d}"
        letter, width = "X", 5
    if total == 0 and letter == "X":
        return "Z"
    if width == 1:
        return f"{sign}{hours:02d}" + (f"{minutes:02d}" if minutes else "")
    if width in (2, 4):
        return f"{sign}{hours:02d}{minutes:02d}"
    return f"{sign}{hours:02d}:{minutes:02d}"


def _zone_name(value: dt.datetime, full: bool) -> str:
    abbreviation = value.tzname() or _offset(value, "X", 3)
    if not full:
        return abbreviation
    try:
        from babel.dates import get_timezone_name
    except ImportError:
        return abbreviation
    return str(get_timezone_name(value, width="long", locale="en_US"))


def _month(month: int, width: int) -> str:
    """`M`/`L`: the month as a number (`M`, `MM`), short name (`MMM`), full name (`MMMM`) or initial."""
    if width >= 4:
        return _MONTHS[month - 1] if width == 4 else _MONTHS[month - 1][0]
    return _MONTHS[month - 1][:3] if width == 3 else f"{month:0{width}d}"


def _field(value: dt.datetime, letter: str, width: int) -> str:
    if letter in "yu":
        year = value.year
        return f"{year % 100:02d}" if width == 2 else f"{year:0{width}d}"
    if letter in "ML":
        return _month(value.month, width)
    simple: dict[str, Callable[[dt.datetime], int]] = {
        "d": lambda v: v.day,
        "D": lambda v: v.timetuple().tm_yday,
        "H": lambda v: v.hour,
        "k": lambda v: v.hour or 24,
        "K": lambda v: v.hour % 12,
        "h": lambda v: v.hour % 12 or 12,
        "m": lambda v: v.minute,
        "s": lambda v: v.second,
        "Q": lambda v: (v.month - 1) // 3 + 1,
        "q": lambda v: (v.month - 1) // 3 + 1,
        "A": lambda v: ((v.hour * 60 + v.minute) * 60 + v.second) * 1000 + v.microsecond // 1000,
        "n": lambda v: v.microsecond * 1000,
        "e": lambda v: (v.isoweekday() % 7) + 1,
        "c": lambda v: (v.isoweekday() % 7) + 1,
    }
    if letter in simple:
        return f"{simple[letter](value):0{width}d}"
    if letter in "E":
        name = _DAYS[value.weekday()]
        return name if width == 4 else name[0] if width == 5 else name[:3]
    if letter == "a":
        return "AM" if value.hour < 12 else "PM"
    if letter == "S":
        return f"{value.microsecond:06d}000"[:width].ljust(width, "0")
    if letter == "G":
        return "AD" if width < 4 else "Anno Domini"
    if letter in "XxZO":
        return _offset(value, letter, width)
    if letter == "V":
        return _zone_id(value)
    if letter == "z":
        return _zone_name(value, full=width >= 4)
    raise RenderError(f"unsupported date pattern letter `{letter}`")


def format_pattern(value: dt.datetime, pattern: str) -> str:
    """Format an aware datetime with a Java `DateTimeFormatter` pattern (`yyyy-MM-dd'T'HH:mm`)."""
    out: list[str] = []
    for match in _PATTERN_TOKEN.finditer(pattern):
        token = match.group(0)
        if token.startswith("'"):
            out.append("'" if token == "''" else token[1:-1].replace("''", "'"))
        elif match.group(1):
            out.append(_field(value, token[0], len(token)))
        elif token not in "[]":
            if token in "{}#":
                raise RenderError(f"reserved character `{token}` in date pattern `{pattern}`")
            out.append(token)
    return "".join(out)


def _fraction(value: dt.datetime) -> str:
    return f".{value.microsecond:06d}".rstrip("0") if value.microsecond else ""


def _iso_time(value: dt.datetime) -> str:
    return value.strftime("%H:%M:%S") + _fraction(value)


def _iso_local(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT") + _iso_time(value)


def _region(value: dt.datetime) -> str:
    key = getattr(value.tzinfo, "key", None) or ("UTC" if value.tzinfo is dt.UTC else None)
    return f"[{key}]" if key else ""


ISO_FORMATTERS: dict[str, Callable[[dt.datetime], str]] = {
    "iso_date_time": lambda v: _iso_local(v) + _offset(v, "X", 5) + _region(v),
    "iso_zoned_date_time": lambda v: _iso_local(v) + _offset(v, "X", 5) + _region(v),
    "iso_date": lambda v: v.strftime("%Y-%m-%d") + _offset(v, "X", 5),
    "iso_time": lambda v: _iso_time(v) + _offset(v, "X", 5),
    "iso_local_date": lambda v: v.strftime("%Y-%m-%d"),
    "iso_instant": format_instant,
    "iso_local_date_time": _iso_local,
    "iso_local_time": _iso_time,
    "iso_offset_time": lambda v: _iso_time(v) + _offset(v, "X", 5),
    "iso_offset_date_time": lambda v: _iso_local(v) + _offset(v, "X", 5),
    "iso_ordinal_date": lambda v: v.strftime("%Y-%j") + _offset(v, "X", 5),
    "iso_week_date": lambda v: "{}-W{:02d}-{}".format(*v.isocalendar()) + _offset(v, "X", 5),
    "rfc_1123_date_time": lambda v: (
        f"{_DAYS[v.weekday()][:3]}, {v.day} {_MONTHS[v.month - 1][:3]} {v.year} {v.strftime('%H:%M:%S')} "
        + ("GMT" if not v.utcoffset() else _offset(v, "Z", 1))
    ),
}


def format_date(value: dt.datetime, format_name: str | None) -> str:
    """Format with a Kestra named format (`iso`, `sql_milli`, `iso_local_date`, ...) or a Java pattern."""
    name = "iso" if format_name is None else str(format_name)
    if name in ISO_FORMATTERS:
        return ISO_FORMATTERS[name](value)
    return format_pattern(value, NAMED_PATTERNS.get(name, name))


# --- parsing -----------------------------------------------------------------------------------

_FIELD_REGEX = {
    "y": r"(?P<year>[+-]?\d{1,9})",
    "u": r"(?P<year>[+-]?\d{1,9})",
    "M": r"(?P<month>\d{1,2})",
    "d": r"(?P<day>\d{1,2})",
    "H": r"(?P<hour>\d{1,2})",
    "h": r"(?P<hour12>\d{1,2})",
    "m": r"(?P<minute>\d{1,2})",
    "s": r"(?P<second>\d{1,2})",
    "S": r"(?P<fraction>\d+)",
    "a": r"(?P<ampm>AM|PM|am|pm)",
    "E": r"(?P<weekday>[A-Za-z]+)",
    "X": r"(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)",
    "x": r"(?P<offset>[+-]\d{2}(?::?\d{2})?)",
    "Z": r"(?P<offset>Z|GMT|[+-]\d{2}:?\d{2})",
    "V": r"(?P<zone>[A-Za-z_]+(?:/[A-Za-z_+-]+)*)",
    "z": r"(?P<zone>[A-Za-z_]+(?:/[A-Za-z_+-]+)*)",
}


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    seen: set[str] = set()
    for match in _PATTERN_TOKEN.finditer(pattern):
        token = match.group(0)
        if token.startswith("'"):
            parts.append(re.escape("'" if token == "''" else token[1:-1].replace("''", "'")))
        elif match.group(1):
            letter, width = token[0], len(token)
            if letter == "M" and width >= 3:
                parts.append(r"(?P<monthname>[A-Za-z]+)")
            elif letter in "yu" and width == 2:
                parts.append(r"(?P<year2>\d{2})")
            elif letter in _FIELD_REGEX:
                regex = _FIELD_REGEX[letter]
                if width > 1 and letter in "yuMdHhms":
                    regex = regex.replace(r"\d{1,2}", rf"\d{{{width}}}").replace(r"\d{1,9}", rf"\d{{{width}}}")
                name = regex[4 : regex.index(">")]
                if name in seen:
                    regex = re.sub(r"\(\?P<\w+>", "(?:", regex, count=1)
                seen.add(name)
                parts.append(regex)
            else:
                raise RenderError(f"unsupported date pattern letter `{letter}` for parsing")
        elif token not in "[]":
            parts.append(re.escape(token))
    return re.compile("".join(parts), re.IGNORECASE)


def _month_number(name: str) -> int:
    for index, month in enumerate(_MONTHS):
        if month.lower() == name.lower() or month[:3].lower() == name.lower():
            return index + 1
    raise ValueError(f"unknown month `{name}`")


def parse_pattern(text: str, pattern: str, zone_info: dt.tzinfo) -> dt.datetime:
    """Parse `text` with a Java pattern: zoned if it has an offset/zone, else local (date → midnight)."""
    if pattern in ("rfc_1123_date_time",):
        pattern = "EEE, d MMM yyyy HH:mm:ss Z"
    pattern = NAMED_PATTERNS.get(pattern, pattern)
    match = _pattern_regex(pattern).fullmatch(text)
    if not match:
        raise RenderError(f"Text '{text}' could not be parsed with pattern `{pattern}`")
    fields = {key: value for key, value in match.groupdict().items() if value is not None}
    try:
        year = int(fields["year"]) if "year" in fields else 2000 + int(fields["year2"])
        month = _month_number(fields["monthname"]) if "monthname" in fields else int(fields.get("month", 1))
        hour = int(fields.get("hour", 0))
        if "hour12" in fields:
            hour = int(fields["hour12"]) % 12 + (12 if fields.get("ampm", "AM").upper() == "PM" else 0)
        micros = int(fields.get("fraction", "0")[:6].ljust(6, "0"))
        tz: dt.tzinfo = zone_info
        if "offset" in fields:
            tz = zone(fields["offset"].replace("GMT", "Z"))
        elif "zone" in fields:
            tz = zone(fields["zone"])
        return dt.datetime(
            year, month, int(fields.get("day", 1)), hour, int(fields.get("minute", 0)),
            int(fields.get("second", 0)), micros, tzinfo=tz,
        )  # fmt: skip
    except (KeyError, ValueError) as exc:
        raise RenderError(f"Text '{text}' could not be parsed with pattern `{pattern}`: {exc}") from None


_ISO_ZONED = re.compile(r"(.+?(?:Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?))(?:\[([^\]]+)\])?")


def parse_iso(text: str, zone_info: dt.tzinfo) -> dt.datetime:
    """Kestra's fallback chain: ISO zoned date-time, then ISO local date-time, then ISO date (midnight)."""
    match = _ISO_ZONED.fullmatch(text)
    try:
        if match and "T" in text:
            value = dt.datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
            return value.astimezone(zone(match.group(2))) if match.group(2) else value
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?", text):
            return dt.datetime.fromisoformat(_micro(text)).replace(tzinfo=zone_info)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.datetime.fromisoformat(text).replace(tzinfo=zone_info)
    except ValueError:
        pass
    raise RenderError(f"Text '{text}' could not be parsed as a date (expected ISO-8601, or give existingFormat)")


def _micro(text: str) -> str:
    return re.sub(r"\.(\d{6})\d+", r".\1", text)


def convert(value: Any, zone_info: dt.tzinfo, existing_format: str | None) -> dt.datetime:
    """Kestra's `AbstractDate.convert`: any date-like input → an aware datetime."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone_info)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(12), tzinfo=zone_info)
    if isinstance(value, int) and not isinstance(value, bool):
        digits = len(str(value))
        if digits == 13:
            seconds, micros = divmod(value, 1000)
            micros *= 1000
        elif digits == 19:
            if str(value).endswith("000"):
                seconds, nanos = divmod(value, 1_000_000_000)
                micros = nanos // 1000
            else:
                millis, micros = divmod(value, 1_000_000)
                seconds, _ = divmod(millis, 1000)
        else:
            seconds, micros = value, 0
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (epoch + dt.timedelta(seconds=seconds, microseconds=micros)).astimezone(zone_info)
    if not isinstance(value, str):
        raise RenderError(f"cannot read a date from a {type_name(value)}")
    if existing_format is not None:
        if str(existing_format) in ISO_FORMATTERS and existing_format != "rfc_1123_date_time":
            return parse_iso(value, zone_info)
        return parse_pattern(value, str(existing_format), zone_info)
    return parse_iso(value, zone_info)


# --- filters and now() -------------------------------------------------------------------------


def date_filter(
    value: Any, format_name: Any = None, time_zone: Any = None, existing_format: Any = None, locale: Any = None
) -> str | None:
    """`date(format='iso', timeZone, existingFormat, locale)`: format any date-like value."""
    if value is None:
        return None
    zone_info = zone(time_zone)
    return format_date(convert(value, zone_info, existing_format).astimezone(zone_info), format_name)


def _as_long(value: Any) -> int:
    if is_number(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise RenderError(f"{value} can't be converted to long") from None
    raise RenderError(f"Incorrect {value} format, must be a number")


def plus(value: dt.datetime, amount: int, unit: str) -> dt.datetime:
    """`ZonedDateTime.plus(amount, ChronoUnit)`: calendar units keep the local time, others add an instant."""
    if unit in _CHRONO_UNITS:
        utc = value.astimezone(dt.UTC) + amount * _CHRONO_UNITS[unit]
        return utc.astimezone(value.tzinfo)
    if unit not in _CALENDAR_UNITS:
        raise RenderError(f"No enum constant java.time.temporal.ChronoUnit.{unit}")
    local = value.replace(tzinfo=None)
    if unit in ("DAYS", "WEEKS"):
        local += dt.timedelta(days=amount * _CALENDAR_UNITS[unit])
    else:
        months = local.year * 12 + local.month - 1 + amount * _CALENDAR_UNITS[unit]
        year, month = divmod(months, 12)
        day = min(local.day, calendar.monthrange(year, month + 1)[1])
        local = local.replace(year=year, month=month + 1, day=day)
    return local.replace(tzinfo=value.tzinfo)


def date_add_filter(
    value: Any,
    amount: Any = None,
    unit: Any = None,
    format_name: Any = None,
    time_zone: Any = None,
    existing_format: Any = None,
    locale: Any = None,
) -> str | None:
    """`dateAdd(amount, unit, format...)`: add a ChronoUnit amount; returns a **formatted string**."""
    if value is None:
        return None
    zone_info = zone(time_zone)
    moved = plus(convert(value, zone_info, existing_format), _as_long(amount), str(unit))
    return format_date(moved.astimezone(zone_info), format_name)


def _timestamp(scale: str) -> Callable[..., Any]:
    def timestamp(
        value: Any, format_name: Any = None, time_zone: Any = None, existing_format: Any = None, locale: Any = None
    ) -> Any:
        if value is None:
            return None
        moment = convert(value, zone(time_zone), existing_format)
        seconds = int(moment.timestamp() // 1)
        if scale == "seconds":
            return seconds
        if scale == "millis":
            return seconds * 1000 + moment.microsecond // 1000
        if scale == "micros":  # Kestra's own arithmetic: seconds in nanos plus microseconds
            return str(seconds * 1_000_000_000 + moment.microsecond)
        return str(seconds * 1_000_000_000 + moment.microsecond * 1000)

    timestamp.__doc__ = f"`timestamp` filter family: the date as epoch {scale}."
    return timestamp


def now(format_name: Any = None, time_zone: Any = None, existing_format: Any = None, locale: Any = None) -> str:
    """`now(format='iso', timeZone)`: the current time as a **formatted string**."""
    zone_info = zone(time_zone)
    return format_date(dt.datetime.now(zone_info), format_name)


DATE_PARAMS = ("format", "timeZone", "existingFormat", "locale")

#: name → (function, Pebble argument names, number of required arguments)
DATE_FILTERS: dict[str, tuple[Callable[..., Any], tuple[str, ...], int]] = {
    "date": (date_filter, DATE_PARAMS, 0),
    "dateAdd": (date_add_filter, ("amount", "unit", *DATE_PARAMS), 2),
    "timestamp": (_timestamp("seconds"), DATE_PARAMS, 0),
    "timestampMilli": (_timestamp("millis"), DATE_PARAMS, 0),
    "timestampMicro": (_timestamp("micros"), DATE_PARAMS, 0),
    "timestampNano": (_timestamp("nanos"), DATE_PARAMS, 0),
}

"""String filters of Pebble and Kestra (`upper`, `replace`, `split`, `substringBefore`, `indent`, ...)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from yaml2dag.errors import RenderError
from yaml2dag.expressions.isolation import regex_spans, regex_sub
from yaml2dag.expressions.limits import MAX_TEXT, OutputBudget, check_text, text_too_long
from yaml2dag.expressions.values import java_hash_order, java_string, type_name

_JAVA_WHITESPACE = "".join(chr(code) for code in range(33))


def _string(value: Any, name: str) -> str:
    """Pebble filters that cast their input to `String` fail on anything else."""
    if not isinstance(value, str):
        raise RenderError(f"the `{name}` filter needs a string, got {type_name(value)}")
    return value


def _null_safe(function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(value: Any, *args: Any) -> Any:
        return None if value is None else function(value, *args)

    wrapper.__doc__ = function.__doc__
    return wrapper


def abbreviate(value: str, length: Any = None) -> str:
    """Cut to `length` characters, ending with `...`."""
    text = _string(value, "abbreviate")
    if not isinstance(length, int) or length < 0:
        raise RenderError("Invalid argument to abbreviate filter; must be greater than zero")
    if len(text) < length or len(text) <= 3:
        return text
    return text[:length] if length <= 3 else text[: length - 3] + "..."


def capitalize(value: str) -> str:
    """Upper-case the first non-blank character."""
    text = _string(value, "capitalize")
    stripped = text.lstrip()
    start = len(text) - len(stripped)
    return text[:start] + stripped[:1].title() + stripped[1:]


def title(value: str) -> str:
    """Upper-case the first character of each word (words are separated by whitespace)."""
    text = _string(value, "title")
    return "".join(char.title() if index == 0 or text[index - 1].isspace() else char for index, char in enumerate(text))


def url_encode(value: str) -> str:
    """Java's `URLEncoder`: spaces become `+`, only `.-*_` and alphanumerics stay as they are."""
    return urllib.parse.quote_plus(_string(value, "urlencode"), safe="*").replace("~", "%7E")


def url_decode(value: str) -> str:
    """Java's `URLDecoder`: `+` becomes a space, `%XX` sequences are decoded."""
    return urllib.parse.unquote_plus(_string(value, "urldecode"))


def _java_replacement(replacement: str) -> str:
    r"""Turn a Java `replaceAll` replacement (`$1`, `\\$`) into a Python one (`\\g<1>`)."""
    out: list[str] = []
    index = 0
    while index < len(replacement):
        char = replacement[index]
        if char == "\\" and index + 1 < len(replacement):
            out.append(replacement[index + 1].replace("\\", "\\\\"))
            index += 2
        elif char == "$":
            match = re.match(r"\$(\d+|\{\w+\})", replacement[index:])
            if not match:
                raise RenderError(f"Illegal group reference in replacement `{replacement}`")
            out.append(f"\\g<{match.group(1).strip('{}')}>")
            index += match.end()
        else:
            out.append("\\\\" if char == "\\" else char)
            index += 1
    return "".join(out)


def _hash_map(items: dict[Any, Any]) -> dict[Any, Any]:
    return {key: items[key] for key in java_hash_order(list(items), 16)}


def _deep(value: Any, on_string: Callable[[str], str]) -> Any:
    """Apply to every leaf as Kestra's `replace`/`escapeChar` do (maps become HashMaps)."""
    if isinstance(value, Mapping):
        return _hash_map({key: _deep(item, on_string) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return [_deep(item, on_string) for item in value]
    return on_string(java_string(value))


# A pattern with no repetition, alternation or back-reference matches in time bounded by its own
# length at each position, and so does one repeated character class on its own (`\\s+`, `[,;]*`);
# any other regular expression may backtrack without end and runs in the isolated worker.
_LINEAR_PATTERN = re.compile(r"(?:[^\\.^$*+?{}()|\[\]]|\\[^1-9]|\[[^\]\\]*\]|\.)*")
_ONE_REPEATED_CLASS = re.compile(r"(?:[^\\.^$*+?{}()|\[\]]|\\[^1-9]|\[[^\]\\]*\]|\.)[*+]")


def is_linear(pattern: str) -> bool:
    """Whether `pattern` is safe to match here, without the isolated worker's time budget."""
    return bool(_LINEAR_PATTERN.fullmatch(pattern) or _ONE_REPEATED_CLASS.fullmatch(pattern))


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise RenderError(f"invalid regular expression in `{where}`: {exc}") from None


def _match_spans(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    if is_linear(pattern.pattern):
        return [match.span() for match in pattern.finditer(text)]
    return regex_spans(pattern.pattern, text)


def _plain_replace(text: str, old: str, new: str) -> str:
    """`text.replace(old, new)`, refused before it is built when it would pass `MAX_TEXT`."""
    if len(new) > len(old):
        occurrences = text.count(old)  # an empty `old` occurs len(text) + 1 times
        length = len(text) + occurrences * (len(new) - len(old))
        if length > MAX_TEXT:
            raise text_too_long("the result of `replace`", length)
    return text.replace(old, new)


def _bounded_sub(pattern: re.Pattern[str], replacement: str, text: str) -> str:
    """`pattern.sub(replacement, text)`, stopped once the replacements alone pass `MAX_TEXT`."""
    budget = OutputBudget()

    def expand(match: re.Match[str]) -> str:
        result = match.expand(replacement)
        budget.spend(len(result))
        return result

    return pattern.sub(expand, text)


def replace(value: Any, pairs: Any = None, regexp: Any = None) -> Any:
    """Kestra's `replace({old: new, ...}, regexp=false)`, applied to strings, lists and maps."""
    if not isinstance(pairs, Mapping):
        raise RenderError("The argument 'replace_pairs' is required and must be a map of {old: new}")
    use_regexp = bool(regexp) if regexp is not None else False
    compiled = [
        (_compile(java_string(old), "replace") if use_regexp else java_string(old), java_string(new))
        for old, new in pairs.items()
    ]

    def on_string(text: str) -> str:
        for old, new in compiled:
            if not isinstance(old, re.Pattern):
                text = _plain_replace(text, old, new)
            elif is_linear(old.pattern):
                text = check_text(_bounded_sub(old, _java_replacement(new), text), "`replace`")
            else:
                text = regex_sub(old.pattern, _java_replacement(new), text)
        return text

    try:
        return _deep(value, on_string)
    except re.error as exc:
        raise RenderError(f"invalid regular expression in `replace`: {exc}") from None


def split(value: str, delimiter: Any = None, limit: Any = None) -> list[str]:
    """Java's `String.split(regex, limit)`: trailing empty strings are dropped unless a limit is given."""
    text = _string(value, "split")
    if delimiter is None:
        raise RenderError("missing delimiter parameter in split filter")
    pattern = _compile(str(delimiter), "split")
    count = int(limit) if limit is not None else 0
    if text == "":
        return [""]
    parts: list[str] = []
    start = 0
    for match_start, match_end in _match_spans(pattern, text):
        if count > 0 and len(parts) == count - 1:
            break
        if match_end == 0:
            continue  # a zero-width match at the start yields no leading empty string
        if match_start == match_end and match_start >= len(text):
            break
        parts.append(text[start:match_start])
        start = match_end
    parts.append(text[start:])
    if count == 0:
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()
        if parts == [""] and text:
            return []
    return parts


def base64_decode(value: str) -> str | None:
    """Decode base64 to text; an invalid input gives null, as in Pebble."""
    try:
        return base64.b64decode(_string(value, "base64decode"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _digest(algorithm: str, name: str) -> Callable[[Any], str]:
    def digest(value: Any) -> str:
        return hashlib.new(algorithm, _string(value, name).encode("utf-8")).hexdigest()

    digest.__doc__ = f"Hex {algorithm} of a string."
    return digest


def slugify(value: Any) -> str:
    """Kestra's `slugify`: lower-case words joined by `-`, accents removed."""
    text = unicodedata.normalize("NFD", java_string(value))
    text = text.encode("ascii", "ignore").decode()
    text = re.sub(r"\s+", "-", text.strip())
    text = re.sub(r"[^\w-]", "", text).replace("_", "-")
    return re.sub(r"-{2,}", "-", text).strip("-").lower()


def _substring(kind: str) -> Callable[..., str]:
    def substring(value: Any, separator: Any = None) -> str:
        text = java_string(value)
        if separator is None:
            return "" if kind in ("after", "afterLast") else text
        sep = java_string(separator)
        if kind == "before":
            return "" if sep == "" else text.partition(sep)[0]
        if kind == "after":
            return text if sep == "" else text.partition(sep)[2]
        if kind == "beforeLast":
            return text if sep == "" or sep not in text else text.rpartition(sep)[0]
        return "" if sep == "" or sep not in text else text.rpartition(sep)[2]

    substring.__doc__ = f"Apache Commons `StringUtils.substring{kind[0].upper() + kind[1:]}`."
    return substring


def _starts_with(value: Any, prefix: Any = None) -> bool:
    if value is None:
        raise RenderError("the `startsWith` filter needs a value, got null")
    return java_string(value).startswith(java_string(prefix))


def _ends_with(value: Any, suffix: Any = None) -> bool:
    if value is None:
        raise RenderError("the `endsWith` filter needs a value, got null")
    return java_string(value).endswith(java_string(suffix))


_ESCAPES = {"single": ("'", "\\'"), "double": ('"', '\\"'), "shell": ("'", "'\\''")}


def escape_char(value: Any, kind: Any = None) -> Any:
    """Kestra's `escapeChar('single'|'double'|'shell')`, applied to strings, lists and maps."""
    if kind is None:
        raise RenderError("The 'escapeChar' filter expects an argument 'type'.")
    pair = _ESCAPES.get(str(kind).lower())
    if pair is None:
        raise RenderError(
            "The 'escapeChar' filter expects the value of 'type' to be either 'single', 'double', or 'shell'."
        )
    return _deep(value, lambda text: text.replace(*pair))


def _line_separator(text: str) -> str:
    for separator in ("\r\n", "\n\r", "\n", "\r"):
        if separator in text:
            return separator
    return "\n"


def _indent(kind: str) -> Callable[..., Any]:
    def indent(value: Any, amount: Any = None, prefix: Any = None) -> Any:
        text = java_string(value)
        if text == "":
            return text
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise RenderError(f"The '{kind}' filter expects an integer as argument 'amount'.")
        if amount < 0:
            raise RenderError(f"The '{kind}' filter expects a positive integer >=0 as argument 'amount'.")
        unit = " " if prefix is None else java_string(prefix)
        newline = _line_separator(text)
        lines = text.count(newline) + (1 if kind == "nindent" else 0)
        length = len(text) + lines * (len(newline) * (kind == "nindent") + len(unit) * amount)
        if len(unit) * amount > MAX_TEXT or length > MAX_TEXT:
            raise text_too_long(f"the result of `{kind}`", max(length, len(unit) * amount))
        pad = unit * amount
        if kind == "nindent":
            text = newline + text
        return text.replace(newline, newline + pad)

    indent.__doc__ = f"Kestra's `{kind}(amount, prefix=' ')`."
    return indent


def java_format(value: Any, *args: Any) -> str:
    """Pebble's `format`: Java's `String.format` for the common conversions (`%s %d %f %x %n %%`)."""
    pattern = _string(value, "format")
    values = list(args)

    def convert(match: re.Match[str]) -> str:
        flags, width, precision, conversion = match.groups()
        if conversion == "%":
            return "%"
        if conversion == "n":
            return "\n"
        if not values:
            raise RenderError(f"Format specifier '{match.group(0)}' has no argument")
        argument = values.pop(0)
        if int(width or 0) > MAX_TEXT or int((precision or ".0")[1:]) > MAX_TEXT:
            raise RenderError(f"Format specifier '{match.group(0)}' is wider than {MAX_TEXT:,} characters")
        spec = "%" + flags.replace(",", "") + width + (precision or "")
        if conversion in "sS":
            text = (spec + "s") % java_string(argument)
            return text.upper() if conversion == "S" else text
        if conversion == "b":
            return (spec + "s") % ("false" if argument is None or argument is False else "true")
        try:
            if conversion in "dxXo":
                text = (spec + conversion) % int(argument)
                if "," in flags:
                    text = f"{int(argument):,}"
                return text
            return (spec + conversion) % float(argument)
        except (TypeError, ValueError):
            raise RenderError(f"`{match.group(0)}` cannot format {java_string(argument)}") from None

    return re.sub(r"%([-#+ 0,(]*)(\d*)(\.\d+)?([a-zA-Z%])", convert, pattern)


#: name → (function, Pebble argument names, number of required arguments)
STRING_FILTERS: dict[str, tuple[Callable[..., Any], tuple[str, ...] | None, int]] = {
    "abbreviate": (_null_safe(abbreviate), ("length",), 1),
    "base64decode": (_null_safe(base64_decode), (), 0),
    "base64encode": (_null_safe(lambda v: base64.b64encode(java_string(v).encode()).decode()), (), 0),
    "capitalize": (_null_safe(capitalize), (), 0),
    "endsWith": (_ends_with, ("value",), 1),
    "escapeChar": (_null_safe(escape_char), ("type",), 1),
    "format": (_null_safe(java_format), None, 0),
    "indent": (_null_safe(_indent("indent")), ("amount", "prefix"), 1),
    "lower": (_null_safe(lambda v: java_string(v).lower()), (), 0),
    "md5": (_null_safe(_digest("md5", "md5")), (), 0),
    "nindent": (_null_safe(_indent("nindent")), ("amount", "prefix"), 1),
    "replace": (_null_safe(replace), ("replace_pairs", "regexp"), 1),
    "sha1": (_null_safe(_digest("sha1", "sha1")), (), 0),
    "sha256": (_null_safe(_digest("sha256", "sha256")), (), 0),
    "sha512": (_null_safe(_digest("sha512", "sha512")), (), 0),
    "slugify": (_null_safe(slugify), (), 0),
    "split": (_null_safe(split), ("delimiter", "limit"), 1),
    "startsWith": (_starts_with, ("value",), 1),
    "string": (_null_safe(java_string), (), 0),
    "substringAfter": (_null_safe(_substring("after")), ("separator",), 1),
    "substringAfterLast": (_null_safe(_substring("afterLast")), ("separator",), 1),
    "substringBefore": (_null_safe(_substring("before")), ("separator",), 1),
    "substringBeforeLast": (_null_safe(_substring("beforeLast")), ("separator",), 1),
    "title": (_null_safe(title), (), 0),
    "trim": (_null_safe(lambda v: _string(v, "trim").strip(_JAVA_WHITESPACE)), (), 0),
    "upper": (_null_safe(lambda v: java_string(v).upper()), (), 0),
    "urldecode": (_null_safe(url_decode), (), 0),
    "urlencode": (_null_safe(url_encode), (), 0),
}

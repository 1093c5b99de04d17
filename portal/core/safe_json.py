"""Reading JSON that people send: bounded in size and nesting, never a 500.

Python's json parser recurses once per nesting level, so a body of 10,000 `[` exhausts
the interpreter's recursion limit (a RecursionError, an answer 500) and a 100 MB body
holds the worker. Every JSON a person sends (API bodies through `portal.api.parsers`,
the data API's `filter` parameter, metric filters, the Delta Sharing query body) is read
by `loads_limited`, which checks the size, then the nesting with a scan that does not
recurse, before parsing; and refuses a NUL character (`\\u0000`) in any string, which
PostgreSQL's text and jsonb cannot hold. Refusals are `JSONRefused` (a ValueError) whose
message says what the limit is.

Limits: settings.JSON_MAX_DEPTH (default 32 levels) and settings.JSON_MAX_BYTES (default
settings.DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings

DEFAULT_MAX_DEPTH = 32
# A JSON string literal (escapes included), so brackets inside strings are not counted.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class JSONRefused(ValueError):
    """JSON that is not read: too large, too deep, not JSON, or holding a NUL character.
    The message says which and how to fix it."""


def max_depth_setting() -> int:
    return int(getattr(settings, "JSON_MAX_DEPTH", DEFAULT_MAX_DEPTH))


def max_bytes_setting() -> int:
    return int(getattr(settings, "JSON_MAX_BYTES", settings.DATA_UPLOAD_MAX_MEMORY_SIZE))


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text`, brackets inside strings aside.
    A scan without recursion: it gives an answer for any text, JSON or not."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(depth - 1, 0)
    return deepest


def _holds_nul(value: Any) -> bool:
    """Whether a NUL character is in a string (key or value) of `value`; no recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _refuse_constant(word: str):
    raise JSONRefused(f"{word} is not a JSON value: write a finite number, or null.")


def check_limits(
    text: str, *, max_depth: int | None = None, max_bytes: int | None = None, what: str
) -> None:
    """Raise JSONRefused when `text` is larger or deeper than the limits."""
    max_depth = max_depth_setting() if max_depth is None else max_depth
    max_bytes = max_bytes_setting() if max_bytes is None else max_bytes
    # Characters first (each at least one byte), then the UTF-8 bytes.
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise JSONRefused(f"{what} is larger than {max_bytes:,} bytes: send less at a time.")
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot nest deeper than it has brackets
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JSONRefused(
            f"{what} nests arrays and objects {depth:,} levels deep; at most {max_depth} "
            "levels are read."
        )


def loads_limited(
    text: str | bytes | bytearray,
    *,
    max_depth: int | None = None,
    max_bytes: int | None = None,
    what: str = "The JSON",
    parse_constant=None,
) -> Any:
    """json.loads within the limits (defaults from settings), refusing NaN/Infinity (not
    JSON) and NUL characters. Raises JSONRefused, with a message, for anything not read."""
    if isinstance(text, bytes | bytearray):
        limit = max_bytes_setting() if max_bytes is None else max_bytes
        if len(text) > limit:
            raise JSONRefused(f"{what} is larger than {limit:,} bytes: send less at a time.")
        try:
            text = bytes(text).decode(json.detect_encoding(bytes(text)))
        except (UnicodeDecodeError, LookupError) as exc:
            raise JSONRefused(f"{what} is not valid UTF-8 text.") from exc
    check_limits(text, max_depth=max_depth, max_bytes=max_bytes, what=what)
    try:
        value = json.loads(text, parse_constant=parse_constant or _refuse_constant)
    except json.JSONDecodeError as exc:
        raise JSONRefused(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    except RecursionError as exc:  # not reached within the depth limit; never a 500
        raise JSONRefused(f"{what} nests arrays and objects too deeply.") from exc
    except ValueError as exc:
        if type(exc) is not ValueError:  # JSONRefused, or the caller's parse_constant's own
            raise
        # An integer of more digits than Python converts, ...
        raise JSONRefused(f"{what} is not read: {exc}.") from exc
    if _holds_nul(value):
        raise JSONRefused(
            f"{what} holds a NUL character (\\u0000), which no text value can hold: remove it."
        )
    return value

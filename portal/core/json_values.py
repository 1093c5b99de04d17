"""JSON for data values, NaN and infinities included.

Python's json writes float NaN and infinities as the bare words NaN and Infinity, which are
not JSON: browsers, `jq` and PostgreSQL's jsonb refuse them. Everywhere the portal writes
data values as JSON (the JSON and JSON-lines reads, check samples stored in jsonb) they are
written as the strings "NaN", "Infinity" and "-Infinity", the convention of Protocol
Buffers' and BigQuery's JSON. XLSX cells get the same strings.

Other values (`data_value`, the `default` of the data reads): timestamps in ISO 8601 with
a `T` (and the offset when they have a time zone), dates as YYYY-MM-DD, times as
HH:MM:SS[.ffffff]; a decimal is a JSON number when a reader parsing it into a double (as
JavaScript and most JSON libraries do) gets it back exactly, and its exact text in a
string otherwise (more significant digits than a double keeps), so no reader silently
gets another number. Bytes are hexadecimal text; anything else its str().
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

NAN = "NaN"
INFINITY = "Infinity"
NEGATIVE_INFINITY = "-Infinity"
# Data values shown as numbers (right-aligned in tables); bool is an int but reads as a word.
NUMBER_TYPES = (int, float, Decimal)


def is_number(value: Any) -> bool:
    return isinstance(value, NUMBER_TYPES) and not isinstance(value, bool)


def non_finite_as_text(value: Any) -> Any:
    """`value` with every non-finite float (also inside lists and dicts) as its string."""
    if isinstance(value, float):
        if math.isnan(value):
            return NAN
        if math.isinf(value):
            return INFINITY if value > 0 else NEGATIVE_INFINITY
        return value
    if isinstance(value, dict):
        return {key: non_finite_as_text(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [non_finite_as_text(item) for item in value]
    return value


def decimal_value(value: Decimal) -> float | str:
    """A decimal as JSON: a number when the nearest double prints back as the same value
    (5.00 -> 5.0, 0.1 -> 0.1), else its exact text (12345678901234567.89 -> "1234...")."""
    if not value.is_finite():
        return NAN if value.is_nan() else (INFINITY if value > 0 else NEGATIVE_INFINITY)
    number = float(value)
    if math.isfinite(number) and Decimal(repr(number)) == value:
        return number
    return str(value)


def data_value(value: Any) -> Any:
    """json's `default` for data values json cannot write itself (see the module)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return decimal_value(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def json_value(value: Any) -> Any:
    """One data value as JSON holds it: null, booleans, integers and text as they are, a
    float as itself or its non-finite name, anything else as data_value writes it."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return non_finite_as_text(value)
    return data_value(value)


def dumps(value: Any, **kwargs: Any) -> str:
    """json.dumps that never writes NaN or Infinity as bare words."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:  # a non-finite float somewhere: the slow path, only then
        return json.dumps(non_finite_as_text(value), allow_nan=False, **kwargs)

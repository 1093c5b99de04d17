"""Column types by family, and values people list read as a column's type.

A column's type is the text a source gives for it (PostgreSQL `numeric(12,2)`, `double
precision`, `timestamp with time zone`; DuckDB `DECIMAL(12,2)`, `DOUBLE`, `TIMESTAMP WITH
TIME ZONE`...). Checks compare values by the column's type, the same way on every engine:
numbers as numbers (decimals exactly), text as text, booleans as booleans, dates and
timestamps as such. Anything else (uuid, enums, lists, structs, intervals) is compared
as text, as the source writes it.

    type_family("numeric(12,2)")            # "numeric"
    typed_value("5", "numeric(12,2)")       # Decimal("5")
    typed_value("abc", "DOUBLE")            # ValueError: 'abc' is not a number
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

NUMERIC = "numeric"
TEXT = "text"
BOOLEAN = "boolean"
TEMPORAL = "temporal"
OTHER = "other"

_INTEGER = re.compile(
    r"(tinyint|smallint|integer|int|bigint|hugeint|int1|int2|int4|int8|int16|int32|int64|"
    r"int128|utinyint|usmallint|uinteger|ubigint|uhugeint|uint8|uint16|uint32|uint64|uint128|"
    r"short|long|signed|smallserial|serial|bigserial|serial2|serial4|serial8)"
)
_DECIMAL = re.compile(r"(numeric|decimal|dec)(\((?P<precision>\d+)(,(?P<scale>\d+))?\))?")
_FLOAT = re.compile(r"(double precision|double|float8|float|float4|real)(\(\d+\))?")
_SINGLE = re.compile(r"(float4|real|float)")  # DuckDB FLOAT and PostgreSQL real: 4 bytes
_TEXT = re.compile(
    r"(text|varchar|character varying|char|character|bpchar|string|nvarchar|nchar)"
    r"(\(\d+\))?"
)
_BOOLEAN = re.compile(r"(boolean|bool|logical)")
_DATE = re.compile(r"date")
_TIMESTAMP_TZ = re.compile(r"(timestamp( ?\(\d\))? with time zone|timestamptz|timestamp_tz)")
_TIMESTAMP = re.compile(
    r"(timestamp( ?\(\d\))?( without time zone)?|datetime|timestamp_(s|ms|ns|us))"
)
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


def _normal(data_type: str) -> str:
    text = " ".join((data_type or "").lower().split())
    return re.sub(r"\s*([(),])\s*", r"\1", text)


def numeric_kind(data_type: str) -> str | None:
    """ "integer", "decimal" or "float" for a number type, else None."""
    text = _normal(data_type)
    if _INTEGER.fullmatch(text):
        return "integer"
    if _DECIMAL.fullmatch(text):
        return "decimal"
    if _FLOAT.fullmatch(text):
        return "float"
    return None


def temporal_kind(data_type: str) -> str | None:
    """ "date", "timestamptz" (an instant) or "timestamp" (a wall-clock time), else None."""
    text = _normal(data_type)
    if _DATE.fullmatch(text):
        return "date"
    if _TIMESTAMP_TZ.fullmatch(text):
        return "timestamptz"
    if _TIMESTAMP.fullmatch(text):
        return "timestamp"
    return None


def type_family(data_type: str) -> str:
    """numeric, text, boolean, temporal or other (unknown types are other)."""
    text = _normal(data_type)
    if numeric_kind(text):
        return NUMERIC
    if _TEXT.fullmatch(text):
        return TEXT
    if _BOOLEAN.fullmatch(text):
        return BOOLEAN
    if temporal_kind(text):
        return TEMPORAL
    return OTHER


def is_single_precision(data_type: str) -> bool:
    """A 4-byte float (PostgreSQL real, DuckDB FLOAT): listed values are compared at that
    precision, or 0.1 would never equal the column's 0.1."""
    return numeric_kind(data_type) == "float" and bool(_SINGLE.fullmatch(_normal(data_type)))


def _not_a(value: Any, data_type: str, what: str) -> ValueError:
    return ValueError(f"{value!r} is not {what}, so it can never match the {data_type} column.")


def _decimal(value: Any, data_type: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _not_a(value, data_type, "a number")
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise _not_a(value, data_type, "a number") from exc
    return number


def _number(value: Any, data_type: str) -> int | float | Decimal:
    kind = numeric_kind(data_type)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise _not_a(value, data_type, "a number")
        try:
            return float(str(value).strip()) if isinstance(value, str) else float(value)
        except ValueError as exc:
            raise _not_a(value, data_type, "a number") from exc
    number = _decimal(value, data_type)
    if not number.is_finite():
        raise ValueError(
            f"{value!r} is not a finite number: a {data_type} column holds no NaN or infinity."
        )
    if kind == "integer":
        if number != number.to_integral_value():
            raise _not_a(value, data_type, "a whole number")
        return int(number)
    match = _DECIMAL.fullmatch(_normal(data_type))
    if match and match.group("precision"):
        precision = int(match.group("precision"))
        scale = int(match.group("scale") or 0)
        exponent = number.normalize().as_tuple().exponent
        places = max(0, -exponent) if isinstance(exponent, int) else 0
        whole_digits = len(str(abs(int(number)))) if abs(number) >= 1 else 0
        if places > scale or whole_digits > precision - scale:
            raise ValueError(
                f"{value!r} does not fit a {data_type} column ({precision} digits, "
                f"{scale} after the point), so it can never match."
            )
    return number


def _boolean(value: Any, data_type: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise _not_a(value, data_type, "true or false")


def _temporal(value: Any, data_type: str) -> date | datetime:
    kind = temporal_kind(data_type)
    if not isinstance(value, str):
        raise _not_a(value, data_type, "a date or time in ISO 8601 (text)")
    text = value.strip()
    try:
        if kind == "date":
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _not_a(value, data_type, "a date or time in ISO 8601") from exc
    if kind == "timestamptz":
        # An instant: a value without an offset is UTC.
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    # A wall-clock time: a value with an offset is taken as that instant in UTC.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def typed_value(value: Any, data_type: str) -> Any:
    """`value` (as listed by a person: JSON text, number or boolean) as a value of the
    column's type, to bind as a parameter. Raises ValueError naming the value and type.

    Numbers: integers as int, decimals as Decimal (exact), floats as float, where the
    text "NaN", "Infinity" and "-Infinity" are values (JSON has no NaN)."""
    if value is None or isinstance(value, dict | list):
        raise ValueError(
            f"{value!r} is not a value a column holds: list text, numbers or booleans."
        )
    family = type_family(data_type)
    if family == NUMERIC:
        return _number(value, data_type)
    if family == BOOLEAN:
        return _boolean(value, data_type)
    if family == TEMPORAL:
        return _temporal(value, data_type)
    if isinstance(value, bool):
        raise _not_a(value, data_type, "text")
    if isinstance(value, float) and not math.isfinite(value):
        raise _not_a(value, data_type, "text")
    return value if isinstance(value, str) else str(value)

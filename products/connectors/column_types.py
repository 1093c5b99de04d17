"""Column types: what a declared type name says, by family, and values people list read
as a column's type.

A column's type is the text a source gives for it: PostgreSQL (`numeric(12,2)`, `double
precision`, `timestamp(3) with time zone`, `character varying(20)`, `integer[]`, `citext`),
DuckDB (`DECIMAL(12,2)`, `DOUBLE`, `TIMESTAMP WITH TIME ZONE`, `TIMESTAMP_NS`, `HUGEINT`,
`INTEGER[]`), Spark (`timestamp_ntz`, `array<int>`), or Arrow and Parquet (`int64`,
`decimal128(12, 2)`, `timestamp[us, tz=UTC]`, `large_string`). `column_type()` is the one
reading of such a name: every rule that depends on a column's type (the values a check
compares, the values a filter binds, the Arrow type of an empty read) starts from it.
`int8` is PostgreSQL's and DuckDB's 8-byte integer (the sources name types in SQL); the
bit-sized `int16`/`int32`/`int64` and `uint8`... are Arrow's and DuckDB's aliases.

Checks compare values by the column's type, the same way on every engine: numbers as
numbers (decimals exactly), text as text, booleans as booleans, dates and timestamps as
such. Anything else (uuid, enums, lists, structs, intervals, times, and `citext`/`name`,
whose own comparison is not the exact text's) is compared as text, as the source writes it.

    column_type("numeric(12,2)")            # ColumnType(kind="decimal", precision=12, scale=2)
    type_family("numeric(12,2)")            # "numeric"
    typed_value("5", "numeric(12,2)")       # Decimal("5")
    typed_value("abc", "DOUBLE")            # ValueError: 'abc' is not a number

Import-light on purpose (no pyarrow, no duckdb): sharing.access.filters and
sharing.serving.arrow_values read it in processes that never load those.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

# --- what a declared type name says -----------------------------------------------------------

INTEGER = "integer"
DECIMAL = "decimal"
FLOAT = "float"
BOOLEAN_KIND = "boolean"
TEXT_KIND = "text"
DATE = "date"
TIME = "time"
TIMETZ = "timetz"
TIMESTAMP = "timestamp"
TIMESTAMPTZ = "timestamptz"
UUID = "uuid"
INTERVAL = "interval"
ARRAY = "array"
UNKNOWN = "other"
NUMBER_KINDS = (INTEGER, DECIMAL, FLOAT)


@dataclass(frozen=True)
class ColumnType:
    """A declared type, read. `name` is its base name (lower case, without size or
    precision: "numeric", "citext", "timestamp_ns"); `size` the bytes of an integer or a
    float; `precision`/`scale` a decimal's (None: unconstrained); `unit` the unit a
    timestamp or time names ("s", "ms", "us", "ns"; None: the source's default, us);
    `element` an array's element type (None when its name is not given)."""

    kind: str
    name: str = ""
    size: int | None = None
    unsigned: bool = False
    precision: int | None = None
    scale: int | None = None
    unit: str | None = None
    element: ColumnType | None = None


# name -> (bytes, unsigned)
_INTEGERS = {
    **dict.fromkeys(("tinyint", "int1", "byteint"), (1, False)),
    **dict.fromkeys(("smallint", "int2", "short", "smallserial", "serial2", "int16"), (2, False)),
    **dict.fromkeys(("integer", "int", "int4", "signed", "serial", "serial4", "int32"), (4, False)),
    **dict.fromkeys(("bigint", "int8", "long", "bigserial", "serial8", "int64"), (8, False)),
    **dict.fromkeys(("hugeint", "int128"), (16, False)),
    **dict.fromkeys(("utinyint", "uint8"), (1, True)),
    **dict.fromkeys(("usmallint", "uint16"), (2, True)),
    **dict.fromkeys(("uinteger", "uint32"), (4, True)),
    **dict.fromkeys(("ubigint", "uint64"), (8, True)),
    **dict.fromkeys(("uhugeint", "uint128"), (16, True)),
}
_FLOATS = {
    **dict.fromkeys(("halffloat", "float16"), 2),
    **dict.fromkeys(("real", "float4", "float32", "float"), 4),  # DuckDB, Spark, Arrow: 4
    **dict.fromkeys(("double precision", "double", "float8", "float64"), 8),
}
_DECIMALS = ("numeric", "decimal", "dec", "decimal128", "decimal256")
_TEXTS = (
    "text",
    "varchar",
    "character varying",
    "char",
    "character",
    "bpchar",
    "string",
    "nvarchar",
    "nchar",
    "name",
    "citext",
    "utf8",
    "large_string",
    "large_utf8",
    "string_view",
)
_BOOLEANS = ("boolean", "bool", "logical")
_DATES = ("date", "date32", "date64")
_TIMES = ("time", "time without time zone", "time32", "time64")
_TIMETZS = ("time with time zone", "timetz")
_TIMESTAMPS = ("timestamp", "timestamp without time zone", "datetime", "timestamp_ntz")
_TIMESTAMPTZS = ("timestamp with time zone", "timestamptz", "timestamp_tz", "timestamp_ltz")
_TIMESTAMP_UNITS = {
    "timestamp_s": "s",
    "timestamp_ms": "ms",
    "timestamp_us": "us",
    "timestamp_ns": "ns",
}
_INTERVALS = ("interval", "month_day_nano_interval", "day_time_interval", "duration")
_UNITS = ("s", "ms", "us", "ns")

_SIZE = re.compile(r"\((?P<args>[^()]*)\)")  # (20), (12,2), (3): a size, precision or scale
_BRACKETS = re.compile(r"\[(?P<args>[^\[\]]*)\]$")  # Arrow's [us, tz=UTC], [day]
_QUALIFIED = re.compile(r'"?[a-z_][a-z0-9_$]*"?\.(?P<rest>.+)')  # public.citext
_ARRAY_SUFFIX = re.compile(r"(?P<element>.+?)(\[\d*\])+")  # integer[], INTEGER[3]
_ARRAY_GENERIC = re.compile(
    r"(array|list|large_list|large_list_view|list_view|fixed_size_list)<(?P<element>.*)>(\[\d+\])?"
)


def _normal(data_type: str) -> str:
    """Lower case, one space between words, none around brackets and commas."""
    text = " ".join((data_type or "").lower().split())
    return re.sub(r"\s*([()\[\],<>])\s*", r"\1", text)


@lru_cache(maxsize=1024)
def column_type(data_type: str) -> ColumnType:
    """What the declared type name `data_type` says (see ColumnType); a name it does not
    know is kind "other" (structs, maps, enums, json, blobs, user-defined types)."""
    return _read(_normal(data_type))


def _read(text: str) -> ColumnType:
    generic = _ARRAY_GENERIC.fullmatch(text)
    if generic:  # Spark array<int>, Arrow list<item: int64>
        element = generic["element"].rsplit(":", 1)[-1].strip()
        return ColumnType(ARRAY, name=generic[1], element=_read(element) if element else None)
    suffix = _ARRAY_SUFFIX.fullmatch(text)
    if suffix:
        return ColumnType(ARRAY, name="array", element=_read(suffix["element"]))
    if text == "array":  # information_schema's data_type of every PostgreSQL array
        return ColumnType(ARRAY, name="array")
    qualified = _QUALIFIED.fullmatch(text)
    if qualified and "(" not in text.split(".", 1)[0]:
        inner = _read(qualified["rest"])
        if inner.kind != UNKNOWN:
            return inner
    args, brackets = [], []
    bracket = _BRACKETS.search(text)
    if bracket:
        brackets = [part.strip() for part in bracket["args"].split(",") if part.strip()]
        text = text[: bracket.start()]
    size = _SIZE.search(text)
    if size:
        args = [part.strip() for part in size["args"].split(",")]
        text = " ".join((text[: size.start()] + " " + text[size.end() :]).split())
    return _named(text, args, brackets)


def _whole_args(args: list[str]) -> list[int] | None:
    """The arguments as whole numbers (PostgreSQL allows a negative scale), else None."""
    try:
        return [int(arg) for arg in args]
    except ValueError:
        return None


def _named(name: str, args: list[str], brackets: list[str]) -> ColumnType:  # noqa: PLR0911
    numbers = _whole_args(args)
    if name in _INTEGERS and not args:
        size, unsigned = _INTEGERS[name]
        return ColumnType(INTEGER, name=name, size=size, unsigned=unsigned)
    if name in _DECIMALS and numbers is not None and len(numbers) <= 2:
        precision = numbers[0] if numbers else None
        scale = (numbers[1] if len(numbers) == 2 else 0) if numbers else None
        return ColumnType(DECIMAL, name=name, precision=precision, scale=scale)
    if name in _FLOATS and numbers is not None and len(numbers) <= 1:
        size = _FLOATS[name]
        if name == "float" and numbers:  # PostgreSQL float(p): p binary digits
            size = 4 if numbers[0] <= 24 else 8
        return ColumnType(FLOAT, name=name, size=size)
    if name in _BOOLEANS and not args:
        return ColumnType(BOOLEAN_KIND, name=name)
    if name in _TEXTS:  # varchar(20), varchar(max)
        return ColumnType(TEXT_KIND, name=name)
    if name in _DATES and not args:
        return ColumnType(DATE, name=name)
    unit = next((part for part in brackets if part in _UNITS), None)
    zoned = any(part.startswith("tz=") for part in brackets)
    if name in _TIMES and numbers is not None:
        return ColumnType(TIME, name=name, unit=unit)
    if name in _TIMETZS and numbers is not None:
        return ColumnType(TIMETZ, name=name, unit=unit)
    if name in _TIMESTAMPTZS and numbers is not None:
        return ColumnType(TIMESTAMPTZ, name=name, unit=unit)
    if name in _TIMESTAMPS and numbers is not None:
        return ColumnType(TIMESTAMPTZ if zoned else TIMESTAMP, name=name, unit=unit)
    if name in _TIMESTAMP_UNITS and not args:
        return ColumnType(TIMESTAMP, name=name, unit=_TIMESTAMP_UNITS[name])
    if name == "uuid" and not args:
        return ColumnType(UUID, name=name)
    if name.split(" ", 1)[0] in _INTERVALS:  # interval, interval day to second, duration[us]
        return ColumnType(INTERVAL, name=name, unit=unit)
    return ColumnType(UNKNOWN, name=name)


# --- families: how checks compare a column's values -------------------------------------------

NUMERIC = "numeric"
TEXT = "text"
BOOLEAN = "boolean"
TEMPORAL = "temporal"
OTHER = "other"
# Text whose own comparison is not its exact text (citext ignores case): compared as text.
_TEXT_COMPARED_AS_CAST = ("citext", "name")
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


def numeric_kind(data_type: str) -> str | None:
    """ "integer", "decimal" or "float" for a number type, else None."""
    kind = column_type(data_type).kind
    return kind if kind in NUMBER_KINDS else None


def temporal_kind(data_type: str) -> str | None:
    """ "date", "timestamptz" (an instant) or "timestamp" (a wall-clock time), else None
    (a time of day is no temporal value for checks: it is compared as its text)."""
    kind = column_type(data_type).kind
    return kind if kind in (DATE, TIMESTAMP, TIMESTAMPTZ) else None


def type_family(data_type: str) -> str:
    """numeric, text, boolean, temporal or other (unknown types are other)."""
    read = column_type(data_type)
    if read.kind in NUMBER_KINDS:
        return NUMERIC
    if read.kind == TEXT_KIND and read.name not in _TEXT_COMPARED_AS_CAST:
        return TEXT
    if read.kind == BOOLEAN_KIND:
        return BOOLEAN
    if read.kind in (DATE, TIMESTAMP, TIMESTAMPTZ):
        return TEMPORAL
    return OTHER


def is_single_precision(data_type: str) -> bool:
    """A 4-byte float (PostgreSQL real, DuckDB FLOAT): listed values are compared at that
    precision, or 0.1 would never equal the column's 0.1."""
    read = column_type(data_type)
    return read.kind == FLOAT and read.size == 4


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
    declared = column_type(data_type)
    if declared.precision is not None and (declared.scale or 0) >= 0:
        precision, scale = declared.precision, declared.scale or 0
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

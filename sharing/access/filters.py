"""Structured row filters: a list of (column, operator, value) clauses that must all hold.

Filters come from people (the API's `filter` parameter, a grant's row filter). They are
validated against the port's known columns and compiled with quoted identifiers and
bound values; their text never reaches SQL.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from portal.core.safe_json import JSONRefused, loads_limited
from products.connectors import column_types
from sharing.choices import FILTER_OPERATORS

MAX_CLAUSES = 20
MAX_IN_VALUES = 1000
NO_VALUE_OPERATORS = ("is null", "is not null")
LIST_OPERATORS = ("in", "not in")
# Operators as messages name them (see filter_in_words for whole conditions in words).
_OP_WORDS = {
    "=": "is",
    "!=": "is not",
    "<": "is less than",
    "<=": "is at most",
    ">": "is more than",
    ">=": "is at least",
    "in": "is one of",
    "not in": "is none of",
    "is null": "has no value",
    "is not null": "has a value",
}


class FilterError(ValueError):
    """A filter is malformed; the message says what is wrong and how to write it."""


NOT_FINITE = (
    "a value must be a finite number: NaN and infinities (or numbers too large for a "
    "float, such as 1e999) compare with nothing."
)


def _refuse_constant(word: str):
    # Python's json reads the bare words NaN and Infinity, which are not JSON.
    raise FilterError(f"{word} is not a JSON value: {NOT_FINITE}")


def _not_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


@dataclass(frozen=True)
class Clause:
    column: str
    op: str
    value: Any = None

    def as_dict(self) -> dict:
        """The clause as JSON values (typed values written back as JSON: see clauses_typed)."""
        data = {"column": self.column, "op": self.op}
        if self.op in LIST_OPERATORS:
            data["value"] = [_as_json(value) for value in self.value]
        elif self.op not in NO_VALUE_OPERATORS:
            data["value"] = _as_json(self.value)
        return data


def _as_json(value: Any) -> Any:
    if isinstance(value, date | time):  # datetime too
        return value.isoformat()
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        number = float(value)
        return number if Decimal(repr(number)) == value else str(value)
    return value


def parse_filter(raw: str | list | None) -> list[Clause]:
    """Parse a filter given as JSON text or as a list of {"column", "op", "value"}."""
    if raw in (None, "", []):
        return []
    if isinstance(raw, str):
        try:
            raw = loads_limited(raw, what="The filter", parse_constant=_refuse_constant)
        except JSONRefused as exc:
            if not isinstance(exc.__cause__, json.JSONDecodeError):
                raise FilterError(str(exc)) from exc  # too large, too deep, a NUL
            raise FilterError(
                "The filter is not valid JSON. Write a list such as "
                '[{"column": "country", "op": "=", "value": "BE"}].'
            ) from exc
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise FilterError("The filter must be a list of conditions.")
    if len(raw) > MAX_CLAUSES:
        raise FilterError(f"A filter has at most {MAX_CLAUSES} conditions.")
    clauses = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise FilterError(f"Condition {index} must be an object with column, op and value.")
        column, op = item.get("column"), str(item.get("op", "")).strip().lower()
        if not isinstance(column, str) or not column:
            raise FilterError(f"Condition {index} needs a column name.")
        if op not in FILTER_OPERATORS:
            raise FilterError(
                f"Condition {index}: the operator {item.get('op')!r} is not one of "
                f"{', '.join(FILTER_OPERATORS)}."
            )
        value = item.get("value")
        if op in NO_VALUE_OPERATORS:
            value = None
        elif op in LIST_OPERATORS:
            if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
                raise FilterError(
                    f"Condition {index} ({column} {_OP_WORDS[op]}) takes a list of 1 to "
                    f"{MAX_IN_VALUES} values."
                )
            if any(isinstance(v, dict | list) for v in value):
                raise FilterError(f"Condition {index}: values must be numbers, text or booleans.")
            if any(_not_finite(v) for v in value):
                raise FilterError(f"Condition {index}: {NOT_FINITE}")
            value = tuple(value)
        elif value is None or isinstance(value, dict | list):
            raise FilterError(
                f"Condition {index} ({column} {_OP_WORDS[op]}) takes one value (a number, text "
                "or boolean)."
            )
        elif _not_finite(value):
            raise FilterError(f"Condition {index}: {NOT_FINITE}")
        clauses.append(Clause(column=column, op=op, value=value))
    return clauses


def columns_as_written(names: Iterable[str], known: Collection[str]) -> list[str]:
    """Column names as a person listed them ("order_id, amount", the API's ?columns=, one
    per line in a form): each name as written when a column is named so, else without
    the spaces around it, so "a, b" names "a" and "b" while a column named " b" is named
    by " b" (a name's own spaces are part of it). Blank entries that name no column are
    left out; unknown names stay, for the caller to refuse by name."""
    return [
        name if name in known else name.strip() for name in names if name in known or name.strip()
    ]


def unknown_columns(clauses: Iterable[Clause], known: Iterable[str]) -> list[str]:
    known = set(known)
    return sorted({clause.column for clause in clauses if clause.column not in known})


def compile_clauses(
    clauses: Iterable[Clause],
    *,
    quote: Callable[[str], str],
    placeholder: Callable[[], str],
) -> tuple[str, list[Any]]:
    """SQL for the AND of the clauses (identifiers quoted, values bound), or ("", [])."""
    parts: list[str] = []
    params: list[Any] = []
    for clause in clauses:
        column = quote(clause.column)
        if clause.op == "is null":
            parts.append(f"{column} IS NULL")
        elif clause.op == "is not null":
            parts.append(f"{column} IS NOT NULL")
        elif clause.op in LIST_OPERATORS:
            marks = ", ".join(placeholder() for _ in clause.value)
            keyword = "IN" if clause.op == "in" else "NOT IN"
            parts.append(f"{column} {keyword} ({marks})")
            params.extend(clause.value)
        else:
            parts.append(f"{column} {'<>' if clause.op == '!=' else clause.op} {placeholder()}")
            params.append(clause.value)
    return " AND ".join(parts), params


# --- values of the column's type -------------------------------------------------------------

# Whole numbers are bound as 64-bit integers for every integer type: a narrower column
# compares with them (an out-of-range value matches nothing), and no driver binds wider.
INT64 = (-(2**63), 2**63 - 1)
MAX_DECIMAL_DIGITS = 38  # the widest decimal DuckDB and Arrow bind
_WHOLE = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class _Mismatch(Exception):
    """A value that does not fit; `needs` says what the column takes."""

    def __init__(self, needs: str) -> None:
        super().__init__(needs)
        self.needs = needs


def _whole(value: Any, low: int, high: int) -> int:
    needs = "a whole number"
    if isinstance(value, bool):
        raise _Mismatch(needs)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float | Decimal):
        if not value == value or value != int(value):  # noqa: PLR0124 - NaN
            raise _Mismatch(needs)
        number = int(value)
    elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise _Mismatch(needs)
    if not low <= number <= high:
        raise _Mismatch(f"a whole number from {low:,} to {high:,}")
    return number


def _decimal(value: Any) -> Decimal:
    needs = "a number"
    if isinstance(value, bool):
        raise _Mismatch(needs)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # the number as written, not its binary expansion
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = Decimal(value.strip())
    else:
        raise _Mismatch(needs)
    if not number.is_finite() or len(number.as_tuple().digits) > MAX_DECIMAL_DIGITS:
        raise _Mismatch(f"a number of at most {MAX_DECIMAL_DIGITS} digits")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and abs(exponent) > MAX_DECIMAL_DIGITS:
        raise _Mismatch(f"a number of at most {MAX_DECIMAL_DIGITS} digits")
    return number


def _float(value: Any) -> float:
    needs = "a number"
    if isinstance(value, bool):
        raise _Mismatch(needs)
    if isinstance(value, int | float | Decimal):
        number = float(value)
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise _Mismatch(needs)
    if not math.isfinite(number):
        raise _Mismatch("a finite number")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _Mismatch("true or false")


def _date(value: Any) -> date:
    needs = "a date written YYYY-MM-DD"
    if isinstance(value, datetime):
        raise _Mismatch(needs)
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise _Mismatch(needs)
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise _Mismatch(needs) from None


def _timestamp(value: Any) -> datetime:
    needs = "a date and time in ISO 8601 (YYYY-MM-DDTHH:MM:SS, with an optional offset)"
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        raise _Mismatch(needs)
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Mismatch(needs) from None


def _time(value: Any) -> time:
    needs = "a time written HH:MM[:SS]"
    if isinstance(value, time):
        return value
    if not isinstance(value, str):
        raise _Mismatch(needs)
    try:
        return time.fromisoformat(value.strip())
    except ValueError:
        raise _Mismatch(needs) from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise _Mismatch("text")


def _int64(value: Any) -> int:
    return _whole(value, *INT64)


# The converter for each kind of declared type (products.connectors.column_types reads the
# type's name); other kinds (uuid, intervals, arrays, enums...) are compared as given.
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    column_types.INTEGER: _int64,
    column_types.DECIMAL: _decimal,
    column_types.FLOAT: _float,
    column_types.BOOLEAN_KIND: _boolean,
    column_types.DATE: _date,
    column_types.TIME: _time,
    column_types.TIMETZ: _time,
    column_types.TIMESTAMP: _timestamp,
    column_types.TIMESTAMPTZ: _timestamp,
    column_types.TEXT_KIND: _text,
}


def value_converter(data_type: str) -> Callable[[Any], Any] | None:
    """The function turning a filter value into the Python value bound for a column of
    `data_type` (raising _Mismatch), or None for types compared as given."""
    return _CONVERTERS.get(column_types.column_type(data_type).kind)


def _quoted(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text if len(text) <= 60 else text[:60] + "…"
    return repr(text) if isinstance(value, str) else text


def clauses_typed(clauses: Iterable[Clause], column_types: dict[str, str]) -> list[Clause]:
    """The clauses with each value converted to its column's type (an int for a bigint,
    a Decimal for a numeric, a date for a date...), so the source compares values of the
    column's own type. Raises FilterError naming the column, its type and the value when
    a value does not fit. Columns missing from `column_types`, and types not listed
    here, are left as given (unknown columns are refused by their callers)."""
    typed = []
    for clause in clauses:
        data_type = column_types.get(clause.column) or ""
        convert = value_converter(data_type)
        if convert is None or clause.op in NO_VALUE_OPERATORS:
            typed.append(clause)
            continue
        values = clause.value if clause.op in LIST_OPERATORS else (clause.value,)
        converted = []
        for value in values:
            try:
                converted.append(convert(value))
            except _Mismatch as exc:
                raise FilterError(
                    f"The filter on {clause.column} needs {exc.needs} ({data_type}); "
                    f"{_quoted(value)} is not one."
                ) from None
        value = tuple(converted) if clause.op in LIST_OPERATORS else converted[0]
        typed.append(Clause(column=clause.column, op=clause.op, value=value))
    return typed


def clauses_check_types(clauses: Iterable[Clause], column_types: dict[str, str]) -> None:
    """Raise FilterError when a clause's value does not fit its column's type."""
    clauses_typed(clauses, column_types)


# --- filters in words ------------------------------------------------------------------------

OPERATOR_WORDS = _OP_WORDS
WORDS_VALUE_CHARS = 60
# Text that would read as part of the sentence is put in quotes: empty, with spaces at
# either end, or holding a comma, a quote or a joining word.
_NEEDS_QUOTES = re.compile(r"^$|^\s|\s$|[,\"“”]|\b(?:or|and|nor)\b", re.IGNORECASE)


def value_in_words(value: Any) -> str:
    """One filter value as a person reads it: numbers and dates as written (ISO 8601),
    true/false, text as it is unless it would blur the sentence (then in “quotes”)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "no value"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:  # noqa: PLR2004
        return str(int(value))  # 10.0 on a double column reads "10"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, date | time):  # datetime too
        return value.isoformat()
    if not isinstance(value, str):
        return json.dumps(value, default=str)
    text = value if len(value) <= WORDS_VALUE_CHARS else value[:WORDS_VALUE_CHARS] + "…"
    return f"“{text}”" if _NEEDS_QUOTES.search(text) else text


def _values_in_words(values: Iterable[Any], joiner: str) -> str:
    words = [value_in_words(value) for value in values]
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} {joiner} {words[-1]}"


def clause_in_words(clause: Clause) -> str:
    """`country in ["BE", "NL"]` as "country is BE or NL"."""
    if clause.op == "in":
        return f"{clause.column} is {_values_in_words(clause.value, 'or')}"
    if clause.op == "not in":
        values = list(clause.value)
        if len(values) == 1:
            return f"{clause.column} is not {value_in_words(values[0])}"
        if len(values) == 2:  # noqa: PLR2004 - "neither ... nor" takes two
            first, second = (value_in_words(value) for value in values)
            return f"{clause.column} is neither {first} nor {second}"
        return f"{clause.column} is none of {_values_in_words(values, 'or')}"
    words = f"{clause.column} {OPERATOR_WORDS.get(clause.op, clause.op)}"
    if clause.op in NO_VALUE_OPERATORS:
        return words
    return f"{words} {value_in_words(clause.value)}"


def filter_phrases(raw: str | list | tuple | None) -> list[str]:
    """Each condition of a filter in words; a ">=" and a "<=" on one column, one after the
    other (how the filter builder writes "between"), read as one "is between a and b".
    A filter that does not parse (an old row written before a rule) is shown as given."""
    try:
        if isinstance(raw, list | tuple) and all(isinstance(item, Clause) for item in raw):
            clauses = list(raw)  # a decision's row filter, already parsed
        else:
            clauses = parse_filter(raw)
    except FilterError:
        return [raw if isinstance(raw, str) else json.dumps(raw, default=str)]
    phrases = []
    index = 0
    while index < len(clauses):
        clause = clauses[index]
        after = clauses[index + 1] if index + 1 < len(clauses) else None
        if (
            after is not None
            and clause.op == ">="
            and after.op == "<="
            and after.column == clause.column
        ):
            low, high = value_in_words(clause.value), value_in_words(after.value)
            phrases.append(f"{clause.column} is between {low} and {high}")
            index += 2
            continue
        phrases.append(clause_in_words(clause))
        index += 1
    return phrases


def filter_in_words(raw: str | list | tuple | None) -> str:
    """A filter as one sentence: "country is BE or NL and amount is at least 10" ("" for
    no filter). Takes what is stored (a list of clause objects), JSON text, or Clauses."""
    return " and ".join(filter_phrases(raw))


# --- the filter builder of pages (static/js/filter_builder.js) -------------------------------

# What the builder offers for a kind of column; "between" is written as ">=" then "<=".
_ORDERED_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "between", "in", "not in")
BUILDER_OPERATORS = {
    "number": _ORDERED_OPERATORS,
    "date": _ORDERED_OPERATORS,
    "timestamp": _ORDERED_OPERATORS,
    "time": _ORDERED_OPERATORS,
    "boolean": ("=", "!="),
    "text": ("=", "!=", "in", "not in", "<", "<=", ">", ">="),
    "other": ("=", "!=", "in", "not in"),
}
_BUILDER_KINDS = {
    column_types.INTEGER: "number",
    column_types.DECIMAL: "number",
    column_types.FLOAT: "number",
    column_types.DATE: "date",
    column_types.TIMESTAMP: "timestamp",
    column_types.TIMESTAMPTZ: "timestamp",
    column_types.TIME: "time",
    column_types.TIMETZ: "time",
    column_types.BOOLEAN_KIND: "boolean",
    column_types.TEXT_KIND: "text",
}


def filter_builder_config(column_types_by_name: dict[str, str], *, values_url: str = "") -> str:
    """What the filter builder of a row-filter field needs, as JSON for the field's
    `data-filter-builder` attribute: each column that may be filtered on with its type and
    the operators its kind takes, the words of each operator, and where to ask for a
    column's distinct values (`values_url`, "" for none)."""
    columns = []
    for name, data_type in column_types_by_name.items():
        kind = _BUILDER_KINDS.get(column_types.column_type(data_type or "").kind, "other")
        operators = (*BUILDER_OPERATORS[kind], *NO_VALUE_OPERATORS)
        columns.append({"name": name, "type": data_type, "kind": kind, "ops": operators})
    words = {**OPERATOR_WORDS, "between": "is between"}
    return json.dumps({"columns": columns, "words": words, "valuesUrl": values_url})


def filter_builder_attrs(
    widget_attrs: dict, column_types_by_name: dict[str, str], *, values_url: str = ""
) -> None:
    """Mark a row-filter textarea for the builder (its JSON stays what is posted)."""
    widget_attrs["data-filter-builder"] = filter_builder_config(
        column_types_by_name, values_url=values_url
    )
    widget_attrs.setdefault("spellcheck", "false")

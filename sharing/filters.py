"""Structured row filters: a list of (column, operator, value) clauses that must all hold.

Filters come from people (the API's `filter` parameter, a grant's row filter). They are
validated against the port's known columns and compiled with quoted identifiers and
bound values; their text never reaches SQL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sharing.choices import FILTER_OPERATORS

MAX_CLAUSES = 20
MAX_IN_VALUES = 1000
NO_VALUE_OPERATORS = ("is null", "is not null")
LIST_OPERATORS = ("in", "not in")


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
        data = {"column": self.column, "op": self.op}
        if self.op not in NO_VALUE_OPERATORS:
            data["value"] = list(self.value) if self.op in LIST_OPERATORS else self.value
        return data


def parse_filter(raw: str | list | None) -> list[Clause]:
    """Parse a filter given as JSON text or as a list of {"column", "op", "value"}."""
    if raw in (None, "", []):
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise FilterError(
                "The filter is not valid JSON. Write a list such as "
                '[{"column": "country", "op": "=", "value": "BE"}].'
            ) from exc
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise FilterError("The filter must be a list of clauses.")
    if len(raw) > MAX_CLAUSES:
        raise FilterError(f"At most {MAX_CLAUSES} clauses.")
    clauses = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise FilterError(f"Clause {index} must be an object with column, op and value.")
        column, op = item.get("column"), str(item.get("op", "")).strip().lower()
        if not isinstance(column, str) or not column:
            raise FilterError(f"Clause {index} needs a column name.")
        if op not in FILTER_OPERATORS:
            raise FilterError(
                f"Clause {index}: operator {item.get('op')!r} is not one of "
                f"{', '.join(FILTER_OPERATORS)}."
            )
        value = item.get("value")
        if op in NO_VALUE_OPERATORS:
            value = None
        elif op in LIST_OPERATORS:
            if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
                raise FilterError(
                    f"Clause {index}: '{op}' takes a list of 1 to {MAX_IN_VALUES} values."
                )
            if any(isinstance(v, dict | list) for v in value):
                raise FilterError(f"Clause {index}: values must be numbers, text or booleans.")
            if any(_not_finite(v) for v in value):
                raise FilterError(f"Clause {index}: {NOT_FINITE}")
            value = tuple(value)
        elif value is None or isinstance(value, dict | list):
            raise FilterError(
                f"Clause {index}: '{op}' takes one value (a number, text or boolean)."
            )
        elif _not_finite(value):
            raise FilterError(f"Clause {index}: {NOT_FINITE}")
        clauses.append(Clause(column=column, op=op, value=value))
    return clauses


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

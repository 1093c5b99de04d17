"""Compiles a port's checks into as few SQL statements as possible.

Every row-level check, the row count and the freshness maximum become one expression
of a single aggregate `SELECT ... FROM <port relation>`: one scan of the table, pushed
down to PostgreSQL or DuckDB. Custom SQL checks run one statement each. Identifiers are
quoted from the source's own column list; every value is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from products.choices import CheckKind
from products.connectors import Connector
from products.services.column_types import (
    NUMERIC,
    OTHER,
    is_single_precision,
    numeric_kind,
    type_family,
    typed_value,
)

SAMPLE_ROWS = 20


@dataclass
class AggregatePlan:
    """One SELECT over the port relation. `slots[check_id]` is the index of that check's
    value in the result row; index 0 is always count(*)."""

    sql: str
    params: list[Any]
    slots: dict[int, int] = field(default_factory=dict)
    expressions: list[str] = field(default_factory=list)


class CheckSQL:
    """Dialect-aware SQL for one connector's relation."""

    def __init__(self, connector: Connector, *, column_types: dict[str, str] | None = None) -> None:
        """`column_types`: the relation's columns and their types (as the source names
        them), which accepted values are compared by."""
        self.connector = connector
        self.dialect = connector.dialect
        self.p = connector.paramstyle
        self.relation = connector.relation_sql()
        self.column_types = column_types or {}

    def q(self, column: str) -> str:
        return self.connector.quote_ident(column)

    def _placeholders(self, count: int) -> str:
        return ", ".join([self.p] * count)

    def _as_text(self, column: str) -> str:
        return f"CAST({self.q(column)} AS {'TEXT' if self.dialect == 'postgresql' else 'VARCHAR'})"

    def failing_condition(self, check) -> tuple[str, list[Any]]:
        """The WHERE condition that selects a row-level check's failing rows."""
        column = self.q(check.column)
        params = check.params or {}
        if check.kind == CheckKind.NOT_NULL:
            return f"{column} IS NULL", []
        if check.kind == CheckKind.UNIQUE:
            # Only the first SAMPLE_ROWS duplicated keys: the sample needs no more, and
            # `= ANY(ARRAY(...))` makes PostgreSQL group the keys once, not per worker.
            keys = (
                f"SELECT {column} FROM {self.relation} WHERE {column} IS NOT NULL "
                f"GROUP BY {column} HAVING count(*) > 1 ORDER BY {column} LIMIT {SAMPLE_ROWS}"
            )
            if self.dialect == "postgresql":
                return f"{column} = ANY(ARRAY({keys}))", []
            return f"{column} IN ({keys})", []
        if check.kind == CheckKind.ACCEPTED_VALUES:
            return self._accepted_values_condition(check.column, params.get("values", []))
        if check.kind == CheckKind.RANGE:
            parts, values = [], []
            if params.get("min") is not None:
                parts.append(f"{column} < {self.p}")
                values.append(params["min"])
            if params.get("max") is not None:
                parts.append(f"{column} > {self.p}")
                values.append(params["max"])
                if numeric_kind(self.column_types.get(check.column, "")) == "float":
                    # NaN is above every number (both engines order it so); said outright,
                    # or DuckDB's Parquet statistics (which leave NaN out) skip its rows.
                    parts.append(self._is_nan(column))
            return "(" + " OR ".join(parts) + ")", values
        if check.kind == CheckKind.PATTERN:
            if self.dialect == "postgresql":
                match = f"{self._as_text(check.column)} ~ {self.p}"
            else:
                match = f"regexp_matches({self._as_text(check.column)}, {self.p})"
            return f"{column} IS NOT NULL AND NOT ({match})", [params.get("regex", "")]
        raise ValueError(f"{check.kind} is not a row-level check")

    def _is_nan(self, column: str) -> str:
        if self.dialect == "postgresql":
            return f"{column} = CAST('NaN' AS DOUBLE PRECISION)"
        return f"isnan({column})"

    def _accepted_values_condition(self, name: str, listed: list) -> tuple[str, list[Any]]:
        """Rows whose value is none of `listed`, compared by the column's type on every
        engine: numbers as numbers (decimals exactly, bound as Decimal; floats at the
        column's precision, where NaN equals NaN), text as text, booleans and dates and
        timestamps as such; other types as their text. NULL is not failing. Raises
        ValueError (naming the value and the type) for a value the type cannot hold."""
        data_type = self.column_types.get(name, "")
        values = [typed_value(value, data_type) for value in listed]
        column = self.q(name)
        compared, marks = column, [self.p] * len(values)
        family = type_family(data_type)
        if family == NUMERIC and numeric_kind(data_type) == "float":
            double = "DOUBLE PRECISION" if self.dialect == "postgresql" else "DOUBLE"
            target = "REAL" if is_single_precision(data_type) else double
            marks = [f"CAST({self.p} AS {target})"] * len(values)
        elif family == OTHER:
            compared = self._as_text(name)
        return f"{column} IS NOT NULL AND {compared} NOT IN ({', '.join(marks)})", values

    def aggregate_expression(self, check) -> tuple[str, list[Any]] | None:
        """The aggregate computing a check's observed value, or None when the check
        needs no column expression (row count, volume change, schema, custom SQL)."""
        if check.kind == CheckKind.UNIQUE:
            if self.dialect != "postgresql":
                return None  # DuckDB: one grouping statement instead (unique_statement)
            # A scalar subquery (an InitPlan): its sort of the column runs once, apart,
            # so count(DISTINCT) no longer holds the main scan to one process (an
            # aggregate with a DISTINCT cannot be split across parallel workers).
            column = self.q(check.column)
            return (
                f"(SELECT count({column}) - count(DISTINCT {column}) FROM {self.relation})",
                [],
            )
        if check.kind in (
            CheckKind.NOT_NULL,
            CheckKind.ACCEPTED_VALUES,
            CheckKind.RANGE,
            CheckKind.PATTERN,
        ):
            condition, params = self.failing_condition(check)
            return f"count(*) FILTER (WHERE {condition})", params
        if check.kind == CheckKind.FRESHNESS:
            return f"max({self.q(check.column)})", []
        return None

    def aggregate_plan(self, checks, *, extra_max_column: str | None = None) -> AggregatePlan:
        """One SELECT for every check that has an aggregate expression. When
        `extra_max_column` is given (the port's freshness column) its max() is added as
        the last expression, for the observation history."""
        expressions, params, slots = ["count(*)"], [], {}
        for check in checks:
            compiled = self.aggregate_expression(check)
            if compiled is None:
                continue
            expression, values = compiled
            slots[check.pk] = len(expressions)
            expressions.append(expression)
            params.extend(values)
        if extra_max_column:
            expressions.append(f"max({self.q(extra_max_column)})")
        select = ",\n  ".join(f"{e} AS v{i}" for i, e in enumerate(expressions))
        return AggregatePlan(
            sql=f"SELECT\n  {select}\nFROM {self.relation}",
            params=params,
            slots=slots,
            expressions=expressions,
        )

    def unique_statement(self, check) -> str:
        """DuckDB: the duplicate count and the first SAMPLE_ROWS duplicated keys, grouping
        the column once (a count(DISTINCT) in the aggregate plus a grouping sample would
        group it twice)."""
        column = self.q(check.column)
        return (
            f"SELECT coalesce(sum(n) - count(*), 0), list(k ORDER BY k)[1:{SAMPLE_ROWS}] "
            f"FROM (SELECT {column} AS k, count(*) AS n FROM {self.relation} "
            f"WHERE {column} IS NOT NULL GROUP BY {column} HAVING count(*) > 1)"
        )

    def sample_by_keys_sql(self, check, keys: list[Any]) -> tuple[str, list[Any]]:
        """The rows whose column value is one of `keys` (duplicated keys found by
        unique_statement)."""
        column = self.q(check.column)
        return (
            f"SELECT * FROM {self.relation} WHERE {column} IN ({self._placeholders(len(keys))}) "
            f"ORDER BY {column} LIMIT {SAMPLE_ROWS}",
            list(keys),
        )

    def sample_sql(self, check) -> tuple[str, list[Any]]:
        """The first SAMPLE_ROWS failing rows in the source's order (the unique check's:
        by its column)."""
        condition, params = self.failing_condition(check)
        numbered = None if check.kind == CheckKind.UNIQUE else self.connector.numbered_relation()
        if numbered:
            # Parquet: DuckDB does not push such a condition into the file's scan, so a
            # plain `SELECT * ... WHERE ... LIMIT` decodes every column of every row it
            # reads. First the failing rows' positions (reading the condition's column
            # only), then those rows whole: the same rows in the same (file) order. The
            # inner LIMIT keeps the file's order as the plain one does (DuckDB preserves
            # insertion order) and stops at the 20th row; an ORDER BY there reads it all.
            relation, position = numbered
            return (
                f"SELECT * EXCLUDE ({position}) FROM {relation} WHERE {position} IN "
                f"(SELECT {position} FROM {relation} WHERE {condition} LIMIT {SAMPLE_ROWS}) "
                f"ORDER BY {position}",
                params,
            )
        order = f" ORDER BY {self.q(check.column)}" if check.kind == CheckKind.UNIQUE else ""
        return (
            f"SELECT * FROM {self.relation} WHERE {condition}{order} LIMIT {SAMPLE_ROWS}",
            params,
        )

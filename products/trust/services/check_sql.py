"""Compiles a port's checks into as few SQL statements as possible.

Every row-level check, the row count and the freshness maximum become one expression
of a single aggregate `SELECT ... FROM <port relation>`: one scan of the table, pushed
down to PostgreSQL, DuckDB or Spark, in the engine's own spelling (`SPELLINGS`). On
Parquet the same scan also finds where each check's first failing rows are (their
positions in the file). The samples of every failing check are then read in one more
statement (on Spark and for DuckDB tables, one each). Custom SQL checks run one statement
each, but for the plain filtered counts DuckDB and Spark count in the aggregate. Identifiers are
quoted from the source's own column list; every value is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from products.choices import ROW_LEVEL_CHECKS, CheckKind
from products.connectors import Connector
from products.connectors.column_types import (
    NUMERIC,
    OTHER,
    is_single_precision,
    numeric_kind,
    type_family,
    typed_value,
)
from products.connectors.dialects import sql_type

SAMPLE_ROWS = 20


@dataclass(frozen=True)
class Spelling:
    """How one engine writes what the checks need, by the connector's dialect. Every
    engine compares NaN as a value equal to itself and above every number (PostgreSQL
    and DuckDB order it so, Spark too), so the conditions mean the same on each."""

    dialect: str  # the connector's
    regex_match: str  # a partial (search) match of {text} against the pattern {pattern}
    nan_test: str  # whether {column} is NaN
    # the unique check's duplicates in the one aggregate: "subquery" (a scalar subquery,
    # run apart: PostgreSQL), or "" (its own grouping statement, with its first
    # duplicated keys: DuckDB and Spark, unique_statement)
    unique_count: str
    # the SAMPLE_ROWS smallest values of {key}, ascending, in bounded memory (the
    # unique statement's first duplicated keys)
    smallest: str = ""

    @property
    def text_type(self) -> str:
        """A cast to text: TEXT, or STRING on Spark (which refuses VARCHAR without a
        length)."""
        return sql_type("text", self.dialect)

    @property
    def double_type(self) -> str:
        return sql_type("double", self.dialect)


SPELLINGS = {
    "postgresql": Spelling(
        dialect="postgresql",
        regex_match="{text} ~ {pattern}",
        nan_test="{column} = CAST('NaN' AS DOUBLE PRECISION)",
        unique_count="subquery",
    ),
    "duckdb": Spelling(
        dialect="duckdb",
        regex_match="regexp_matches({text}, {pattern})",
        nan_test="isnan({column})",
        unique_count="",
        smallest="min({key}, {n})",
    ),
    # Java regular expressions, found anywhere in the text (RLIKE is a search, as ~ is)
    "spark": Spelling(
        dialect="spark",
        regex_match="{text} RLIKE {pattern}",
        nan_test="isnan({column})",
        # A count(DISTINCT) beside the other aggregates makes Spark copy every row once per
        # distinct group (its Expand): a 10-million-row scan took 7 x as long. Grouping
        # the column apart costs one shuffle of that column alone.
        unique_count="",
        smallest="min_by({key}, {key}, {n})",  # Spark 4.2: the k smallest, ascending
    ),
}


@dataclass
class AggregatePlan:
    """One SELECT over the port relation. `slots[check_id]` is the index of that check's
    value in the result row; index 0 is always count(*)."""

    sql: str
    params: list[Any]
    slots: dict[int, int] = field(default_factory=dict)
    expressions: list[str] = field(default_factory=list)
    # check id -> index of the list of its first SAMPLE_ROWS failing rows' positions
    # (Parquet only; NULL when none fails).
    positions: dict[int, int] = field(default_factory=dict)


@dataclass
class SampleRequest:
    """A failing check whose sample is wanted: by the positions its aggregate found
    (Parquet), by its duplicated keys (the unique check on DuckDB), or else by its
    failing condition."""

    check: Any
    positions: list[int] | None = None
    keys: list[Any] | None = None


@dataclass
class SamplesPlan:
    """One statement reading the samples of several failing checks. Each result row is
    (branch, order, flags..., the relation's columns): branch 0 holds the rows read by
    position, flag j saying whether the row fails `positional[j]`; branch b > 0 holds
    `branches[b]`'s rows, in `order`."""

    sql: str
    params: list[Any]
    positional: list[SampleRequest] = field(default_factory=list)
    branches: dict[int, SampleRequest] = field(default_factory=dict)

    def split(self, names: list[str], rows: list[tuple]) -> dict[int, list[dict]]:
        """Each check's sample (check id -> rows as dicts), in its order. A check read by
        position whose rows are not all there (the file changed since the aggregate) is
        left out: its sample is read again on its own."""
        skip = 2 + len(self.positional)
        columns = names[skip:]
        found: dict[int, list[tuple]] = {}
        for row in rows:
            branch, order = row[0], row[1]
            if branch == 0:
                for index, request in enumerate(self.positional):
                    if row[2 + index] and order in request.positions:
                        found.setdefault(request.check.pk, []).append((order, row[skip:]))
            else:
                found.setdefault(self.branches[branch].check.pk, []).append((order, row[skip:]))
        samples = {}
        for request in self.positional:
            rows_found = found.get(request.check.pk, [])
            if len(rows_found) == len(request.positions):
                samples[request.check.pk] = rows_found
        for request in self.branches.values():
            samples[request.check.pk] = found.get(request.check.pk, [])
        return {
            pk: [dict(zip(columns, values, strict=True)) for _, values in sorted(pairs, key=_first)]
            for pk, pairs in samples.items()
        }


def _first(pair: tuple) -> Any:
    return pair[0]


class CheckSQL:
    """Dialect-aware SQL for one connector's relation."""

    def __init__(self, connector: Connector, *, column_types: dict[str, str] | None = None) -> None:
        """`column_types`: the relation's columns and their types (as the source names
        them), which accepted values are compared by."""
        self.connector = connector
        self.dialect = connector.dialect
        self.spelling = SPELLINGS.get(self.dialect, SPELLINGS["duckdb"])
        self.p = connector.paramstyle
        self.relation = connector.relation_sql()
        self.column_types = column_types or {}
        # Custom SQL checks that are a plain filtered count (check id -> its condition,
        # validated and written back by sqlglot): counted in the aggregate's scan.
        self.custom_counts: dict[int, str] = {}

    def q(self, column: str) -> str:
        return self.connector.quote_ident(column)

    def _placeholders(self, count: int) -> str:
        return ", ".join([self.p] * count)

    def _as_text(self, column: str) -> str:
        return f"CAST({self.q(column)} AS {self.spelling.text_type})"

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
                    # NaN is above every number (every engine orders it so); said outright,
                    # or DuckDB's Parquet statistics (which leave NaN out) skip its rows.
                    parts.append(self._is_nan(column))
            return "(" + " OR ".join(parts) + ")", values
        if check.kind == CheckKind.PATTERN:
            match = self.spelling.regex_match.format(
                text=self._as_text(check.column), pattern=self.p
            )
            return f"{column} IS NOT NULL AND NOT ({match})", [params.get("regex", "")]
        raise ValueError(f"{check.kind} is not a row-level check")

    def _is_nan(self, column: str) -> str:
        return self.spelling.nan_test.format(column=column)

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
            target = "REAL" if is_single_precision(data_type) else self.spelling.double_type
            marks = [f"CAST({self.p} AS {target})"] * len(values)
        elif family == OTHER:
            compared = self._as_text(name)
        return f"{column} IS NOT NULL AND {compared} NOT IN ({', '.join(marks)})", values

    def aggregate_expression(self, check) -> tuple[str, list[Any]] | None:
        """The aggregate computing a check's observed value, or None when the check
        needs no column expression (row count, volume change, schema, custom SQL other
        than the counts in `custom_counts`)."""
        if check.kind == CheckKind.UNIQUE:
            column = self.q(check.column)
            duplicates = f"count({column}) - count(DISTINCT {column})"
            if self.spelling.unique_count != "subquery":
                return None  # DuckDB, Spark: one grouping statement (unique_statement)
            # A scalar subquery (an InitPlan): its sort of the column runs once, apart,
            # so count(DISTINCT) no longer holds the main scan to one process (an
            # aggregate with a DISTINCT cannot be split across parallel workers).
            return f"(SELECT {duplicates} FROM {self.relation})", []
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
        if check.kind == CheckKind.CUSTOM_SQL and check.pk in self.custom_counts:
            return f"count(*) FILTER (WHERE {self.custom_counts[check.pk]})", []
        return None

    def aggregate_plan(
        self,
        checks,
        *,
        extra_max_column: str | None = None,
        sample_positions: bool = False,
    ) -> AggregatePlan:
        """One SELECT for every check that has an aggregate expression. When
        `extra_max_column` is given (the port's freshness column) its max() is added as
        the last expression, for the observation history.

        `sample_positions`: where the source numbers its rows (Parquet), the same scan
        also gives each row-level check's first SAMPLE_ROWS failing positions, in the
        file's order (`min(position, n)` keeps n values: bounded memory); its sample then
        reads those rows without looking for them again. The unique check's rows are
        found by its keys instead."""
        numbered = self.connector.numbered_relation() if sample_positions else None
        expressions, params, slots = ["count(*)"], [], {}
        located = []
        for check in checks:
            compiled = self.aggregate_expression(check)
            if compiled is None:
                continue
            expression, values = compiled
            slots[check.pk] = len(expressions)
            expressions.append(expression)
            params.extend(values)
            if numbered and check.kind in ROW_LEVEL_CHECKS and check.kind != CheckKind.UNIQUE:
                located.append(check)
        positions = {}
        for check in located:
            condition, values = self.failing_condition(check)
            positions[check.pk] = len(expressions)
            expressions.append(f"min({numbered[1]}, {SAMPLE_ROWS}) FILTER (WHERE {condition})")
            params.extend(values)
        if extra_max_column:
            expressions.append(f"max({self.q(extra_max_column)})")
        select = ",\n  ".join(f"{e} AS v{i}" for i, e in enumerate(expressions))
        relation = numbered[0] if positions else self.relation
        return AggregatePlan(
            sql=f"SELECT\n  {select}\nFROM {relation}",
            params=params,
            slots=slots,
            expressions=expressions,
            positions=positions,
        )

    def unique_statement(self, check) -> str:
        """DuckDB and Spark: the duplicate count and the first SAMPLE_ROWS duplicated keys,
        grouping the column once (a count(DISTINCT) in the aggregate plus a grouping
        sample would group it twice). `smallest` keeps the n smallest keys in a bounded
        heap, in ascending order; a list of every duplicated key, sorted, grew with the
        duplicates. NaN is one key, as to count(DISTINCT)."""
        column = self.q(check.column)
        smallest = self.spelling.smallest.format(key="k", n=SAMPLE_ROWS)
        return (
            f"SELECT coalesce(sum(n) - count(*), 0), {smallest} "
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

    def samples_plan(self, requests: list[SampleRequest]) -> SamplesPlan | None:
        """One statement for the samples of the failing checks it can read together
        (None when there is none): on PostgreSQL every one, each its own branch of a
        UNION ALL (the same SELECT as sample_sql, so the same rows); on DuckDB the rows
        found by position, all in one read of the file (each row group is decompressed
        once, whichever checks its rows fail), and the unique check's rows by key. A
        sample on DuckDB or Spark by condition alone (CSV, a DuckDB or Spark table) keeps
        its own statement (sample_sql): neither promises a UNION ALL branch's order."""
        postgres = self.dialect == "postgresql"
        numbered = None
        if not postgres and any(request.positions for request in requests):
            numbered = self.connector.numbered_relation()
        positional, others = [], []
        for request in requests:
            if numbered and request.positions:
                positional.append(request)
            elif postgres or request.keys is not None:
                others.append(request)
        if not positional and not others:
            return None
        parts, params = [], []
        pad = "".join(", NULL" for _ in positional)
        if positional:
            relation, position = numbered
            flags = []
            for request in positional:
                condition, values = self.failing_condition(request.check)
                flags.append(f", ({condition})")
                params.extend(values)
            wanted = sorted({p for request in positional for p in request.positions})
            parts.append(
                f"SELECT 0 AS sample_branch, {position} AS sample_order{''.join(flags)}, "
                f"* EXCLUDE ({position}) FROM {relation} "
                f"WHERE {position} IN ({self._placeholders(len(wanted))})"
            )
            params.extend(wanted)
        branches = {}
        for branch, request in enumerate(others, start=1):
            if request.keys is not None and not postgres:
                inner, values = self.sample_by_keys_sql(request.check, request.keys)
                order = f"ORDER BY {self.q(request.check.column)}"
            else:
                inner, values = self.sample_sql(request.check)
                order = ""  # the inner SELECT's own order (PostgreSQL keeps it)
            parts.append(
                f"SELECT {branch} AS sample_branch, row_number() OVER ({order}) AS sample_order"
                f"{pad}, * FROM ({inner}) AS sample_rows"
            )
            params.extend(values)
            branches[branch] = request
        return SamplesPlan(
            sql="\nUNION ALL\n".join(parts),
            params=params,
            positional=positional,
            branches=branches,
        )

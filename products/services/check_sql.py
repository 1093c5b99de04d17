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

SAMPLE_ROWS = 20
TABLE_PLACEHOLDER = "{table}"

# Functions custom SQL may not call: they read server files, reach other servers, change
# settings (statement_timeout...) or act on other sessions.
FORBIDDEN_FUNCTION_PREFIXES = (
    "pg_read_",
    "pg_ls_",
    "pg_stat_file",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "lo_",
    "dblink",
    "set_config",
    "read_csv",
    "read_parquet",
    "read_json",
    "read_text",
    "read_blob",
    "glob",
)
# sqlglot's expression classes, by name (sqlglot is imported when custom SQL is checked).
WRITE_NODES = (
    "Insert",
    "Update",
    "Delete",
    "Merge",
    "Create",
    "Drop",
    "Alter",
    "Command",
    "Into",
    "Copy",
    "Set",
    "Transaction",
    "Commit",
    "Rollback",
)


class CustomSQLRefused(ValueError):
    """The custom SQL is not a single read-only query; the message says why."""


def custom_sql_validate(sql: str, *, dialect: str = "postgres") -> None:
    """Refuse anything but one read-only SELECT (writes, DDL, several statements,
    file and server functions). Raises CustomSQLRefused with a reason."""
    # Imported here, not at the top: sqlglot (~7 MB) is for custom SQL only, and a worker
    # or web process that never validates one does without it.
    import sqlglot
    from sqlglot import exp

    write_nodes: tuple[type[exp.Expression], ...] = tuple(getattr(exp, n) for n in WRITE_NODES)
    text = (sql or "").strip().rstrip(";").strip()
    if not text:
        raise CustomSQLRefused("Write a SELECT that returns the number of failing rows.")
    try:
        statements = [
            s
            for s in sqlglot.parse(text.replace(TABLE_PLACEHOLDER, "port_table"), read=dialect)
            if s is not None
        ]
    except sqlglot.errors.ParseError as exc:
        raise CustomSQLRefused(f"The SQL does not parse: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        raise CustomSQLRefused("Write exactly one statement.")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise CustomSQLRefused("Only a SELECT query is allowed: checks never change data.")
    for node in statement.walk():
        if isinstance(node, write_nodes):
            raise CustomSQLRefused(
                f"The query would write or change something ({node.key.upper()}); "
                "checks are read-only."
            )
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name.startswith(FORBIDDEN_FUNCTION_PREFIXES):
                raise CustomSQLRefused(f"The function {name}() is not allowed in a check.")


def custom_sql_statement(sql: str, *, relation_sql: str) -> str:
    """The custom SQL with `{table}` replaced by the port's (quoted) relation."""
    return (sql or "").strip().rstrip(";").replace(TABLE_PLACEHOLDER, relation_sql)


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

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self.dialect = connector.dialect
        self.p = connector.paramstyle
        self.relation = connector.relation_sql()

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
            values = [str(v) for v in params.get("values", [])]
            return (
                f"{column} IS NOT NULL AND {self._as_text(check.column)} NOT IN "
                f"({self._placeholders(len(values))})",
                values,
            )
        if check.kind == CheckKind.RANGE:
            parts, values = [], []
            if params.get("min") is not None:
                parts.append(f"{column} < {self.p}")
                values.append(params["min"])
            if params.get("max") is not None:
                parts.append(f"{column} > {self.p}")
                values.append(params["max"])
            return "(" + " OR ".join(parts) + ")", values
        if check.kind == CheckKind.PATTERN:
            if self.dialect == "postgresql":
                match = f"{self._as_text(check.column)} ~ {self.p}"
            else:
                match = f"regexp_matches({self._as_text(check.column)}, {self.p})"
            return f"{column} IS NOT NULL AND NOT ({match})", [params.get("regex", "")]
        raise ValueError(f"{check.kind} is not a row-level check")

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

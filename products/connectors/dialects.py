"""How each connector's SQL dialect is named and spelled, in one place: the connectors'
own `dialect` ("postgresql", "duckdb", "spark") and sqlglot's name of it, and a SQL type
as that dialect writes it. Import-light: sqlglot (~7 MB) is loaded by the first
`sql_type` call, never by loading the URLs."""

from __future__ import annotations

import functools

# sqlglot's names of the connectors' dialects, where they differ.
SQLGLOT_DIALECTS = {"postgresql": "postgres"}


def sqlglot_dialect(dialect: str) -> str:
    """sqlglot's name of a connector's dialect ("postgresql" -> "postgres"; sqlglot's
    own names pass through)."""
    return SQLGLOT_DIALECTS.get(dialect, dialect)


@functools.cache
def sql_type(name: str, dialect: str) -> str:
    """A SQL type as the connector's `dialect` writes it: "text" is TEXT on PostgreSQL and
    DuckDB, STRING on Spark; "double" is DOUBLE PRECISION on PostgreSQL, DOUBLE elsewhere."""
    from sqlglot import exp

    return exp.DataType.build(name).sql(dialect=sqlglot_dialect(dialect))
